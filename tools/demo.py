#!/usr/bin/env python
"""The demo: the point of the library in one command, on CPU.

    python tools/demo.py [--cfg configs/demo_synthetic.yaml] [--out DIR] [--threads N] [KEY VALUE ...]

Generates a small synthetic motion dataset (``SYNTHETIC`` in the config; real H.264 files), trains
``timesformer`` (TimeSformer's recipe) and ``resformer_multi_sc`` (the full method) on it with the
same budget, tests both at every ``TEST.RESOLUTIONS`` size and prints them side by side with the
recorded study's mean and the range one run should fall in (resformer_video/study/demo.py).
Everything goes to ``--out DIR`` (default: the config's ``OUTPUT_DIR``, ``./output/demo``);
rerunning skips finished runs; a folder holding runs made with another config is refused.
"""

import os
import shlex
import sys
from collections.abc import Sequence
from typing import Optional

from resformer_video.study.commands import demo_command
from resformer_video.utils.parser import build_parser, parse_flags_then_overrides

DEFAULT_CFG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "demo_synthetic.yaml"
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser(
        "Train TimeSformer's recipe and ResFormer's on a generated motion dataset "
        "(CPU) and compare them at several test resolutions."
    )
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out", default="", help="demo folder (default: the config's OUTPUT_DIR)")
    args = parse_flags_then_overrides(parser, argv)
    command = shlex.join(["python", "tools/demo.py"] + list(sys.argv[1:] if argv is None else argv))
    return demo_command(args, DEFAULT_CFG, command)


if __name__ == "__main__":
    sys.exit(main())

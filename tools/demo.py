#!/usr/bin/env python
"""The demo: the point of the library in one command, on CPU.

    python tools/demo.py [--cfg configs/demo_synthetic.yaml] [--threads N] [KEY VALUE ...]

Generates a small synthetic motion dataset (``SYNTHETIC`` in the config; real H.264 files), trains
``timesformer`` (TimeSformer's recipe) and ``resformer_multi_sc`` (the full method) on it with the
same budget, tests both at every ``TEST.RESOLUTIONS`` size and prints them side by side with the
recorded study's mean and the range one run should fall in (resformer_video/study/demo.py).
Everything goes to ``OUTPUT_DIR`` (default ``./output/demo``); rerunning skips finished runs.
"""

import os
import shlex
import sys

import torch

from resformer_video.config import ConfigError, load_config
from resformer_video.study import StudyConfigMismatch
from resformer_video.study.demo import run_demo
from resformer_video.utils.parser import build_parser

DEFAULT_CFG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "configs", "demo_synthetic.yaml")


def main() -> int:
    parser = build_parser("Train TimeSformer's recipe and ResFormer's on a generated motion dataset "
                          "(CPU) and compare them at several test resolutions.")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.cfg_file or DEFAULT_CFG, args.opts)
        print("\n" + run_demo(cfg, shlex.join(["python", "tools/demo.py"] + sys.argv[1:])))
    except (ConfigError, FileNotFoundError, StudyConfigMismatch) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

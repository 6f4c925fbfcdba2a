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
from typing import Optional, Sequence

import torch

from resformer_video.config import ConfigError, load_config
from resformer_video.engine.interrupt import TrainingInterrupted
from resformer_video.study import StudyConfigMismatch
from resformer_video.study.demo import run_demo
from resformer_video.utils.parser import build_parser
from resformer_video.utils.run_lock import RunLockError

DEFAULT_CFG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "configs", "demo_synthetic.yaml")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser("Train TimeSformer's recipe and ResFormer's on a generated motion dataset "
                          "(CPU) and compare them at several test resolutions.")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out", default="", help="demo folder (default: the config's OUTPUT_DIR)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "tools/demo.py"] + list(sys.argv[1:] if argv is None else argv))
    try:
        cfg = load_config(args.cfg_file or DEFAULT_CFG, args.opts)
        print("\n" + run_demo(cfg, command, args.out or cfg.OUTPUT_DIR))
    except (ConfigError, FileNotFoundError, StudyConfigMismatch, RunLockError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:  # SIGTERM / Ctrl-C: the run's checkpoint is written
        print(f"stopped: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

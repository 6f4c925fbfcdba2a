#!/usr/bin/env python
"""Train and/or test a video model: ``python tools/run_net.py --cfg CONFIG [KEY VALUE ...]``.

Plain ``python`` starts one process per GPU when ``NUM_GPUS`` > 1 (one process otherwise); under
``torchrun --nproc_per_node N tools/run_net.py --cfg CONFIG`` each process is one of torchrun's (see
docs/TRAINING.md for multi-node and SLURM launches). ``TRAIN.ENABLE`` and ``TEST.ENABLE`` choose
what runs; ``--dry-run`` prints the effective recipe and exits.

Exit codes: 0 done; 1 a write failed (read-only or full disk; one ``error: PATH: cause`` line);
2 a bad config, list, checkpoint or video set, or an ``OUTPUT_DIR`` another run uses or that cannot
be written; 143 (SIGTERM) or 130 (Ctrl-C) training stopped after writing a checkpoint that the
same command continues from (docs/RELIABILITY.md).
"""

import sys
from collections.abc import Sequence
from typing import Optional

from resformer_video.engine.runner import run_net_command
from resformer_video.utils.parser import parse_run_args


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_net_command(parse_run_args("Train and test ResFormer-style video transformers.", argv))


if __name__ == "__main__":
    sys.exit(main())

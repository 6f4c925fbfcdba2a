#!/usr/bin/env python
"""Train and/or test a video model: ``python tools/run_net.py --cfg CONFIG [KEY VALUE ...]``.

One process with plain ``python``; one process per GPU with
``torchrun --nproc_per_node N tools/run_net.py --cfg CONFIG`` (see docs/TRAINING.md for multi-node
and SLURM launches). ``TRAIN.ENABLE`` and ``TEST.ENABLE`` choose what runs.

Exit codes: 0 done; 1 a write failed (read-only or full disk; one ``error: PATH: cause`` line);
2 a bad config, list, checkpoint or video set, or an ``OUTPUT_DIR`` another run uses or that cannot
be written; 143 (SIGTERM) or 130 (Ctrl-C) training stopped after writing a checkpoint that the
same command continues from (docs/RELIABILITY.md).
"""

import os
import sys
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from resformer_video.config import load_config  # noqa: E402
from resformer_video.engine import run  # noqa: E402
from resformer_video.engine.interrupt import TrainingInterrupted  # noqa: E402
from resformer_video.engine.runner import USER_ERRORS, error_line  # noqa: E402
from resformer_video.utils.distributed import launch  # noqa: E402
from resformer_video.utils.parser import parse_args  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args("Train and test ResFormer-style video transformers.", argv)
    try:
        cfg = load_config(args.cfg_file, args.opts)
        launch(cfg, run)
    except USER_ERRORS as err:  # bad config, list, weights or videos: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:  # SIGTERM / Ctrl-C: checkpoint written, rerun continues
        print(f"stopped: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except OSError as err:  # a write failed: read-only or full disk
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""The demo: the point of the library in one command, on CPU.

    python tools/demo.py [--cfg configs/demo_synthetic.yaml] [KEY VALUE ...]

Generates a small synthetic motion dataset (``SYNTHETIC`` in the config; real H.264 files), then
trains two models on the same data with the same budget, as two variants of the resolution study
(``tools/study.py``): ``timesformer`` (TimeSformer's recipe: learned position table, one training
size) and ``resformer_multi_sc`` (the full method: GPE + LPE, multi-resolution training and the
scale-consistency loss). Both are tested at every ``TEST.RESOLUTIONS`` size and printed side by side
next to chance. Everything goes to ``OUTPUT_DIR`` (default ``./output/demo``): the study table,
plot and JSON, and each run's logs, checkpoints and test results. Rerunning skips finished runs.
"""

import os
import shlex
import sys
import time
from typing import Any, Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from resformer_video.config import ConfigError, load_config  # noqa: E402
from resformer_video.engine.interrupt import TrainingInterrupted  # noqa: E402
from resformer_video.study import StudyConfigMismatch, run_study  # noqa: E402
from resformer_video.utils.parser import build_parser  # noqa: E402
from resformer_video.utils.run_lock import RunLockError  # noqa: E402

DEFAULT_CFG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "configs", "demo_synthetic.yaml")
VARIANTS = ("timesformer", "resformer_multi_sc")
LABELS = {"timesformer": "TimeSformer", "resformer_multi_sc": "ResFormer"}


def side_by_side(study: Dict[str, Any]) -> str:
    """The demo's table: one row per test size, video-level top-1 of each variant, chance."""
    variants = study["variants"]
    header = f"{'test size':>10}" + "".join(f"{LABELS[name]:>13}" for name in VARIANTS) + f"{'GFLOPs':>9}"
    lines = [header]
    for size in variants[VARIANTS[0]]["test"]:
        cells = "".join(f"{variants[name]['test'][size]['top1']:>12.1f}%" for name in VARIANTS)
        lines.append(f"{size:>10}{cells}{study['gflops'][VARIANTS[1]][size]:>9.3f}")
    trained = ", ".join(f"{LABELS[name]} at {'/'.join(map(str, variants[name]['train_sizes']))}"
                        for name in VARIANTS)
    lines.append(f"\nvideo-level top-1 on {study['num_test_videos']} test videos ({study['views']}); "
                 f"chance {study['chance']:.1f}%; trained: {trained} px")
    return "\n".join(lines)


def main() -> int:
    parser = build_parser("Train TimeSformer's recipe and ResFormer's on a generated motion dataset "
                          "(CPU) and compare them at several test resolutions.")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    start = time.time()
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "tools/demo.py"] + sys.argv[1:])
    try:
        cfg = load_config(args.cfg_file or DEFAULT_CFG, args.opts)
        study = run_study(cfg, list(VARIANTS), [cfg.RNG_SEED], cfg.OUTPUT_DIR, command=command)
    except (ConfigError, FileNotFoundError, StudyConfigMismatch, RunLockError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:  # SIGTERM / Ctrl-C: the run's checkpoint is written
        print(f"stopped: {err}", file=sys.stderr)
        return err.exit_code
    print("\n" + side_by_side(study))
    print(f"total time {(time.time() - start) / 60:.1f} min; table, plot and runs in {cfg.OUTPUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

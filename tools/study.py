#!/usr/bin/env python
"""The resolution study: the ResFormer paper's Table 4 on any dataset, reproduced in shape.

    python tools/study.py --cfg configs/study_synthetic.yaml [--variants A,B,...] [--seeds 0,1,2]
                          [--data-seeds 0,1] [--out DIR] [KEY VALUE ...]

Generates the synthetic dataset the config's ``SYNTHETIC`` node describes (when
``DATA.PATH_TO_DATA_DIR`` has no lists yet), trains every variant (timesformer, resformer_single,
resformer_multi, resformer_multi_sc, space_only; see resformer_video/study/variants.py) with every
seed on that data, tests each run's final checkpoint at every ``TEST.RESOLUTIONS`` size, and writes
``DIR/study.json``, ``DIR/study.md`` and ``DIR/study.png`` (``DIR`` defaults to ``OUTPUT_DIR``), each
run's own outputs under ``DIR/runs/<variant>/seed<seed>``. Rerun with the same ``--out`` to skip
finished runs and continue an interrupted one.
"""

import shlex
import sys


from resformer_video.config import ConfigError, load_config
from resformer_video.engine.interrupt import TrainingInterrupted
from resformer_video.study import StudyConfigMismatch, parse_seeds, parse_variants, run_study
from resformer_video.utils.parser import build_parser
from resformer_video.utils.run_lock import RunLockError


def main(argv=None) -> int:
    parser = build_parser("Train and test every study variant with every seed; write the table and plot.")
    parser.add_argument("--variants", default="", help="comma-separated variants (default: all)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
    parser.add_argument("--data-seeds", default="",
                        help="comma-separated SYNTHETIC.SEED values: run every variant and seed on each of "
                             "these generated datasets (in DIR/data<seed>/) and pair them by dataset and seed "
                             "(default: the config's own dataset)")
    parser.add_argument("--out", default="", help="study folder (default: the config's OUTPUT_DIR)")
    args = parser.parse_args(argv)
    try:
        variants, seeds = parse_variants(args.variants), parse_seeds(args.seeds)
        data_seeds = parse_seeds(args.data_seeds, "--data-seeds") if args.data_seeds else None
    except ValueError as err:
        parser.error(str(err))
    command = shlex.join(["python", "tools/study.py"] + list(sys.argv[1:] if argv is None else argv))
    try:
        cfg = load_config(args.cfg_file, args.opts)
        run_study(cfg, variants, seeds, args.out or cfg.OUTPUT_DIR, command=command, data_seeds=data_seeds)
    except (ConfigError, FileNotFoundError, StudyConfigMismatch, RunLockError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:  # SIGTERM / Ctrl-C: the run's checkpoint is written
        print(f"stopped: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

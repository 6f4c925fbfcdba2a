#!/usr/bin/env python
"""The resolution study: the ResFormer paper's Table 4 on any dataset, reproduced in shape.

    python tools/study.py --cfg configs/study_synthetic.yaml [--variants A,B,...] [--seeds 0,1,2]
                          [--data-seeds 0,1] [--out DIR] [--report-only] [KEY VALUE ...]

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
from collections.abc import Sequence
from typing import Optional

from resformer_video.study import parse_seeds, parse_variants
from resformer_video.study.commands import study_command
from resformer_video.utils.parser import build_parser, parse_flags_then_overrides


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser("Train and test every study variant with every seed; write the table and plot.")
    parser.add_argument("--variants", default="", help="comma-separated variants (default: all)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
    parser.add_argument(
        "--data-seeds",
        default="",
        help="comma-separated SYNTHETIC.SEED values: run every variant and seed on each of "
        "these generated datasets (in DIR/data<seed>/) and pair them by dataset and seed "
        "(default: the config's own dataset)",
    )
    parser.add_argument("--out", default="", help="study folder (default: the config's OUTPUT_DIR)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the report of the runs already finished (e.g. while "
        "another invocation is still training the rest)",
    )
    args = parse_flags_then_overrides(parser, argv)
    try:
        variants, seeds = parse_variants(args.variants), parse_seeds(args.seeds)
        data_seeds = parse_seeds(args.data_seeds, "--data-seeds") if args.data_seeds else None
    except ValueError as err:
        parser.error(str(err))
    command = shlex.join(["python", "tools/study.py"] + list(sys.argv[1:] if argv is None else argv))
    return study_command(args, variants, seeds, data_seeds, command)


if __name__ == "__main__":
    sys.exit(main())

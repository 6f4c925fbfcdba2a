#!/usr/bin/env python
"""Print the configured model's parameters and FLOPs (multiply-adds, fvcore, SDPA counted).

One line per resolution: DATA.TEST_CROP_SIZE, or each size given with ``--resolutions``; the clip
has DATA.NUM_FRAMES frames. Example::

    python tools/model_info.py --cfg configs/k400_resformer_b.yaml --resolutions 160 224 288
"""

import sys
from typing import List, Optional, Sequence

from resformer_video.engine.commands import model_info_command
from resformer_video.utils.parser import build_parser


def _split_trailing_resolutions(opts: List[str]) -> tuple:
    """``[KEY VALUE ... --resolutions 160 224]`` -> (``[KEY VALUE ...]``, ``[160, 224]``)."""
    if "--resolutions" not in opts:
        return opts, []
    start = opts.index("--resolutions")
    sizes = [int(v) for v in opts[start + 1:] if v.isdigit()]
    rest = opts[:start] + [v for v in opts[start + 1:] if not v.isdigit()]
    return rest, sizes


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser("Parameters and FLOPs of the configured model.")
    parser.add_argument("--resolutions", type=int, nargs="+", default=None,
                        help="square input sizes (default: DATA.TEST_CROP_SIZE)")
    args = parser.parse_args(argv)
    args.opts, trailing = _split_trailing_resolutions(args.opts or [])
    args.resolutions = trailing or args.resolutions
    return model_info_command(args)


if __name__ == "__main__":
    sys.exit(main())

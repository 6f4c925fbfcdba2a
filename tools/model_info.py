#!/usr/bin/env python
"""Print the configured model's parameters and FLOPs (multiply-adds, fvcore, SDPA counted).

One line per resolution: DATA.TEST_CROP_SIZE, or each size given with ``--resolutions``; the clip
has DATA.NUM_FRAMES frames. Example::

    python tools/model_info.py --cfg configs/k400_resformer_b.yaml --resolutions 160 224 288 [KEY VALUE ...]
"""

import sys
from collections.abc import Sequence
from typing import Optional

from resformer_video.engine.commands import model_info_command
from resformer_video.utils.parser import build_parser, parse_flags_then_overrides


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser("Parameters and FLOPs of the configured model.")
    parser.add_argument(
        "--resolutions", type=int, nargs="+", default=None, help="square input sizes (default: DATA.TEST_CROP_SIZE)"
    )
    return model_info_command(parse_flags_then_overrides(parser, argv))


if __name__ == "__main__":
    sys.exit(main())

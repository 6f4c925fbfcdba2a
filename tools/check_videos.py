#!/usr/bin/env python
"""Check that every video of a dataset's splits decodes, before a long training run.

Example (flags first, then KEY VALUE config overrides):
    python tools/check_videos.py --cfg configs/k400_resformer_b.yaml --workers 8 \
        DATA.PATH_TO_DATA_DIR /data/k400

Each video is read as training reads it (DATA.DECODER, then DATA.DECODER_FALLBACK) and its first,
middle and last frames are decoded; the report says which decoder read it. Prints
a summary per split and the failures, writes a JSON report (every video's frames, fps, size or
error; by default ``video_check.json`` next to the lists, in DATA.PATH_TO_DATA_DIR, else
``--report PATH``) and exits with 1 when a video failed, 2 on a bad config or list. Training would
skip and count such videos; this finds them up front.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from resformer_video.datasets.lists import SPLITS
from resformer_video.engine.commands import check_videos_command
from resformer_video.utils.parser import build_parser, comma_choices, parse_flags_then_overrides


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--splits",
        type=comma_choices(SPLITS, "splits"),
        default=list(SPLITS),
        help="comma-separated splits to check (default train,val,test)",
    )
    parser.add_argument("--workers", type=int, default=0, help="decoding processes (0: this one)")
    parser.add_argument(
        "--report",
        default=None,
        help="JSON report path (default: video_check.json in DATA.PATH_TO_DATA_DIR, next to the lists)",
    )
    return parse_flags_then_overrides(parser, argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return check_videos_command(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

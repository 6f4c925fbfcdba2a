#!/usr/bin/env python
"""Turn the official Kinetics-400 download into training lists, optionally re-encoded for speed.

Example (lists of the originals; then re-encoded copies with 8 processes):
    python tools/prepare_kinetics.py --root /data/kinetics400 --out /data/k400_lists
    python tools/prepare_kinetics.py --root /data/kinetics400 --out /data/k400_320 --resize --workers 8

Reads ROOT/annotations/{train,val,test}.csv (label,youtube_id,time_start,time_end,split; a test
CSV may have no labels) and the videos in ROOT/{train,val,test}/ named
{youtube_id}_{start:06d}_{end:06d}.mp4 or {youtube_id}.mp4. Writes OUT/{split}.csv ("path label",
labels in the standard Kinetics-400 order, readable videos only) and OUT/prepare_report.csv (every
missing and unreadable video). --resize re-encodes into OUT/videos/ (short side 320, never
upscaled; a key frame every 16 frames; x264 tuned for fast decoding; frame rate and length kept;
no audio); rerun the same
command to resume a run that stopped. Ends with the counts per split and the command that trains
on the lists. Exit code 2 on a bad layout, CSV or class name (one "error: ..." line).
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from resformer_video.datasets import prepare_kinetics as prepare
from resformer_video.datasets.lists import SPLITS
from resformer_video.utils.parser import comma_choices, positive_int


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the download: ROOT/train, ROOT/val, ROOT/test")
    parser.add_argument("--out", required=True, help="output folder for the lists (and --resize videos)")
    parser.add_argument(
        "--annotations", default="", help="folder of the annotation CSVs (default ROOT/annotations, else ROOT)"
    )
    parser.add_argument(
        "--splits",
        type=comma_choices(SPLITS, "splits"),
        default=list(SPLITS),
        help="comma-separated splits (default train,val,test)",
    )
    parser.add_argument("--workers", type=int, default=0, help="processes (0: this one)")
    parser.add_argument(
        "--decoders",
        default="",
        help="comma-separated decoders that check the originals (default: training's "
        "DATA.DECODER, DATA.DECODER_FALLBACK)",
    )
    parser.add_argument("--resize", action="store_true", help="re-encode every video into OUT/videos")
    parser.add_argument(
        "--short-side",
        type=positive_int,
        default=prepare.DEFAULT_SHORT_SIDE,
        help="--resize: short side in pixels (never upscaled)",
    )
    parser.add_argument(
        "--gop",
        type=positive_int,
        default=prepare.DEFAULT_GOP,
        help="--resize: a key frame exactly every this many frames",
    )
    parser.add_argument("--crf", type=int, default=prepare.DEFAULT_CRF, help="--resize: x264 constant quality")
    parser.add_argument(
        "--preset", default=prepare.DEFAULT_PRESET, choices=prepare.X264_PRESETS, help="--resize: x264 preset"
    )
    parser.add_argument(
        "--tune",
        default=prepare.DEFAULT_TUNE,
        choices=prepare.X264_TUNES,
        help="--resize: x264 tune (fastdecode: cheaper to decode, larger files; none)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return prepare.prepare_kinetics_command(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

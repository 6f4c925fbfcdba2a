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
import os
import sys
from typing import List, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from resformer_video.datasets.decoders import DecoderUnavailableError  # noqa: E402
from resformer_video.datasets.lists import SPLITS  # noqa: E402
from resformer_video.datasets.prepare_kinetics import (DEFAULT_CRF, DEFAULT_GOP, DEFAULT_PRESET,  # noqa: E402
                                                       DEFAULT_SHORT_SIDE, DEFAULT_TUNE, PrepareError,
                                                       ResizeSettings, run_prepare)
from resformer_video.utils.logging import setup_logging  # noqa: E402

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
X264_TUNES = ("fastdecode", "film", "animation", "grain", "stillimage", "none")


def _splits(text: str) -> List[str]:
    splits = [item.strip() for item in text.split(",") if item.strip()]
    if not splits or any(split not in SPLITS for split in splits):
        raise argparse.ArgumentTypeError(f"expected comma-separated splits from {list(SPLITS)}, got {text!r}")
    return splits


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the download: ROOT/train, ROOT/val, ROOT/test")
    parser.add_argument("--out", required=True, help="output folder for the lists (and --resize videos)")
    parser.add_argument("--annotations", default="",
                        help="folder of the annotation CSVs (default ROOT/annotations, else ROOT)")
    parser.add_argument("--splits", type=_splits, default=list(SPLITS),
                        help="comma-separated splits (default train,val,test)")
    parser.add_argument("--workers", type=int, default=0, help="processes (0: this one)")
    parser.add_argument("--decoders", default="",
                        help="comma-separated decoders that check the originals (default: training's "
                             "DATA.DECODER, DATA.DECODER_FALLBACK)")
    parser.add_argument("--resize", action="store_true", help="re-encode every video into OUT/videos")
    parser.add_argument("--short-side", type=_positive, default=DEFAULT_SHORT_SIDE,
                        help="--resize: short side in pixels (never upscaled)")
    parser.add_argument("--gop", type=_positive, default=DEFAULT_GOP,
                        help="--resize: a key frame exactly every this many frames")
    parser.add_argument("--crf", type=int, default=DEFAULT_CRF, help="--resize: x264 constant quality")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=X264_PRESETS, help="--resize: x264 preset")
    parser.add_argument("--tune", default=DEFAULT_TUNE, choices=X264_TUNES,
                        help="--resize: x264 tune (fastdecode: cheaper to decode, larger files; none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    setup_logging()
    tune = "" if args.tune == "none" else args.tune
    resize = ResizeSettings(args.short_side, args.gop, args.crf, args.preset, tune) if args.resize else None
    decoders = [name.strip() for name in args.decoders.split(",") if name.strip()]
    try:
        run_prepare(args.root, args.out, annotations_dir=args.annotations, splits=args.splits, resize=resize,
                    workers=args.workers, decoders=decoders, progress=not args.no_progress)
    except (PrepareError, DecoderUnavailableError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

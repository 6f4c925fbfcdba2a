#!/usr/bin/env python
"""Extract class-token (and pooled block) features of video files, per video and per sliding window.

Example (flags, then the inputs, then KEY VALUE config overrides):
    python tools/extract_features.py --cfg configs/demo_synthetic.yaml --checkpoint ckpt.pyth \
        --out features/ --resolution 224 --layers 5,11 videos/ more.mp4 list.txt TEST.NUM_SPATIAL_CROPS 1

Writes ``NAME_video.npy`` (L, D), ``NAME_windows.npy`` (W, L, D), ``index.csv`` and ``features.json``
(resformer_video/inference/features.py); rerun with the same --out to resume.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from resformer_video.inference.commands import extract_features_command
from resformer_video.inference.predictor import DEFAULT_WINDOW_S
from resformer_video.utils.parser import build_parser, parse_flags_then_overrides
from resformer_video.utils.precision import PRECISIONS


def _layers(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated block indices, got {text!r}") from None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser(
        __doc__.splitlines()[0],
        ("VIDEO|FOLDER|LIST", "videos, folders or list files (one video per line, 'path' or 'path label')"),
        "YAML config (default: the config saved in the checkpoint)",
    )
    parser.add_argument("--checkpoint", required=True, help="training checkpoint (.pyth)")
    parser.add_argument("--out", required=True, help="output folder (rerun with it to resume)")
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="test crop size (DATA.TEST_CROP_SIZE), any multiple of the patch size",
    )
    parser.add_argument(
        "--layers",
        type=_layers,
        action="append",
        default=[],
        help="block indices whose outputs are pooled and added, comma-separated (e.g. 5,11 or -1); repeatable",
    )
    parser.add_argument("--window", type=float, default=DEFAULT_WINDOW_S, help="sliding-window length in seconds")
    parser.add_argument(
        "--stride",
        type=float,
        default=None,
        help="largest distance between window starts in seconds (default: --window)",
    )
    parser.add_argument("--path-prefix", default="", help="joined to relative paths of list files")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if NUM_GPUS > 0)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="autocast of the forward (default: bf16 where it is native, GPU or CPU with AVX512-BF16/AMX, else fp32)",
    )
    args = parse_flags_then_overrides(parser, argv)
    args.layers = [i for group in args.layers for i in group]
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    return extract_features_command(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

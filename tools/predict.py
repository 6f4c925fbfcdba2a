#!/usr/bin/env python
"""Predict the top-k classes of video files with a trained checkpoint (sliding windows, multi-view).

Example (flags, then the videos, then KEY VALUE config overrides):
    python tools/predict.py --checkpoint ckpt.pyth --topk 3 a.mp4 b.mp4 TEST.NUM_ENSEMBLE_VIEWS 2
    python tools/predict.py --cfg configs/k400_timesformer_b.yaml \
        --checkpoint TimeSformer_divST_8x32_224_K400.pyth a.mp4

``--checkpoint``: our checkpoints (their config unless ``--cfg``), or any layout ``MODEL.PRETRAINED``
converts with ``--cfg``. What it prints and its exit codes: resformer_video/inference/commands.py.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from resformer_video.inference.commands import predict_command
from resformer_video.inference.predictor import DEFAULT_WINDOW_S
from resformer_video.utils.parser import build_parser, parse_flags_then_overrides
from resformer_video.utils.precision import PRECISIONS


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser(
        __doc__.splitlines()[0],
        ("VIDEO|FOLDER", "video files, or folders (their video files, sorted, not recursive)"),
        "YAML config (default: the config saved in our checkpoint)",
        deprecated_set=True,
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="weights: our training checkpoint (.pyth), or TimeSformer/timm/ResFormer weights with --cfg",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="test crop size (DATA.TEST_CROP_SIZE), any multiple of the patch size",
    )
    parser.add_argument("--topk", type=int, default=5, help="classes to print per video and window")
    parser.add_argument("--window", type=float, default=DEFAULT_WINDOW_S, help="sliding-window length in seconds")
    parser.add_argument(
        "--stride",
        type=float,
        default=None,
        help="largest distance between window starts in seconds (default: --window)",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if NUM_GPUS > 0)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="autocast of the forward (default: bf16 where it is native - a GPU with bf16, a CPU "
        "with AVX512-BF16 or AMX -, else fp32; fp16 is CUDA only)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON list")
    parser.add_argument(
        "--out-video",
        default=None,
        metavar="FILE",
        help="also write the (single) input video with each window's top-3 labels drawn on it, H.264 (e.g. out.mp4)",
    )
    args = parse_flags_then_overrides(parser, argv)
    if args.topk < 1:
        parser.error(f"--topk must be >= 1, got {args.topk}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    return predict_command(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Export a trained model to ONNX or TorchScript and check it against eager PyTorch.

Example:
    python tools/export.py --cfg configs/k400_resformer_b.yaml --checkpoint ckpt.pyth \
        --format onnx --frames 8 --resolution 224 --output resformer_b.onnx [KEY VALUE ...]

The exported graph maps clips ``(B, 3, T, S, S)`` (normalised pixels) to logits ``(B, K)``; with
``--dynamic-resolution`` (ONNX) clips of any height and width that are multiples of the patch size,
so one file serves every test resolution. It is run on a random clip (and, when dynamic, on a
second, non-square size) and compared with the eager model; the exit code is 1 when the largest
absolute difference is above ``--tolerance``.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from resformer_video.inference.commands import export_command
from resformer_video.inference.export import DEFAULT_OPSET, DEFAULT_TOLERANCE, FORMATS
from resformer_video.utils.parser import build_parser, parse_flags_then_overrides


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser(
        __doc__.splitlines()[0],
        cfg_help="YAML config (default: the config saved in our checkpoint)",
        deprecated_set=True,
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="weights: our training checkpoint (.pyth), or TimeSformer/timm/ResFormer weights with --cfg",
    )
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--frames", type=int, default=None, help="frames T (default DATA.NUM_FRAMES)")
    parser.add_argument("--resolution", type=int, default=None, help="crop size S (default DATA.TEST_CROP_SIZE)")
    parser.add_argument("--output", default=None, help="output file (default OUTPUT_DIR/export/ARCH_TxS.onnx or .pt)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="largest allowed absolute logit difference from eager PyTorch",
    )
    parser.add_argument(
        "--verify-batch",
        type=int,
        default=3,
        help="clips in the check (the export example has 2, so 3 checks dynamic batch)",
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    parser.add_argument(
        "--dynamic-resolution",
        action="store_true",
        help="ONNX: keep height and width dynamic (any multiple of the patch size)",
    )
    return parse_flags_then_overrides(parser, argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return export_command(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

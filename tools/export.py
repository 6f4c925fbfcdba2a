#!/usr/bin/env python
"""Export a trained model to ONNX or TorchScript and check it against eager PyTorch.

Example:
    python tools/export.py --cfg configs/k400_resformer_b.yaml --checkpoint ckpt.pyth \
        --format onnx --frames 8 --resolution 224 --output resformer_b.onnx

The exported graph maps clips ``(B, 3, T, S, S)`` (normalised pixels) to logits ``(B, K)``; with
``--dynamic-resolution`` (ONNX) clips of any height and width that are multiples of the patch size,
so one file serves every test resolution. It is run on a random clip (and, when dynamic, on a
second, non-square size) and compared with the eager model; the exit code is 1 when the largest
absolute difference is above ``--tolerance``.
"""

import argparse
import os
import sys
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from resformer_video.inference.export import (DEFAULT_OPSET, DEFAULT_TOLERANCE, FORMATS,  # noqa: E402
                                              default_export_path, export_model, verify_export)
from resformer_video.engine.runner import error_line  # noqa: E402
from resformer_video.inference.predictor import load_trained  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True,
                        help="weights: our training checkpoint (.pyth), or TimeSformer/timm/ResFormer "
                             "weights with --cfg")
    parser.add_argument("--cfg", dest="cfg_file", default=None,
                        help="YAML config (default: the config saved in our checkpoint)")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--frames", type=int, default=None, help="frames T (default DATA.NUM_FRAMES)")
    parser.add_argument("--resolution", type=int, default=None,
                        help="crop size S (default DATA.TEST_CROP_SIZE)")
    parser.add_argument("--output", default=None,
                        help="output file (default OUTPUT_DIR/export/ARCH_TxS.onnx or .pt)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="largest allowed absolute logit difference from eager PyTorch")
    parser.add_argument("--verify-batch", type=int, default=3,
                        help="clips in the check (the export example has 2, so 3 checks dynamic batch)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    parser.add_argument("--dynamic-resolution", action="store_true",
                        help="ONNX: keep height and width dynamic (any multiple of the patch size)")
    parser.add_argument("--set", dest="opts", nargs=2, action="append", default=[],
                        metavar=("KEY", "VALUE"), help="config override, repeatable")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        cfg, model, _ = load_trained(args.checkpoint, args.cfg_file,
                                     [item for pair in args.opts for item in pair])
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    frames = args.frames or cfg.DATA.NUM_FRAMES
    size = args.resolution or cfg.DATA.TEST_CROP_SIZE
    if size % cfg.MODEL.PATCH_SIZE or frames < 1:
        print(f"error: --resolution {size} must be a multiple of MODEL.PATCH_SIZE "
              f"{cfg.MODEL.PATCH_SIZE} and --frames {frames} >= 1", file=sys.stderr)
        return 2
    path = args.output or default_export_path(cfg.OUTPUT_DIR, cfg.MODEL.ARCH, args.format, frames, size)
    patch = cfg.MODEL.PATCH_SIZE
    try:
        result = export_model(model, args.format, frames, size, path, args.opset,
                              args.dynamic_resolution, patch)
    except (ValueError, OSError) as err:  # OSError: the output folder cannot be written
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 2
    spatial = "H, W" if result.dynamic_resolution else f"{size}, {size}"
    print(f"wrote {result.path} ({result.exporter}, clips (B, 3, {frames}, {spatial}) -> "
          f"logits (B, {cfg.MODEL.NUM_CLASSES}), dynamic batch: {result.dynamic_batch}, "
          f"dynamic resolution: {result.dynamic_resolution})")
    # When dynamic, also a non-square size away from the export one.
    shapes = [(size, size)] + ([(size + 2 * patch, max(patch, size - 2 * patch))]
                               if result.dynamic_resolution else [])
    checks = [verify_export(model, result, frames, h, args.tolerance, args.verify_batch, width=w)
              for h, w in shapes]
    for check in checks:
        print(f"max |exported - eager| = {check.max_abs_diff:.3g} on {check.batch} random clip(s) "
              f"of {check.height}x{check.width} with {check.runtime} (tolerance {check.tolerance:g}): "
              f"{'ok' if check.ok else 'FAILED'}")
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

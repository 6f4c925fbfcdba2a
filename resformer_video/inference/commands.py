"""What ``tools/predict.py``, ``tools/extract_features.py`` and ``tools/export.py`` do once their
arguments are parsed: each ``*_command(args)`` prints its results, reports a user error as one
``error: ...`` line on stderr and returns the tool's exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import av

from resformer_video.datasets.decoders import DecoderUnavailableError, VideoDecodeError
from resformer_video.datasets.kinetics import config_decoders
from resformer_video.datasets.lists import DatasetListError, video_files
from resformer_video.engine.runner import USER_ERRORS, error_line
from resformer_video.inference.annotate import write_annotated_video
from resformer_video.inference.export import default_export_path, export_model, verify_export
from resformer_video.inference.features import FeatureExtractor, expand_inputs, extract_to_folder
from resformer_video.inference.predictor import (
    VideoPrediction,
    VideoPredictor,
    build_predictor,
    format_prediction,
    load_trained,
)


def resolution_overrides(opts: Sequence[str], resolution: int | None) -> list[str]:
    """``opts`` plus ``DATA.TEST_CROP_SIZE resolution`` when ``--resolution`` is given."""
    return list(opts) + (["DATA.TEST_CROP_SIZE", str(resolution)] if resolution is not None else [])


def predictor_from_args(args: argparse.Namespace) -> VideoPredictor:
    """The predictor that predict's and extract_features' shared flags ask for (``--checkpoint``,
    ``--cfg``, ``--resolution``, ``--device``, ``--window``, ``--stride``, ``--precision``, overrides)."""
    return build_predictor(
        args.checkpoint,
        args.cfg_file,
        resolution_overrides(args.opts, args.resolution),
        args.device,
        args.window,
        args.stride,
        args.precision,
    )


# ------------------------------------------------------------------------------------------------
# predict
# ------------------------------------------------------------------------------------------------


def expand_folders(paths: Sequence[str]) -> list[str]:
    """``paths`` with each folder replaced by its video files (by extension, sorted)."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            out += video_files(path)
        else:
            out.append(path)
    return out


def write_out_video(predictor: VideoPredictor, pred: VideoPrediction, out_path: str) -> bool:
    """Write ``pred``'s video annotated with its windows' labels to ``out_path``; False (and one
    error line) if that fails."""
    try:
        write_annotated_video(pred, out_path, config_decoders(predictor.cfg))
    except (VideoDecodeError, OSError, ValueError, av.error.FFmpegError) as err:
        print(f"error: --out-video {out_path}: {err}", file=sys.stderr)
        return False
    print(f"annotated video written to {out_path}", file=sys.stderr)
    return True


def predict_command(args: argparse.Namespace) -> int:
    """``tools/predict.py``: the top-k classes of every video in ``args.inputs`` (folders expanded),
    whole-video and per window, as text or (``--json``) one JSON list; ``--out-video`` also writes
    the one input video annotated. Exit code 0; 1 when a video could not be read (one ``error:
    PATH: why`` line each, the others still predicted) or the annotated video not written; 2 on a
    bad argument, config or checkpoint."""
    videos = expand_folders(args.inputs)
    if not videos:
        print("error: no video files found in the given folders", file=sys.stderr)
        return 2
    if args.out_video and len(videos) != 1:
        print(f"error: --out-video takes one input video, got {len(videos)}", file=sys.stderr)
        return 2
    try:
        predictor = predictor_from_args(args)
    except (ValueError, FileNotFoundError, DatasetListError, DecoderUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"predicting on {predictor.device} in {predictor.precision}", file=sys.stderr, flush=True)
    results, failed = [], 0
    for path, pred, error in predictor.predict_many(videos, args.topk):
        if error is not None:
            failed += 1
            print(f"error: {error}", file=sys.stderr, flush=True)
            results.append({"video": path, "error": error})
        elif args.json:
            results.append(pred.to_dict())
        else:
            print(format_prediction(pred), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    written = not args.out_video or bool(failed) or write_out_video(predictor, pred, args.out_video)
    if failed:
        print(f"{failed} of {len(videos)} video(s) could not be read", file=sys.stderr)
    return 1 if failed or not written else 0


# ------------------------------------------------------------------------------------------------
# extract_features
# ------------------------------------------------------------------------------------------------


def extract_features_command(args: argparse.Namespace) -> int:
    """``tools/extract_features.py``: the features of every video of ``args.inputs`` (videos,
    folders, list files) written to ``args.out`` (resumable; see :func:`extract_to_folder`). Exit
    code 0; 1 when a video could not be read (one ``error:`` line each, an ``error`` row in the
    index); 2 on a bad argument, config, checkpoint or an ``--out`` that cannot be written."""
    try:
        videos = expand_inputs(args.inputs, args.path_prefix)
        if not videos:
            raise ValueError("no video files found in the given inputs")
        predictor = predictor_from_args(args)
        extractor = FeatureExtractor(predictor, args.layers, checkpoint=args.checkpoint)
        print(
            f"extracting {', '.join(extractor.settings()['layers'])} features of {len(videos)} "
            f"video(s) on {predictor.device} at {predictor.transform.size} px",
            file=sys.stderr,
        )
        summary = extract_to_folder(
            extractor,
            videos,
            args.out,
            on_error=lambda message: print(f"error: {message}", file=sys.stderr, flush=True),
        )
    except USER_ERRORS + (ValueError, OSError) as err:  # OSError: --out cannot be written
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 2
    print(
        f"{summary['written']} written, {summary['skipped']} already there (skipped), "
        f"{len(summary['failed'])} unreadable; index: {os.path.join(args.out, 'index.csv')}"
    )
    return 1 if summary["failed"] else 0


# ------------------------------------------------------------------------------------------------
# export
# ------------------------------------------------------------------------------------------------


def export_command(args: argparse.Namespace) -> int:
    """``tools/export.py``: export the trained model (``args.format``: TorchScript or ONNX) for clips
    of ``args.frames`` x ``args.resolution`` (config defaults) and check it against eager PyTorch
    (with ``--dynamic-resolution`` at a second, non-square size too). Exit code 0; 1 when a check
    fails; 2 on a bad argument, config or checkpoint or an output that cannot be written."""
    try:
        cfg, model, _ = load_trained(args.checkpoint, args.cfg_file, args.opts)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    frames = args.frames or cfg.DATA.NUM_FRAMES
    size = args.resolution or cfg.DATA.TEST_CROP_SIZE
    if size % cfg.MODEL.PATCH_SIZE or frames < 1:
        print(
            f"error: --resolution {size} must be a multiple of MODEL.PATCH_SIZE "
            f"{cfg.MODEL.PATCH_SIZE} and --frames {frames} >= 1",
            file=sys.stderr,
        )
        return 2
    path = args.output or default_export_path(cfg.OUTPUT_DIR, cfg.MODEL.ARCH, args.format, frames, size)
    patch = cfg.MODEL.PATCH_SIZE
    try:
        result = export_model(model, args.format, frames, size, path, args.opset, args.dynamic_resolution, patch)
    except (ValueError, OSError) as err:  # OSError: the output folder cannot be written
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 2
    spatial = "H, W" if result.dynamic_resolution else f"{size}, {size}"
    print(
        f"wrote {result.path} ({result.exporter}, clips (B, 3, {frames}, {spatial}) -> "
        f"logits (B, {cfg.MODEL.NUM_CLASSES}), dynamic batch: {result.dynamic_batch}, "
        f"dynamic resolution: {result.dynamic_resolution})"
    )
    # When dynamic, also a non-square size away from the export one.
    shapes = [(size, size)] + ([(size + 2 * patch, max(patch, size - 2 * patch))] if result.dynamic_resolution else [])
    checks = [verify_export(model, result, frames, h, args.tolerance, args.verify_batch, width=w) for h, w in shapes]
    for check in checks:
        print(
            f"max |exported - eager| = {check.max_abs_diff:.3g} on {check.batch} random clip(s) "
            f"of {check.height}x{check.width} with {check.runtime} (tolerance {check.tolerance:g}): "
            f"{'ok' if check.ok else 'FAILED'}"
        )
    return 0 if all(check.ok for check in checks) else 1

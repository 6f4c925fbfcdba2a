#!/usr/bin/env python
"""Predict the top-k classes of video files with a trained checkpoint (sliding windows, multi-view).

Example:
    python tools/predict.py --checkpoint ckpt.pyth a.mp4 b.mp4 --topk 3 TEST.NUM_ENSEMBLE_VIEWS 2
    python tools/predict.py --cfg configs/k400_timesformer_b.yaml \
        --checkpoint TimeSformer_divST_8x32_224_K400.pyth a.mp4

``--checkpoint`` takes our training checkpoints (their config is used unless ``--cfg`` is given)
and every layout ``MODEL.PRETRAINED`` converts (TimeSformer, timm/DeiT ViT, official ResFormer),
with ``--cfg`` giving the model. Config overrides follow the videos as ``KEY VALUE`` pairs, as
with ``tools/run_net.py``.

Each video gets its whole-video top-k and, when longer than one window, the top-k of every window.
An unreadable video gives one ``error: PATH: why`` line on stderr; the others are still predicted
and the exit code is 1. ``--json`` prints one JSON list (failed videos have an ``error`` field).
``--out-video FILE`` (one input video only) also writes the video with each window's top-3 labels
drawn on its frames (H.264), to look at instead of read.
"""

import argparse
import json
import os
import sys
from typing import List, Optional, Sequence

import av

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from resformer_video.datasets.decoders import DecoderUnavailableError, VideoDecodeError  # noqa: E402
from resformer_video.datasets.kinetics import config_decoders  # noqa: E402
from resformer_video.datasets.lists import DatasetListError, video_files  # noqa: E402
from resformer_video.inference.annotate import write_annotated_video  # noqa: E402
from resformer_video.inference.predictor import (DEFAULT_WINDOW_S,  # noqa: E402
                                                 VideoPrediction, VideoPredictor,
                                                 build_predictor, format_prediction)
from resformer_video.utils.parser import split_overrides  # noqa: E402
from resformer_video.utils.precision import PRECISIONS  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", metavar="VIDEO ... [KEY VALUE ...]",
                        help="video files, or folders (their video files, sorted, not recursive), "
                             "then config overrides as KEY VALUE pairs, e.g. TEST.NUM_SPATIAL_CROPS 1")
    parser.add_argument("--checkpoint", required=True,
                        help="weights: our training checkpoint (.pyth), or TimeSformer/timm/ResFormer "
                             "weights with --cfg")
    parser.add_argument("--cfg", dest="cfg_file", default=None,
                        help="YAML config (default: the config saved in our checkpoint)")
    parser.add_argument("--set", dest="set_opts", nargs=2, action="append", default=[],
                        metavar=("KEY", "VALUE"), help="deprecated: put KEY VALUE after the videos")
    parser.add_argument("--resolution", type=int, default=None,
                        help="test crop size (DATA.TEST_CROP_SIZE), any multiple of the patch size")
    parser.add_argument("--topk", type=int, default=5, help="classes to print per video and window")
    parser.add_argument("--window", type=float, default=DEFAULT_WINDOW_S,
                        help="sliding-window length in seconds")
    parser.add_argument("--stride", type=float, default=None,
                        help="largest distance between window starts in seconds (default: --window)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if NUM_GPUS > 0)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="autocast of the forward (default: bf16 where it is native - a GPU "
                             "with bf16, a CPU with AVX512-BF16 or AMX -, else fp32; fp16 is "
                             "CUDA only)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON list")
    parser.add_argument("--out-video", default=None, metavar="FILE",
                        help="also write the (single) input video with each window's top-3 labels "
                             "drawn on it, H.264 (e.g. out.mp4)")
    args = parser.parse_intermixed_args(argv)
    if args.topk < 1:
        parser.error(f"--topk must be >= 1, got {args.topk}")
    args.videos, args.opts = split_overrides(args.inputs)
    if not args.videos:
        parser.error("give at least one VIDEO before the KEY VALUE overrides")
    if args.set_opts:
        print("warning: --set KEY VALUE is deprecated; put KEY VALUE after the videos",
              file=sys.stderr)
    return args


def config_overrides(args: argparse.Namespace) -> List[str]:
    opts = [item for pair in args.set_opts for item in pair] + list(args.opts)
    if args.resolution is not None:
        opts += ["DATA.TEST_CROP_SIZE", str(args.resolution)]
    return opts


def expand_folders(paths: Sequence[str]) -> List[str]:
    """``paths`` with each folder replaced by its video files (by extension, sorted)."""
    out: List[str] = []
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    args.videos = expand_folders(args.videos)
    if not args.videos:
        print("error: no video files found in the given folders", file=sys.stderr)
        return 2
    if args.out_video and len(args.videos) != 1:
        print(f"error: --out-video takes one input video, got {len(args.videos)}", file=sys.stderr)
        return 2
    try:
        predictor = build_predictor(args.checkpoint, args.cfg_file, config_overrides(args),
                                    args.device, args.window, args.stride, args.precision)
    except (ValueError, FileNotFoundError, DatasetListError, DecoderUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"predicting on {predictor.device} in {predictor.precision}", file=sys.stderr, flush=True)
    results, failed = [], 0
    for path, pred, error in predictor.predict_many(args.videos, args.topk):
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
        print(f"{failed} of {len(args.videos)} video(s) could not be read", file=sys.stderr)
    return 1 if failed or not written else 0


if __name__ == "__main__":
    sys.exit(main())

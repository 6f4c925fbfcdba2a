"""Top-k class predictions for video files, with sliding windows over long videos.

A video is covered by windows of ``window_s`` seconds (default 10 s, a Kinetics clip) whose starts
are evenly spaced from 0 to ``duration - window_s`` at most ``stride_s`` apart, so the last window
ends at the end of the video; a video no longer than one window is one window. Each window is
predicted like the test mode: ``TEST.NUM_ENSEMBLE_VIEWS`` temporal clips (TimeSformer sampling of
:func:`sample_clip_indices` inside the window) x ``TEST.NUM_SPATIAL_CROPS`` crops of
:class:`TestTransform` at ``DATA.TEST_CROP_SIZE``; its probabilities are the mean of the views'
softmax. The whole-video probabilities are the mean over windows.

The forward runs under autocast at ``precision`` (``fp32``: none; default ``bf16`` on CUDA, ``fp32``
on CPU); the softmax is always taken in float32.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from resformer_video.config import load_config
from resformer_video.datasets.decoders import VideoDecodeError, VideoReader, import_backend, read_video
from resformer_video.datasets.kinetics import config_decoders
from resformer_video.datasets.lists import find_class_names
from resformer_video.datasets.sampling import sample_clip_indices
from resformer_video.datasets.transforms import TestTransform, build_test_transform, spatial_crop_indices
from resformer_video.engine.precision import DTYPES, autocast
from resformer_video.models import build_model
from resformer_video.utils.checkpoint import load_checkpoint_file

DEFAULT_WINDOW_S = 10.0
PRECISIONS = ("fp32", "bf16", "fp16")
# Config keys that name files only needed for training or testing; predict loads its checkpoint.
_PREDICT_OVERRIDES = ("MODEL.PRETRAINED", "", "TEST.CHECKPOINT_FILE_PATH", "")


@dataclass
class ClassScore:
    index: int
    name: str
    prob: float


@dataclass
class WindowPrediction:
    """One window ``[start_s, end_s)`` of a video: its top-k and full probabilities ``(K,)``."""

    start_s: float
    end_s: float
    top: List[ClassScore]
    probs: torch.Tensor = field(repr=False)


@dataclass
class VideoPrediction:
    """A video's whole-video top-k and probabilities ``(K,)``, and its windows."""

    path: str
    duration_s: float
    fps: float
    views_per_window: int
    resolution: int
    windows: List[WindowPrediction]
    top: List[ClassScore]
    probs: torch.Tensor = field(repr=False)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (no full probability vectors)."""
        return {
            "video": self.path, "duration_s": round(self.duration_s, 3), "fps": round(self.fps, 3),
            "resolution": self.resolution, "views_per_window": self.views_per_window,
            "top": [_score_dict(s) for s in self.top],
            "windows": [{"start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3),
                         "top": [_score_dict(s) for s in w.top]} for w in self.windows],
        }


def _score_dict(score: ClassScore) -> Dict[str, Any]:
    return {"class": score.name, "index": score.index, "prob": round(score.prob, 6)}


def window_starts(num_frames: int, window_frames: int, stride_frames: int) -> List[int]:
    """Start frames of the windows covering ``num_frames`` (see the module docstring)."""
    if num_frames <= window_frames:
        return [0]
    last = num_frames - window_frames
    count = math.ceil(last / max(stride_frames, 1)) + 1
    return [int(round(x)) for x in np.linspace(0, last, count)]


def default_precision(device: torch.device) -> str:
    """``bf16`` on CUDA (``fp16`` where the GPU lacks bfloat16), ``fp32`` elsewhere."""
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def precision_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of ``precision`` on ``device`` (None for ``fp32``).

    Raises:
        ValueError: an unknown precision, or ``fp16`` on CPU.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision fp16 is not supported on CPU; use fp32 or bf16")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("precision bf16 is not supported by this GPU; use fp16 or fp32")
    return DTYPES.get(precision)


def top_k(probs: torch.Tensor, class_names: Sequence[str], k: int) -> List[ClassScore]:
    """The ``k`` most probable classes of ``probs`` ``(K,)``, most probable first."""
    values, indices = probs.topk(min(k, probs.numel()))
    return [ClassScore(int(i), class_names[int(i)], float(v)) for v, i in zip(values, indices)]


class VideoPredictor:
    """Predicts class probabilities of video files with a trained model.

    Args:
        model: a model mapping clips ``(B, 3, T, S, S)`` to logits ``(B, K)``.
        cfg: the config (``DATA`` sampling, decoder, normalisation and ``TEST`` views are used).
        class_names: ``K`` names, in class-index order.
        device: where the model runs.
        window_s: window length in seconds; ``stride_s`` the largest distance between window
            starts (default: ``window_s``, i.e. windows overlap only to end at the video's end).
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast of the forward (default:
            :func:`default_precision` of ``device``).
    """

    def __init__(self, model: nn.Module, cfg: CfgNode, class_names: Sequence[str],
                 device: torch.device, window_s: float = DEFAULT_WINDOW_S,
                 stride_s: Optional[float] = None, precision: Optional[str] = None) -> None:
        if window_s <= 0 or (stride_s is not None and stride_s <= 0):
            raise ValueError(f"window and stride must be > 0 s, got {window_s} and {stride_s}")
        self.precision = precision or default_precision(device)
        self.amp_dtype = precision_dtype(self.precision, device)
        self.model = model.to(device).eval()
        self.cfg = cfg
        self.class_names = list(class_names)
        self.device = device
        self.window_s = window_s
        self.stride_s = stride_s or window_s
        self.transform: TestTransform = build_test_transform(cfg)
        self.num_temporal = cfg.TEST.NUM_ENSEMBLE_VIEWS
        self.spatial_indices = spatial_crop_indices(cfg.TEST.NUM_SPATIAL_CROPS)

    @property
    def views_per_window(self) -> int:
        return self.num_temporal * len(self.spatial_indices)

    @torch.inference_mode()
    def clip_probs(self, clips: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities ``(V, K)`` of clips ``(V, 3, T, S, S)``, in ``TEST.BATCH_SIZE`` chunks."""
        chunks = clips.split(self.cfg.TEST.BATCH_SIZE)
        with autocast(self.device, self.amp_dtype):
            logits = [self.model(chunk.to(self.device)).float() for chunk in chunks]
        return torch.cat(logits).softmax(dim=-1).cpu()

    def window_views(self, reader: VideoReader, start: int, length: int) -> torch.Tensor:
        """All views ``(V, 3, T, S, S)`` of the window of ``length`` frames from frame ``start``."""
        data = self.cfg.DATA
        views = []
        for temporal_idx in range(self.num_temporal):
            indices = sample_clip_indices(length, reader.fps, data.NUM_FRAMES, data.SAMPLING_RATE,
                                          data.TARGET_FPS, temporal_idx, self.num_temporal)
            frames = reader.get_frames(np.minimum(indices + start, reader.num_frames - 1))
            views += [self.transform(frames, spatial) for spatial in self.spatial_indices]
        return torch.stack(views)

    def predict(self, path: str, k: int = 5) -> VideoPrediction:
        """Whole-video and per-window top-``k`` of ``path``.

        Raises:
            VideoDecodeError: the video cannot be opened or decoded (the message names it).
        """
        backends = config_decoders(self.cfg)
        return read_video(path, backends, lambda reader: self._predict_reader(reader, path, k))

    def _predict_reader(self, reader: VideoReader, path: str, k: int) -> VideoPrediction:
        """:meth:`predict` on an open video."""
        window = max(1, int(round(self.window_s * reader.fps)))
        stride = max(1, int(round(self.stride_s * reader.fps)))
        windows = []
        for start in window_starts(reader.num_frames, window, stride):
            length = min(window, reader.num_frames - start)
            probs = self.clip_probs(self.window_views(reader, start, length)).mean(dim=0)
            windows.append(WindowPrediction(start / reader.fps, (start + length) / reader.fps,
                                            top_k(probs, self.class_names, k), probs))
        probs = torch.stack([w.probs for w in windows]).mean(dim=0)
        return VideoPrediction(path, reader.duration, reader.fps, self.views_per_window,
                               self.transform.size, windows, top_k(probs, self.class_names, k),
                               probs)

    def predict_many(self, paths: Sequence[str], k: int = 5
                     ) -> Iterator[Tuple[str, Optional[VideoPrediction], Optional[str]]]:
        """``(path, prediction, None)`` per readable video, ``(path, None, error)`` per unreadable one."""
        for path in paths:
            try:
                yield path, self.predict(path, k), None
            except VideoDecodeError as err:
                yield path, None, str(err)


# ------------------------------------------------------------------------------------------------
# Loading a trained model
# ------------------------------------------------------------------------------------------------

def load_predict_config(checkpoint_state: Dict[str, Any], checkpoint_path: str,
                        cfg_file: Optional[str] = None, opts: Sequence[str] = ()) -> CfgNode:
    """The config for prediction: ``cfg_file`` if given, else the one saved in the checkpoint, then
    ``opts``; training-only file keys (``MODEL.PRETRAINED``, ``TEST.CHECKPOINT_FILE_PATH``) are
    cleared because the checkpoint supplies the weights."""
    overrides = list(_PREDICT_OVERRIDES) + list(opts)
    if cfg_file:
        return load_config(cfg_file, overrides)
    text = checkpoint_state.get("cfg") or ""
    if not text:
        raise ValueError(f"{checkpoint_path}: holds no config; pass --cfg FILE")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "checkpoint_cfg.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return load_config(path, overrides)


def resolve_class_names(cfg: CfgNode, checkpoint_state: Dict[str, Any]) -> List[str]:
    """Class names: ``DATA.CLASS_NAMES_FILE`` if set, else the checkpoint's, else the data folder's
    ``classnames.json`` / ``classes.txt``, else ``"0"``, ``"1"``, ...; always ``MODEL.NUM_CLASSES``."""
    num_classes = cfg.MODEL.NUM_CLASSES
    if cfg.DATA.CLASS_NAMES_FILE:
        return find_class_names("", cfg.DATA.CLASS_NAMES_FILE, num_classes) or []
    names = checkpoint_state.get("class_names")
    if names:
        if len(names) != num_classes:
            raise ValueError(f"checkpoint has {len(names)} class names but MODEL.NUM_CLASSES is "
                             f"{num_classes}")
        return list(names)
    data_dir = cfg.DATA.PATH_TO_DATA_DIR
    found = find_class_names(data_dir, "", num_classes) if data_dir and os.path.isdir(data_dir) else None
    return found or [str(i) for i in range(num_classes)]


def load_trained_model(cfg: CfgNode, checkpoint_state: Dict[str, Any],
                       checkpoint_path: str) -> nn.Module:
    """``build_model(cfg)`` with the checkpoint's ``model_state`` loaded strictly, in eval mode."""
    model = build_model(cfg)
    try:
        model.load_state_dict(checkpoint_state["model_state"])
    except RuntimeError as err:  # "Error(s) in loading state_dict ...:" then one line per problem
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        raise ValueError(f"{checkpoint_path}: weights do not match the config's model "
                         f"(MODEL.ARCH {cfg.MODEL.ARCH}, MODEL.DEPTH {cfg.MODEL.DEPTH}): "
                         f"{detail[:300]}") from None
    return model.eval()


def default_device(cfg: CfgNode) -> torch.device:
    """CUDA when ``NUM_GPUS > 0`` and available, else CPU."""
    return torch.device("cuda" if cfg.NUM_GPUS > 0 and torch.cuda.is_available() else "cpu")


def build_predictor(checkpoint: str, cfg_file: Optional[str] = None, opts: Sequence[str] = (),
                    device: Optional[str] = None, window_s: float = DEFAULT_WINDOW_S,
                    stride_s: Optional[float] = None,
                    precision: Optional[str] = None) -> VideoPredictor:
    """A :class:`VideoPredictor` from a training checkpoint (see :func:`load_predict_config`).

    Raises:
        ValueError: damaged checkpoint, bad config value, weights that do not fit the config,
            ``precision`` not available on the device.
        DecoderUnavailableError: the ``DATA.DECODER`` package cannot be imported.
    """
    state = load_checkpoint_file(checkpoint)
    cfg = load_predict_config(state, checkpoint, cfg_file, opts)
    for backend in config_decoders(cfg):
        import_backend(backend)  # fail once, before any video, when a decoder is missing
    model = load_trained_model(cfg, state, checkpoint)
    names = resolve_class_names(cfg, state)
    target = torch.device(device) if device else default_device(cfg)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device or 'cuda'}: CUDA is not available (use --device cpu)")
    return VideoPredictor(model, cfg, names, target, window_s, stride_s, precision)


def format_prediction(pred: VideoPrediction, show_windows: bool = True) -> str:
    """Human-readable lines: the video, its whole-video top-k, then each window's top-k."""
    header = (f"{pred.path} ({pred.duration_s:.2f} s, {len(pred.windows)} window(s) x "
              f"{pred.views_per_window} view(s) at {pred.resolution} px)")
    lines = [header, f"  video          : {_format_top(pred.top)}"]
    if show_windows and len(pred.windows) > 1:
        lines += [f"  {w.start_s:6.1f}-{w.end_s:6.1f} s: {_format_top(w.top)}" for w in pred.windows]
    return "\n".join(lines)


def _format_top(top: Sequence[ClassScore]) -> str:
    return ", ".join(f"{s.name} {s.prob:.3f}" for s in top)

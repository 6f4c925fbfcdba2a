"""Top-k class predictions for video files, with sliding windows over long videos.

A video is covered by windows of ``window_s`` seconds (default 10 s, a Kinetics clip) whose starts
are evenly spaced from 0 to ``duration - window_s`` at most ``stride_s`` apart, so the last window
ends at the end of the video; a video no longer than one window is one window. Each window is
predicted like the test mode: ``TEST.NUM_ENSEMBLE_VIEWS`` temporal clips (TimeSformer sampling of
:func:`sample_clip_indices` inside the window) x ``TEST.NUM_SPATIAL_CROPS`` crops of
:class:`TestTransform` at ``DATA.TEST_CROP_SIZE``; its probabilities are the mean of the views'
softmax (``TEST.PROTOCOL timesformer``: the softmax of the views' summed logits, with TimeSformer's
clip placement and resize). The whole-video probabilities are the mean over windows.

The forward runs under autocast at ``precision`` (``fp32``: none; default: ``bf16`` where it is
native - a GPU with bf16, a CPU with AVX512-BF16 or AMX -, else ``fp32``; see
:mod:`resformer_video.utils.precision`); the softmax is always taken in float32.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from resformer_video.config import load_config
from resformer_video.datasets.decoders import VideoDecodeError, VideoReader, import_backend, read_video
from resformer_video.datasets.kinetics import config_decoders
from resformer_video.datasets.lists import default_class_names, find_class_names
from resformer_video.datasets.sampling import sample_clip_indices
from resformer_video.datasets.transforms import TestTransform, build_test_transform, spatial_crop_indices
from resformer_video.models import CheckpointError, TrainedWeights, build_model, load_trained_weights
from resformer_video.utils import weights
from resformer_video.utils.precision import autocast, autocast_dtype, check_precision, default_precision

DEFAULT_WINDOW_S = 10.0
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
    top: list[ClassScore]
    probs: torch.Tensor = field(repr=False)


@dataclass
class VideoPrediction:
    """A video's whole-video top-k and probabilities ``(K,)``, and its windows."""

    path: str
    duration_s: float
    fps: float
    views_per_window: int
    resolution: int
    windows: list[WindowPrediction]
    top: list[ClassScore]
    probs: torch.Tensor = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (no full probability vectors)."""
        return {
            "video": self.path,
            "duration_s": round(self.duration_s, 3),
            "fps": round(self.fps, 3),
            "resolution": self.resolution,
            "views_per_window": self.views_per_window,
            "top": [_score_dict(s) for s in self.top],
            "windows": [
                {"start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3), "top": [_score_dict(s) for s in w.top]}
                for w in self.windows
            ],
        }


def _score_dict(score: ClassScore) -> dict[str, Any]:
    return {"class": score.name, "index": score.index, "prob": round(score.prob, 6)}


def window_starts(num_frames: int, window_frames: int, stride_frames: int) -> list[int]:
    """Start frames of the windows covering ``num_frames`` (see the module docstring)."""
    if num_frames <= window_frames:
        return [0]
    last = num_frames - window_frames
    count = math.ceil(last / max(stride_frames, 1)) + 1
    return [int(round(x)) for x in np.linspace(0, last, count)]


def top_k(probs: torch.Tensor, class_names: Sequence[str], k: int) -> list[ClassScore]:
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
            :func:`default_precision` of ``device``; bf16 asked for on a CPU without native bf16
            runs, slowly, with a warning).
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: CfgNode,
        class_names: Sequence[str],
        device: torch.device,
        window_s: float = DEFAULT_WINDOW_S,
        stride_s: float | None = None,
        precision: str | None = None,
    ) -> None:
        if window_s <= 0 or (stride_s is not None and stride_s <= 0):
            raise ValueError(f"window and stride must be > 0 s, got {window_s} and {stride_s}")
        self.precision = check_precision(precision or default_precision(device), device, allow_emulated=True)
        self.amp_dtype = autocast_dtype(self.precision)
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
    def clip_logits(self, clips: torch.Tensor) -> torch.Tensor:
        """Float32 logits ``(V, K)`` of clips ``(V, 3, T, S, S)``, in ``TEST.BATCH_SIZE`` chunks."""
        chunks = clips.split(self.cfg.TEST.BATCH_SIZE)
        with autocast(self.device, self.amp_dtype):
            logits = [self.model(chunk.to(self.device)).float() for chunk in chunks]
        return torch.cat(logits).cpu()

    def views_probs(self, clips: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(K,)`` of a window's views ``(V, 3, T, S, S)``: mean of their softmax, or
        softmax of their summed logits under ``TEST.PROTOCOL timesformer``."""
        logits = self.clip_logits(clips)
        if self.cfg.TEST.PROTOCOL == "timesformer":
            return logits.sum(dim=0).softmax(dim=-1)
        return logits.softmax(dim=-1).mean(dim=0)

    def window_views(self, reader: VideoReader, start: int, length: int) -> torch.Tensor:
        """All views ``(V, 3, T, S, S)`` of the window of ``length`` frames from frame ``start``."""
        data = self.cfg.DATA
        views = []
        for temporal_idx in range(self.num_temporal):
            indices = sample_clip_indices(
                length,
                reader.fps,
                data.NUM_FRAMES,
                data.SAMPLING_RATE,
                data.TARGET_FPS,
                temporal_idx,
                self.num_temporal,
                protocol=self.cfg.TEST.PROTOCOL,
            )
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

    def window_bounds(self, reader: VideoReader) -> list[tuple[int, int]]:
        """``(start, length)`` in frames of every window of an open video (module docstring)."""
        window = max(1, int(round(self.window_s * reader.fps)))
        stride = max(1, int(round(self.stride_s * reader.fps)))
        return [
            (start, min(window, reader.num_frames - start))
            for start in window_starts(reader.num_frames, window, stride)
        ]

    def _predict_reader(self, reader: VideoReader, path: str, k: int) -> VideoPrediction:
        """:meth:`predict` on an open video."""
        windows = []
        for start, length in self.window_bounds(reader):
            probs = self.views_probs(self.window_views(reader, start, length))
            windows.append(
                WindowPrediction(
                    start / reader.fps, (start + length) / reader.fps, top_k(probs, self.class_names, k), probs
                )
            )
        probs = torch.stack([w.probs for w in windows]).mean(dim=0)
        return VideoPrediction(
            path,
            reader.duration,
            reader.fps,
            self.views_per_window,
            self.transform.size,
            windows,
            top_k(probs, self.class_names, k),
            probs,
        )

    def predict_many(
        self, paths: Sequence[str], k: int = 5
    ) -> Iterator[tuple[str, VideoPrediction | None, str | None]]:
        """``(path, prediction, None)`` per readable video, ``(path, None, error)`` per unreadable one."""
        for path in paths:
            try:
                yield path, self.predict(path, k), None
            except VideoDecodeError as err:
                yield path, None, str(err)


# ------------------------------------------------------------------------------------------------
# Loading a trained model
# ------------------------------------------------------------------------------------------------


def load_predict_config(
    checkpoint: Any, checkpoint_path: str, cfg_file: str | None = None, opts: Sequence[str] = ()
) -> CfgNode:
    """The config for prediction: ``cfg_file`` if given, else the one saved in our training
    checkpoint ``checkpoint`` (the file's content), then ``opts``; training-only file keys
    (``MODEL.PRETRAINED``, ``TEST.CHECKPOINT_FILE_PATH``) are cleared because the checkpoint
    supplies the weights.

    Raises:
        ValueError: no ``cfg_file`` and the file holds no config of ours (e.g. a TimeSformer or
            timm checkpoint), or a bad config value.
    """
    overrides = list(_PREDICT_OVERRIDES) + list(opts)
    if cfg_file:
        return load_config(cfg_file, overrides)
    text = weights.own_config_text(checkpoint)
    if not text:
        kind = (
            "a training checkpoint without its config"
            if weights.is_own_checkpoint(checkpoint)
            else "not a resformer-video training checkpoint (e.g. TimeSformer, timm or ResFormer weights)"
        )
        raise ValueError(
            f"{checkpoint_path}: {kind}; pass --cfg FILE to give the model (e.g. configs/k400_timesformer_b.yaml)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "checkpoint_cfg.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return load_config(path, overrides)


def resolve_class_names(cfg: CfgNode, checkpoint_names: Sequence[str] | None = None) -> list[str]:
    """Class names: ``DATA.CLASS_NAMES_FILE`` if set, else the checkpoint's, else the data folder's
    ``classnames.json`` / ``classes.txt``, else the shipped Kinetics-400 names for 400 classes, else
    ``"0"``, ``"1"``, ...; always ``MODEL.NUM_CLASSES``."""
    num_classes = cfg.MODEL.NUM_CLASSES
    if cfg.DATA.CLASS_NAMES_FILE:
        return find_class_names("", cfg.DATA.CLASS_NAMES_FILE, num_classes) or []
    if checkpoint_names:
        if len(checkpoint_names) != num_classes:
            raise ValueError(
                f"checkpoint has {len(checkpoint_names)} class names but MODEL.NUM_CLASSES is {num_classes}"
            )
        return list(checkpoint_names)
    data_dir = cfg.DATA.PATH_TO_DATA_DIR
    found = find_class_names(data_dir, "", num_classes) if data_dir and os.path.isdir(data_dir) else None
    return found or default_class_names([], num_classes)


def load_trained_model(cfg: CfgNode, checkpoint: Any, checkpoint_path: str) -> tuple[nn.Module, TrainedWeights]:
    """``build_model(cfg)`` with the weights of ``checkpoint`` (the file's content) loaded by
    :func:`load_trained_weights`, in eval mode."""
    model = build_model(cfg)
    try:
        trained = load_trained_weights(model, checkpoint_path, checkpoint)
    except CheckpointError as err:
        raise ValueError(f"{err} (config: MODEL.ARCH {cfg.MODEL.ARCH}, MODEL.DEPTH {cfg.MODEL.DEPTH})") from None
    return model.eval(), trained


def load_trained(
    checkpoint: str, cfg_file: str | None = None, opts: Sequence[str] = ()
) -> tuple[CfgNode, nn.Module, TrainedWeights]:
    """The config (:func:`load_predict_config`) and the eval-mode model with the weights of the file
    ``checkpoint`` (:func:`load_trained_model`), read once by the one reader
    (:func:`resformer_video.utils.weights.read_checkpoint`). Used by predict, export and
    extract_features.

    Raises:
        ValueError: unreadable file, no config, bad config value, weights that do not fit.
    """
    content = weights.read_checkpoint(checkpoint)
    cfg = load_predict_config(content, checkpoint, cfg_file, opts)
    model, trained = load_trained_model(cfg, content, checkpoint)
    return cfg, model, trained


def default_device(cfg: CfgNode) -> torch.device:
    """CUDA when ``NUM_GPUS > 0`` and available, else CPU."""
    return torch.device("cuda" if cfg.NUM_GPUS > 0 and torch.cuda.is_available() else "cpu")


def build_predictor(
    checkpoint: str,
    cfg_file: str | None = None,
    opts: Sequence[str] = (),
    device: str | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    stride_s: float | None = None,
    precision: str | None = None,
) -> VideoPredictor:
    """A :class:`VideoPredictor` from trained weights: our training checkpoint (its config unless
    ``cfg_file`` is given) or any layout ``MODEL.PRETRAINED`` converts, with ``cfg_file`` giving
    the model (see :func:`load_predict_config`).

    Raises:
        ValueError: unreadable checkpoint, no config, bad config value, weights that do not fit
            the config, ``precision`` not available on the device.
        DecoderUnavailableError: the ``DATA.DECODER`` package cannot be imported.
    """
    cfg, model, trained = load_trained(checkpoint, cfg_file, opts)
    for backend in config_decoders(cfg):
        import_backend(backend)  # fail once, before any video, when a decoder is missing
    names = resolve_class_names(cfg, trained.class_names)
    target = torch.device(device) if device else default_device(cfg)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device or 'cuda'}: CUDA is not available (use --device cpu)")
    return VideoPredictor(model, cfg, names, target, window_s, stride_s, precision)


def format_prediction(pred: VideoPrediction, show_windows: bool = True) -> str:
    """Human-readable lines: the video, its whole-video top-k, then each window's top-k."""
    header = (
        f"{pred.path} ({pred.duration_s:.2f} s, {len(pred.windows)} window(s) x "
        f"{pred.views_per_window} view(s) at {pred.resolution} px)"
    )
    lines = [header, f"  video          : {_format_top(pred.top)}"]
    if show_windows and len(pred.windows) > 1:
        lines += [f"  {w.start_s:6.1f}-{w.end_s:6.1f} s: {_format_top(w.top)}" for w in pred.windows]
    return "\n".join(lines)


def _format_top(top: Sequence[ClassScore]) -> str:
    return ", ".join(f"{s.name} {s.prob:.3f}" for s in top)

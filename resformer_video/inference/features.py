"""Features of video files for other models (linear probes, retrieval, temporal localisation).

A video is cut into the sliding windows of :class:`~resformer_video.inference.predictor.VideoPredictor`
and each window into the same views (``TEST.NUM_ENSEMBLE_VIEWS`` clips x ``TEST.NUM_SPATIAL_CROPS``
crops at ``DATA.TEST_CROP_SIZE``). Per view the extractor takes the final-norm class token
(``forward_features``, ``(D,)``) and, for each requested block, that block's output from
``forward_intermediates`` averaged over frames and patches (``(D,)``, no final norm). A window's
features are the mean over its views, the video's the mean over its windows.

:func:`extract_to_folder` writes per video ``NAME_video.npy`` ``(L, D)`` and ``NAME_windows.npy``
``(W, L, D)`` (``L``: the class token, then the blocks in the order asked; ``W`` windows), with
``NAME`` the file's stem and a hash of its absolute path. ``index.csv`` has one row per input video
(``ok`` with the files and window times, or ``error`` with the reason) and ``features.json`` the
settings (with the checkpoint's path and SHA-256), the layer names and the counts. Files are
written atomically and the index after every video, so a rerun skips the videos already written;
it refuses a folder written with other settings or another checkpoint's content. An unreadable
video is reported (``on_error``), listed and skipped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from resformer_video.datasets.decoders import VideoDecodeError, VideoReader, read_video
from resformer_video.datasets.kinetics import config_decoders
from resformer_video.datasets.lists import LIST_ENCODING, VIDEO_EXTENSIONS, is_int, video_files
from resformer_video.inference.predictor import VideoPredictor
from resformer_video.utils.atomic import atomic_write, check_writable_folder, write_json
from resformer_video.utils.precision import autocast

INDEX_CSV = "index.csv"
SUMMARY_JSON = "features.json"
# Settings recorded but not compared on a rerun: the checkpoint's path (its content hash is compared).
UNCOMPARED_SETTINGS = ("checkpoint",)
INDEX_FIELDS = (
    "video",
    "status",
    "video_features",
    "window_features",
    "num_windows",
    "window_start_s",
    "window_end_s",
    "duration_s",
    "error",
)


@dataclass
class VideoFeatures:
    """Features of one video: ``windows`` ``(W, L, D)``, ``video`` ``(L, D)`` and window times (s)."""

    path: str
    duration_s: float
    starts_s: list[float]
    ends_s: list[float]
    windows: np.ndarray = field(repr=False)
    video: np.ndarray = field(repr=False)


def layer_names(layers: Sequence[int]) -> list[str]:
    """``["cls", "block3", ...]``: what the ``L`` rows of a feature array are."""
    return ["cls"] + [f"block{i}" for i in layers]


class FeatureExtractor:
    """Class-token and pooled block features of video files, window by window.

    Args:
        predictor: gives the model, device, precision, windows and views.
        layers: block indices (negative from the end) whose pooled outputs are added.
        checkpoint: the weights file the predictor was built from; its path and content hash are
            part of :meth:`settings`, so features of another model never join a folder's.
    """

    def __init__(self, predictor: VideoPredictor, layers: Sequence[int] = (), checkpoint: str | None = None) -> None:
        depth = len(predictor.model.blocks)
        bad = [i for i in layers if not -depth <= i < depth]
        if bad:
            raise ValueError(
                f"--layers: block indices must be in [-{depth}, {depth}) for this {depth}-block model, got {bad}"
            )
        self.predictor = predictor
        self.layers = list(layers)
        self.checkpoint = (
            {"checkpoint": os.path.abspath(checkpoint), "checkpoint_sha256": file_sha256(checkpoint)}
            if checkpoint
            else {}
        )

    @torch.inference_mode()
    def view_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Features ``(V, L, D)`` of clips ``(V, 3, T, S, S)``, in ``TEST.BATCH_SIZE`` chunks."""
        pred = self.predictor
        out = []
        for chunk in clips.split(pred.cfg.TEST.BATCH_SIZE):
            chunk = chunk.to(pred.device)
            with autocast(pred.device, pred.amp_dtype):
                rows = [pred.model.forward_features(chunk)]
                if self.layers:
                    maps = pred.model.forward_intermediates(chunk, self.layers, intermediates_only=True)
                    rows += [m.mean(dim=(2, 3, 4)) for m in maps]
            out.append(torch.stack([r.float() for r in rows], dim=1).cpu())
        return torch.cat(out)

    def extract(self, path: str) -> VideoFeatures:
        """The features of ``path``.

        Raises:
            VideoDecodeError: the video cannot be opened or decoded (the message names it).
        """
        return read_video(path, config_decoders(self.predictor.cfg), lambda reader: self._extract_reader(reader, path))

    def _extract_reader(self, reader: VideoReader, path: str) -> VideoFeatures:
        bounds = self.predictor.window_bounds(reader)
        windows = torch.stack(
            [
                self.view_features(self.predictor.window_views(reader, start, length)).mean(dim=0)
                for start, length in bounds
            ]
        )
        return VideoFeatures(
            path,
            reader.duration,
            [s / reader.fps for s, _ in bounds],
            [(s + n) / reader.fps for s, n in bounds],
            windows.numpy(),
            windows.mean(dim=0).numpy(),
        )

    def settings(self) -> dict[str, Any]:
        """What decides the features' values (a rerun into the same folder must match them, all
        but the checkpoint's path: a moved file with the same content is the same model)."""
        pred = self.predictor
        return {
            "layers": layer_names(self.layers),
            "resolution": pred.transform.size,
            "num_frames": pred.cfg.DATA.NUM_FRAMES,
            "views_per_window": pred.views_per_window,
            "window_s": pred.window_s,
            "stride_s": pred.stride_s,
            "precision": pred.precision,
            **self.checkpoint,
        }


# ------------------------------------------------------------------------------------------------
# Inputs and the output folder
# ------------------------------------------------------------------------------------------------


def expand_inputs(inputs: Iterable[str], path_prefix: str = "") -> list[str]:
    """Video paths from video files, folders (their video files, sorted, not recursive) and list
    files (one video per line, ``path`` or ``path label``; relative paths joined to
    ``path_prefix``)."""
    out: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            out += video_files(item)
        elif os.path.isfile(item) and not item.lower().endswith(VIDEO_EXTENSIONS):
            out += _read_path_list(item, path_prefix)
        else:
            out.append(item)
    return out


def _read_path_list(list_file: str, path_prefix: str) -> list[str]:
    paths = []
    with open(list_file, encoding=LIST_ENCODING) as handle:
        for line in (raw.strip() for raw in handle):
            if not line:
                continue
            sep = "," if "," in line else None
            parts = line.rsplit(sep, 1)
            path = parts[0].strip() if len(parts) == 2 and is_int(parts[1].strip()) else line
            paths.append(os.path.join(path_prefix, path))
    return paths


def file_sha256(path: str, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 of a file's content, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def feature_name(path: str) -> str:
    """``STEM-HASH``: the file's stem and 8 hex digits of its absolute path (unique, stable)."""
    digest = hashlib.sha1(os.path.abspath(path).encode("utf-8")).hexdigest()[:8]
    return f"{os.path.splitext(os.path.basename(path))[0]}-{digest}"


def _save_npy(path: str, array: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    atomic_write(path, write)


def read_index(out_dir: str) -> dict[str, dict[str, str]]:
    """Rows of ``out_dir/index.csv`` by video path (empty without one)."""
    path = os.path.join(out_dir, INDEX_CSV)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8", newline="") as handle:
        return {row["video"]: row for row in csv.DictReader(handle)}


def _write_index(out_dir: str, rows: dict[str, dict[str, Any]]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=INDEX_FIELDS)
            writer.writeheader()
            writer.writerows(rows.values())

    atomic_write(os.path.join(out_dir, INDEX_CSV), write)


def _already_written(out_dir: str, row: dict[str, str] | None) -> bool:
    return (
        bool(row)
        and row["status"] == "ok"
        and all(os.path.isfile(os.path.join(out_dir, row[key])) for key in ("video_features", "window_features"))
    )


def _check_settings(out_dir: str, settings: dict[str, Any]) -> None:
    path = os.path.join(out_dir, SUMMARY_JSON)
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        previous = json.load(handle).get("settings", {})
    changed = sorted(
        k for k in set(previous) | set(settings) if k not in UNCOMPARED_SETTINGS and previous.get(k) != settings.get(k)
    )
    if changed:
        then = [f"checkpoint {previous.get('checkpoint', 'not recorded')}"] if "checkpoint_sha256" in changed else []
        raise ValueError(
            f"{out_dir}: holds features written with other settings ({', '.join(changed)}: "
            f"{[previous.get(k) for k in changed]} then, {[settings.get(k) for k in changed]} "
            f"now{''.join(f'; {item} then' for item in then)}); use another --out folder"
        )


def _ok_row(out_dir: str, feats: VideoFeatures) -> dict[str, Any]:
    name = feature_name(feats.path)
    files = {"video_features": f"{name}_video.npy", "window_features": f"{name}_windows.npy"}
    _save_npy(os.path.join(out_dir, files["window_features"]), feats.windows)
    _save_npy(os.path.join(out_dir, files["video_features"]), feats.video)
    return {
        "video": feats.path,
        "status": "ok",
        **files,
        "num_windows": len(feats.starts_s),
        "window_start_s": ";".join(f"{s:.3f}" for s in feats.starts_s),
        "window_end_s": ";".join(f"{e:.3f}" for e in feats.ends_s),
        "duration_s": f"{feats.duration_s:.3f}",
        "error": "",
    }


def extract_to_folder(
    extractor: FeatureExtractor,
    paths: Sequence[str],
    out_dir: str,
    on_error: Callable[[str], None] = lambda message: None,
    on_done: Callable[[str, str], None] = lambda path, status: None,
) -> dict[str, Any]:
    """Write the features of every video in ``paths`` to ``out_dir`` (module docstring); return the
    summary (``settings``, ``layers``, this run's ``written`` and ``skipped`` counts and ``failed``
    paths with reasons, the whole index's ``index_ok`` and ``index_failed`` counts).

    Raises:
        ValueError: ``out_dir`` holds features written with other settings.
        OSError: ``out_dir`` cannot be written (checked first), or a write failed (full disk);
            the message names the file and the cause.
    """
    check_writable_folder(out_dir)
    settings = extractor.settings()
    _check_settings(out_dir, settings)
    rows: dict[str, dict[str, Any]] = dict(read_index(out_dir))
    summary: dict[str, Any] = {"settings": settings, "written": 0, "skipped": 0, "failed": {}}
    for path in paths:
        if _already_written(out_dir, rows.get(path)):
            summary["skipped"] += 1
            on_done(path, "skipped")
            continue
        try:
            rows[path] = _ok_row(out_dir, extractor.extract(path))
            summary["written"] += 1
        except VideoDecodeError as err:
            rows[path] = {key: "" for key in INDEX_FIELDS} | {"video": path, "status": "error", "error": str(err)}
            summary["failed"][path] = str(err)
            on_error(str(err))
        _write_index(out_dir, rows)
        on_done(path, rows[path]["status"])
    statuses = [row["status"] for row in rows.values()]
    summary.update(layers=settings["layers"], index_ok=statuses.count("ok"), index_failed=statuses.count("error"))
    write_json(os.path.join(out_dir, SUMMARY_JSON), summary)
    return summary

"""The input video with each sliding window's top-k labels drawn on it (``predict.py --out-video``).

Every frame of the video is decoded with the predictor's decoder chain; frame ``i`` (shown at
``(i + 0.5) / fps`` s) gets the top-k of the window covering that time (of overlapping windows, the
one whose centre is nearest) as ``name prob%`` lines in a dark box at the top-left, drawn with
Pillow's default font. The frames are written as H.264 (yuv420p; an odd width or height is padded
by one edge pixel) to a temporary file that then replaces ``out_path``.

All frames are held in memory: ``T x H x W x 3`` bytes (a 10 s 340x256 clip at 30 fps: ~80 MB).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from resformer_video.datasets.decoders import VideoReader, read_video
from resformer_video.datasets.synthetic import write_mp4
from resformer_video.inference.predictor import ClassScore, VideoPrediction, WindowPrediction
from resformer_video.utils.atomic import atomic_write

LABELS_SHOWN = 3
_MARGIN = 3  # pixels between the box's edge and the text
_BOX_RGBA = (0, 0, 0, 170)  # dark, partly transparent
_TEXT_RGB = (255, 255, 255)


def window_at(windows: Sequence[WindowPrediction], time_s: float) -> WindowPrediction:
    """The window covering ``time_s`` whose centre is nearest (the nearest one if none covers it)."""
    covering = [w for w in windows if w.start_s <= time_s < w.end_s] or list(windows)
    return min(covering, key=lambda w: abs((w.start_s + w.end_s) / 2 - time_s))


def label_lines(top: Sequence[ClassScore], k: int = LABELS_SHOWN) -> list[str]:
    """``name prob%`` of the ``k`` first scores, e.g. ``["dancing 72%", "singing 9%"]``."""
    return [f"{score.name} {100 * score.prob:.0f}%" for score in top[:k]]


def draw_labels(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """A copy of uint8 ``(H, W, 3)`` RGB ``frame`` with ``lines`` in a dark box at the top-left."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image, "RGBA")
    font = ImageFont.load_default()
    text = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((_MARGIN, _MARGIN), text, font=font)
    draw.rectangle((0, 0, right + _MARGIN, bottom + _MARGIN), fill=_BOX_RGBA)
    draw.multiline_text((_MARGIN, _MARGIN), text, font=font, fill=_TEXT_RGB)
    return np.asarray(image)


def even_frames(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` frames with an odd ``H`` or ``W`` padded by one edge pixel (yuv420p needs
    even sizes); even-sized frames are returned as they are."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def annotated_frames(reader: VideoReader, pred: VideoPrediction, k: int = LABELS_SHOWN) -> np.ndarray:
    """All frames ``(T, H, W, 3)`` of an open video with their window's top-``k`` drawn on."""
    frames = reader.get_frames(np.arange(reader.num_frames)).numpy()
    times = reader.grid_times(np.arange(reader.num_frames))
    return np.stack(
        [draw_labels(frame, label_lines(window_at(pred.windows, t).top, k)) for frame, t in zip(frames, times)]
    )


def write_annotated_video(pred: VideoPrediction, out_path: str, backends: Sequence[str], k: int = LABELS_SHOWN) -> str:
    """Write ``pred.path`` with each window's top-``k`` drawn on it to ``out_path`` (H.264, same
    frame rate; the container follows the extension, e.g. ``.mp4``), atomically. Returns
    ``out_path``.

    Raises:
        VideoDecodeError: no backend of ``backends`` decodes the video.
        OSError: ``out_path`` cannot be written.
    """
    frames, fps = read_video(pred.path, backends, lambda reader: (annotated_frames(reader, pred, k), reader.fps))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    atomic_write(out_path, lambda tmp: write_mp4(tmp, even_frames(frames), fps))
    return out_path

"""Independent references for the ``timesformer`` sampling rules, written step by step after
TimeSformer's ``timesformer/datasets/decoder.py`` (``get_start_end_idx``, ``pyav_decode_stream``,
``pyav_decode``, ``decode``, ``temporal_sampling``) and PySlowFast's ``datasets/transform.py``
(``random_short_side_scale_jitter``, ``random_crop``, ``horizontal_flip``), as TimeSformer's
``Kinetics`` dataset calls them (``utils.tensor_normalize`` then ``utils.spatial_sampling``).

Random numbers come from ``rng`` objects with NumPy's ``uniform(low, high)`` and
``randint(low, high)``: :class:`TorchDraws` draws them from torch's global generator, in float64,
the way our code draws (so both see the same numbers); a ``numpy.random.RandomState`` works too.
:class:`FakeVideo` lists an mp4's frames and header as PyAV shows them, without a file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import torch
from torch.nn import functional as nnf

SEEK_MARGIN = 1024  # pyav_decode_stream seeks this many ticks before the start


class TorchDraws:
    """NumPy's ``uniform`` / ``randint`` on torch's global generator (float64 uniforms)."""

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        return low + (high - low) * float(torch.rand((), dtype=torch.float64))

    def randint(self, low: int, high: int) -> int:
        return int(torch.randint(low, high, ()).item())


class FakeVideo:
    """A PyAV container of a constant-frame-rate stream: ``num_frames`` frames at ``rate`` fps,
    frame ``k`` at pts ``k * frame_ticks`` in a time base of ``1 / (rate * frame_ticks)``, a key
    frame every ``gop`` frames, header duration ``duration`` ticks (default: every frame whole)."""

    def __init__(
        self, num_frames: int, rate: Fraction, frame_ticks: int, duration: int | None = None, gop: int = 12
    ) -> None:
        self.pts = [k * frame_ticks for k in range(num_frames)]
        self.gop = gop
        stream = SimpleNamespace(
            average_rate=rate,
            time_base=1 / (rate * frame_ticks),
            frames=num_frames,
            duration=num_frames * frame_ticks if duration is None else duration,
        )
        self.streams = SimpleNamespace(video=[stream])
        self._first = 0

    def seek(self, offset: int, any_frame: bool = False, backward: bool = True, stream: Any = None) -> None:
        before = [k for k, pts in enumerate(self.pts) if pts <= offset and k % self.gop == 0]
        self._first = before[-1] if before else 0

    def decode(self, video: int = 0):
        for pts in self.pts[self._first :]:
            yield SimpleNamespace(pts=pts)


def start_end(video_size: float, clip_size: float, clip_idx: int, num_clips: int, rng: Any):
    """get_start_end_idx: start ``uniform(0, delta)`` (training) or ``delta * clip_idx / num_clips``."""
    delta = max(video_size - clip_size, 0)
    start = rng.uniform(0, delta) if clip_idx == -1 else delta * clip_idx / num_clips
    return start, start + clip_size - 1


def decode_stream(container: Any, start_pts: float, end_pts: float, buffer_size: int = 0) -> list[Any]:
    """pyav_decode_stream: frames from ``start_pts`` to ``end_pts``, plus the first one after it
    (with ``buffer_size`` 0 the loop stops after keeping one frame past the end)."""
    container.seek(max(start_pts - SEEK_MARGIN, 0), any_frame=False, backward=True, stream=container.streams.video[0])
    kept, past_end = {}, 0
    for frame in container.decode(video=0):
        if frame.pts < start_pts:
            continue
        kept[frame.pts] = frame
        if frame.pts > end_pts:
            past_end += 1
            if past_end >= buffer_size:
                break
    return [kept[pts] for pts in sorted(kept)]


def decode_clip_pts(
    container: Any,
    sampling_rate: int,
    num_frames: int,
    clip_idx: int,
    num_clips: int,
    target_fps: float,
    rng: Any = None,
) -> list[int]:
    """decode (pyav_decode + temporal_sampling): the pts of the clip's frames."""
    stream = container.streams.video[0]
    fps = float(stream.average_rate)
    frames_length, duration = stream.frames, stream.duration
    whole = duration is None
    if whole:
        start_pts, end_pts = 0, math.inf
    else:
        start, end = start_end(frames_length, sampling_rate * num_frames / target_fps * fps, clip_idx, num_clips, rng)
        timebase = duration / frames_length
        start_pts, end_pts = int(start * timebase), int(end * timebase)
    frames = decode_stream(container, start_pts, end_pts)
    clip_size = sampling_rate * num_frames / target_fps * fps
    start, end = start_end(len(frames), clip_size, clip_idx if whole else 0, num_clips if whole else 1, rng)
    index = torch.clamp(torch.linspace(start, end, num_frames), 0, len(frames) - 1).long()
    return [frames[i].pts for i in index.tolist()]


def decode_clip_indices(container: Any, all_pts: Sequence[int], *args: Any, **kwargs: Any) -> list[int]:
    """:func:`decode_clip_pts` as indices into the video's frames (``all_pts``, in order)."""
    position = {pts: k for k, pts in enumerate(all_pts)}
    return [position[pts] for pts in decode_clip_pts(container, *args, **kwargs)]


def train_view(
    frames: torch.Tensor,
    min_scale: int,
    max_scale: int,
    crop_size: int,
    flip: bool,
    mean: Sequence[float],
    std: Sequence[float],
    rng: Any,
) -> torch.Tensor:
    """tensor_normalize then spatial_sampling(spatial_idx=-1): uint8 ``(T, H, W, 3)`` -> float
    ``(3, T, crop, crop)``."""
    clip = (frames.float() / 255.0 - torch.tensor(mean)) / torch.tensor(std)
    clip = clip.permute(3, 0, 1, 2)  # C T H W, as the dataset passes it
    size = int(round(rng.uniform(min_scale, max_scale)))
    height, width = clip.shape[2], clip.shape[3]
    if not ((width <= height and width == size) or (height <= width and height == size)):
        new_height, new_width = size, size
        if width < height:
            new_height = int(math.floor((float(height) / width) * size))
        else:
            new_width = int(math.floor((float(width) / height) * size))
        clip = nnf.interpolate(clip, size=(new_height, new_width), mode="bilinear", align_corners=False)
    if not (clip.shape[2] == crop_size and clip.shape[3] == crop_size):
        height, width = clip.shape[2], clip.shape[3]
        y_offset = int(rng.randint(0, height - crop_size)) if height > crop_size else 0
        x_offset = int(rng.randint(0, width - crop_size)) if width > crop_size else 0
        clip = clip[:, :, y_offset : y_offset + crop_size, x_offset : x_offset + crop_size]
    if flip and rng.uniform() < 0.5:
        clip = clip.flip(-1)
    return clip


def real_video_pts(path: str) -> list[int]:
    """Every frame's pts of ``path``'s first video stream, in presentation order (from PyAV's
    packets, one frame each)."""
    import av

    with av.open(path) as container:
        return sorted(packet.pts for packet in container.demux(video=0) if packet.pts is not None)

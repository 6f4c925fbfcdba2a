"""Temporal sampling as in TimeSformer / PySlowFast, by time rather than by raw frame index.

A clip is ``num_frames`` frames ``sampling_rate`` frames apart in ``target_fps`` video, i.e. it spans
``num_frames * sampling_rate / target_fps`` seconds whatever the video's own frame rate: a 12 fps
and a 30 fps video give clips of the same length in seconds. A video shorter than the span is
sampled from its start with indices clamped to its last frame (never skipped).

Test clips (``clip_idx >= 0``) follow ``TEST.PROTOCOL``: ``default`` centres clip ``i`` of ``n`` in
the ``i``-th of ``n`` equal segments of the possible starts and rounds frame positions to the
nearest frame; ``timesformer`` places it as TimeSformer's decoder does, start-aligned at
``delta * i / n``, with positions floored (``delta`` = video frames - clip span).
"""

from __future__ import annotations

import numpy as np
import torch

TEST_PROTOCOLS = ("default", "timesformer")


def clip_start(video_frames: int, clip_frames: float, clip_idx: int, num_clips: int,
               generator: torch.Generator | None = None, protocol: str = "default") -> float:
    """Start frame (fractional) of a clip ``clip_frames`` long in a ``video_frames`` video.

    ``clip_idx == -1`` draws a uniformly random start (training); otherwise clip ``clip_idx`` of
    ``num_clips`` evenly spaced clips, centred in equal segments of the possible starts (one clip is
    the centre clip, as in mmaction2's test sampling); ``protocol="timesformer"``: start-aligned,
    ``delta * clip_idx / num_clips`` (one clip starts at frame 0).
    """
    delta = max(video_frames - clip_frames, 0.0)
    if clip_idx == -1:
        return float(torch.rand((), generator=generator)) * delta
    if not 0 <= clip_idx < num_clips:
        raise ValueError(f"clip_idx {clip_idx} is outside [0, {num_clips})")
    offset = 0.0 if protocol == "timesformer" else 0.5
    return delta * (clip_idx + offset) / num_clips


def clip_frame_count(fps: float, num_frames: int, sampling_rate: int, target_fps: float) -> float:
    """Number of the video's own frames that a clip spans (``num_frames * sampling_rate`` frames of
    ``target_fps`` video, converted by time to ``fps``)."""
    return num_frames * sampling_rate * fps / target_fps


def sample_clip_indices(video_frames: int, fps: float, num_frames: int, sampling_rate: int,
                        target_fps: float, clip_idx: int = -1, num_clips: int = 1,
                        generator: torch.Generator | None = None,
                        protocol: str = "default") -> np.ndarray:
    """Frame indices ``(num_frames,)`` int64 of one clip, in ``[0, video_frames)``.

    TimeSformer's rule: ``linspace(start, start + clip_frames - 1, num_frames)`` with ``clip_frames``
    the span in the video's own frames; indices past the end are clamped to the last frame.
    Positions are rounded (``protocol="default"``) or, for ``"timesformer"``, computed in float32 and
    floored as TimeSformer's ``torch.linspace(...).long()``.
    """
    if protocol not in TEST_PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(TEST_PROTOCOLS)}, got {protocol!r}")
    span = clip_frame_count(fps, num_frames, sampling_rate, target_fps)
    start = clip_start(video_frames, span, clip_idx, num_clips, generator, protocol)
    return clip_indices(start, span, num_frames, video_frames, protocol)


def clip_indices(start: float, span: float, num_frames: int, video_frames: int,
                 protocol: str = "default") -> np.ndarray:
    """``linspace(start, start + span - 1, num_frames)`` clamped to ``[0, video_frames)``: rounded,
    or for ``protocol="timesformer"`` float32 ``torch.linspace`` truncated, bit for bit as TimeSformer."""
    end = start + max(span - 1.0, 0.0)
    if protocol == "timesformer":
        idx = torch.linspace(start, end, num_frames, dtype=torch.float32).long().numpy()
    else:
        idx = np.round(np.linspace(start, end, num_frames)).astype(np.int64)
    return np.clip(idx, 0, video_frames - 1)


REPEAT_WINDOW_SPANS = 2.0  # repeated samples start within a window of this many clip spans


def sample_repeated_clip_indices(video_frames: int, fps: float, num_frames: int, sampling_rate: int,
                                 target_fps: float, repeats: int,
                                 generator: torch.Generator | None = None) -> np.ndarray:
    """Frame indices ``(repeats, num_frames)`` of ``repeats`` training clips decoded together.

    A window of ``REPEAT_WINDOW_SPANS`` clip spans (or the whole video, if shorter) is placed at a
    uniformly random position, and each clip gets its own uniformly random start within it: the
    clips have different temporal offsets and one decode (one seek, frames within two spans)
    serves them all.
    """
    span = clip_frame_count(fps, num_frames, sampling_rate, target_fps)
    window = min(float(video_frames), REPEAT_WINDOW_SPANS * span)
    offset = clip_start(video_frames, window, -1, 1, generator)
    starts = [offset + clip_start(int(round(window)), span, -1, 1, generator) for _ in range(repeats)]
    return np.stack([clip_indices(start, span, num_frames, video_frames) for start in starts])

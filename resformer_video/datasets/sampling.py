"""Temporal sampling as in TimeSformer / PySlowFast, by time rather than by raw frame index.

A clip is ``num_frames`` frames ``sampling_rate`` frames apart in ``target_fps`` video, i.e. it spans
``num_frames * sampling_rate / target_fps`` seconds whatever the video's own frame rate: a 12 fps
and a 30 fps video give clips of the same length in seconds. A video shorter than the span is
sampled from its start with indices clamped to its last frame (never skipped).

Two rules place a clip (``TEST.PROTOCOL`` for test clips, ``DATA.TRAIN_SAMPLING`` for training
clips):

- ``default``: a training clip starts uniformly at random; test clip ``i`` of ``n`` is centred in
  the ``i``-th of ``n`` equal segments of the possible starts; frame positions are rounded to the
  nearest frame.
- ``timesformer``: the frames TimeSformer's PyAV decoder (``decoder.pyav_decode`` then
  ``decoder.decode``) samples. The start is ``delta * i / n`` for test clip ``i`` of ``n``,
  ``uniform(0, delta)`` for a training clip (``delta`` = video frames - clip span, in the video's
  own frames). It converts the start and the end to timestamps (``int(frame * duration / frames)``,
  ticks of the stream's time base), decodes the frames whose timestamp lies between them plus the
  first one after, and samples ``linspace(0, span - 1, num_frames)`` (float32, truncated, clamped)
  of the decoded frames. So the first frame is the first one that starts at or after the start's
  timestamp, usually the start rounded *up*; a stream without a duration is decoded whole and
  sampled at ``linspace(start, start + span - 1)`` truncated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

TEST_PROTOCOLS = ("default", "timesformer")
TRAIN_SAMPLINGS = ("default", "timesformer")
MP4_MIN_TIMESCALE = 10000  # FFmpeg's mp4 muxer doubles a video track's timescale up to this


@dataclass(frozen=True)
class StreamTiming:
    """A video stream's header as TimeSformer's PyAV decoder reads it: ``fps`` its average frame
    rate; in ticks of the stream's time base, frame ``k`` starts at ``k * frame_ticks`` (a
    constant-frame-rate stream) and ``duration_ticks`` is the stream's duration (None when the
    header has none)."""

    fps: float
    frame_ticks: float
    duration_ticks: float | None


def mp4_stream_timing(fps: float, video_frames: int) -> StreamTiming:
    """The timing of a constant-frame-rate mp4 as FFmpeg writes it: time base ``1 / timescale`` with
    the frame rate's numerator doubled until it reaches 10000 (30 fps: 1/15360, 512 ticks a frame;
    30000/1001 fps: 1/30000, 1001 ticks) and a duration of ``video_frames`` whole frames."""
    rate = Fraction(fps).limit_denominator(1001)
    timescale = rate.numerator
    while timescale < MP4_MIN_TIMESCALE:
        timescale *= 2
    frame_ticks = timescale / rate
    return StreamTiming(float(fps), float(frame_ticks), float(frame_ticks * video_frames))


def clip_start(
    video_frames: int,
    clip_frames: float,
    clip_idx: int,
    num_clips: int,
    generator: torch.Generator | None = None,
    protocol: str = "default",
) -> float:
    """Start frame (fractional) of a clip ``clip_frames`` long in a ``video_frames`` video.

    ``clip_idx == -1`` draws a uniformly random start (training; ``timesformer`` draws the uniform
    number in float64, as Python's ``random.uniform``); otherwise clip ``clip_idx`` of
    ``num_clips`` evenly spaced clips, centred in equal segments of the possible starts (one clip is
    the centre clip, as in mmaction2's test sampling); ``protocol="timesformer"``: start-aligned,
    ``delta * clip_idx / num_clips`` (one clip starts at frame 0).
    """
    delta = max(video_frames - clip_frames, 0.0)
    if clip_idx == -1:
        dtype = torch.float64 if protocol == "timesformer" else torch.float32
        return float(torch.rand((), generator=generator, dtype=dtype)) * delta
    if not 0 <= clip_idx < num_clips:
        raise ValueError(f"clip_idx {clip_idx} is outside [0, {num_clips})")
    if protocol == "timesformer":
        return delta * clip_idx / num_clips
    return delta * (clip_idx + 0.5) / num_clips


def clip_frame_count(fps: float, num_frames: int, sampling_rate: int, target_fps: float) -> float:
    """Number of the video's own frames that a clip spans (``num_frames * sampling_rate`` frames of
    ``target_fps`` video, converted by time to ``fps``; computed in TimeSformer's order of
    operations, so its float is TimeSformer's to the last bit)."""
    return sampling_rate * num_frames / target_fps * fps


def sample_clip_indices(
    video_frames: int,
    fps: float,
    num_frames: int,
    sampling_rate: int,
    target_fps: float,
    clip_idx: int = -1,
    num_clips: int = 1,
    generator: torch.Generator | None = None,
    protocol: str = "default",
    timing: StreamTiming | None = None,
) -> np.ndarray:
    """Frame indices ``(num_frames,)`` int64 of one clip, in ``[0, video_frames)``.

    ``protocol`` is the placement rule (module docstring): ``default`` (rounded
    ``linspace(start, start + span - 1, num_frames)``, ``span`` the clip in the video's own
    frames, clamped to the last frame) or ``timesformer`` (the frames TimeSformer's PyAV decoder
    samples, given the stream's header ``timing``, whose average rate then replaces ``fps``;
    None: :func:`mp4_stream_timing`).
    """
    if protocol not in TEST_PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(TEST_PROTOCOLS)}, got {protocol!r}")
    if protocol == "timesformer":
        timing = timing or mp4_stream_timing(fps, video_frames)
        span = clip_frame_count(timing.fps, num_frames, sampling_rate, target_fps)
        start = clip_start(video_frames, span, clip_idx, num_clips, generator, protocol)
        return timesformer_clip_indices(start, span, num_frames, video_frames, timing)
    span = clip_frame_count(fps, num_frames, sampling_rate, target_fps)
    start = clip_start(video_frames, span, clip_idx, num_clips, generator, protocol)
    return clip_indices(start, span, num_frames, video_frames)


def clip_indices(start: float, span: float, num_frames: int, video_frames: int, truncate: bool = False) -> np.ndarray:
    """``linspace(start, start + span - 1, num_frames)`` clamped to ``[0, video_frames)``: rounded,
    or with ``truncate`` float32 ``torch.linspace`` truncated (TimeSformer's ``temporal_sampling``)."""
    end = start + max(span - 1.0, 0.0)
    if truncate:
        idx = torch.linspace(start, end, num_frames, dtype=torch.float32).long().numpy()
    else:
        idx = np.round(np.linspace(start, end, num_frames)).astype(np.int64)
    return np.clip(idx, 0, video_frames - 1)


def timesformer_clip_indices(
    start: float, span: float, num_frames: int, video_frames: int, timing: StreamTiming
) -> np.ndarray:
    """Frame indices ``(num_frames,)`` int64 that TimeSformer's PyAV decoder samples for a clip
    starting at (fractional) frame ``start`` and ``span`` frames long (module docstring).

    The decoded frames run from the first one whose timestamp is at or after the start's
    timestamp to the first one after the end's (the last frame of the video at most); the clip is
    ``linspace(0, span - 1, num_frames)`` of them, truncated and clamped to the last decoded one.
    """
    if timing.duration_ticks is None:  # no duration in the header: the whole video is decoded
        return clip_indices(start, span, num_frames, video_frames, truncate=True)
    ticks_per_frame = timing.duration_ticks / video_frames  # TimeSformer's "timebase"
    start_ticks = int(start * ticks_per_frame)
    end_ticks = int((start + span - 1) * ticks_per_frame)
    first = min(math.ceil(start_ticks / timing.frame_ticks), video_frames - 1)
    last = min(math.floor(end_ticks / timing.frame_ticks) + 1, video_frames - 1)
    offsets = torch.linspace(0, span - 1, num_frames).clamp(0, max(last - first, 0)).long()
    return first + offsets.numpy()


REPEAT_WINDOW_SPANS = 2.0  # repeated samples start within a window of this many clip spans


def sample_repeated_clip_indices(
    video_frames: int,
    fps: float,
    num_frames: int,
    sampling_rate: int,
    target_fps: float,
    repeats: int,
    generator: torch.Generator | None = None,
    protocol: str = "default",
    timing: StreamTiming | None = None,
) -> np.ndarray:
    """Frame indices ``(repeats, num_frames)`` of ``repeats`` training clips decoded together.

    A window of ``REPEAT_WINDOW_SPANS`` clip spans (or the whole video, if shorter) is placed at a
    uniformly random position, and each clip gets its own uniformly random start within it: the
    clips have different temporal offsets and one decode (one seek, frames within two spans)
    serves them all. ``protocol`` places each clip's frames from its start as in
    :func:`sample_clip_indices`.
    """
    if protocol == "timesformer":
        timing = timing or mp4_stream_timing(fps, video_frames)
        fps = timing.fps
    span = clip_frame_count(fps, num_frames, sampling_rate, target_fps)
    window = min(float(video_frames), REPEAT_WINDOW_SPANS * span)
    offset = clip_start(video_frames, window, -1, 1, generator)
    starts = [offset + clip_start(int(round(window)), span, -1, 1, generator, protocol) for _ in range(repeats)]
    if protocol == "timesformer":
        return np.stack([timesformer_clip_indices(start, span, num_frames, video_frames, timing) for start in starts])
    return np.stack([clip_indices(start, span, num_frames, video_frames) for start in starts])

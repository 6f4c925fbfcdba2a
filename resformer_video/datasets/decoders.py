"""One small video-reading interface over three backends: decord, torchcodec and PyAV.

torchcodec also decodes on the GPU: backend ``torchcodec_cuda`` (NVDEC, ``device="cuda"``; the
frames are copied back to the CPU for the augmentation). A file it cannot read (a codec or profile
NVDEC lacks) is read by CPU torchcodec, then by ``DATA.DECODER_FALLBACK``: see :func:`decoder_chain`.

``open_video(path, backend)`` returns a :class:`VideoReader` with ``fps``, ``num_frames``,
``duration``, ``stream_timing`` (the header's frame rate, time base and duration, which
TimeSformer's sampling needs; read with PyAV on first use) and
``get_frames(indices) -> uint8 (T, H, W, 3)``. Only the requested frames are decoded (each backend
seeks to the nearest key frame). Readers are context managers and release the file on ``close()``.

Frames come out upright: a display rotation in the file (portrait phone video) is applied.
Frames are addressed by time. Index ``i`` means the frame on screen at ``(i + 0.5) / fps`` seconds
after the first frame, ``fps`` being the average frame rate (frames / duration). In a
constant-frame-rate video that is the ``i``-th frame; in a variable-frame-rate one (phone
cameras) it is the frame shown at that time, so clips sampled by time
(:mod:`~resformer_video.datasets.sampling`) span the seconds they should, whatever the backend.
Any failure to open or decode raises :class:`VideoDecodeError` naming the file, so callers catch
one exception type whatever the backend; :func:`read_video` names every backend it tried. What
decord's FFmpeg prints on a failed open goes into that message, not to the terminal.
"""

from __future__ import annotations

import importlib
import logging
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from fractions import Fraction
from functools import cached_property
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from resformer_video.datasets.sampling import StreamTiming
from resformer_video.errors import DecoderUnavailableError, VideoDecodeError, VideoNotFoundError  # noqa: F401
from resformer_video.utils.native_stderr import captured_native_stderr, last_native_reason

BACKENDS = ("decord", "torchcodec", "pyav", "torchcodec_cuda")
# The decoder and its fallback when none is chosen: DATA.DECODER and DATA.DECODER_FALLBACK's defaults.
DEFAULT_DECODERS = ("decord", "pyav")
# A GPU backend's CPU counterpart, tried next for a file the GPU decoder cannot read.
_CPU_BACKENDS = {"torchcodec_cuda": "torchcodec"}
T = TypeVar("T")
# Frames a stream may end short of its container's frame count without being called truncated
# (frame counts in headers can be off by a frame or two).
MISSING_FRAMES_TOLERATED = 2
logger = logging.getLogger(__name__)
_INSTALL_HINTS = {
    "decord": "pip install decord",
    "torchcodec": "pip install torchcodec; it also needs a system FFmpeg (4 to 7), e.g. apt-get install ffmpeg",
    "pyav": "pip install av",
}
_INSTALL_HINTS["torchcodec_cuda"] = _INSTALL_HINTS["torchcodec"] + " (a CUDA build of torchcodec)"
_MODULES = {
    "decord": "decord",
    "torchcodec": "torchcodec.decoders",
    "pyav": "av",
    "torchcodec_cuda": "torchcodec.decoders",
}


def failure_kind(path: str) -> str:
    """``"not found"`` when ``path`` does not exist, else ``"failed to decode"``: how reports name a
    video that could not be read."""
    return "failed to decode" if os.path.exists(path) else "not found"


def import_backend(backend: str):
    """Import and return the module of ``backend``; raise :class:`DecoderUnavailableError` naming
    the package (and, for torchcodec, the system FFmpeg it needs) when that fails."""
    if backend not in BACKENDS:
        raise ValueError(f"DATA.DECODER: unknown video backend {backend!r}, expected one of {list(BACKENDS)}")
    try:
        module = importlib.import_module(_MODULES[backend])
    except Exception as err:  # torchcodec raises RuntimeError/OSError when FFmpeg libraries are missing
        raise DecoderUnavailableError(
            f"DATA.DECODER={backend}: the '{_MODULES[backend].split('.')[0]}' package cannot be loaded "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            f"install it with: {_INSTALL_HINTS[backend]}"
        ) from err
    if backend in _CPU_BACKENDS and not torch.cuda.is_available():
        raise DecoderUnavailableError(
            f"DATA.DECODER={backend} decodes on a CUDA GPU and none is available; use {_CPU_BACKENDS[backend]}"
        )
    return module


class VideoReader(ABC):
    """A video file opened for random frame access. Subclasses implement :meth:`_read`."""

    backend = ""  # the backend's name in BACKENDS

    def __init__(self, path: str, fps: float, num_frames: int) -> None:
        if num_frames <= 0 or not fps or fps <= 0:
            raise VideoDecodeError(f"{path}: no decodable video frames (frames={num_frames}, fps={fps})")
        self.path = path
        self.fps = float(fps)
        self.num_frames = int(num_frames)

    def grid_times(self, indices: np.ndarray) -> np.ndarray:
        """Seconds after the first frame at which grid ``indices`` are read (see the module docstring)."""
        return (indices + 0.5) / self.fps

    @property
    def duration(self) -> float:
        """Length in seconds (``num_frames / fps``)."""
        return self.num_frames / self.fps

    @cached_property
    def stream_timing(self) -> StreamTiming | None:
        """The header's frame rate, time base and duration as TimeSformer's decoder reads them,
        probed with PyAV on first use (None without PyAV: sampling then assumes FFmpeg's mp4 timing)."""
        return probe_stream_timing(self.path)

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed, clamped to the video) as uint8
        ``(T, H, W, 3)`` RGB. Raises :class:`VideoDecodeError` when decoding fails."""
        idx = np.clip(np.asarray(indices, dtype=np.int64), 0, self.num_frames - 1)
        if idx.size == 0:
            raise ValueError("get_frames needs at least one index")
        try:
            frames = self._read(idx)
        except VideoDecodeError:
            raise
        except Exception as err:  # every backend has its own error types
            raise VideoDecodeError(f"{self.path}: decoding failed ({type(err).__name__}: {err})") from err
        if frames.ndim != 4 or frames.shape[0] != idx.size or frames.shape[-1] != 3:
            raise VideoDecodeError(
                f"{self.path}: decoder returned frames of shape {tuple(frames.shape)} for {idx.size} indices"
            )
        return frames

    @abstractmethod
    def _read(self, indices: np.ndarray) -> torch.Tensor:
        """Decode ``indices`` (already clamped) into uint8 ``(T, H, W, 3)``."""

    def close(self) -> None:
        """Release the file handle and decoder state."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pyav_stream_timing(stream) -> StreamTiming | None:
    """A PyAV video stream's :class:`StreamTiming`: its average rate (TimeSformer's ``fps``), ticks
    per frame at the rate of its timestamps (FFmpeg's ``r_frame_rate``, PyAV's ``base_rate``; a
    header can state an average rate its timestamps do not follow) and its header duration (None
    where the header has none); None without a rate or time base."""
    rate, time_base = stream.average_rate, stream.time_base
    if not rate or not time_base:
        return None
    timestamp_rate = stream.base_rate or rate
    duration = stream.duration
    return StreamTiming(
        float(rate), float(1 / (timestamp_rate * time_base)), None if duration is None else float(duration)
    )


def probe_stream_timing(path: str) -> StreamTiming | None:
    """:func:`pyav_stream_timing` of ``path``'s first video stream; None when PyAV is not installed
    or cannot open the file."""
    try:
        av = importlib.import_module("av")
        with av.open(path) as container:
            return pyav_stream_timing(container.streams.video[0])
    except Exception:  # noqa: BLE001 - optional metadata; sampling has a default
        return None


def frames_shown_at(starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Indices of the frames on screen at ``times`` (seconds after the first frame), given each
    frame's presentation start ``starts`` (seconds, non-decreasing): the last frame that started at
    or before the time, clamped to the video."""
    found = np.searchsorted(starts - starts[0], times, side="right") - 1
    return np.clip(found, 0, len(starts) - 1)


def _usable(starts: np.ndarray) -> np.ndarray | None:
    """``starts`` if they order the frames in time, else None (then frame ``i`` is taken to start
    at ``i / fps``, i.e. grid index ``i`` is frame ``i``)."""
    ordered = len(starts) > 1 and bool(np.all(np.diff(starts) >= 0)) and starts[-1] > starts[0]
    return starts if ordered else None


class DecordReader(VideoReader):
    """decord ``VideoReader`` (one thread; key-frame seeking inside ``get_batch``). Grid indices are
    mapped to decord's frame indices through its per-frame timestamps."""

    backend = "decord"

    def __init__(self, path: str) -> None:
        decord = import_backend("decord")
        native: list[str] = []
        try:
            with captured_native_stderr(native):
                self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        except Exception as err:
            raise RuntimeError(last_native_reason(native, path) or str(err)) from err
        num_frames = len(self._vr)
        super().__init__(path, self._vr.get_avg_fps(), num_frames)
        starts = np.asarray(self._vr.get_frame_timestamp(list(range(num_frames))), dtype=np.float64)
        self._starts = _usable(starts.reshape(num_frames, -1)[:, 0])

    def _read(self, indices: np.ndarray) -> torch.Tensor:
        if self._starts is not None:
            indices = frames_shown_at(self._starts, self.grid_times(indices))
        return torch.from_numpy(self._vr.get_batch(indices.tolist()).asnumpy())

    def close(self) -> None:
        self._vr = None


class TorchCodecReader(VideoReader):
    """torchcodec ``VideoDecoder`` in exact seek mode (frame times from a full packet scan); grid
    indices are read with ``get_frames_played_at`` their grid times."""

    backend = "torchcodec"
    device = "cpu"

    def __init__(self, path: str) -> None:
        decoders = import_backend(self.backend)
        self._dec = decoders.VideoDecoder(
            path, dimension_order="NHWC", num_ffmpeg_threads=1, seek_mode="exact", device=self.device
        )
        meta = self._dec.metadata
        frames = meta.num_frames or 0
        # The average rate as FFmpeg's header gives it (frames / stream duration), which decord and
        # PyAV report too; the scanned end can leave out the last frame's duration.
        header_s = getattr(meta, "duration_seconds_from_header", None)
        fps = frames / header_s if frames and header_s else meta.average_fps or 0.0
        super().__init__(path, fps, frames)
        self._begin = float(meta.begin_stream_seconds or 0.0)
        self._end = float(meta.end_stream_seconds or self._begin + self.duration)

    def _read(self, indices: np.ndarray) -> torch.Tensor:
        seconds = self._begin + self.grid_times(indices)
        inside = seconds < self._end
        if inside.all():
            return self._dec.get_frames_played_at(seconds=seconds.tolist()).data
        # Times at or past the scanned end (where torchcodec has no frame "played") show the last one.
        last = self._dec.get_frames_at(indices=[self.num_frames - 1]).data
        out = last.repeat(len(indices), 1, 1, 1)
        if inside.any():
            out[torch.from_numpy(inside)] = self._dec.get_frames_played_at(seconds=seconds[inside].tolist()).data
        return out

    def close(self) -> None:
        self._dec = None


class TorchCodecCudaReader(TorchCodecReader):
    """:class:`TorchCodecReader` decoding on the current CUDA device (NVDEC); frames come back on
    the CPU."""

    backend = "torchcodec_cuda"
    device = "cuda"

    def _read(self, indices: np.ndarray) -> torch.Tensor:
        return super()._read(indices).cpu()


class PyAVReader(VideoReader):
    """PyAV demuxer + decoder: seek to the key frame before the first wanted frame, decode forward to
    the last one; grid index ``i`` gets the frame on screen at ``(i + 0.5) / fps`` (the last frame
    that starts at or before it)."""

    backend = "pyav"

    def __init__(self, path: str) -> None:
        av = import_backend("pyav")
        self._container = av.open(path)
        try:
            self._stream = self._container.streams.video[0]
        except IndexError:
            self.close()
            raise VideoDecodeError(f"{path}: no video stream") from None
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate or 0
        # Matroska / WebM (what YouTube downloads often are) store no frame count: count packets.
        frames = self._stream.frames or self._count_packets()
        self._start = float((self._stream.start_time or 0) * self._stream.time_base)
        super().__init__(path, float(rate), frames)

    @cached_property
    def stream_timing(self) -> StreamTiming | None:
        return pyav_stream_timing(self._stream)

    def _count_packets(self) -> int:
        """Video packets in the file, by demuxing without decoding (one frame each)."""
        count = sum(1 for packet in self._container.demux(self._stream) if packet.size)
        self._container.seek(0, stream=self._stream)
        return count

    def _seek_before(self, index: int) -> None:
        """Position the demuxer at the key frame at or before grid index ``index``."""
        offset = int((self._start + index / self.fps) / float(self._stream.time_base)) if index > 0 else 0
        self._container.seek(offset, stream=self._stream, backward=True, any_frame=False)

    def _decode_wanted(self, wanted: list[int], seek: bool) -> tuple[dict[int, np.ndarray], bool]:
        """Decode forward (from the key frame before ``wanted[0]`` when ``seek``, else from the start)
        and give each wanted grid index (ascending, unique) the last frame that starts at or before
        its grid time: the first frame for times before it, the last one for times past the end.
        Only those frames are converted to RGB. Returns (frames by index, whether decoding started
        after ``wanted[0]``'s time)."""
        self._seek_before(wanted[0] if seek else 0)
        pending = deque(wanted)
        out: dict[int, np.ndarray] = {}
        previous: list | None = None  # [frame, rgb or None] of the last frame at or before
        overshot = None
        for frame in self._container.decode(self._stream):
            started = frame.time - self._start
            overshot = started > self._grid_time(pending[0]) if overshot is None else overshot
            current = [frame, None]
            while pending and started > self._grid_time(pending[0]):
                out[pending.popleft()] = self._rgb(previous or current)
            if not pending:
                break
            previous = current
        if pending and previous is not None:  # past the end of the stream
            self._check_complete(previous[0])
        while pending and previous is not None:
            out[pending.popleft()] = self._rgb(previous)
        return out, bool(overshot)

    def _check_complete(self, last: Any) -> None:
        """Raise :class:`VideoDecodeError` when the stream ended (at ``last``, the last frame that
        decoded) more than a frame before the length the container's index claims. A file cut off
        after its index (an MP4 written with the index first, as web and phone videos are) reports
        its full length but decodes only its first part; later indices must not all get the last
        decoded frame."""
        shown_s = last.duration * float(last.time_base) if last.duration and last.time_base else 0.0
        end_s = last.time - self._start + max(shown_s, 1.0 / self.fps)
        if end_s < self.duration - MISSING_FRAMES_TOLERATED / self.fps:
            raise VideoDecodeError(
                f"{self.path}: truncated: frames decode only to {end_s:.2f} s of the {self.duration:.2f} s "
                f"({self.num_frames} frames) its index claims",
                "truncated file",
            )

    def _grid_time(self, index: int) -> float:
        return float(self.grid_times(np.float64(index)))

    @classmethod
    def _rgb(cls, entry: list) -> np.ndarray:
        """The RGB array of a ``[frame, rgb or None]`` entry, converted once and turned upright."""
        if entry[1] is None:
            entry[1] = cls._upright_rgb(entry[0])
        return entry[1]

    @staticmethod
    def _upright_rgb(frame, scale: Callable[[int, int], tuple[int, int]] | None = None) -> np.ndarray:
        """uint8 ``(H, W, 3)`` RGB of a decoded frame, upright: a frame tagged with a display rotation
        (portrait phone video) is rotated as players (and decord and torchcodec) show it.
        ``scale(height, width)`` maps the upright size to the size wanted (FFmpeg's bicubic
        scaler, as its ``scale`` filter, applied while converting to RGB)."""
        quarter_turns = int(round(getattr(frame, "rotation", 0) / 90.0)) % 4
        resize = {}
        if scale is not None:
            upright = (frame.height, frame.width) if quarter_turns % 2 == 0 else (frame.width, frame.height)
            height, width = scale(*upright)
            if quarter_turns % 2:
                height, width = width, height
            if (height, width) != (frame.height, frame.width):
                resize = {"width": width, "height": height, "interpolation": "BICUBIC"}
        return np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24", **resize), quarter_turns))

    @property
    def time_base(self) -> Fraction:
        """The unit of the stream's timestamps, in seconds."""
        return Fraction(self._stream.time_base)

    def iter_frames(
        self, scale: Callable[[int, int], tuple[int, int]] | None = None
    ) -> Iterator[tuple[np.ndarray, Fraction]]:
        """Every frame from the start, in presentation order, as upright uint8 ``(H, W, 3)`` RGB
        (resized by ``scale(height, width) -> (height, width)`` when given) with its presentation
        time in seconds after the first frame (exact, in the stream's time base; ``i / fps`` for
        a frame without a timestamp). For re-encoding a whole video with its timing; training
        reads clips with :meth:`get_frames`. Raises :class:`VideoDecodeError` when decoding fails."""
        self._container.seek(0, stream=self._stream)
        first = None
        try:
            for index, frame in enumerate(self._container.decode(self._stream)):
                if frame.pts is None:
                    time = Fraction(index) / Fraction(self.fps).limit_denominator(1001)
                else:
                    first = frame.pts if first is None else first
                    time = (frame.pts - first) * self.time_base
                yield self._upright_rgb(frame, scale), time
        except VideoDecodeError:
            raise
        except Exception as err:  # PyAV's own error types
            raise VideoDecodeError(f"{self.path}: decoding failed ({type(err).__name__}: {err})") from err

    def _read(self, indices: np.ndarray) -> torch.Tensor:
        wanted = sorted(set(indices.tolist()))
        out, overshot = self._decode_wanted(wanted, seek=wanted[0] > 0)
        if overshot and wanted[0] > 0:  # the seek landed after the first wanted frame
            out, _ = self._decode_wanted(wanted, seek=False)
        if len(out) != len(wanted):
            raise VideoDecodeError(f"{self.path}: no frames decoded in [{wanted[0]}, {wanted[-1]}]")
        return torch.from_numpy(np.stack([out[i] for i in indices.tolist()]))

    def close(self) -> None:
        container, self._container = getattr(self, "_container", None), None
        if container is not None:
            container.close()


_READERS = {
    "decord": DecordReader,
    "torchcodec": TorchCodecReader,
    "pyav": PyAVReader,
    "torchcodec_cuda": TorchCodecCudaReader,
}
# decord's bundled FFmpeg has no AV1 decoder; it then reports the file as having no video stream.
_OPEN_HINTS = {
    "decord": "; if the file is AV1 or another codec decord's FFmpeg lacks, set DATA.DECODER pyav or torchcodec"
}


def decoder_chain(decoder: str, fallback: str = "") -> tuple[str, ...]:
    """The backends to try in order: ``DATA.DECODER``, its CPU counterpart for a GPU decoder
    (``torchcodec_cuda`` -> ``torchcodec``: per file, NVDEC failing falls back to CPU decoding), then
    ``DATA.DECODER_FALLBACK`` if set and different."""
    names = (decoder, _CPU_BACKENDS.get(decoder, ""), fallback)
    return tuple(dict.fromkeys(name for name in names if name))


def read_video(path: str, backends: Sequence[str], read: Callable[[VideoReader], T]) -> T:
    """``read(reader)`` with the first of ``backends`` that opens and decodes ``path``.

    A backend that fails (decord on AV1, say) hands the file to the next; when none succeeds a
    :class:`VideoDecodeError` names the file and every backend tried with its reason (one backend:
    its own error). A missing file raises :class:`VideoNotFoundError` before any backend is tried.
    """
    if backends and not os.path.isfile(path):  # the same for every backend: say it once
        raise VideoNotFoundError(f"{path}: video file not found")
    errors: list[VideoDecodeError] = []
    for backend in backends:
        try:
            with open_video(path, backend) as reader:
                result = read(reader)
        except VideoDecodeError as err:
            errors.append(err)
            continue
        if errors:
            logger.debug("%s: read with %s after %s failed (%s)", path, backend, backends[0], errors[0])
        return result
    if not errors:
        raise ValueError("read_video needs at least one backend")
    if len(errors) == 1:
        raise errors[0]
    reasons = "; ".join(f"{backend}: {err.reason.removeprefix(f'{path}: ')}" for backend, err in zip(backends, errors))
    raise VideoDecodeError(f"{path}: not a video any decoder could read (tried {reasons})", reasons)


def open_video(path: str, backend: str = "decord") -> VideoReader:
    """Open ``path`` with ``backend`` (``decord``, ``torchcodec``, ``pyav`` or ``torchcodec_cuda``).

    Raises:
        DecoderUnavailableError: the backend's package cannot be imported (names the package).
        VideoDecodeError: the file is missing, empty or not a decodable video (names the file).
    """
    import_backend(backend)
    if not os.path.isfile(path):
        raise VideoNotFoundError(f"{path}: video file not found")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"{path}: video file is empty (0 bytes)")
    try:
        return _READERS[backend](path)
    except VideoDecodeError:
        raise
    except Exception as err:
        hint = _OPEN_HINTS.get(backend, "")
        first_line = str(err).splitlines()[0].replace(f": '{path}'", "") if str(err) else ""
        reason = f"{type(err).__name__}: {first_line}"
        raise VideoDecodeError(f"{path}: cannot open video with {backend} ({reason}){hint}", reason) from err

"""Writing videos: the one place that opens an encoder (generated datasets, benchmark files,
re-encoded Kinetics videos), with options that give the same bytes in every process and on every CPU.

**Why the encoder options matter.** libx264's AVX-512 ``mbtree_propagate_list`` works through a
macroblock row 8 macroblocks at a time without stopping at the row's end. When a frame's width in
macroblocks is not a multiple of 8 (64 px = 4, 96 px = 6) it reads past the row into
``i_propagate_cost``, which for non-referenced B-frames holds leftover heap memory: that memory
reaches the rate control, so the bytes (and the decoded pixels) then vary between processes on
AVX-512 CPUs. Its AVX2 and C paths stop at the row width. So on a CPU with AVX-512 we tell x264 to
use its AVX2 code (``x264-params asm=AVX2``): x264's assembly is bit-exact with its C code (its
``checkasm`` tests that), so the files equal those an AVX2 CPU writes, and the option is left out
elsewhere (forcing AVX2 code on a CPU without AVX2 would crash). Measured with the libx264 that
PyAV 18.1 bundles. ``mbtree=0`` would also avoid the bug, but changes every file and encodes ~8 %
slower.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

import numpy as np

from resformer_video.utils.machine import cpu_flags

# x264 assembly that every AVX-512 CPU also has and that has no out-of-row read (see above).
X264_SAFE_ASM = "AVX2"


def x264_options(
    crf: int,
    gop: int,
    preset: str = "veryfast",
    scenecut: bool = True,
    flags: frozenset[str] | None = None,
    tune: str = "",
) -> dict[str, str]:
    """libx264 options: constant quality ``crf``, a key frame at most every ``gop`` frames (exactly
    every ``gop`` with ``scenecut=False``), one thread, and AVX2 assembly on AVX-512 CPUs (``flags``:
    the CPU's, :func:`cpu_flags` by default) so that the bytes are the same in every process.
    ``tune``: x264's ``--tune`` (``fastdecode``: no CABAC, no deblocking filter, no weighted
    prediction - cheaper to decode, larger files)."""
    options = {"crf": str(crf), "preset": preset, "g": str(max(1, gop)), "threads": "1"}
    if tune:
        options["tune"] = tune
    if not scenecut:
        options.update({"keyint_min": str(max(1, gop)), "sc_threshold": "0"})
    if "avx512f" in (cpu_flags() if flags is None else flags):
        options["x264-params"] = f"asm={X264_SAFE_ASM}"
    return options


def codec_options(codec: str, crf: int, gop: int) -> dict[str, str]:
    """Encoder options for ``codec`` (libx264, libvpx-vp9, libsvtav1; others: the codec's defaults)."""
    if codec == "libx264":
        return x264_options(crf, gop)
    if codec == "libvpx-vp9":
        return {"crf": str(crf), "b": "0", "g": str(max(1, gop)), "threads": "1"}
    if codec == "libsvtav1":
        return {"crf": str(crf), "preset": "12", "g": str(max(1, gop))}
    return {}


class VideoWriter:
    """Streams uint8 RGB frames ``(H, W, 3)`` into a video file (container from ``path``'s extension).

    ``options`` are the encoder's (:func:`codec_options` by default); the encoder runs on one thread,
    set on the codec context too (PyAV defaults to slice threading), so that the same frames give the
    same bytes. ``millisecond_pts`` lets :meth:`write` take a presentation time per frame (variable
    frame rate), rounded to milliseconds; ``time_base`` (e.g. a source stream's, when re-encoding)
    does the same with times rounded to that unit, which keeps a source's timestamps exactly.
    Otherwise frame ``i`` is shown at ``i / fps``. ``faststart`` puts an MP4's index before the
    frames, as web and phone videos have it. Use as a context manager.
    """

    def __init__(
        self,
        path: str,
        fps: float,
        width: int,
        height: int,
        codec: str = "libx264",
        options: dict[str, str] | None = None,
        crf: int = 18,
        gop: int | None = None,
        millisecond_pts: bool = False,
        time_base: Fraction | None = None,
        container_format: str | None = None,
        faststart: bool = False,
    ) -> None:
        import av

        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        # container_format: the muxer when path's extension does not name it (a temporary name)
        self._container = av.open(
            path, "w", format=container_format, options={"movflags": "faststart"} if faststart else None
        )
        self._stream = self._container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        gop = max(1, round(fps)) if gop is None else gop
        self._stream.options = codec_options(codec, crf, gop) if options is None else options
        self._stream.codec_context.thread_count = 1
        self._millisecond_pts = millisecond_pts
        self._time_base = Fraction(1, 1000) if millisecond_pts else time_base
        if self._time_base is not None:
            self._stream.codec_context.time_base = self._time_base

    def write(self, frame: np.ndarray, pts_s: float | None = None) -> None:
        """Encode one ``(H, W, 3)`` uint8 RGB frame (shown at ``pts_s`` seconds with
        ``millisecond_pts`` or ``time_base``; a ``Fraction`` keeps it exact)."""
        import av

        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if self._time_base is not None:
            if pts_s is None:
                raise ValueError("this writer was opened with millisecond_pts or time_base: give each frame's pts_s")
            ticks = pts_s * 1000 if self._millisecond_pts else Fraction(pts_s) / self._time_base
            video_frame.pts, video_frame.time_base = int(round(ticks)), self._time_base
        self._container.mux(self._stream.encode(video_frame))

    def close(self) -> None:
        """Flush the encoder and close the file."""
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode())
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

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
from typing import Any, Dict, FrozenSet, Optional

import numpy as np

from resformer_video.utils.machine import cpu_flags

# x264 assembly that every AVX-512 CPU also has and that has no out-of-row read (see above).
X264_SAFE_ASM = "AVX2"


def x264_options(crf: int, gop: int, preset: str = "veryfast", scenecut: bool = True,
                 flags: Optional[FrozenSet[str]] = None) -> Dict[str, str]:
    """libx264 options: constant quality ``crf``, a key frame at most every ``gop`` frames (exactly
    every ``gop`` with ``scenecut=False``), one thread, and AVX2 assembly on AVX-512 CPUs (``flags``:
    the CPU's, :func:`cpu_flags` by default) so that the bytes are the same in every process."""
    options = {"crf": str(crf), "preset": preset, "g": str(max(1, gop)), "threads": "1"}
    if not scenecut:
        options.update({"keyint_min": str(max(1, gop)), "sc_threshold": "0"})
    if "avx512f" in (cpu_flags() if flags is None else flags):
        options["x264-params"] = f"asm={X264_SAFE_ASM}"
    return options


def codec_options(codec: str, crf: int, gop: int) -> Dict[str, str]:
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
    frame rate); otherwise frame ``i`` is shown at ``i / fps``. ``faststart`` puts an MP4's index
    before the frames, as web and phone videos have it. Use as a context manager.
    """

    def __init__(self, path: str, fps: float, width: int, height: int, codec: str = "libx264",
                 options: Optional[Dict[str, str]] = None, crf: int = 18, gop: Optional[int] = None,
                 millisecond_pts: bool = False, faststart: bool = False) -> None:
        import av

        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._container = av.open(path, "w", options={"movflags": "faststart"} if faststart else None)
        self._stream = self._container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        gop = max(1, round(fps)) if gop is None else gop
        self._stream.options = codec_options(codec, crf, gop) if options is None else options
        self._stream.codec_context.thread_count = 1
        self._millisecond_pts = millisecond_pts
        if millisecond_pts:
            self._stream.codec_context.time_base = Fraction(1, 1000)

    def write(self, frame: np.ndarray, pts_s: Optional[float] = None) -> None:
        """Encode one ``(H, W, 3)`` uint8 RGB frame (shown at ``pts_s`` seconds with ``millisecond_pts``)."""
        import av

        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if self._millisecond_pts:
            if pts_s is None:
                raise ValueError("this writer was opened with millisecond_pts: give each frame's pts_s")
            video_frame.pts, video_frame.time_base = int(round(pts_s * 1000)), Fraction(1, 1000)
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

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

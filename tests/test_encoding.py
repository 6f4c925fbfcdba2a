"""The one video writer: encoder options that give the same bytes in every process and on every CPU."""

import hashlib

import numpy as np
import pytest

from resformer_video.datasets.encoding import VideoWriter, codec_options, cpu_flags, x264_options


def test_x264_uses_avx2_code_exactly_where_the_cpu_has_avx512():
    assert x264_options(18, 30, flags=frozenset({"avx2", "avx512f", "avx512bw"}))["x264-params"] == "asm=AVX2"
    assert "x264-params" not in x264_options(18, 30, flags=frozenset({"avx2", "fma"}))
    assert "x264-params" not in x264_options(18, 30, flags=frozenset())  # e.g. an Arm CPU
    fixed = x264_options(23, 250, scenecut=False, flags=frozenset())
    assert fixed["g"] == fixed["keyint_min"] == "250" and fixed["sc_threshold"] == "0"
    assert codec_options("libx264", 18, 30)["threads"] == "1"


def _encode(path, options):
    frames = np.random.default_rng(0).integers(0, 256, (24, 64, 96, 3), dtype=np.uint8)
    with VideoWriter(str(path), 15, 96, 64, options=options) as writer:
        for frame in frames:
            writer.write(frame)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_avx2_option_is_what_an_avx2_cpu_runs_anyway(tmp_path):
    """On an AVX2 CPU, x264's own choice and ``asm=AVX2`` write the same bytes: the option that
    AVX-512 CPUs get makes them write the files AVX2 CPUs write. A wrong value does change them
    (x264's plain C code rounds some float steps differently), so the option is not ignored."""
    flags = cpu_flags()
    if "avx2" not in flags or "avx512f" in flags:
        pytest.skip(
            f"needs an AVX2 CPU without AVX-512 (this one: avx2={'avx2' in flags}, "
            f"avx512f={'avx512f' in flags}); the AVX-512 side is covered by the multi-process "
            "byte test in test_synthetic.py"
        )
    auto = _encode(tmp_path / "auto.mp4", x264_options(18, 15, flags=frozenset({"avx2"})))
    forced = _encode(tmp_path / "forced.mp4", x264_options(18, 15, flags=frozenset({"avx2", "avx512f"})))
    plain_c = _encode(tmp_path / "c.mp4", dict(x264_options(18, 15, flags=frozenset()), **{"x264-params": "asm=0"}))
    assert auto == forced
    assert plain_c != auto


def test_writer_with_timestamps_needs_one_per_frame(tmp_path):
    with VideoWriter(str(tmp_path / "v.mp4"), 10, 32, 32, millisecond_pts=True) as writer:
        with pytest.raises(ValueError, match="pts_s"):
            writer.write(np.zeros((32, 32, 3), np.uint8))

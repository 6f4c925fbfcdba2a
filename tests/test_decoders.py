"""The three decoding backends: same frames for the same indices, metadata, errors."""

import importlib
import os

import av
import numpy as np
import pytest
import torch

from resformer_video.datasets import BACKENDS, DecoderUnavailableError, VideoDecodeError, open_video
from resformer_video.datasets.decoders import VideoNotFoundError, failure_kind, read_video
from resformer_video.datasets.synthetic import write_mp4

from conftest import (
    LOADABLE_BACKENDS,
    decode_frame_index,
    encode_levels_video,
    make_index_video,
    make_truncated_faststart_video,
)


@pytest.fixture(scope="module")
def index_video(tmp_path_factory):
    """100 frames at 25 fps (key frame every 25 frames), each showing its own index."""
    return make_index_video(tmp_path_factory.mktemp("decoders") / "index.mp4", 100, 25)


@pytest.fixture(scope="module")
def moving_video(synthetic_data_dir):
    return str(synthetic_data_dir / "videos" / "moving_right" / "moving_right_000.mp4")


# Each backend as a parameter, skipped with the reason where its package cannot be loaded here
# (torchcodec needs the system FFmpeg libraries, see INSTALL.md; `make install` installs them).
BACKEND_PARAMS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            name not in LOADABLE_BACKENDS, reason=f"{name} cannot be loaded here (torchcodec needs system FFmpeg)"
        ),
    )
    for name in BACKENDS
]


def _reference_frames(path):
    """Every frame in order from a plain PyAV decode loop (no seeking), uint8 (N, H, W, 3)."""
    with av.open(path) as container:
        return torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]))


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_backends_return_requested_frame_indices(backend, index_video):
    indices = [0, 1, 24, 25, 26, 99, 50, 50, 3, 74, 75]  # key-frame boundaries, repeats, backwards seeks
    with open_video(str(index_video), backend) as reader:
        assert reader.num_frames == 100
        assert reader.fps == pytest.approx(25.0, rel=1e-3)
        assert reader.duration == pytest.approx(4.0, rel=1e-3)
        frames = reader.get_frames(indices)
        assert frames.dtype == torch.uint8 and frames.shape == (len(indices), 64, 64, 3)
        assert decode_frame_index(frames) == indices
        # out-of-range indices are clamped to the video
        assert decode_frame_index(reader.get_frames([-5, 100, 500])) == [0, 99, 99]


def test_backends_agree_on_real_content(moving_video):
    """On textured moving content every backend matches a sequential PyAV decode of the same frame
    (within colour-conversion tolerance) and not its neighbour."""
    reference = _reference_frames(moving_video).float()
    indices = [2, 17, 9, len(reference) - 1]
    for backend in LOADABLE_BACKENDS:
        with open_video(moving_video, backend) as reader:
            assert reader.num_frames == len(reference)
            frames = reader.get_frames(indices).float()
        for k, idx in enumerate(indices):
            same = (frames[k] - reference[idx]).abs().mean().item()
            neighbour = (frames[k] - reference[idx - 1]).abs().mean().item()
            assert same < 3.0, (backend, idx, same)
            assert neighbour > 2 * same + 1.0, (backend, idx, same, neighbour)


# A phone-style variable-frame-rate video: 30 frames at 30 fps, then 30 frames at 10 fps.
VFR_TIMES = [i / 30 for i in range(30)] + [1.0 + i / 10 for i in range(30)]


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory):
    return make_index_video(tmp_path_factory.mktemp("vfr") / "vfr.mp4", len(VFR_TIMES), 30, timestamps=VFR_TIMES)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_variable_frame_rate_video_is_read_by_time(backend, vfr_video):
    """Grid index i is the frame on screen (i + 0.5) / fps seconds in, not the i-th frame: in the
    10 fps half every frame covers three 30-fps-like grid steps of the 15 fps average."""
    with open_video(str(vfr_video), backend) as reader:
        assert reader.num_frames == 60
        # The average rate is frames / the container's duration (3.80 s as this muxer writes it).
        assert reader.fps == pytest.approx(60 / 3.9, rel=0.05)
        shown = decode_frame_index(reader.get_frames(list(range(reader.num_frames))))
        times = (np.arange(reader.num_frames) + 0.5) / reader.fps
    expected = np.searchsorted(VFR_TIMES, times, side="right") - 1
    assert shown == expected.tolist()
    # Time, not frame count: grid index 30 is 1.9-2.0 s in, in the 10 fps half (a frame-count
    # reader would show frame 30, at 1.0 s), and the grid ends in the video's last 0.2 s.
    assert shown[30] == 39 and VFR_TIMES[shown[-1]] >= 3.7


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_stream_that_starts_late_is_read_from_its_first_frame(backend, tmp_path):
    """A trimmed clip whose first frame is at 1.5 s (constant 25 fps) reads frame i at index i."""
    path = make_index_video(tmp_path / "offset.mp4", 50, 25, timestamps=[1.5 + i / 25 for i in range(50)])
    with open_video(str(path), backend) as reader:
        assert reader.num_frames == 50 and reader.fps == pytest.approx(25.0, rel=1e-3)
        assert decode_frame_index(reader.get_frames(list(range(50)))) == list(range(50))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_phone_video_comes_out_upright(rotation, tmp_path):
    """A file tagged to be shown rotated (portrait phone video) gives upright frames, the same with
    every backend: the stored frame turned by the tag, not the stored frame."""
    rng = np.random.default_rng(0)
    grey = np.repeat(np.repeat(rng.integers(0, 256, (3, 8, 12, 1)), 8, axis=1), 8, axis=2)
    stored = np.repeat(grey, 3, axis=3).astype(np.uint8)  # (3, 64, 96, 3): grey blocks survive H.264
    path = str(tmp_path / f"rotated{rotation}.mp4")
    write_mp4(path, stored, 10, crf=0, rotation=rotation)
    upright = torch.from_numpy(np.rot90(stored[1], rotation // 90).copy()).float()
    for backend in LOADABLE_BACKENDS:
        with open_video(path, backend) as reader:
            frame = reader.get_frames([1])[0].float()
        assert frame.shape == upright.shape, (backend, tuple(frame.shape))
        assert (frame - upright).abs().mean() < 3.0, backend
        if rotation == 180:  # the same shape as stored: make sure it was turned
            assert (frame - torch.from_numpy(stored[1]).float()).abs().mean() > 40.0, backend


@pytest.mark.parametrize("name, codec", [("vp9.webm", "libvpx-vp9"), ("av1.mkv", "libsvtav1")])
def test_webm_and_mkv_downloads(name, codec, tmp_path):
    """VP9 WebM and AV1 Matroska (what video downloads often are; they store no frame count):
    every backend that has the codec reads the right frames; decord, whose FFmpeg has no AV1
    decoder, fails with an error that names the decoders that can."""
    path = str(encode_levels_video(tmp_path / name, codec))
    for backend in LOADABLE_BACKENDS:
        try:
            reader = open_video(path, backend)
        except VideoDecodeError as err:
            assert backend == "decord" and codec == "libsvtav1", err
            assert "DATA.DECODER pyav or torchcodec" in str(err)
            continue
        with reader:
            assert reader.num_frames == 20 and reader.fps == pytest.approx(10.0), backend
            shown = reader.get_frames([0, 10, 19, 5])[:, 16:48, 16:80].float().mean(dim=(1, 2, 3))
        expected = torch.tensor([0.0, 100.0, 190.0, 50.0])
        assert torch.allclose(shown, expected, atol=4.0), (backend, shown)
    # DATA.DECODER_FALLBACK: a file the first backend cannot read goes to the next.
    chain = [b for b in ("decord", "pyav") if b in LOADABLE_BACKENDS]
    expected_backend = "pyav" if codec == "libsvtav1" else chain[0]
    assert read_video(path, chain, lambda reader: reader.backend) == expected_backend


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_bad_files_raise_decode_error_naming_the_file(backend, tmp_path, index_video):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(index_video.read_bytes()[: os.path.getsize(index_video) // 3])
    for path in (tmp_path / "missing.mp4", empty, noise, truncated):
        with pytest.raises(VideoDecodeError, match=path.name):
            with open_video(str(path), backend) as reader:
                reader.get_frames([0, reader.num_frames - 1])


@pytest.mark.parametrize("backend,package", [("torchcodec", "torchcodec"), ("decord", "decord"), ("pyav", "av")])
def test_unavailable_backend_names_the_package(backend, package, monkeypatch, index_video):
    real_import = importlib.import_module

    def failing_import(name, *args):
        if name.split(".")[0] == package:
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", failing_import)
    with pytest.raises(DecoderUnavailableError, match=f"'{package}' package") as info:
        open_video(str(index_video), backend)
    assert f"DATA.DECODER={backend}" in str(info.value)
    if backend == "torchcodec":
        assert "FFmpeg" in str(info.value)


def test_unknown_backend_is_rejected(index_video):
    with pytest.raises(ValueError, match="DATA.DECODER"):
        open_video(str(index_video), "opencv")


@pytest.mark.parametrize("backend", [b for b in ("pyav", "decord", "torchcodec") if b in LOADABLE_BACKENDS])
def test_truncated_file_with_index_first_is_a_decode_error(backend, tmp_path):
    """An MP4 cut after its index (index first, as web and phone videos are written) claims all its
    frames; frames past the cut must fail, never repeat the last decoded frame. The frames before
    the cut still decode."""
    path = make_truncated_faststart_video(tmp_path / "cut.mp4", num_frames=30, fps=10, keep=0.5)
    reference = []
    with av.open(str(path)) as container:
        try:
            for frame in container.decode(video=0):
                reference.append(frame.to_ndarray(format="rgb24"))
        except av.error.InvalidDataError:  # the cut packet
            pass
    reference = torch.from_numpy(np.stack(reference))
    assert 5 < len(reference) < 25  # what really decodes
    with pytest.raises(VideoDecodeError, match="cut.mp4"):
        with open_video(str(path), backend) as reader:
            reader.get_frames([0, 29])
    if backend == "pyav":
        with open_video(str(path), backend) as reader:
            assert reader.num_frames == 30  # the index's claim
            got = reader.get_frames([0, 2])
        assert torch.equal(got, reference[[0, 2]])
        with pytest.raises(VideoDecodeError, match=r"truncated: frames decode only to \d"):
            with open_video(str(path), backend) as reader:
                reader.get_frames([len(reference) + 3])


def test_missing_file_is_reported_as_not_found_once(tmp_path):
    with pytest.raises(VideoNotFoundError) as info:
        read_video(str(tmp_path / "gone.mp4"), LOADABLE_BACKENDS[:2], lambda reader: None)
    assert str(info.value) == f"{tmp_path / 'gone.mp4'}: video file not found"
    assert failure_kind(str(tmp_path / "gone.mp4")) == "not found"
    (tmp_path / "there.mp4").write_bytes(b"x")
    assert failure_kind(str(tmp_path / "there.mp4")) == "failed to decode"

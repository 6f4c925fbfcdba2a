"""DATA.TRAIN_SAMPLING timesformer: TimeSformer's random start and PySlowFast's scale jitter, draw
for draw; the default stays as before."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import timesformer_reference as reference
import torch

from resformer_video.config import ConfigError
from resformer_video.datasets import VideoDataset
from resformer_video.datasets.sampling import (
    StreamTiming,
    clip_frame_count,
    sample_clip_indices,
    sample_repeated_clip_indices,
)
from resformer_video.datasets.transforms import (
    TrainTransform,
    build_train_transform,
    pyslowfast_crop_offset,
    pyslowfast_jitter_size,
)

from conftest import decode_frame_index, make_cfg, make_index_video

MEAN, STD = (0.45, 0.4, 0.35), (0.225, 0.25, 0.2)


@pytest.mark.parametrize(
    "length,rate,ticks,num_frames,sampling_rate",
    [
        (300, Fraction(30), 512, 8, 32),
        (250, Fraction(25), 512, 8, 32),
        (301, Fraction(30000, 1001), 1001, 16, 4),
        (100, Fraction(24), 512, 8, 32),
        (600, Fraction(60), 256, 4, 10),
    ],
)
def test_random_start_matches_timesformer(length, rate, ticks, num_frames, sampling_rate):
    """uniform(0, delta) from the same float64 draw, then the frames its PyAV decoder takes."""
    video = reference.FakeVideo(length, rate, ticks)
    timing = StreamTiming(float(rate), float(ticks), float(length * ticks))
    ours_gen, ref_gen = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)

    class SameDraws:
        def uniform(self, low, high):
            return low + (high - low) * float(torch.rand((), dtype=torch.float64, generator=ref_gen))

    for _ in range(50):
        ours = sample_clip_indices(
            length, float(rate), num_frames, sampling_rate, 30, -1, 1, ours_gen, protocol="timesformer", timing=timing
        )
        expected = reference.decode_clip_indices(video, video.pts, sampling_rate, num_frames, -1, 1, 30, SameDraws())
        np.testing.assert_array_equal(ours, expected)


def test_default_random_start_is_unchanged():
    """The default rule: a float32 uniform times delta, frame positions rounded."""
    gen, ref_gen = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    span = clip_frame_count(25.0, 8, 8, 30)
    for _ in range(20):
        start = float(torch.rand((), generator=ref_gen)) * (250 - span)
        expected = np.round(np.linspace(start, start + span - 1, 8)).astype(np.int64)
        np.testing.assert_array_equal(sample_clip_indices(250, 25.0, 8, 8, 30, -1, 1, gen), expected)


def test_jitter_size_is_pyslowfasts_rounded_uniform():
    """int(round(np.random.uniform(min, max))) for the same uniform draws; both ends come half as
    often (round half to even: 256.5 -> 256)."""
    draws, sizes = np.random.RandomState(0), np.random.RandomState(0)
    for _ in range(2000):
        expected = int(round(sizes.uniform(256, 320)))
        assert pyslowfast_jitter_size(draws.random_sample(), 256, 320) == expected
    ends = [pyslowfast_jitter_size(u, 256, 320) for u in (0.0, 0.5 / 64, 0.6 / 64, 0.999)]
    assert ends == [256, 256, 257, 320]


def test_crop_offset_never_takes_the_last_position():
    """randint(0, side - size): offsets 0 .. side - size - 1; a side no longer than the crop: 0."""
    torch.manual_seed(0)
    offsets = {pyslowfast_crop_offset(40, 32) for _ in range(400)}
    assert offsets == set(range(8))
    assert pyslowfast_crop_offset(32, 32) == 0 and pyslowfast_crop_offset(30, 32) == 0


@pytest.mark.parametrize(
    "shape,scales", [((3, 45, 77, 3), (32, 40)), ((2, 90, 50, 3), (36, 44)), ((2, 36, 64, 3), (36, 36))]
)
def test_train_view_matches_pyslowfast(shape, scales):
    """Normalise, jitter, bilinear resize without antialiasing, random crop, flip: the same tensor as
    PySlowFast's functions given the same draws, over seeds that flip and do not."""
    frames = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    transform = TrainTransform(32, "jitter", scales, flip=True, mean=MEAN, std=STD, sampling="timesformer")
    for seed in range(8):
        torch.manual_seed(seed)
        ours = transform(frames)
        torch.manual_seed(seed)
        expected = reference.train_view(frames, *scales, 32, True, MEAN, STD, reference.TorchDraws())
        assert ours.shape == (3, shape[0], 32, 32)
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


def test_default_train_view_differs():
    """The default resizes with antialiasing: on a downscale it is not PySlowFast's view."""
    frames = torch.randint(0, 256, (2, 90, 120, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    default = TrainTransform(32, "jitter", (40, 40), flip=False, mean=MEAN, std=STD)
    timesformer = TrainTransform(32, "jitter", (40, 40), flip=False, mean=MEAN, std=STD, sampling="timesformer")
    torch.manual_seed(0)
    expected = reference.train_view(frames, 40, 40, 32, False, MEAN, STD, reference.TorchDraws())
    torch.manual_seed(0)
    torch.testing.assert_close(timesformer(frames), expected, rtol=0, atol=1e-6)
    torch.manual_seed(0)
    assert not torch.allclose(default(frames), expected, atol=1e-3)


def test_repeated_samples_place_frames_as_timesformer():
    """With DATA.NUM_REPEATED_SAMPLES each clip's frames are the first one at or after its start
    plus floor(linspace(0, span - 1)) (TimeSformer's shape), unless clamped at the end."""
    span = clip_frame_count(30.0, 8, 8, 30)
    offsets = torch.linspace(0, span - 1, 8).long().numpy()
    rows = sample_repeated_clip_indices(
        3000, 30.0, 8, 8, 30, 6, torch.Generator().manual_seed(0), protocol="timesformer"
    )
    for row in rows:
        np.testing.assert_array_equal(row - row[0], offsets)
    assert len({row[0] for row in rows}) > 1


def test_config_key_and_its_checks():
    assert make_cfg().DATA.TRAIN_SAMPLING == "default"
    transform = build_train_transform(make_cfg(DATA__TRAIN_SAMPLING="timesformer", DATA__TRAIN_JITTER_SCALES=[64, 80]))
    assert [t.sampling for t in transform.transforms] == ["timesformer", "timesformer"]
    with pytest.raises(ConfigError, match="^DATA.TRAIN_SAMPLING: must be one of"):
        make_cfg(DATA__TRAIN_SAMPLING="pyslowfast")
    with pytest.raises(ConfigError, match="^DATA.TRAIN_CROP_MODE: must be jitter"):
        make_cfg(DATA__TRAIN_SAMPLING="timesformer", DATA__TRAIN_CROP_MODE="random_resized_crop")
    with pytest.raises(ConfigError, match="^AUG.RAND_AUGMENT"):
        make_cfg(DATA__TRAIN_SAMPLING="timesformer", AUG__RAND_AUGMENT=True, DATA__TRAIN_JITTER_SCALES=[64, 80])
    with pytest.raises(ConfigError, match="^DATA.TRAIN_JITTER_SCALES: the minimum 48 must be >="):
        make_cfg(DATA__TRAIN_SAMPLING="timesformer", DATA__TRAIN_JITTER_SCALES=[48, 80])


def test_dataset_train_clip_follows_timesformer(tmp_path):
    """A real file through the training dataset: the decoded frames are those TimeSformer's PyAV
    path decodes for the same uniform draw."""
    av = pytest.importorskip("av")
    make_index_video(tmp_path / "a.mp4", 100, 25)
    (tmp_path / "train.csv").write_text("a.mp4 0\n")
    cfg = make_cfg(
        tmp_path,
        MODEL__NUM_CLASSES=2,
        DATA__NUM_FRAMES=4,
        DATA__SAMPLING_RATE=10,
        DATA__DECODER="pyav",
        DATA__DECODER_FALLBACK="",
        DATA__TRAIN_SAMPLING="timesformer",
        DATA__TRAIN_JITTER_SCALES=[64, 80],
    )
    dataset = VideoDataset(cfg, "train")
    path = dataset.paths[0]
    all_pts = reference.real_video_pts(path)
    for seed in range(6):
        torch.manual_seed(seed)
        frames = dataset._decode(path, -1, 1)
        torch.manual_seed(seed)
        with av.open(path) as container:
            expected = reference.decode_clip_indices(container, all_pts, 10, 4, -1, 1, 30, reference.TorchDraws())
        assert decode_frame_index(frames) == expected

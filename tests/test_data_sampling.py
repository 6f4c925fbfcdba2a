"""Temporal sampling by time (TimeSformer's rule) and its use by the dataset."""

import numpy as np
import pytest
import torch

from resformer_video.datasets import VideoDataset, sample_clip_indices

from conftest import decode_frame_index, make_cfg, make_index_video


def _timesformer_indices(video_frames, fps, num_frames, rate, target_fps, start):
    """Independent reference: TimeSformer's get_start_end_idx + temporal_sampling for a given start."""
    clip_size = rate * num_frames / target_fps * fps
    end = start + clip_size - 1
    return np.clip(np.round(np.linspace(start, end, num_frames)), 0, video_frames - 1).astype(int)


def test_long_video_centre_clip_matches_reference():
    idx = sample_clip_indices(300, 30.0, 8, 4, 30, clip_idx=0, num_clips=1)
    start = (300 - 32) / 2  # centre of the possible starts
    np.testing.assert_array_equal(idx, _timesformer_indices(300, 30.0, 8, 4, 30, start))
    assert idx[0] == 134 and idx[-1] == 165


def test_evenly_spaced_test_clips_cover_the_video():
    starts = [sample_clip_indices(300, 30.0, 8, 4, 30, clip_idx=i, num_clips=4)[0] for i in range(4)]
    np.testing.assert_allclose(starts, [(300 - 32) * (i + 0.5) / 4 for i in range(4)], atol=0.5)


def test_frame_rates_are_handled_by_time():
    """A 12 fps and a 30 fps 10 s video give the same clip times (within one 12 fps frame)."""
    times = {}
    for fps in (12.0, 30.0):
        idx = sample_clip_indices(int(10 * fps), fps, 8, 8, 30, clip_idx=0, num_clips=1)
        times[fps] = idx / fps
    np.testing.assert_allclose(times[12.0], times[30.0], atol=1 / 12)
    span = times[30.0][-1] - times[30.0][0]
    assert span == pytest.approx((8 * 8 - 1) / 30, abs=1 / 30)  # 64 frames of 30 fps video


def test_short_video_is_clamped_not_skipped():
    idx = sample_clip_indices(10, 30.0, 8, 8, 30, clip_idx=-1)
    assert idx[0] == 0 and idx[-1] == 9
    assert np.all(np.diff(idx) >= 0) and idx.max() == 9
    assert (idx == 9).sum() >= 5  # most of the 64-frame span lies past the end


def test_random_training_starts_span_the_allowed_range():
    gen = torch.Generator().manual_seed(0)
    starts = np.array([sample_clip_indices(100, 30.0, 4, 5, 30, -1, generator=gen)[0] for _ in range(300)])
    assert starts.min() <= 3 and starts.max() >= 77 and starts.max() <= 80  # delta = 100 - 20


def test_dataset_decodes_the_sampled_frames(tmp_path):
    """End to end: a 12 fps and a 30 fps index-coded video; the test views decode exactly the frames
    that the sampling rule names, with TEST.NUM_ENSEMBLE_VIEWS clips per video."""
    make_index_video(tmp_path / "slow.mp4", 60, 12)
    make_index_video(tmp_path / "fast.mp4", 150, 30)
    (tmp_path / "test.csv").write_text("slow.mp4 0\nfast.mp4 1\n")
    cfg = make_cfg(
        tmp_path,
        MODEL__NUM_CLASSES=2,
        DATA__NUM_FRAMES=4,
        DATA__SAMPLING_RATE=10,
        TEST__NUM_ENSEMBLE_VIEWS=2,
        TEST__NUM_SPATIAL_CROPS=1,
    )
    dataset = VideoDataset(cfg, "test")
    for video_idx, (frames_total, fps) in enumerate([(60, 12.0), (150, 30.0)]):
        for clip_idx in range(2):
            expected = sample_clip_indices(frames_total, fps, 4, 10, 30, clip_idx, 2)
            frames = dataset._decode(dataset.paths[video_idx], clip_idx, 2)
            assert decode_frame_index(frames) == expected.tolist()

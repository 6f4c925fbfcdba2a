"""TEST.PROTOCOL timesformer: TimeSformer's clip placement, resize and view combination."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as nnf

from conftest import decode_frame_index, make_cfg, make_index_video
from resformer_video.datasets import VideoDataset, build_test_transform, sample_clip_indices
from resformer_video.datasets.transforms import TimeSformerTestTransform
from resformer_video.utils.meters import ViewPredictions


def timesformer_indices(video_frames, fps, num_frames, rate, target_fps, clip_idx, num_clips):
    """Independent reference, TimeSformer's decoder.py: get_start_end_idx (start-aligned
    ``delta * clip_idx / num_clips``) then temporal_sampling (torch.linspace, clamp, .long())."""
    clip_size = rate * num_frames / target_fps * fps
    delta = max(video_frames - clip_size, 0)
    start = delta * clip_idx / num_clips
    index = torch.linspace(start, start + clip_size - 1, num_frames)
    return torch.clamp(index, 0, video_frames - 1).long().numpy()


@pytest.mark.parametrize("video_frames,fps,num_frames,rate,num_clips", [
    (300, 30.0, 8, 32, 10), (250, 25.0, 8, 8, 3), (301, 29.97, 16, 4, 5), (40, 12.0, 8, 8, 2),
    (1000, 60.0, 4, 5, 7)])
def test_clip_indices_follow_timesformer(video_frames, fps, num_frames, rate, num_clips):
    for clip_idx in range(num_clips):
        ours = sample_clip_indices(video_frames, fps, num_frames, rate, 30, clip_idx, num_clips,
                                   protocol="timesformer")
        expected = timesformer_indices(video_frames, fps, num_frames, rate, 30, clip_idx, num_clips)
        np.testing.assert_array_equal(ours, expected)


def test_default_protocol_keeps_centred_clips():
    """The default differs from TimeSformer's: clip 0 of 1 is the centre clip, not the first."""
    default = sample_clip_indices(300, 30.0, 8, 4, 30, 0, 1)
    timesformer = sample_clip_indices(300, 30.0, 8, 4, 30, 0, 1, protocol="timesformer")
    assert default[0] == 134 and timesformer[0] == 0
    with pytest.raises(ValueError, match="protocol"):
        sample_clip_indices(300, 30.0, 8, 4, 30, 0, 1, protocol="mmaction")


def test_dataset_decodes_timesformer_clips(tmp_path):
    make_index_video(tmp_path / "a.mp4", 90, 15)
    (tmp_path / "test.csv").write_text("a.mp4 0\n")
    cfg = make_cfg(tmp_path, MODEL__NUM_CLASSES=2, DATA__NUM_FRAMES=4, DATA__SAMPLING_RATE=10,
                   TEST__NUM_ENSEMBLE_VIEWS=3, TEST__NUM_SPATIAL_CROPS=1, TEST__PROTOCOL="timesformer")
    dataset = VideoDataset(cfg, "test")
    for clip_idx in range(3):
        frames = dataset._decode(dataset.paths[0], clip_idx, 3)
        assert decode_frame_index(frames) == timesformer_indices(90, 15.0, 4, 10, 30, clip_idx, 3).tolist()


def _reference_view(frames, scale, size, spatial_idx, mean, std):
    """TimeSformer's tensor_normalize, random_short_side_scale_jitter(scale, scale), uniform_crop."""
    clip = (frames.float() / 255.0 - torch.tensor(mean)) / torch.tensor(std)
    clip = clip.permute(0, 3, 1, 2)  # T C H W
    height, width = clip.shape[-2:]
    if width < height:
        new = (int(math.floor(height / width * scale)), scale)
    else:
        new = (scale, int(math.floor(width / height * scale)))
    clip = nnf.interpolate(clip, size=new, mode="bilinear", align_corners=False)
    height, width = new
    y, x = int(math.ceil((height - size) / 2)), int(math.ceil((width - size) / 2))
    if height > width:
        y = {0: 0, 1: y, 2: height - size}[spatial_idx]
    else:
        x = {0: 0, 1: x, 2: width - size}[spatial_idx]
    return clip[:, :, y:y + size, x:x + size].permute(1, 0, 2, 3)


@pytest.mark.parametrize("shape", [(2, 45, 77, 3), (2, 90, 50, 3)])
def test_timesformer_view_matches_its_resize_and_crops(shape):
    torch.manual_seed(0)
    frames = torch.randint(0, 256, shape, dtype=torch.uint8)
    mean, std = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
    transform = TimeSformerTestTransform(32, 32, mean, std)
    for spatial_idx in (0, 1, 2):
        torch.testing.assert_close(transform(frames, spatial_idx),
                                   _reference_view(frames, 32, 32, spatial_idx, mean, std))


def test_one_crop_resizes_to_the_first_jitter_scale():
    """As TimeSformer's Kinetics test with one crop: short side TRAIN_JITTER_SCALES[0], centre crop."""
    cfg = make_cfg(TEST__PROTOCOL="timesformer", DATA__TRAIN_JITTER_SCALES=[72, 80],
                   DATA__TRAIN_CROP_SIZES=[64], TEST__NUM_SPATIAL_CROPS=1)
    transform = build_test_transform(cfg)
    assert isinstance(transform, TimeSformerTestTransform) and (transform.scale, transform.size) == (72, 64)
    cfg = make_cfg(TEST__PROTOCOL="timesformer", TEST__NUM_SPATIAL_CROPS=3)
    assert build_test_transform(cfg, 48).scale == 48
    assert type(build_test_transform(make_cfg())).__name__ == "TestTransform"


def test_views_combine_by_summed_logits():
    """One confident view against two mild ones: summed logits pick class 0, averaged softmax class 1."""
    logits = torch.tensor([[10.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    batch = {"label": torch.zeros(3, dtype=torch.long), "video_idx": torch.zeros(3, dtype=torch.long),
             "view_idx": torch.arange(3), "valid": torch.ones(3, dtype=torch.bool)}
    summed, averaged = ViewPredictions("sum"), ViewPredictions("mean")
    summed.add_batch(logits, batch)
    averaged.add_batch(logits.softmax(-1), batch)
    torch.testing.assert_close(summed.video_scores()[1], torch.tensor([[10.0, 4.0]]))
    assert summed.video_metrics(ks=(1,))["top1"] == 100.0
    assert averaged.video_metrics(ks=(1,))["top1"] == 0.0

"""TEST.PROTOCOL timesformer: TimeSformer's clip placement, resize and view combination."""

from __future__ import annotations

import importlib.util
import math
from fractions import Fraction

import numpy as np
import pytest
import timesformer_reference as reference
import torch
from torch.nn import functional as nnf

from resformer_video.datasets import VideoDataset, build_test_transform, sample_clip_indices
from resformer_video.datasets.decoders import open_video
from resformer_video.datasets.sampling import StreamTiming, mp4_stream_timing
from resformer_video.datasets.transforms import TimeSformerTestTransform
from resformer_video.utils.meters import ViewPredictions

from conftest import decode_frame_index, make_cfg, make_index_video

# (fps as PyAV reports it, ticks per frame of FFmpeg's mp4 time base at that rate)
MP4_RATES = {
    24: (Fraction(24), 512),
    25: (Fraction(25), 512),
    29.97: (Fraction(30000, 1001), 1001),
    30: (Fraction(30), 512),
    60: (Fraction(60), 256),
}
CLIPS = [(8, 32), (16, 4), (4, 10)]  # (frames, sampling rate) at 30 fps
VIEWS = (1, 3, 10)


def _video_lengths(span: float, fps: float):
    """Shorter than the clip span, just longer, a Kinetics-like 10 s and an odd long one."""
    return sorted({max(int(span // 2), 1), int(span) + 1, int(round(10 * fps)), 997})


# The header's duration in ticks: every frame whole (FFmpeg), a few ticks short (PyAV's writer),
# without the last frame (some muxers).
HEADER_DURATIONS = {
    "whole": lambda length, ticks: None,
    "short": lambda length, ticks: length * ticks - 5,
    "no_last": lambda length, ticks: (length - 1) * ticks,
}


@pytest.mark.parametrize("fps", sorted(MP4_RATES))
@pytest.mark.parametrize("header", sorted(HEADER_DURATIONS))
def test_clip_indices_follow_timesformer(fps, header):
    """Every clip index of 1, 3 and 10 views equals TimeSformer's PyAV path, for several clip
    shapes, video lengths and header durations."""
    rate, ticks = MP4_RATES[fps]
    short_header = header != "whole"
    for num_frames, sampling_rate in CLIPS:
        span = sampling_rate * num_frames / 30 * float(rate)
        for length in _video_lengths(span, float(rate)):
            video = reference.FakeVideo(length, rate, ticks, HEADER_DURATIONS[header](length, ticks))
            timing = StreamTiming(float(rate), float(ticks), float(video.streams.video[0].duration))
            for num_clips in VIEWS:
                for clip_idx in range(num_clips):
                    expected = reference.decode_clip_indices(
                        video, video.pts, sampling_rate, num_frames, clip_idx, num_clips, 30
                    )
                    ours = sample_clip_indices(
                        length,
                        float(rate),
                        num_frames,
                        sampling_rate,
                        30,
                        clip_idx,
                        num_clips,
                        protocol="timesformer",
                        timing=timing,
                    )
                    np.testing.assert_array_equal(
                        ours,
                        expected,
                        err_msg=f"{length} frames, clip {clip_idx} of {num_clips}, {num_frames}x{sampling_rate}",
                    )
                    if not short_header:  # without a header, an mp4 as FFmpeg writes it is assumed
                        np.testing.assert_array_equal(
                            sample_clip_indices(
                                length,
                                float(rate),
                                num_frames,
                                sampling_rate,
                                30,
                                clip_idx,
                                num_clips,
                                protocol="timesformer",
                            ),
                            expected,
                        )


def test_timesformer_starts_at_the_first_frame_at_or_after_the_start():
    """300 frames at 30 fps, 8x32, clip 1 of 10: the start is frame 4.4 (delta 44 / 10); PyAV
    seeks to its timestamp, so the clip starts at frame 5 (not 4, the truncated formula) and takes
    floor(linspace(0, 255, 8)) of the frames decoded from there."""
    ours = sample_clip_indices(300, 30.0, 8, 32, 30, 1, 10, protocol="timesformer")
    assert ours.tolist() == [5, 41, 77, 114, 150, 187, 223, 260]
    assert torch.linspace(4.4, 259.4, 8).long().tolist()[0] == 4


def test_stream_without_duration_is_sampled_whole():
    """No duration in the header: TimeSformer decodes the whole video and truncates
    linspace(start, start + span - 1)."""
    video = reference.FakeVideo(250, Fraction(25), 512)
    video.streams.video[0].duration = None
    timing = StreamTiming(25.0, 512.0, None)
    for clip_idx in range(3):
        expected = reference.decode_clip_indices(video, video.pts, 8, 8, clip_idx, 3, 30)
        ours = sample_clip_indices(250, 25.0, 8, 8, 30, clip_idx, 3, protocol="timesformer", timing=timing)
        np.testing.assert_array_equal(ours, expected)


def test_mp4_timing_is_ffmpegs():
    assert mp4_stream_timing(30.0, 300) == StreamTiming(30.0, 512.0, 153600.0)
    assert mp4_stream_timing(30000 / 1001, 10).frame_ticks == 1001.0
    assert mp4_stream_timing(24.0, 10).frame_ticks == 512.0
    assert mp4_stream_timing(60.0, 10).frame_ticks == 256.0


def test_default_protocol_keeps_centred_clips():
    """The default differs from TimeSformer's: clip 0 of 1 is the centre clip, not the first."""
    default = sample_clip_indices(300, 30.0, 8, 4, 30, 0, 1)
    timesformer = sample_clip_indices(300, 30.0, 8, 4, 30, 0, 1, protocol="timesformer")
    assert default[0] == 134 and timesformer[0] == 0
    with pytest.raises(ValueError, match="protocol"):
        sample_clip_indices(300, 30.0, 8, 4, 30, 0, 1, protocol="mmaction")


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
def test_dataset_decodes_timesformer_clips(tmp_path, decoder):
    """Real files: the test views decode the frames TimeSformer's PyAV path decodes from the same
    file, for frame rates 25, 29.97 and 60, videos longer and shorter than the clip."""
    av = pytest.importorskip("av")
    if decoder == "decord":
        pytest.importorskip("decord")
    videos = {"a.mp4": (90, 25.0), "b.mp4": (120, 30000 / 1001), "c.mp4": (200, 60.0), "d.mp4": (30, 25.0)}
    for name, (length, fps) in videos.items():
        make_index_video(tmp_path / name, length, fps)
    (tmp_path / "test.csv").write_text("".join(f"{name} 0\n" for name in videos))
    cfg = make_cfg(
        tmp_path,
        MODEL__NUM_CLASSES=2,
        DATA__NUM_FRAMES=4,
        DATA__SAMPLING_RATE=10,
        DATA__DECODER=decoder,
        DATA__DECODER_FALLBACK="",
        TEST__NUM_ENSEMBLE_VIEWS=3,
        TEST__NUM_SPATIAL_CROPS=1,
        TEST__PROTOCOL="timesformer",
    )
    dataset = VideoDataset(cfg, "test")
    for video_idx, path in enumerate(dataset.paths):
        all_pts = reference.real_video_pts(path)
        for clip_idx in range(3):
            with av.open(path) as container:
                expected = reference.decode_clip_indices(container, all_pts, 10, 4, clip_idx, 3, 30)
            frames = dataset._decode(path, clip_idx, 3)
            assert decode_frame_index(frames) == expected, (path, clip_idx)


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
    return clip[:, :, y : y + size, x : x + size].permute(1, 0, 2, 3)


@pytest.mark.parametrize("shape", [(2, 45, 77, 3), (2, 90, 50, 3)])
def test_timesformer_view_matches_its_resize_and_crops(shape):
    torch.manual_seed(0)
    frames = torch.randint(0, 256, shape, dtype=torch.uint8)
    mean, std = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
    transform = TimeSformerTestTransform(32, 32, mean, std)
    for spatial_idx in (0, 1, 2):
        torch.testing.assert_close(
            transform(frames, spatial_idx), _reference_view(frames, 32, 32, spatial_idx, mean, std)
        )


def test_one_crop_resizes_to_the_first_jitter_scale():
    """As TimeSformer's Kinetics test with one crop: short side TRAIN_JITTER_SCALES[0], centre crop."""
    cfg = make_cfg(
        TEST__PROTOCOL="timesformer",
        DATA__TRAIN_JITTER_SCALES=[72, 80],
        DATA__TRAIN_CROP_SIZES=[64],
        TEST__NUM_SPATIAL_CROPS=1,
    )
    transform = build_test_transform(cfg)
    assert isinstance(transform, TimeSformerTestTransform) and (transform.scale, transform.size) == (72, 64)
    cfg = make_cfg(TEST__PROTOCOL="timesformer", TEST__NUM_SPATIAL_CROPS=3)
    assert build_test_transform(cfg, 48).scale == 48
    assert type(build_test_transform(make_cfg())).__name__ == "TestTransform"


def test_views_combine_by_summed_logits():
    """One confident view against two mild ones: summed logits pick class 0, averaged softmax class 1."""
    logits = torch.tensor([[10.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    batch = {
        "label": torch.zeros(3, dtype=torch.long),
        "video_idx": torch.zeros(3, dtype=torch.long),
        "view_idx": torch.arange(3),
        "valid": torch.ones(3, dtype=torch.bool),
    }
    summed, averaged = ViewPredictions("sum"), ViewPredictions("mean")
    summed.add_batch(logits, batch)
    averaged.add_batch(logits.softmax(-1), batch)
    torch.testing.assert_close(summed.video_scores()[1], torch.tensor([[10.0, 4.0]]))
    assert summed.video_metrics(ks=(1,))["top1"] == 100.0
    assert averaged.video_metrics(ks=(1,))["top1"] == 0.0


@pytest.mark.slow
def test_real_clips_follow_timesformer(realclips_dir):
    """Real files (25, 26.8, 29.97 fps and an Apple mp4 whose header rate, 11.94 fps, is not its
    timestamps' 12 fps), 8 x 32 clips of 1 and 3 views: the indices from the PyAV and decord
    readers' frame counts, rates and timing equal TimeSformer's PyAV path run on the file itself."""
    av = pytest.importorskip("av")
    decoders = ["pyav"] + (["decord"] if importlib.util.find_spec("decord") else [])
    for path in sorted(str(p) for p in realclips_dir.glob("*.mp4")):
        all_pts = reference.real_video_pts(path)
        for num_clips in (1, 3):
            for clip_idx in range(num_clips):
                with av.open(path) as container:
                    expected = reference.decode_clip_indices(container, all_pts, 32, 8, clip_idx, num_clips, 30)
                for decoder in decoders:
                    with open_video(path, decoder) as reader:
                        ours = sample_clip_indices(
                            reader.num_frames,
                            reader.fps,
                            8,
                            32,
                            30,
                            clip_idx,
                            num_clips,
                            protocol="timesformer",
                            timing=reader.stream_timing,
                        )
                    assert ours.tolist() == expected, (path, decoder, clip_idx, num_clips)

"""Training (single and multi-resolution), RandAugment and test-view transforms."""

import numpy as np
import pytest
import torch

from resformer_video.datasets import TestTransform, TrainTransform, build_train_transform
from resformer_video.datasets.transforms import ClipRandAugment, MultiResolutionTransform, spatial_crop_box

from conftest import make_cfg

MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)


def _ramp_clip(frames=4, height=120, width=160):
    """uint8 (T, H, W, 3): red = x ramp, green = y ramp, blue = 128; read positions back from it."""
    xs = torch.linspace(0, 255, width).view(1, 1, width).expand(frames, height, width)
    ys = torch.linspace(0, 255, height).view(1, height, 1).expand(frames, height, width)
    blue = torch.full_like(xs, 128)
    return torch.stack([xs, ys, blue], dim=-1).round().to(torch.uint8)


def _unnormalise(clip):
    """float (3, T, H, W) -> pixel values (3, T, H, W) in [0, 255]."""
    return (clip * STD[0] + MEAN[0]) * 255


def test_normalisation_and_layout():
    frames = torch.full((3, 40, 50, 3), 200, dtype=torch.uint8)
    frames[..., 1] = 100
    out = TestTransform(32, MEAN, STD)(frames)
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out[0], torch.full((3, 32, 32), (200 / 255 - 0.45) / 0.225))
    torch.testing.assert_close(out[1], torch.full((3, 32, 32), (100 / 255 - 0.45) / 0.225))


def test_jitter_scales_follow_the_crop_size():
    cfg = make_cfg(
        None, DATA__TRAIN_CROP_SIZES=[224, 160, 128], DATA__TRAIN_JITTER_SCALES=[256, 320], DATA__TEST_CROP_SIZE=224
    )
    transform = build_train_transform(cfg)
    assert transform.sizes == [224, 160, 128]
    assert [t.jitter_scales for t in transform.transforms] == [(256, 320), (183, 229), (146, 183)]


def test_multi_resolution_copies_have_sizes_and_independent_crops_and_flips():
    torch.manual_seed(0)
    views = [TrainTransform(s, "jitter", (s + 8, 2 * s), flip=True, mean=MEAN, std=STD) for s in (64, 32)]
    transform = MultiResolutionTransform(views)
    clip = _ramp_clip()
    flips, lefts = [], []
    for _ in range(30):
        outs = transform(clip)
        assert [tuple(o.shape) for o in outs] == [(3, 4, 64, 64), (3, 4, 32, 32)]
        red = [_unnormalise(o)[0] for o in outs]  # x ramp
        flips.append([bool(r[0, 0, 0] > r[0, 0, -1]) for r in red])
        lefts.append([float(torch.minimum(r[0, 0, 0], r[0, 0, -1])) for r in red])
        for r in red:  # same crop and flip on every frame of a clip
            torch.testing.assert_close(r[0], r[-1])
    flips, lefts = np.array(flips), np.array(lefts)
    assert 0.2 < flips.mean() < 0.8
    assert (flips[:, 0] != flips[:, 1]).any() and (flips[:, 0] == flips[:, 1]).any()
    assert abs(np.corrcoef(lefts[:, 0], lefts[:, 1])[0, 1]) < 0.6


def test_single_size_random_resized_crop_mode():
    torch.manual_seed(0)
    transform = TrainTransform(48, "random_resized_crop", rrc_area=(0.1, 0.3), flip=False, mean=MEAN, std=STD)
    out = _unnormalise(transform(_ramp_clip()))
    assert out.shape == (3, 4, 48, 48)
    # a crop of at most 30% of the area spans well under the full x ramp
    assert float(out[0, 0, 0, -1] - out[0, 0, 0, 0]) < 0.8 * 255


def test_rand_augment_is_the_same_on_every_frame():
    torch.manual_seed(0)
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 48, 48, 3), dtype=np.uint8))
    clip = frames.expand(4, -1, -1, -1).contiguous()
    plain = TrainTransform(32, "jitter", (40, 40), flip=False, mean=MEAN, std=STD)
    augmented = TrainTransform(
        32, "jitter", (40, 40), flip=False, rand_augment=ClipRandAugment(2, 9, 0.5), mean=MEAN, std=STD
    )
    changed = 0
    for _ in range(10):
        state = torch.get_rng_state()
        out = augmented(clip)
        torch.set_rng_state(state)
        reference = plain(clip)
        for t in range(1, 4):
            torch.testing.assert_close(out[:, t], out[:, 0])
        changed += int(not torch.allclose(out, reference))
    assert changed >= 7  # RandAugment (m=9) alters almost every clip


def test_rand_augment_magnitude_noise():
    torch.manual_seed(0)
    ra = ClipRandAugment(2, 9.0, 0.5)
    mags = np.array([ra.sample_magnitude() for _ in range(2000)])
    assert mags.max() <= 10.0 and mags.min() >= 0.0
    assert mags.mean() == pytest.approx(9.0, abs=0.05) and 0.4 < mags.std() < 0.55


@pytest.mark.parametrize("height,width", [(120, 160), (160, 120)])
def test_three_test_crops_run_along_the_long_side(height, width):
    clip = _ramp_clip(2, height, width)
    transform = TestTransform(64, MEAN, STD)
    long_channel = 0 if width > height else 1  # red ramps along x, green along y
    starts = []
    for spatial in (0, 1, 2):
        out = _unnormalise(transform(clip, spatial))
        assert out.shape == (3, 2, 64, 64)
        line = out[long_channel, 0, 0] if width > height else out[long_channel, 0, :, 0]
        starts.append(float(line[0]))
    assert starts[0] < 5 and starts[0] < starts[1] < starts[2]
    assert starts[2] == pytest.approx(255 * (1 - 64 / (64 * max(height, width) / min(height, width))), abs=6)
    assert spatial_crop_box(64, 85, 64, 1) == (0, 10)


@pytest.mark.parametrize("size", [64, 1024])
def test_test_sizes_from_64_to_1024(size):
    out = TestTransform(size, MEAN, STD)(_ramp_clip(1, 60, 80))
    assert out.shape == (3, 1, size, size)

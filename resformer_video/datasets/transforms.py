"""Clip transforms on tensors (torchvision.transforms.v2), as in TimeSformer plus ResFormer's recipe.

Decoded frames come in as uint8 ``(T, H, W, 3)`` and leave as normalised float ``(C, T, H, W)``.
Every random choice (scale, crop box, flip, RandAugment ops and magnitude) is drawn once per clip
and applied to all its frames (frames are wrapped as a ``tv_tensors.Video``).

Training (:class:`TrainTransform`): short-side scale jitter then a random ``size`` crop (``jitter``,
TimeSformer) or a random-resized crop (``random_resized_crop``), horizontal flip, optional
RandAugment, normalisation. ``DATA.TRAIN_SAMPLING timesformer`` makes the jitter PySlowFast's
(``spatial_sampling`` as TimeSformer calls it): normalise first, short side
``int(round(uniform(min, max)))``, bilinear resize without antialiasing (long side floored), a
crop offset ``randint(0, side - size)`` per side (the last position is never drawn), flip.
:class:`MultiResolutionTransform` applies one independent :class:`TrainTransform` per crop size to
copies of one decoded clip (ResFormer's separate augmentation). ``DATA.TRAIN_JITTER_SCALES`` refer
to the largest crop size; a smaller size ``s`` jitters in ``s / sizes[0] * scales`` so every copy
sees the same field of view on average.

Testing (:class:`TestTransform`): resize the short side to ``size``, take spatial crop 0, 1 or 2
(start, centre, end of the long side; centre when there is one crop), normalise.
:class:`TimeSformerTestTransform` (``TEST.PROTOCOL timesformer``) is TimeSformer's test view:
normalise, then a bilinear resize without antialiasing (``align_corners=False``, long side floored;
short side to the crop size with 3 crops, to ``DATA.TRAIN_JITTER_SCALES[0]`` with one), then the
crop with the centre offset rounded up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as nnf
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

RA_MAX_MAGNITUDE = 10.0
RA_BINS_PER_UNIT = 10  # magnitude resolution 0.1 (torchvision takes an integer bin)


def frames_to_video(frames: torch.Tensor) -> tv_tensors.Video:
    """uint8 ``(T, H, W, 3)`` -> ``tv_tensors.Video`` uint8 ``(T, 3, H, W)``."""
    return tv_tensors.Video(frames.permute(0, 3, 1, 2).contiguous())


def normalize_clip(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``(T, 3, H, W)`` -> float ``(3, T, H, W)``: scale to [0, 1], subtract mean, divide by std."""
    clip = video.as_subclass(torch.Tensor).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=clip.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=clip.dtype).view(1, 3, 1, 1)
    return clip.sub_(mean_t).div_(std_t).permute(1, 0, 2, 3).contiguous()


def resize_short_side(video: tv_tensors.Video, size: int) -> tv_tensors.Video:
    """Resize so that the shorter side is ``size`` pixels, keeping the aspect ratio (antialiased)."""
    return F.resize(video, [size], antialias=True)


def resize_short_side_bilinear(video: torch.Tensor, size: int) -> torch.Tensor:
    """Float ``(T, C, H, W)`` with the short side resized to ``size`` as PySlowFast's (and
    TimeSformer's) ``random_short_side_scale_jitter`` does: bilinear, ``align_corners=False``, no
    antialiasing, long side floored; returned unchanged when the short side is already ``size``."""
    height, width = video.shape[-2:]
    if min(height, width) == size:
        return video
    if width < height:
        new_size = (math.floor(height / width * size), size)
    else:
        new_size = (size, math.floor(width / height * size))
    return nnf.interpolate(video, size=new_size, mode="bilinear", align_corners=False)


def pyslowfast_jitter_size(uniform: float, low: int, high: int) -> int:
    """PySlowFast's jittered short side ``int(round(np.random.uniform(low, high)))`` for a uniform
    draw in [0, 1): ``low + (high - low) * uniform`` rounded half to even, so ``low`` and ``high``
    come half as often as each size between them."""
    return round(low + (high - low) * uniform)


def pyslowfast_crop_offset(length: int, size: int) -> int:
    """PySlowFast's ``random_crop`` offset along a side of ``length`` pixels:
    ``randint(0, length - size)`` (the last position, ``length - size``, is never drawn), or 0
    without a draw when the side is not longer than ``size``."""
    return int(torch.randint(0, length - size, ()).item()) if length > size else 0


class ClipRandAugment:
    """RandAugment with timm-style magnitude noise (``rand-m9-mstd0.5``), one draw per clip.

    The magnitude ``m ~ N(magnitude, magnitude_std)`` clipped to [0, 10] is drawn once per call and
    the same ``num_ops`` operations with that magnitude are applied to every frame of the clip.
    """

    def __init__(self, num_ops: int = 2, magnitude: float = 9.0, magnitude_std: float = 0.5) -> None:
        self.num_ops = num_ops
        self.magnitude = magnitude
        self.magnitude_std = magnitude_std

    def sample_magnitude(self) -> float:
        noise = float(torch.randn(())) * self.magnitude_std if self.magnitude_std > 0 else 0.0
        return min(max(self.magnitude + noise, 0.0), RA_MAX_MAGNITUDE)

    def __call__(self, video: tv_tensors.Video) -> tv_tensors.Video:
        level = int(round(self.sample_magnitude() * RA_BINS_PER_UNIT))
        ra = v2.RandAugment(
            num_ops=self.num_ops, magnitude=level, num_magnitude_bins=int(RA_MAX_MAGNITUDE * RA_BINS_PER_UNIT) + 1
        )
        return ra(video)


class TrainTransform:
    """One training view: uint8 ``(T, H, W, 3)`` -> float ``(3, T, size, size)``.

    Args:
        size: output crop size in pixels.
        crop_mode: ``jitter`` (short side uniform in ``jitter_scales``, then a random crop) or
            ``random_resized_crop`` (area fraction in ``rrc_area``, aspect 3/4..4/3).
        jitter_scales: ``(min, max)`` short-side sizes for ``jitter`` mode.
        rrc_area: ``(min, max)`` area fractions for ``random_resized_crop`` mode.
        flip: random horizontal flip with probability 0.5.
        rand_augment: a :class:`ClipRandAugment` or None.
        mean, std: per-channel normalisation of [0, 1] pixels.
        sampling: ``default`` or ``timesformer`` (PySlowFast's jitter, crop and flip, see the
            module docstring; ``jitter`` mode without RandAugment only).
    """

    def __init__(
        self,
        size: int,
        crop_mode: str = "jitter",
        jitter_scales: tuple[int, int] = (256, 320),
        rrc_area: tuple[float, float] = (0.08, 1.0),
        flip: bool = True,
        rand_augment: ClipRandAugment | None = None,
        mean: Sequence[float] = (0.45,) * 3,
        std: Sequence[float] = (0.225,) * 3,
        sampling: str = "default",
    ) -> None:
        if sampling == "timesformer" and (crop_mode != "jitter" or rand_augment is not None):
            raise ValueError(
                "DATA.TRAIN_SAMPLING timesformer: needs DATA.TRAIN_CROP_MODE jitter and "
                "no RandAugment (PySlowFast's pipeline has neither)"
            )
        self.size = size
        self.crop_mode = crop_mode
        self.sampling = sampling
        self.flip = flip
        self.jitter_scales = (int(jitter_scales[0]), int(jitter_scales[1]))
        self.spatial = self._build_spatial(size, crop_mode, tuple(rrc_area), flip)
        self.rand_augment = rand_augment
        self.mean, self.std = list(mean), list(std)

    @staticmethod
    def _build_spatial(size: int, crop_mode: str, rrc_area: tuple[float, float], flip: bool) -> v2.Compose:
        if crop_mode == "random_resized_crop":
            crop = v2.RandomResizedCrop(size, scale=rrc_area, antialias=True)
        elif crop_mode == "jitter":
            crop = v2.RandomCrop(size, pad_if_needed=True)
        else:
            raise ValueError(f"DATA.TRAIN_CROP_MODE: unknown crop mode {crop_mode!r}")
        return v2.Compose([crop, v2.RandomHorizontalFlip(0.5 if flip else 0.0)])

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if self.sampling == "timesformer":
            return self._pyslowfast_view(frames)
        video = frames_to_video(frames)
        if self.crop_mode == "jitter":
            low, high = self.jitter_scales
            video = resize_short_side(video, int(torch.randint(low, high + 1, ()).item()))
        video = self.spatial(video)
        if self.rand_augment is not None:
            video = self.rand_augment(video)
        return normalize_clip(video, self.mean, self.std)

    def _pyslowfast_view(self, frames: torch.Tensor) -> torch.Tensor:
        """PySlowFast's ``spatial_sampling`` for training, in its order of operations and random
        draws (jitter size, crop y, crop x, flip; each a torch draw where it draws with numpy)."""
        video = normalize_clip(frames_to_video(frames), self.mean, self.std).transpose(0, 1)
        uniform = float(torch.rand((), dtype=torch.float64))
        video = resize_short_side_bilinear(video, pyslowfast_jitter_size(uniform, *self.jitter_scales))
        height, width = video.shape[-2:]
        y, x = pyslowfast_crop_offset(height, self.size), pyslowfast_crop_offset(width, self.size)
        video = video[..., y : y + self.size, x : x + self.size]
        if self.flip and float(torch.rand((), dtype=torch.float64)) < 0.5:
            video = video.flip(-1)
        return video.transpose(0, 1).contiguous()


class MultiResolutionTransform:
    """ResFormer's replicated clips: one decoded clip -> a list of float ``(3, T, s_i, s_i)`` for
    ``sizes`` (largest first), each with its own independent random augmentation."""

    def __init__(self, transforms: Sequence[TrainTransform]) -> None:
        sizes = [t.size for t in transforms]
        if sizes != sorted(sizes, reverse=True) or len(set(sizes)) != len(sizes):
            raise ValueError(f"DATA.TRAIN_CROP_SIZES: sizes must be strictly descending, got {sizes}")
        self.transforms = list(transforms)

    @property
    def sizes(self) -> list[int]:
        return [t.size for t in self.transforms]

    def __call__(self, frames: torch.Tensor) -> list[torch.Tensor]:
        return [transform(frames) for transform in self.transforms]


def spatial_crop_box(height: int, width: int, size: int, spatial_idx: int, centre_up: bool = False) -> tuple[int, int]:
    """Top-left ``(y, x)`` of crop ``spatial_idx`` (0 start, 1 centre, 2 end of the long side), as in
    PySlowFast's ``uniform_crop``; ``centre_up``: centre offsets rounded up (TimeSformer's)."""
    if spatial_idx not in (0, 1, 2):
        raise ValueError(f"spatial_idx must be 0, 1 or 2, got {spatial_idx}")
    half = (lambda n: -(-n // 2)) if centre_up else (lambda n: n // 2)
    y, x = half(height - size), half(width - size)
    if height > width:
        y = (0, y, height - size)[spatial_idx]
    else:
        x = (0, x, width - size)[spatial_idx]
    return y, x


def spatial_crop_indices(num_crops: int) -> list[int]:
    """The :func:`spatial_crop_box` indices of ``TEST.NUM_SPATIAL_CROPS`` views: the centre crop
    alone for one, start, centre and end for three."""
    return [1] if num_crops == 1 else list(range(num_crops))


class TestTransform:
    """Test view: uint8 ``(T, H, W, 3)`` -> float ``(3, T, size, size)``: short side to ``size``,
    crop ``spatial_idx`` (see :func:`spatial_crop_box`), normalise."""

    __test__ = False  # not a pytest class

    def __init__(self, size: int, mean: Sequence[float] = (0.45,) * 3, std: Sequence[float] = (0.225,) * 3) -> None:
        self.size = size
        self.mean, self.std = list(mean), list(std)

    def __call__(self, frames: torch.Tensor, spatial_idx: int = 1) -> torch.Tensor:
        video = resize_short_side(frames_to_video(frames), self.size)
        height, width = video.shape[-2:]
        y, x = spatial_crop_box(height, width, self.size, spatial_idx)
        video = F.crop(video, y, x, self.size, self.size)
        return normalize_clip(video, self.mean, self.std)


class TimeSformerTestTransform(TestTransform):
    """TimeSformer's test view: uint8 ``(T, H, W, 3)`` -> float ``(3, T, size, size)``: normalise,
    short side to ``scale`` (bilinear, ``align_corners=False``, no antialias, long side floored;
    no resize when already there), crop ``spatial_idx`` with the centre offset rounded up."""

    def __init__(
        self, size: int, scale: int, mean: Sequence[float] = (0.45,) * 3, std: Sequence[float] = (0.225,) * 3
    ) -> None:
        super().__init__(size, mean, std)
        self.scale = scale

    def __call__(self, frames: torch.Tensor, spatial_idx: int = 1) -> torch.Tensor:
        video = normalize_clip(frames_to_video(frames), self.mean, self.std).transpose(0, 1)
        video = resize_short_side_bilinear(video, self.scale)
        height, width = video.shape[-2:]
        y, x = spatial_crop_box(height, width, self.size, spatial_idx, centre_up=True)
        return video[..., y : y + self.size, x : x + self.size].transpose(0, 1).contiguous()


def scaled_jitter(scales: Sequence[int], size: int, reference: int) -> tuple[int, int]:
    """Jitter range for crop ``size`` given ``scales`` meant for crop ``reference`` (proportional)."""
    return (int(round(scales[0] * size / reference)), int(round(scales[1] * size / reference)))


def build_train_transform(cfg) -> MultiResolutionTransform:
    """The training transform of ``cfg.DATA`` / ``cfg.AUG`` (one view per ``DATA.TRAIN_CROP_SIZES``)."""
    sizes = list(cfg.DATA.TRAIN_CROP_SIZES)

    def view(size: int) -> TrainTransform:
        ra = (
            ClipRandAugment(cfg.AUG.RA_NUM_OPS, cfg.AUG.RA_MAGNITUDE, cfg.AUG.RA_MAGNITUDE_STD)
            if cfg.AUG.RAND_AUGMENT
            else None
        )
        return TrainTransform(
            size,
            cfg.DATA.TRAIN_CROP_MODE,
            scaled_jitter(cfg.DATA.TRAIN_JITTER_SCALES, size, sizes[0]),
            tuple(cfg.DATA.TRAIN_RRC_AREA),
            cfg.DATA.RANDOM_FLIP,
            ra,
            cfg.DATA.MEAN,
            cfg.DATA.STD,
            cfg.DATA.TRAIN_SAMPLING,
        )

    return MultiResolutionTransform([view(size) for size in sizes])


def build_test_transform(cfg, size: int | None = None) -> TestTransform:
    """The val/test transform of ``TEST.PROTOCOL`` at ``size`` (default ``DATA.TEST_CROP_SIZE``)."""
    size = size or cfg.DATA.TEST_CROP_SIZE
    if cfg.TEST.PROTOCOL != "timesformer":
        return TestTransform(size, cfg.DATA.MEAN, cfg.DATA.STD)
    scale = (
        size
        if cfg.TEST.NUM_SPATIAL_CROPS > 1
        else scaled_jitter(cfg.DATA.TRAIN_JITTER_SCALES, size, cfg.DATA.TRAIN_CROP_SIZES[0])[0]
    )
    return TimeSformerTestTransform(size, scale, cfg.DATA.MEAN, cfg.DATA.STD)

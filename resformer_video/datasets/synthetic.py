"""A synthetic motion-classification video dataset (real H.264 .mp4 files) for demos and tests.

Each class is a kind of motion of a textured shape over a noisy textured background: moving left,
right, up or down, rotating clockwise or counter-clockwise, growing or shrinking, or scrolling left,
right, up or down on a torus (the shape leaves one edge and re-enters at the opposite one), fading in
or out, or warming (bluish to reddish) or cooling. Shape, texture,
colours, size, speed, start position, frame rate and length are random per video, and every
single frame of one class could come from any other class, so the label is only visible in the
motion (a model must use time). Output is deterministic for a seed.

Layout (Kinetics lists, paths relative to ``out_dir``)::

    out_dir/videos/<class>/<class>_<k>.mp4
    out_dir/train.csv  val.csv  test.csv      # "videos/<class>/<class>_<k>.mp4 <label>"
    out_dir/classnames.json                   # {"moving_left": 0, ...}
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from resformer_video.datasets.encoding import VideoWriter
from resformer_video.errors import ConfigError
from resformer_video.utils.atomic import write_json

if TYPE_CHECKING:
    from yacs.config import CfgNode

MOTIONS = (
    "moving_left",
    "moving_right",
    "moving_up",
    "moving_down",
    "rotating_clockwise",
    "rotating_counterclockwise",
    "growing",
    "shrinking",
    "scrolling_left",
    "scrolling_right",
    "scrolling_up",
    "scrolling_down",
    "fading_in",
    "fading_out",
    "warming",
    "cooling",
)
# Largest colour change of warming/cooling: the sprite's red gain is 1 + TINT_GAIN * tint and its
# blue gain 1 - TINT_GAIN * tint, for a tint in [-1, 1].
TINT_GAIN = 0.45
DEFAULT_FPS = (12, 15, 24, 25, 30)
TEXTURE_RES = 32
# The generator's settings when not given: the one set of defaults, which the config's SYNTHETIC
# node (config/defaults.py) and tools/make_synthetic_dataset.py take as theirs.
GENERATOR_DEFAULTS: dict[str, Any] = {
    "videos_per_class": 250,
    "seed": 0,
    "size": 64,
    "duration": (1.0, 1.4),
    "background_contrast": 40.0,
    "sprite_scale": (0.28, 0.42),
}
DATASET_FILES = ("train.csv", "val.csv", "test.csv", "classnames.json")


@dataclass(frozen=True)
class Motion:
    """Per-video motion: centre ``(x, y)`` in pixels, angle in radians and scale as functions of
    time ``t`` in seconds (linear in ``t``; scale geometric)."""

    centre0: tuple[float, float]
    velocity: tuple[float, float]
    angle0: float
    angular_speed: float
    scale0: float
    scale_rate: float  # log-scale per second
    wrap: bool = False  # the frame is a torus: the shape leaves one edge and re-enters at the other
    alpha0: float = 1.0  # opacity of the shape at t = 0 ...
    alpha_rate: float = 0.0  # ... and its change per second
    tint0: float = 0.0  # colour shift in [-1, 1] at t = 0 (> 0 reddish, < 0 bluish) ...
    tint_rate: float = 0.0  # ... and its change per second

    def at(self, t: float) -> tuple[float, float, float, float]:
        x = self.centre0[0] + self.velocity[0] * t
        y = self.centre0[1] + self.velocity[1] * t
        return x, y, self.angle0 + self.angular_speed * t, self.scale0 * float(np.exp(self.scale_rate * t))

    def appearance(self, t: float) -> tuple[float, float]:
        """Opacity and tint of the shape at time ``t`` (linear in ``t``)."""
        return self.alpha0 + self.alpha_rate * t, self.tint0 + self.tint_rate * t


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Float ``(size, size, 3)`` in [0, 1]: a ``cells x cells`` random colour grid upsampled
    bilinearly (low-frequency texture)."""
    grid = rng.random((cells + 1, cells + 1, 3))
    pos = np.linspace(0, cells, size)
    i0 = np.minimum(pos.astype(int), cells - 1)
    frac = (pos - i0)[:, None]
    rows = grid[i0] * (1 - frac[:, :, None]) + grid[i0 + 1] * frac[:, :, None]  # (size, cells+1, 3)
    cols = rows[:, i0] * (1 - frac.T[:, :, None]) + rows[:, i0 + 1] * frac.T[:, :, None]
    return cols


def _make_sprite(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A textured, asymmetric shape: uint8 texture ``(R, R, 3)`` and bool mask ``(R, R)``."""
    blocks = rng.integers(0, 256, (4, 4, 3))
    texture = np.kron(blocks, np.ones((TEXTURE_RES // 4, TEXTURE_RES // 4, 1))).astype(np.float64)
    texture = np.clip(texture + rng.normal(0, 12, texture.shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:TEXTURE_RES, 0:TEXTURE_RES] / (TEXTURE_RES - 1) * 2 - 1
    shape = rng.integers(3)
    if shape == 0:  # square with a notch
        mask = ~((xx > 0.3) & (yy < -0.3))
    elif shape == 1:  # disk with a bite
        mask = (xx**2 + yy**2 <= 1) & ~(((xx - 0.6) ** 2 + yy**2) < 0.12)
    else:  # triangle
        mask = (yy >= -0.9) & (yy <= 1.0) & (np.abs(xx) <= (yy + 1.0) / 2)
    return texture, mask


def _sample_motion(rng: np.random.Generator, motion: str, size: int, duration: float, base: float) -> Motion:
    """Random parameters of ``motion`` for a frame of ``size`` pixels, a video of ``duration`` seconds
    and a sprite of ``base`` pixels; the shape stays (mostly) inside the frame."""
    margin = base * 0.5
    centre = tuple(rng.uniform(margin, size - margin, 2))
    zero = (0.0, 0.0)
    angle0 = rng.uniform(0, 2 * np.pi)
    if motion.startswith("scrolling_"):
        # Uniform start anywhere on the torus: every frame (and every set of frames without their
        # order) has the same distribution for all four directions.
        speed = rng.uniform(0.3, 0.55) * size / duration
        direction = {
            "scrolling_left": (-1, 0),
            "scrolling_right": (1, 0),
            "scrolling_up": (0, -1),
            "scrolling_down": (0, 1),
        }[motion]
        return Motion(
            tuple(rng.uniform(0, size, 2)),
            (direction[0] * speed, direction[1] * speed),
            angle0,
            0.0,
            1.0,
            0.0,
            wrap=True,
        )
    if motion.startswith("moving_"):
        travel = rng.uniform(0.3, 0.55) * size
        axis = 0 if motion in ("moving_left", "moving_right") else 1
        sign = 1.0 if motion in ("moving_right", "moving_down") else -1.0
        start = list(centre)
        low, high = margin, size - margin - travel
        start[axis] = rng.uniform(low, max(low, high)) if sign > 0 else size - rng.uniform(low, max(low, high))
        velocity = [0.0, 0.0]
        velocity[axis] = sign * travel / duration
        return Motion(tuple(start), tuple(velocity), angle0, 0.0, 1.0, 0.0)
    if motion.startswith("fading_"):  # opacity low -> high (in) or high -> low (out); no motion
        low, high = rng.uniform(0.1, 0.3), rng.uniform(0.8, 1.0)
        start, end = (low, high) if motion == "fading_in" else (high, low)
        return Motion(centre, zero, angle0, 0.0, 1.0, 0.0, alpha0=start, alpha_rate=(end - start) / duration)
    if motion in ("warming", "cooling"):  # tint -a -> +a (warming) or +a -> -a; no motion
        amount = rng.uniform(0.6, 1.0) * (1 if motion == "warming" else -1)
        return Motion(centre, zero, angle0, 0.0, 1.0, 0.0, tint0=-amount, tint_rate=2 * amount / duration)
    if motion.startswith("rotating_"):
        speed = np.deg2rad(rng.uniform(90, 180)) * (1 if motion == "rotating_clockwise" else -1)
        return Motion(centre, zero, angle0, speed, 1.0, 0.0)
    ratio = np.log(rng.uniform(1.8, 2.6))
    rate = ratio / duration * (1 if motion == "growing" else -1)
    scale0 = float(np.exp(-ratio / 2 if motion == "growing" else ratio / 2))
    return Motion(tuple(np.full(2, size / 2) + rng.uniform(-0.1, 0.1, 2) * size), zero, angle0, 0.0, scale0, rate)


def _render_frame(
    background: np.ndarray,
    texture: np.ndarray,
    mask: np.ndarray,
    base: float,
    pose: tuple[float, float, float, float],
    noise: np.ndarray,
    wrap: bool = False,
    alpha: float = 1.0,
    tint: float = 0.0,
) -> np.ndarray:
    """Composite the sprite at ``pose`` (x, y, angle, scale) onto ``background``: uint8 ``(S, S, 3)``.

    Pixels are mapped back into sprite coordinates (inverse rotation and scale, nearest texel).
    The angle is clockwise on screen (image y points down). ``wrap`` draws on a torus (offsets
    taken modulo the frame size). ``alpha`` blends the sprite over the background; ``tint``
    (in [-1, 1]) scales its red by ``1 + TINT_GAIN * tint`` and its blue by ``1 - TINT_GAIN * tint``."""
    size = background.shape[0]
    x, y, angle, scale = pose
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - x, yy - y
    if wrap:
        dx, dy = (dx + size / 2) % size - size / 2, (dy + size / 2) % size - size / 2
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * dx + sin * dy) / (base * scale)  # inverse rotation, sprite units in [-0.5, 0.5]
    v = (-sin * dx + cos * dy) / (base * scale)
    inside = (np.abs(u) < 0.5) & (np.abs(v) < 0.5)
    ti = np.clip(((v + 0.5) * TEXTURE_RES).astype(int), 0, TEXTURE_RES - 1)
    tj = np.clip(((u + 0.5) * TEXTURE_RES).astype(int), 0, TEXTURE_RES - 1)
    inside &= mask[ti, tj]
    sprite = texture[ti, tj].astype(np.float64)
    if tint:
        sprite = sprite * np.array([1 + TINT_GAIN * tint, 1.0, 1 - TINT_GAIN * tint])
    frame = np.where(inside[:, :, None], alpha * sprite + (1 - alpha) * background, background)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def render_video(
    rng: np.random.Generator,
    motion: str,
    size: int,
    num_frames: int,
    fps: float,
    background_contrast: float = GENERATOR_DEFAULTS["background_contrast"],
    sprite_scale: tuple[float, float] = GENERATOR_DEFAULTS["sprite_scale"],
) -> np.ndarray:
    """uint8 ``(num_frames, size, size, 3)`` frames of one random video of ``motion``.

    ``background_contrast`` is the range (0-255 levels) of the smooth random colour texture behind
    the sprite; 0 gives a flat random colour (plus pixel noise), which is far easier to learn from.
    ``sprite_scale`` is the ``(min, max)`` sprite size as a fraction of ``size``."""
    background = _smooth_noise(rng, size, int(rng.integers(3, 8))) * background_contrast + rng.uniform(0, 40, (1, 1, 3))
    background += rng.normal(0, 15, background.shape)
    texture, mask = _make_sprite(rng)
    base = rng.uniform(*sprite_scale) * size
    params = _sample_motion(rng, motion, size, num_frames / fps, base)
    noise_level = rng.uniform(2, 8)
    frames = [
        _render_frame(
            background,
            texture,
            mask,
            base,
            params.at(i / fps),
            rng.normal(0, noise_level, background.shape),
            params.wrap,
            *params.appearance(i / fps),
        )
        for i in range(num_frames)
    ]
    return np.stack(frames)


def write_mp4(
    path: str,
    frames: np.ndarray,
    fps: float,
    crf: int = 18,
    timestamps: Sequence[float] | None = None,
    rotation: int = 0,
    codec: str = "libx264",
    faststart: bool = False,
) -> None:
    """Encode uint8 ``(T, H, W, 3)`` RGB frames as H.264 (yuv420p, key frame every second) with
    :class:`~resformer_video.datasets.encoding.VideoWriter` (the same bytes in every process and on
    every CPU).

    The container follows ``path``'s extension; ``codec`` ``libvpx-vp9`` (``.webm``) or
    ``libsvtav1`` (``.mkv``) writes the VP9 / AV1 files video downloads often are.

    ``timestamps`` (seconds, increasing, one per frame) makes a variable-frame-rate file, as phone
    cameras write: frame ``i`` is shown from ``timestamps[i]`` (millisecond precision); ``fps`` then
    only sets the key-frame interval. By default frame ``i`` is shown at ``i / fps``.
    ``rotation`` (0, 90, 180, 270) tags the file, as phones do for portrait video, to be displayed
    rotated by that many degrees counterclockwise (the frames are stored as given).
    ``faststart`` writes the MP4 index before the frames (as web and phone videos are written).
    """
    if timestamps is not None and (len(timestamps) != len(frames) or np.any(np.diff(timestamps) <= 0)):
        raise ValueError(f"timestamps must be {len(frames)} increasing times, one per frame")
    with VideoWriter(
        path,
        fps,
        frames.shape[2],
        frames.shape[1],
        codec=codec,
        crf=crf,
        millisecond_pts=timestamps is not None,
        faststart=faststart,
    ) as writer:
        for i, array in enumerate(frames):
            writer.write(array, None if timestamps is None else timestamps[i])
    if rotation:
        set_display_rotation(path, rotation)


# The mp4 track-header matrix (a, b, c, d of its 16.16 fixed-point 2x2 part) that makes players
# rotate the frames by this many degrees counterclockwise (FFmpeg's display-matrix convention).
_ROTATION_MATRICES = {90: (0, -1, 1, 0), 180: (-1, 0, 0, -1), 270: (0, 1, -1, 0)}


def set_display_rotation(path: str, degrees: int) -> None:
    """Rewrite the display matrix of the first track of the mp4 ``path`` in place (see ``write_mp4``)."""
    if degrees not in _ROTATION_MATRICES:
        raise ValueError(f"rotation must be one of {sorted(_ROTATION_MATRICES)}, got {degrees}")
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    box = data.find(b"tkhd")
    if box < 0:
        raise ValueError(f"{path}: no mp4 track header (tkhd) to rotate")
    version = data[box + 4]
    # After the type: version and flags (4), times, track id, reserved and duration (20 or 32),
    # reserved (8), layer, alternate group, volume and reserved (8), then the 3x3 matrix.
    matrix = box + 4 + 4 + (20 if version == 0 else 32) + 8 + 8
    a, b, c, d = (v * 0x10000 for v in _ROTATION_MATRICES[degrees])
    struct.pack_into(">9i", data, matrix, a, b, 0, c, d, 0, 0, 0, 0x40000000)
    with open(path, "wb") as handle:
        handle.write(data)


def _split_counts(videos_per_class: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    n_val = max(1, int(round(val_fraction * videos_per_class)))
    n_test = max(1, int(round(test_fraction * videos_per_class)))
    if videos_per_class - n_val - n_test < 1:
        raise ValueError(
            f"videos_per_class={videos_per_class} leaves no training video (val {n_val}, test {n_test}); use at least 3"
        )
    return n_val, n_test


def make_synthetic_dataset(
    out_dir: str,
    num_classes: int = 4,
    videos_per_class: int = GENERATOR_DEFAULTS["videos_per_class"],
    seed: int = GENERATOR_DEFAULTS["seed"],
    size: int = GENERATOR_DEFAULTS["size"],
    duration: Sequence[float] = GENERATOR_DEFAULTS["duration"],
    fps_choices: Sequence[float] = DEFAULT_FPS,
    num_frames: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    background_contrast: float = GENERATOR_DEFAULTS["background_contrast"],
    classes: Sequence[str] = (),
    sprite_scale: tuple[float, float] = GENERATOR_DEFAULTS["sprite_scale"],
) -> dict[str, list[tuple[str, int]]]:
    """Write a synthetic motion dataset to ``out_dir`` (see the module docstring for the layout).

    Args:
        num_classes: 1 to 16 motion classes (the first of :data:`MOTIONS`), unless ``classes`` is given.
        videos_per_class: videos per class, split into train / val / test by the fractions
            (at least one val and one test video per class).
        seed: everything (content, frame rates, split) is a function of the seed.
        size: frame width and height in pixels (even).
        duration: ``(min, max)`` seconds per video; ignored when ``num_frames`` > 0.
        fps_choices: frame rates drawn per video.
        num_frames: fixed frame count per video (0: from ``duration`` and the frame rate).
        background_contrast: range in 0-255 levels of the smooth colour texture of the background
            (0: a flat random colour plus noise; lower is easier to learn from scratch).
        classes: motion names from :data:`MOTIONS`, in label order (overrides ``num_classes``).
        sprite_scale: ``(min, max)`` size of the moving shape as a fraction of ``size``.

    Returns:
        ``{"train": [(relative_path, label), ...], "val": [...], "test": [...]}``.
    """
    if not classes and not 1 <= num_classes <= len(MOTIONS):
        raise ValueError(f"num_classes must be in [1, {len(MOTIONS)}], got {num_classes}")
    classes = list(classes) or list(MOTIONS[:num_classes])
    if any(name not in MOTIONS for name in classes):
        raise ValueError(f"classes must be names from {list(MOTIONS)}, got {classes}")
    if not 0 <= background_contrast <= 255:
        raise ValueError(f"background_contrast must be in [0, 255], got {background_contrast}")
    if size < 16 or size % 2:
        raise ValueError(f"size must be an even number >= 16, got {size}")
    n_val, n_test = _split_counts(videos_per_class, val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    for label, motion in enumerate(classes):
        order = rng.permutation(videos_per_class)
        for k in range(videos_per_class):
            fps = float(rng.choice(fps_choices))
            frames = num_frames or max(2, int(round(rng.uniform(*duration) * fps)))
            rel = f"videos/{motion}/{motion}_{k:03d}.mp4"
            write_mp4(
                os.path.join(out_dir, rel),
                render_video(rng, motion, size, frames, fps, background_contrast, sprite_scale),
                fps,
            )
            split = "test" if order[k] < n_test else "val" if order[k] < n_test + n_val else "train"
            splits[split].append((rel, label))
    for split, items in splits.items():
        with open(os.path.join(out_dir, f"{split}.csv"), "w", encoding="utf-8") as handle:
            handle.writelines(f"{rel} {label}\n" for rel, label in items)
    with open(os.path.join(out_dir, "classnames.json"), "w", encoding="utf-8") as handle:
        json.dump({name: i for i, name in enumerate(classes)}, handle, indent=1)
    return splits


SPEC_FILE = "synthetic_spec.json"


def synthetic_spec(cfg: CfgNode) -> dict[str, object]:
    """What ``cfg.SYNTHETIC`` generates (classes and every generator setting), as JSON-ready values."""
    syn = cfg.SYNTHETIC
    return {
        "classes": list(syn.CLASSES) or list(MOTIONS[: cfg.MODEL.NUM_CLASSES]),
        "videos_per_class": int(syn.VIDEOS_PER_CLASS),
        "seed": int(syn.SEED),
        "size": int(syn.VIDEO_SIZE),
        "duration": [float(d) for d in syn.DURATION],
        "background_contrast": float(syn.BACKGROUND_CONTRAST),
        "sprite_scale": [float(s) for s in syn.SPRITE_SCALE],
    }


def ensure_synthetic_dataset(cfg: CfgNode, log: Callable[[str], None] = print) -> bool:
    """Generate the dataset that ``cfg.SYNTHETIC`` describes into ``DATA.PATH_TO_DATA_DIR`` unless
    that folder already has it. Returns True when it generated.

    The classes are ``SYNTHETIC.CLASSES`` or the first ``MODEL.NUM_CLASSES`` of :data:`MOTIONS`.
    The settings are saved as :data:`SPEC_FILE` beside the lists; a folder with lists made from
    other settings (or without that file) raises ``ConfigError`` rather than being used."""
    data_dir, spec = cfg.DATA.PATH_TO_DATA_DIR, synthetic_spec(cfg)
    spec_path = os.path.join(data_dir, SPEC_FILE)
    if all(os.path.isfile(os.path.join(data_dir, name)) for name in DATASET_FILES):
        saved = None
        if os.path.isfile(spec_path):
            with open(spec_path, encoding="utf-8") as handle:
                saved = json.load(handle)
        if saved != spec:
            found = f"was generated with {saved}" if saved else f"has no {SPEC_FILE}"
            raise ConfigError(
                "DATA.PATH_TO_DATA_DIR",
                f"{data_dir} {found}, not the SYNTHETIC settings "
                f"{spec}: delete the folder or choose another DATA.PATH_TO_DATA_DIR",
            )
        log(f"using the dataset in {data_dir}")
        return False
    start = time.time()
    log(f"generating {len(spec['classes'])} classes x {spec['videos_per_class']} videos in {data_dir} ...")
    make_synthetic_dataset(
        data_dir,
        videos_per_class=spec["videos_per_class"],
        seed=spec["seed"],
        size=spec["size"],
        duration=tuple(spec["duration"]),
        background_contrast=spec["background_contrast"],
        classes=spec["classes"],
        sprite_scale=tuple(spec["sprite_scale"]),
    )
    write_json(spec_path, spec)
    log(f"dataset ready in {time.time() - start:.0f} s")
    return True

"""Shared pytest fixtures: a small generated video dataset, the real clips folder and small configs.

- ``synthetic_data_dir`` (session): 4 classes x 6 videos (train 4 / val 1 / test 1 per class) of
  64x64 H.264 clips, 1-2 s at 12-30 fps, with train/val/test.csv (paths relative to the folder)
  and classnames.json. Read-only: copy it before modifying.
- ``realclips_dir``: ``../shared/realclips`` from the repo root (skips when absent).
- ``make_cfg(data_dir=None, opts=None, **overrides)``: a small validated, frozen config; keyword
  overrides use ``__`` for ``.`` (``make_cfg(d, DATA__NUM_FRAMES=2)``). Also a fixture ``data_cfg``
  = ``make_cfg(synthetic_data_dir)`` and ``cfg_factory`` = ``make_cfg`` bound to that folder.
- ``tiny_model(**kwargs)``: a small ``VideoResFormer`` in eval mode; ``randomize(model, ...)``:
  random weights in place (also for the zero-initialised ones), with the spread as arguments.
- Tests over a few seconds (end-to-end runs, subprocesses, exports) are marked ``slow``:
  ``pytest -m "not slow"`` is the quick loop, ``make test`` runs them all.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from resformer_video.config import load_config
from resformer_video.datasets.decoders import BACKENDS, DecoderUnavailableError, import_backend
from resformer_video.models import VideoResFormer
from resformer_video.utils.machine import cpu_class
from resformer_video.utils.precision import cpu_bf16_features

REPO_ROOT = Path(__file__).resolve().parents[1]


def _loadable(backend: str) -> bool:
    """Whether the decoder backend's package loads here (torchcodec also needs system FFmpeg)."""
    try:
        import_backend(backend)
    except DecoderUnavailableError:
        return False
    return True


# Decoders that can run on this machine; tests over "every backend" use these.
LOADABLE_BACKENDS = [name for name in BACKENDS if _loadable(name)]
REALCLIPS_DIR = REPO_ROOT.parent / "shared" / "realclips"
SYNTH_CLASSES, SYNTH_VIDEOS_PER_CLASS, SYNTH_SIZE = 4, 6, 64

# Small, fast settings: tiny model, 4 frames at 64 px (train copies 64 and 32), no workers, CPU.
SMALL_OVERRIDES = {
    "NUM_GPUS": 0,
    "RNG_SEED": 0,
    "MODEL.ARCH": "resformer_tiny",
    "MODEL.NUM_CLASSES": SYNTH_CLASSES,
    "MODEL.DEPTH": 2,
    "DATA.NUM_FRAMES": 4,
    "DATA.SAMPLING_RATE": 6,
    "DATA.TRAIN_JITTER_SCALES": [64, 80],
    "DATA.TRAIN_CROP_SIZES": [64, 32],
    "DATA.TEST_CROP_SIZE": 64,
    "DATA_LOADER.NUM_WORKERS": 0,
    "DATA_LOADER.PIN_MEMORY": False,
    "DATA_LOADER.PERSISTENT_WORKERS": False,
    "TRAIN.BATCH_SIZE": 4,
    "TEST.BATCH_SIZE": 4,
    "TEST.NUM_ENSEMBLE_VIEWS": 1,
    "TEST.NUM_SPATIAL_CROPS": 1,
    "TENSORBOARD.ENABLE": False,
}


# Precisions for tests that compare numbers: fp32 everywhere; bf16 where this CPU computes it
# natively (RESFORMER_TEST_BF16=1 runs it on any CPU, emulated and slow). A skipped bf16 case says why.
RUN_BF16 = bool(cpu_bf16_features()) or os.environ.get("RESFORMER_TEST_BF16") == "1"
BOTH_PRECISIONS = [
    pytest.param("fp32", id="fp32"),
    pytest.param(
        "bf16",
        id="bf16",
        marks=pytest.mark.skipif(
            not RUN_BF16,
            reason=f"bf16 case skipped: this CPU ({cpu_class()}) has no native bf16 "
            "(AVX512-BF16/AMX); RESFORMER_TEST_BF16=1 runs it emulated",
        ),
    ),
]
# Tolerances against a reference computed in the same precision by other code (other batching and
# kernel order): fp32 rounding grows with the reductions of a small model (~1e-6 relative); bf16
# keeps 8 bits of mantissa, 2^-8 = 0.4 % per rounding, over a few layers.
SAME_PRECISION_TOLERANCE = {"fp32": {"atol": 1e-5, "rtol": 1e-4}, "bf16": {"atol": 3e-2, "rtol": 3e-2}}


def reference_precision(precision: str) -> Any:
    """The context a test's own reference forward runs in for ``precision`` (CPU autocast for bf16)."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# A one-block, two-frame training run without validation or test: the resume and run-safety tests' runs.
TINY_RUN_OPTS = ["MODEL.DROP_PATH_RATE", 0.0, "MODEL.DEPTH", 1, "DATA.NUM_FRAMES", 2, "TRAIN.EVAL_PERIOD", 0,
                 "TEST.ENABLE", False, "DATA.RANDOM_FLIP", False, "LOG_PERIOD", 1]  # fmt: skip


def make_cfg(data_dir: Any | None = None, opts: Sequence[Any] | None = None, **overrides: Any):
    """A validated, frozen small config (``SMALL_OVERRIDES``) pointing at ``data_dir`` (also used
    as ``DATA.PATH_PREFIX``), then ``opts`` (``[KEY, VALUE, ...]``) and ``overrides``
    (``DATA__NUM_FRAMES=2`` means ``DATA.NUM_FRAMES 2``)."""
    merged = dict(SMALL_OVERRIDES)
    if data_dir is not None:
        merged["DATA.PATH_TO_DATA_DIR"] = str(data_dir)
        merged["DATA.PATH_PREFIX"] = str(data_dir)
    merged.update({key.replace("__", "."): value for key, value in overrides.items()})
    flat = [item for pair in merged.items() for item in pair] + list(opts or [])
    return load_config(None, flat)


def tiny_model(**kwargs: Any) -> VideoResFormer:
    """A small ``VideoResFormer`` in eval mode: 7 classes, width 32, 2 heads, 2 blocks, no
    stochastic depth; ``kwargs`` override these or set any other argument."""
    args: dict = dict(num_classes=7, embed_dim=32, depth=2, num_heads=2, drop_path_rate=0.0)
    args.update(kwargs)
    return VideoResFormer(**args).eval()


def randomize(
    model: torch.nn.Module,
    std: float = 0.1,
    bias_std: float | None = None,
    norm_weights: tuple | None = (0.5, 1.5),
    only: Sequence[str] = (),
) -> None:
    """Random parameters in place: norm weights uniform in ``norm_weights`` (None: like the
    others), 1-d parameters normal with ``bias_std`` (default ``std``), the rest normal with
    ``std``. ``only``: change just the parameters whose name contains one of these strings."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if only and not any(part in name for part in only):
                continue
            if norm_weights and "norm" in name and name.endswith("weight"):
                param.uniform_(*norm_weights)
            else:
                param.normal_(0.0, bias_std if bias_std is not None and param.ndim <= 1 else std)


INDEX_BASE, INDEX_STEP, INDEX_LEVELS = 16, 8, 28


def make_index_video(
    path: Any, num_frames: int, fps: float, size: int = 64, timestamps: Sequence[float] | None = None
) -> Path:
    """Write an H.264 video whose frame ``i`` shows its own index (left half grey level encodes
    ``i % 28``, right half ``i // 28``); read it back with :func:`decode_frame_index`.
    ``timestamps`` (seconds per frame) makes it variable-frame-rate."""
    from resformer_video.datasets.synthetic import write_mp4

    frames = np.zeros((num_frames, size, size, 3), dtype=np.uint8)
    for i in range(num_frames):
        frames[i, :, : size // 2] = INDEX_BASE + INDEX_STEP * (i % INDEX_LEVELS)
        frames[i, :, size // 2 :] = INDEX_BASE + INDEX_STEP * (i // INDEX_LEVELS)
    write_mp4(str(path), frames, fps, timestamps=timestamps)
    return Path(path)


def make_truncated_faststart_video(path: Any, num_frames: int = 30, fps: float = 10.0, keep: float = 0.5) -> Path:
    """An MP4 with its index first (as web and phone videos are written) cut to its first ``keep``
    of bytes: the index still claims ``num_frames`` frames, about ``keep`` of them decode. Noise
    frames, so the bytes are spread evenly over the frames."""
    from resformer_video.datasets.synthetic import write_mp4

    frames = np.random.default_rng(0).integers(0, 256, (num_frames, 64, 64, 3), dtype=np.uint8)
    write_mp4(str(path), frames, fps, faststart=True)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return Path(path)


# Writes 20 frames of grey level 10 * i with codec argv[3] to argv[2]; see encode_levels_video.
# It runs in a fresh interpreter: once decord is loaded (as in a test session), PyAV's VP9 encoder
# fails to open (decord ships its own FFmpeg libraries; decoding is not affected). synthetic.py is
# loaded by path, so that resformer_video.datasets (which imports the decoders) is not.
ENCODE_LEVELS = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("synthetic", sys.argv[1])
synthetic = sys.modules["synthetic"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(synthetic)
frames = np.repeat(np.arange(20, dtype=np.uint8) * 10, 64 * 96 * 3).reshape(20, 64, 96, 3)
synthetic.write_mp4(sys.argv[2], frames, 10, crf=10, codec=sys.argv[3])
"""


def encode_levels_video(path: Any, codec: str) -> Path:
    """A 10 fps video of 20 uniform grey frames (level ``10 * i``) encoded with ``codec``, e.g.
    ``libvpx-vp9`` into ``.webm`` or ``libsvtav1`` into ``.mkv``."""
    synthetic = REPO_ROOT / "resformer_video" / "datasets" / "synthetic.py"
    subprocess.run(
        [sys.executable, "-c", ENCODE_LEVELS, str(synthetic), str(path), codec], check=True, capture_output=True
    )
    return Path(path)


def decode_frame_index(frames: torch.Tensor) -> list:
    """Frame indices shown by uint8 ``(T, H, W, 3)`` frames of :func:`make_index_video`."""
    width = frames.shape[2]
    margin = width // 8  # stay away from the block boundary (chroma blur)
    low = frames[:, :, : width // 2 - margin].float().mean(dim=(1, 2, 3))
    high = frames[:, :, width // 2 + margin :].float().mean(dim=(1, 2, 3))
    to_level = lambda v: torch.round((v - INDEX_BASE) / INDEX_STEP).long()  # noqa: E731
    return (to_level(high) * INDEX_LEVELS + to_level(low)).tolist()


@pytest.fixture(scope="session")
def synthetic_data_dir() -> Iterator[Path]:
    """A generated 4-class motion dataset (see the module docstring); do not modify it.

    It lives in its own temporary folder rather than pytest's rotating ``/tmp/pytest-of-<user>``,
    which a concurrent pytest session may prune while this one still runs."""
    from resformer_video.datasets import make_synthetic_dataset

    with tempfile.TemporaryDirectory(prefix="resformer_synthetic_") as tmp:
        out = Path(tmp)
        make_synthetic_dataset(
            str(out),
            num_classes=SYNTH_CLASSES,
            videos_per_class=SYNTH_VIDEOS_PER_CLASS,
            seed=0,
            size=SYNTH_SIZE,
            duration=(1.0, 2.0),
            background_contrast=200.0,
        )
        yield out


@pytest.fixture
def realclips_dir() -> Path:
    """The real H.264 clips in ``../shared/realclips`` (skips when the folder is absent)."""
    if not any(REALCLIPS_DIR.glob("*.mp4")):
        pytest.skip(f"real clips folder {REALCLIPS_DIR} is absent (only in the project's shared workspace)")
    return REALCLIPS_DIR


@pytest.fixture
def data_cfg(synthetic_data_dir):
    """``make_cfg(synthetic_data_dir)``."""
    return make_cfg(synthetic_data_dir)


@pytest.fixture
def cfg_factory(synthetic_data_dir):
    """``make_cfg`` with ``data_dir`` defaulting to ``synthetic_data_dir``."""
    return functools.partial(make_cfg, synthetic_data_dir)


@pytest.fixture(autouse=True, scope="session")
def _limit_threads():
    """The machine is shared: at most 2 intra-op threads."""
    torch.set_num_threads(min(2, torch.get_num_threads()))

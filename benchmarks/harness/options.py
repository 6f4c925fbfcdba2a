"""What a benchmark run measures (:class:`BenchmarkOptions`) and its defaults from the config."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from yacs.config import CfgNode

from resformer_video.models.attention import ATTN_IMPLS
from resformer_video.utils.precision import (
    PRECISIONS,
    PrecisionUnavailable,
    canonical_precision,
    check_precision,
    unavailable_reason,
)

logger = logging.getLogger(__name__)

# train / infer: those rows; all: both; paired: only the alternating timing of the step variants.
MODES = ("train", "infer", "all", "paired")
# Single-size training-step variants: our model with each attention implementation, and
# TimeSformer's own model. The first is the one the targets measure; the others are baselines.
TIMESFORMER = "timesformer"
STEP_VARIANTS = ATTN_IMPLS + (TIMESFORMER,)
BASELINES = ("explicit", TIMESFORMER)


class BenchmarkOptionError(ValueError):
    """A bad :class:`BenchmarkOptions` value; ``option`` names the field (the CLI maps it to its flag)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


@dataclass
class BenchmarkOptions:
    """What to measure; ``None`` fields default from the config (see :func:`resolve_options`)."""

    batch: int | None = None
    precision: str | None = None
    device: str = "cpu"
    mode: str = "all"
    train_sizes: list[int] | None = None
    resolutions: list[int] | None = None
    attn_impls: tuple[str, ...] = STEP_VARIANTS
    warmup: int = 1
    repeats: int = 3
    peak_tflops: float | None = None
    profile: bool = False
    profile_steps: int = 2
    paired_repeats: int = 0


def resolve_options(cfg: CfgNode, opts: BenchmarkOptions) -> BenchmarkOptions:
    """Fill the unset fields from the config and check the choices (:class:`BenchmarkOptionError`).

    ``batch`` defaults to ``TRAIN.BATCH_SIZE``; ``precision`` to what the engine would train in
    (``TRAIN.MIXED_PRECISION`` where it runs natively on the device, else fp32; an explicit bf16 on
    a CPU without native bf16 runs, emulated, with a warning); ``train_sizes`` to
    ``DATA.TRAIN_CROP_SIZES`` when it has several sizes, else to the largest size with its 160/224
    and 128/224 scalings (as in ResFormer's 224/160/128); ``resolutions`` to ``TEST.RESOLUTIONS``
    or ``[DATA.TEST_CROP_SIZE]``; ``paired_repeats`` to ``repeats`` in ``paired`` mode.
    """
    _check_choice("mode", opts.mode, MODES)
    for impl in opts.attn_impls:
        _check_choice("attn_impls", impl, STEP_VARIANTS)
    if opts.device == "cuda" and not torch.cuda.is_available():
        raise BenchmarkOptionError("device", "cuda requested but CUDA is not available")
    precision = _precision(cfg, opts.precision, torch.device(opts.device))
    patch = cfg.MODEL.PATCH_SIZE
    train_sizes = opts.train_sizes or _default_train_sizes(list(cfg.DATA.TRAIN_CROP_SIZES), patch)
    resolutions = opts.resolutions or list(cfg.TEST.RESOLUTIONS) or [cfg.DATA.TEST_CROP_SIZE]
    for option, sizes in (("train_sizes", train_sizes), ("resolutions", resolutions)):
        bad = [size for size in sizes if size < patch or size % patch]
        if bad:
            raise BenchmarkOptionError(option, f"sizes {bad} are not positive multiples of MODEL.PATCH_SIZE {patch}")
    batch = opts.batch or cfg.TRAIN.BATCH_SIZE
    for option, value, low in (("batch", batch, 1), ("repeats", opts.repeats, 1), ("warmup", opts.warmup, 0)):
        if value < low:
            raise BenchmarkOptionError(option, f"must be >= {low}, got {value}")
    paired = opts.paired_repeats or (opts.repeats if opts.mode == "paired" else 0)
    if paired and ("sdpa" not in opts.attn_impls or len(set(opts.attn_impls)) < 2):
        raise BenchmarkOptionError(
            "attn_impls", f"paired timing needs sdpa and a baseline {list(BASELINES)}, got {list(opts.attn_impls)}"
        )
    return BenchmarkOptions(
        **{
            **asdict(opts),
            "batch": batch,
            "precision": precision,
            "paired_repeats": paired,
            "train_sizes": sorted(set(train_sizes), reverse=True),
            "resolutions": list(resolutions),
        }
    )


def _precision(cfg: CfgNode, asked: str | None, device: torch.device) -> str:
    """The explicit precision if it can run on ``device``, else the engine's choice."""
    if asked is not None:
        _check_choice("precision", asked, PRECISIONS)
        try:
            return check_precision(asked, device, allow_emulated=True)
        except PrecisionUnavailable as err:
            raise BenchmarkOptionError("precision", str(err)) from None
    configured = canonical_precision(cfg.TRAIN.MIXED_PRECISION)
    reason = unavailable_reason(configured, device)
    if reason is None:
        return configured
    logger.info("TRAIN.MIXED_PRECISION %s: %s; measuring fp32", configured, reason)
    return "fp32"


def _check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise BenchmarkOptionError(option, f"must be one of {list(choices)}, got {value!r}")


def _default_train_sizes(sizes: list[int], patch: int) -> list[int]:
    if len(sizes) > 1:
        return sizes
    top = sizes[0]
    scaled = [max(patch, round(top * frac / patch) * patch) for frac in (160 / 224, 128 / 224)]
    return sorted({top, *scaled}, reverse=True)

"""The measured steps: closures running one engine training step or one inference forward."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import torch
from torch import nn
from yacs.config import CfgNode

from benchmarks.harness.options import TIMESFORMER
from benchmarks.harness.timesformer_reference import build_timesformer_reference
from resformer_video.config import cfg_with
from resformer_video.engine.train import build_train_state, forward_backward, optimizer_step
from resformer_video.models import build_model
from resformer_video.utils.precision import autocast, autocast_dtype


def build_variant(cfg: CfgNode, variant: str, device: torch.device) -> nn.Module:
    """The model of a step variant (see :data:`~benchmarks.harness.options.STEP_VARIANTS`),
    randomly initialised on ``device``."""
    if variant == TIMESFORMER:
        return build_timesformer_reference(cfg).to(device)
    # Weights do not change the speed: skip loading MODEL.PRETRAINED.
    return build_model(cfg_with(cfg, "MODEL.ATTN_IMPL", variant, "MODEL.PRETRAINED", "")).to(device)


def variant_train_step(
    cfg: CfgNode, variant: str, sizes: Sequence[int], batch: int, precision: str, device: torch.device
) -> Callable[[], None]:
    """:func:`make_train_step` for a fresh model of ``variant``. The TimeSformer baseline runs
    eager, as its code does, whatever ``TRAIN.COMPILE`` says."""
    if variant == TIMESFORMER:
        cfg = cfg_with(cfg, "TRAIN.COMPILE", False)
    return make_train_step(cfg, build_variant(cfg, variant, device), sizes, batch, precision, device)


def make_train_step(
    cfg: CfgNode, model: nn.Module, sizes: Sequence[int], batch: int, precision: str, device: torch.device
) -> Callable[[], None]:
    """A closure running one engine training step on fixed random clips ``(batch, 3, T, s, s)``.

    The step is the engine's own (:func:`build_train_state`, :func:`forward_backward`,
    :func:`optimizer_step`): a forward per size under autocast at ``precision``,
    :class:`~resformer_video.engine.losses.MultiResolutionLoss` (cross-entropy at every size plus
    scale consistency towards the next larger size), backward (with a gradient scaler for fp16),
    gradient clipping if configured, and the optimiser's step. Gradient accumulation is off (one
    micro-batch per step); ``TRAIN.COMPILE`` is honoured.
    """
    state = build_train_state(cfg, model, device, dtype=autocast_dtype(precision), accum_steps=1)
    frames, classes = cfg.DATA.NUM_FRAMES, cfg.MODEL.NUM_CLASSES
    clips = [torch.randn(batch, 3, frames, s, s, device=device) for s in sizes]
    labels = torch.randint(0, classes, (batch,), device=device)
    model.train()

    def step() -> None:
        forward_backward(state, clips, labels)
        optimizer_step(state)

    return step


def make_infer_step(
    model: nn.Module, size: int, batch: int, frames: int, precision: str, device: torch.device
) -> Callable[[], None]:
    """A closure running one no-grad forward of random clips ``(batch, 3, frames, size, size)``."""
    clip = torch.randn(batch, 3, frames, size, size, device=device)
    dtype = autocast_dtype(precision)
    model.eval()

    def step() -> None:
        with torch.inference_mode(), autocast(device, dtype):
            model(clip)

    return step

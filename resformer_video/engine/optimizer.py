"""Optimiser (SGD with Nesterov momentum, or AdamW) and the per-iteration learning-rate schedule."""

from __future__ import annotations

import dataclasses
import math

import torch
from timm.optim import param_groups_weight_decay as timm_param_groups_weight_decay
from torch import nn
from yacs.config import CfgNode

from resformer_video.errors import ConfigError

BN_NAME = "bn"  # TimeSformer / PySlowFast: parameters whose name contains it get BN_WEIGHT_DECAY
BN_WEIGHT_DECAY = 0.0  # their cfg.BN.WEIGHT_DECAY default


def param_groups_weight_decay(model: nn.Module, weight_decay: float, zero_wd_1d_param: bool = True) -> list[dict]:
    """The optimiser's parameter groups, as ``SOLVER.ZERO_WD_1D_PARAM`` says.

    ``zero_wd_1d_param`` True: timm's :func:`timm.optim.param_groups_weight_decay` - no decay for
    parameters with ``ndim <= 1`` (norm weights, biases), names ending in ``.bias`` and the names in
    ``model.no_weight_decay()`` (position / class / temporal embeddings, GPE and LPE), ``weight_decay``
    for the rest. False: TimeSformer's rule (its ``construct_optimizer``) - ``weight_decay`` for every
    parameter whose name lacks ``"bn"`` (in a ViT: all of them), 0 for the others. Groups with a
    non-zero decay come first; empty groups are left out; frozen parameters are not included.
    """
    if not zero_wd_1d_param:
        params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for name, p in params if BN_NAME not in name], "weight_decay": weight_decay},
            {"params": [p for name, p in params if BN_NAME in name], "weight_decay": BN_WEIGHT_DECAY},
        ]
        return [group for group in groups if group["params"]]
    skip = sorted(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else []
    groups = timm_param_groups_weight_decay(model, weight_decay, no_weight_decay_list=skip)
    return sorted(groups, key=lambda group: group["weight_decay"] == 0)  # decayed first, as saved before


def build_optimizer(model: nn.Module, cfg: CfgNode) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZING_METHOD`` over :func:`param_groups_weight_decay` groups at ``SOLVER.BASE_LR``."""
    groups = param_groups_weight_decay(model, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.ZERO_WD_1D_PARAM)
    if cfg.SOLVER.OPTIMIZING_METHOD == "sgd":
        return torch.optim.SGD(
            groups,
            lr=cfg.SOLVER.BASE_LR,
            momentum=cfg.SOLVER.MOMENTUM,
            nesterov=cfg.SOLVER.NESTEROV and cfg.SOLVER.MOMENTUM > 0,
        )
    return torch.optim.AdamW(groups, lr=cfg.SOLVER.BASE_LR)


@dataclasses.dataclass(frozen=True)
class LRSchedule:
    """The learning rate at a fractional epoch (``epoch + iter / iters_per_epoch``), from the
    ``SOLVER`` numbers it needs (read once by :meth:`from_cfg`).

    ``policy`` gives the rate (``steps_with_relative_lrs``: ``base_lr * lrs[i]`` from epoch
    ``steps[i]`` on; ``cosine``: half a cosine from ``base_lr`` to 0 at ``max_epoch``); during
    ``warmup_epochs`` it ramps linearly from ``warmup_start_lr`` to the policy's rate at the end
    of warm-up.
    """

    policy: str
    base_lr: float
    max_epoch: int
    steps: tuple[float, ...] = (0,)
    lrs: tuple[float, ...] = (1.0,)
    warmup_epochs: float = 0.0
    warmup_start_lr: float = 0.0

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> LRSchedule:
        solver = cfg.SOLVER
        return cls(
            solver.LR_POLICY,
            solver.BASE_LR,
            solver.MAX_EPOCH,
            tuple(solver.STEPS),
            tuple(solver.LRS),
            solver.WARMUP_EPOCHS,
            solver.WARMUP_START_LR,
        )

    def __call__(self, epoch: float) -> float:
        warmup = self.warmup_epochs
        if epoch < warmup:
            end_lr = self._policy_lr(warmup)
            return self.warmup_start_lr + (end_lr - self.warmup_start_lr) * epoch / warmup
        return self._policy_lr(epoch)

    def _policy_lr(self, epoch: float) -> float:
        if self.policy == "cosine":
            return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / self.max_epoch))
        index = max(i for i, start in enumerate(self.steps) if start <= epoch)
        return self.base_lr * self.lrs[index]


def get_lr_at_epoch(cfg: CfgNode, epoch: float) -> float:
    """``SOLVER``'s learning rate at a fractional ``epoch`` (see :class:`LRSchedule`)."""
    return LRSchedule.from_cfg(cfg)(epoch)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def accumulation_steps(cfg: CfgNode, world_size: int) -> int:
    """Micro-batches per optimiser step so that ``TRAIN.GLOBAL_BATCH_SIZE`` clips make one step."""
    per_step = cfg.TRAIN.BATCH_SIZE * world_size
    global_bs = cfg.TRAIN.GLOBAL_BATCH_SIZE or per_step
    if global_bs % per_step:
        raise ConfigError(
            "TRAIN.GLOBAL_BATCH_SIZE",
            f"{global_bs} is not a multiple of TRAIN.BATCH_SIZE x processes ({cfg.TRAIN.BATCH_SIZE} x {world_size})",
        )
    return global_bs // per_step

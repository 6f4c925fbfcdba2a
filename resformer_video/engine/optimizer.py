"""Optimiser (SGD with Nesterov momentum, or AdamW) and the per-iteration learning-rate schedule."""

from __future__ import annotations

import math
from typing import Dict, List

import torch
from torch import nn
from yacs.config import CfgNode


def param_groups_weight_decay(model: nn.Module, weight_decay: float) -> List[Dict]:
    """Two groups: with ``weight_decay``, and without it for norms, biases and embeddings.

    A parameter gets no decay when it has ``ndim <= 1`` (norm weights, biases) or its name is in
    ``model.no_weight_decay()`` (position / class / temporal embeddings).
    """
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name in skip or name.endswith(".bias"):
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: CfgNode) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZING_METHOD`` over :func:`param_groups_weight_decay` groups at ``SOLVER.BASE_LR``."""
    groups = param_groups_weight_decay(model, cfg.SOLVER.WEIGHT_DECAY)
    if cfg.SOLVER.OPTIMIZING_METHOD == "sgd":
        return torch.optim.SGD(groups, lr=cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM,
                               nesterov=cfg.SOLVER.NESTEROV and cfg.SOLVER.MOMENTUM > 0)
    return torch.optim.AdamW(groups, lr=cfg.SOLVER.BASE_LR)


def _lr_steps_with_relative_lrs(cfg: CfgNode, epoch: float) -> float:
    index = max(i for i, start in enumerate(cfg.SOLVER.STEPS) if start <= epoch)
    return cfg.SOLVER.BASE_LR * cfg.SOLVER.LRS[index]


def _lr_cosine(cfg: CfgNode, epoch: float) -> float:
    return cfg.SOLVER.BASE_LR * 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.SOLVER.MAX_EPOCH))


LR_POLICIES = {"steps_with_relative_lrs": _lr_steps_with_relative_lrs, "cosine": _lr_cosine}


def get_lr_at_epoch(cfg: CfgNode, epoch: float) -> float:
    """Learning rate at a fractional ``epoch`` (``epoch + iter / iters_per_epoch``).

    ``SOLVER.LR_POLICY`` gives the rate; during ``SOLVER.WARMUP_EPOCHS`` it ramps linearly from
    ``SOLVER.WARMUP_START_LR`` to the policy's rate at the end of warm-up.
    """
    policy = LR_POLICIES[cfg.SOLVER.LR_POLICY]
    warmup = cfg.SOLVER.WARMUP_EPOCHS
    if epoch < warmup:
        end_lr = policy(cfg, warmup)
        return cfg.SOLVER.WARMUP_START_LR + (end_lr - cfg.SOLVER.WARMUP_START_LR) * epoch / warmup
    return policy(cfg, epoch)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr

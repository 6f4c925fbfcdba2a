"""Mixed precision: the autocast context and the gradient scaler for ``TRAIN.MIXED_PRECISION``."""

from __future__ import annotations

import contextlib
import logging
from typing import ContextManager, Optional

import torch
from yacs.config import CfgNode

logger = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def amp_dtype(cfg: CfgNode, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype, or None for full precision (always None on CPU, with a warning)."""
    mode = cfg.TRAIN.MIXED_PRECISION
    if mode == "none":
        return None
    if device.type != "cuda":
        logger.warning("TRAIN.MIXED_PRECISION %s is for GPUs; running in float32 on %s",
                       mode, device.type)
        return None
    return DTYPES[mode]


def autocast(device: torch.device, dtype: Optional[torch.dtype]) -> ContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, dtype: Optional[torch.dtype]) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for float16 (bfloat16 and float32 need none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

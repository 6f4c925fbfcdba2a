"""FLOP counting with fvcore, including ``aten::scaled_dot_product_attention``.

Counts are multiply-adds (fvcore's convention: one per multiply-accumulate), as reported for
TimeSformer (196 GFLOPs for TimeSformer-B, 8 x 224 x 224).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

with warnings.catch_warnings():  # fvcore's import uses the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import get_shape


def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """Multiply-adds of ``softmax(Q K^T) V``: ``B * k * Lq * Lk * (d + d_v)`` (softmax not counted)."""
    q_shape, k_shape, v_shape = (get_shape(v) for v in inputs[:3])
    *batch, length_q, dim = q_shape
    length_k, dim_v = k_shape[-2], v_shape[-1]
    batch_heads = 1
    for size in batch:
        batch_heads *= size
    return batch_heads * length_q * length_k * (dim + dim_v)


def count_flops(model: nn.Module, frames: int, height: int, width: int, batch: int = 1) -> float:
    """Multiply-adds of one forward pass of ``model`` on a ``(batch, 3, frames, height, width)`` clip."""
    param = next(model.parameters())
    clip = torch.zeros(batch, 3, frames, height, width, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, clip)
            analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_jit)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return float(analysis.total())
    finally:
        model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())

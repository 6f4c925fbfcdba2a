"""Positional embeddings: ResFormer's global sine-cosine embedding (GPE) and learned-table resizing.

The GPE follows the official ResFormer code (``GlobalPosEmbed`` in ruitian12/resformer): row and
column positions ``1..n`` are normalised by ``n + 1e-6`` and scaled by ``2 pi``; half of the
channels encode rows and half columns, each as interleaved ``sin, cos`` pairs with frequencies
``temperature ** (2 * (i // 2) / (D / 2))``; then a learnable depthwise 3x3 convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

GPE_TEMPERATURE = 10000.0
GPE_EPS = 1e-6


def sincos_2d_embed(
    height: int, width: int, dim: int, temperature: float = GPE_TEMPERATURE, device: torch.device | None = None
) -> torch.Tensor:
    """ResFormer's normalised 2-D sine-cosine table, float32 ``(dim, height, width)``.

    Channels ``[0, dim/2)`` encode the row, ``[dim/2, dim)`` the column (``dim`` divisible by 4),
    each with :func:`sincos_1d_embed`.
    """
    if dim % 4:
        raise ValueError(f"sine-cosine embedding needs a width divisible by 4, got {dim}")
    half = dim // 2
    pos_y = sincos_1d_embed(height, half, temperature, device)  # (height, half)
    pos_x = sincos_1d_embed(width, half, temperature, device)  # (width, half)
    pos_y = pos_y.t()[:, :, None].expand(half, height, width)
    pos_x = pos_x.t()[:, None, :].expand(half, height, width)
    return torch.cat((pos_y, pos_x), dim=0)


def sincos_1d_embed(
    length: int, dim: int, temperature: float = GPE_TEMPERATURE, device: torch.device | None = None
) -> torch.Tensor:
    """The GPE's sine-cosine code for one axis, float32 ``(length, dim)``: positions ``1..length``
    normalised by ``length`` and scaled by ``2 pi``, interleaved ``sin, cos`` (``dim`` even) with
    frequencies ``temperature ** (2 * (i // 2) / dim)``. Also the start of the temporal table."""
    if dim % 2:
        raise ValueError(f"sine-cosine embedding needs an even width, got {dim}")
    steps = torch.arange(1, length + 1, dtype=torch.float32, device=device)
    steps = steps / (length + GPE_EPS) * (2 * math.pi)
    dim_t = torch.arange(dim, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / dim)
    return _interleave_sin_cos(steps[:, None] / dim_t)


def _interleave_sin_cos(angles: torch.Tensor) -> torch.Tensor:
    """``(n, c)`` angles -> ``(n, c)``: sin of the even columns and cos of the odd, interleaved."""
    return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)


class GlobalPosEmbed(nn.Module):
    """ResFormer GPE: sine-cosine table for the actual grid, then a depthwise 3x3 conv.

    The table (before the conv) is cached per ``(h, w, device, dtype)`` on the instance; it holds
    no parameters and is not part of the state dict.
    """

    def __init__(self, embed_dim: int, temperature: float = GPE_TEMPERATURE) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.temperature = temperature
        self.proj = nn.Conv2d(embed_dim, embed_dim, kernel_size=3, padding=1, groups=embed_dim)
        self._tables: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def table(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The cached sine-cosine table ``(1, D, h, w)``."""
        key = (height, width, device, dtype)
        if key not in self._tables:
            # A normal tensor even when first built under inference mode, so training can reuse it.
            with torch.inference_mode(False):
                table = sincos_2d_embed(height, width, self.embed_dim, self.temperature, device)
                self._tables[key] = table.unsqueeze(0).to(dtype)
        return self._tables[key]

    def forward(self, height: int, width: int) -> torch.Tensor:
        """Embedding of the patch tokens of an ``h x w`` grid, ``(1, h * w, D)`` (row-major)."""
        weight = self.proj.weight
        pos = self.proj(self.table(height, width, weight.device, weight.dtype))
        return pos.flatten(2).transpose(1, 2)


def resize_pos_embed(
    pos_embed: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int], mode: str = "nearest"
) -> torch.Tensor:
    """Resize a learned table ``(1, 1 + h0 * w0, D)`` with a class position to ``(1, 1 + h * w, D)``.

    ``nearest`` reproduces TimeSformer's run-time resizing; ``bicubic`` is used for checkpoints.
    """
    if tuple(old_grid) == tuple(new_grid):
        return pos_embed
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    patch_pos = patch_pos.transpose(1, 2).reshape(1, dim, old_grid[0], old_grid[1])
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    patch_pos = F.interpolate(patch_pos.float(), size=tuple(new_grid), mode=mode, **kwargs)
    patch_pos = patch_pos.to(pos_embed.dtype).flatten(2).transpose(1, 2)
    return torch.cat((cls_pos, patch_pos), dim=1)


def resize_time_embed(time_embed: torch.Tensor, frames: int) -> torch.Tensor:
    """Resize a learned temporal table ``(1, T0, D)`` to ``(1, frames, D)`` (nearest, as TimeSformer)."""
    if time_embed.shape[1] == frames:
        return time_embed
    resized = F.interpolate(time_embed.transpose(1, 2).float(), size=frames, mode="nearest")
    return resized.to(time_embed.dtype).transpose(1, 2)

"""Attention layers: multi-head self-attention (MSA) with ResFormer's local positional embedding,
and ResT's efficient multi-head self-attention (EMSA).

Token layout. A sequence is ``(B, L, D)``. When the layer is given ``grid = (t, h, w)`` its tokens are
one class token followed by ``h * w * t`` patch tokens in TimeSformer's ``(h w t)`` order (frame
index fastest); spatial attention of one frame is ``t = 1``, joint space-time attention is ``t = T``.
Without a grid (temporal attention) the tokens have no spatial layout and no class token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Grid = tuple[int, int, int]  # (frames, height, width) of the patch tokens in a sequence

ATTN_IMPLS = ("sdpa", "explicit")


def tokens_to_maps(tokens: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Patch tokens ``(B, h * w * t, C)`` in ``(h w t)`` order -> maps ``(B * t, C, h, w)``.

    The maps are channels-last in memory (a view of contiguous tokens when ``t = 1``), which is
    also the layout in which oneDNN's depthwise convolutions are fastest.
    """
    frames, height, width = grid
    batch, _, channels = tokens.shape
    maps = tokens.reshape(batch, height, width, frames, channels).permute(0, 3, 1, 2, 4)
    return maps.reshape(batch * frames, height, width, channels).permute(0, 3, 1, 2)


def maps_to_tokens(maps: torch.Tensor, frames: int) -> torch.Tensor:
    """Maps ``(B * t, C, h, w)`` -> tokens ``(B, h * w * t, C)`` in ``(h w t)`` order."""
    batch_frames, channels, height, width = maps.shape
    tokens = maps.permute(0, 2, 3, 1).reshape(batch_frames // frames, frames, height, width, channels)
    return tokens.permute(0, 2, 3, 1, 4).reshape(batch_frames // frames, -1, channels)


class Attention(nn.Module):
    """Multi-head self-attention (timm / TimeSformer layout: ``qkv``, ``proj``).

    With ``local_pos_embed`` it adds ResFormer's LPE: a depthwise 3x3 convolution ``lpe`` over each
    head's values laid out on the frame grid (the kernel is shared by the heads, as in the official
    ``get_v``), added to the attention output before ``proj``; the class token's row gets nothing.

    Args:
        dim: token width ``D``.
        num_heads: heads ``k`` (``D`` divisible by ``k``).
        qkv_bias: bias in the ``qkv`` projection.
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after ``proj``.
        local_pos_embed: add the LPE (needs a ``grid`` in ``forward``).
        attn_impl: ``sdpa`` (``F.scaled_dot_product_attention``) or ``explicit`` (softmax(QK^T)V).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        local_pos_embed: bool = False,
        attn_impl: str = "sdpa",
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by the number of heads {num_heads}")
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.attn_impl = attn_impl
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.lpe = (
            nn.Conv2d(self.head_dim, self.head_dim, kernel_size=3, padding=1, groups=self.head_dim)
            if local_pos_embed
            else None
        )

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, D)`` -> ``(B, k, L, D / k)``."""
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, k, L, D / k)`` -> ``(B, L, D)``."""
        batch, _, length, _ = x.shape
        return x.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_dim)

    def local_pos_embed(self, v: torch.Tensor, grid: Grid) -> torch.Tensor:
        """LPE of values ``(B, k, 1 + h * w * t, D / k)`` -> same shape, zero row for the class token."""
        batch, heads, _, head_dim = v.shape
        patches = v[:, :, 1:].reshape(batch * heads, -1, head_dim)
        pe = maps_to_tokens(self.lpe(tokens_to_maps(patches, grid)), grid[0])
        return F.pad(pe.reshape(batch, heads, -1, head_dim), (0, 0, 1, 0))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T / sqrt(d)) v for ``(B, k, L, d)`` inputs."""
        drop = self.attn_drop.p if self.training else 0.0
        if self.attn_impl == "sdpa":
            return F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        return self.attn_drop(attn.softmax(dim=-1)) @ v

    def output(self, x: torch.Tensor, v: torch.Tensor, grid: Grid | None) -> torch.Tensor:
        """Add the LPE of the full-resolution values ``v`` to ``x`` (both ``(B, k, L, d)``), project."""
        if self.lpe is not None:
            if grid is None:
                raise ValueError("the local positional embedding needs the token grid")
            x = x + self.local_pos_embed(v, grid)
        return self.proj_drop(self.proj(self.merge_heads(x)))

    def forward(self, x: torch.Tensor, grid: Grid | None = None) -> torch.Tensor:
        """``(B, L, D)`` -> ``(B, L, D)``."""
        q, k, v = self.qkv_heads(x)
        return self.output(self.attend(q, k, v), v, grid)

    def qkv_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, L, D)`` -> q, k, v, each ``(B, k, L, D / k)`` (timm's qkv channel order)."""
        batch, length, dim = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)


class EfficientAttention(Attention):
    """ResT's efficient multi-head self-attention for the spatial attention of a frame (or clip).

    Queries come from every token; keys and values from a spatially reduced copy of the patch tokens
    (per frame: depthwise conv ``sr`` with kernel ``s + 1``, stride ``s``, padding ``s // 2``, then
    LayerNorm ``sr_norm``; ``s = 1`` keeps every token). The class token keeps full attention: it is
    a query over the reduced keys plus itself, and a key/value for every query. The logits
    ``Q K^T / sqrt(d)`` of shape ``(B, k, L, L')`` are mixed across heads by a 1x1 conv
    ``head_conv``, softmaxed and instance-normalised per head: ``IN(Softmax(Conv(QK^T / sqrt(d))))``.
    The LPE uses the full-resolution values.

    Without ``head_conv`` and ``instance_norm`` this is plain spatial-reduction attention
    ``Softmax(Q K'^T / sqrt(d)) V'``, computed by :meth:`Attention.attend` with ``attn_impl`` (``sdpa``:
    the fused kernel, the maps are never materialised). With either of them the maps must exist, so
    the logits are computed with explicit matmuls whatever ``attn_impl`` says.

    The parameters ``qkv``, ``proj`` and ``lpe`` are those of :class:`Attention`, so MSA weights load.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        local_pos_embed: bool = False,
        sr_ratio: int = 2,
        head_conv: bool = True,
        instance_norm: bool = True,
        attn_impl: str = "sdpa",
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop, local_pos_embed, attn_impl)
        if sr_ratio < 1:
            raise ValueError(f"sr_ratio must be >= 1, got {sr_ratio}")
        self.sr_ratio = sr_ratio
        self.sr = (
            nn.Conv2d(dim, dim, kernel_size=sr_ratio + 1, stride=sr_ratio, padding=sr_ratio // 2, groups=dim)
            if sr_ratio > 1
            else None
        )
        self.sr_norm = nn.LayerNorm(dim, eps=1e-6) if sr_ratio > 1 else None
        self.head_conv = nn.Conv2d(num_heads, num_heads, kernel_size=1) if head_conv else None
        self.head_norm = nn.InstanceNorm2d(num_heads) if instance_norm else None

    @property
    def fused(self) -> bool:
        """Whether the attention is plain softmax attention (no head mixing, no instance norm)."""
        return self.head_conv is None and self.head_norm is None

    def reduce(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Tokens ``(B, 1 + h * w * t, D)`` -> class token + reduced patches ``(B, 1 + h' * w' * t, D)``."""
        if self.sr is None:
            return x
        maps = self.sr(tokens_to_maps(x[:, 1:], grid))
        patches = self.sr_norm(maps_to_tokens(maps, grid[0]))
        return torch.cat((x[:, :1], patches), dim=1)

    def attend_maps(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``IN(Softmax(Conv(q k^T / sqrt(d)))) v`` for ``q (B, k, L, d)``, ``k, v (B, k, L', d)``."""
        attn = (q @ k.transpose(-2, -1)) * self.scale  # (B, k, L, L')
        if self.head_conv is not None:
            attn = self.head_conv(attn)
        attn = attn.softmax(dim=-1)
        if self.head_norm is not None:
            attn = self.head_norm(attn)
        return self.attn_drop(attn) @ v

    def forward(self, x: torch.Tensor, grid: Grid | None = None) -> torch.Tensor:
        """``(B, 1 + h * w * t, D)`` -> same shape."""
        if grid is None:
            raise ValueError("efficient attention needs the token grid")
        q, k, v, full_v = self.project(x, self.reduce(x, grid))
        out = self.attend(q, k, v) if self.fused else self.attend_maps(q, k, v)
        return self.output(out, full_v, grid)

    def project(self, x: torch.Tensor, reduced: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """q and full-resolution v of ``x`` ``(B, L, D)``, k and v of ``reduced`` ``(B, L', D)``, each
        split into heads ``(B, k, ., D / k)``. Two GEMMs: ``qkv``'s weight rows are ``[q; k; v]``, so
        k and v are one slice; q and the full v (needed only by the LPE) one concatenation."""
        dim = x.shape[-1]
        weight = self.qkv.weight
        bias = self.qkv.bias if self.qkv.bias is not None else weight.new_zeros(3 * dim)
        k, v = F.linear(reduced, weight[dim:], bias[dim:]).chunk(2, dim=-1)
        if self.sr is None or self.lpe is None:
            q, full_v = F.linear(x, weight[:dim], bias[:dim]), v
        else:
            rows = torch.cat((weight[:dim], weight[2 * dim :]))
            q, full_v = F.linear(x, rows, torch.cat((bias[:dim], bias[2 * dim :]))).chunk(2, dim=-1)
        return tuple(self.split_heads(t) for t in (q, k, v, full_v))

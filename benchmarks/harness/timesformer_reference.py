"""TimeSformer's ``VisionTransformer``, re-implemented op for op as a reference.

Not used for training or inference. It is the baseline the project measures itself against:
- ``tests/test_model_timesformer.py`` checks that a TimeSformer checkpoint loaded into
  :class:`~resformer_video.models.VideoResFormer` gives this model's outputs;
- ``benchmarks/benchmark.py --attn sdpa,explicit,timesformer`` times its training step next to ours.

It follows the forward pass of facebookresearch/TimeSformer ``timesformer/models/vit.py`` as
written there: explicit ``softmax(Q K^T * scale) V`` attention, ``Block.forward`` with its
``einops`` rearranges between the ``(h w t)`` token order and the temporal/spatial batches, the
class token repeated per frame and averaged back, ``temporal_fc`` after temporal attention,
stochastic depth, nearest-neighbour resizing of ``pos_embed`` / ``time_embed`` and the final
``norm(x)[:, 0]``. Parameter names are TimeSformer's (without the ``model.`` prefix), so its
``state_dict`` is a TimeSformer checkpoint. It shares no code with the rest of ``resformer_video``
(:func:`build_timesformer_reference` reads its constructor arguments from the config through
:func:`~resformer_video.models.build.shared_model_kwargs`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath
from torch import nn
from yacs.config import CfgNode

from resformer_video.models.build import shared_model_kwargs

TIMESFORMER_ATTENTION_TYPES = ("divided_space_time", "joint_space_time", "space_only")


class RefAttention(nn.Module):
    """TimeSformer's ``Attention``: ``(B, N, C)`` -> ``(B, N, C)`` with explicit attention maps."""

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class RefMlp(nn.Module):
    """``fc1 -> GELU -> dropout -> fc2 -> dropout`` on ``(B, N, C)``."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class RefBlock(nn.Module):
    """TimeSformer's ``Block``: tokens ``(B, 1 + h*w*t, C)`` in ``(h w t)`` order (``space_only``:
    ``(B*t, 1 + h*w, C)``) -> the same shape."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        attention_type: str = "divided_space_time",
    ) -> None:
        super().__init__()
        self.attention_type = attention_type
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RefAttention(dim, num_heads, qkv_bias, attn_drop, drop)
        if attention_type == "divided_space_time":
            self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.temporal_attn = RefAttention(dim, num_heads, qkv_bias, attn_drop, drop)
            self.temporal_fc = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = RefMlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor, B: int, T: int, W: int) -> torch.Tensor:
        if self.attention_type in ("space_only", "joint_space_time"):
            x = x + self.drop_path(self.attn(self.norm1(x)))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        H = (x.size(1) - 1) // T // W
        # Temporal attention over the frames of each patch position.
        xt = rearrange(x[:, 1:, :], "b (h w t) m -> (b h w) t m", b=B, h=H, w=W, t=T)
        res_temporal = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))
        res_temporal = rearrange(res_temporal, "(b h w) t m -> b (h w t) m", b=B, h=H, w=W, t=T)
        xt = x[:, 1:, :] + self.temporal_fc(res_temporal)
        # Spatial attention per frame, with the class token repeated per frame.
        init_cls_token = x[:, 0, :].unsqueeze(1)
        cls_token = rearrange(init_cls_token.repeat(1, T, 1), "b t m -> (b t) m", b=B, t=T).unsqueeze(1)
        xs = rearrange(xt, "b (h w t) m -> (b t) (h w) m", b=B, h=H, w=W, t=T)
        res_spatial = self.drop_path(self.attn(self.norm1(torch.cat((cls_token, xs), 1))))
        cls_token = torch.mean(rearrange(res_spatial[:, 0, :], "(b t) m -> b t m", b=B, t=T), 1, True)
        res = rearrange(res_spatial[:, 1:, :], "(b t) (h w) m -> b (h w t) m", b=B, h=H, w=W, t=T)
        x = torch.cat((init_cls_token, xt), 1) + torch.cat((cls_token, res), 1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class RefPatchEmbed(nn.Module):
    """Clip ``(B, C, T, H, W)`` -> patch tokens ``(B*T, h*w, D)``, ``T`` and ``w``."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        T = x.shape[2]
        x = self.proj(rearrange(x, "b c t h w -> (b t) c h w"))
        W = x.size(-1)
        return x.flatten(2).transpose(1, 2), T, W


class TimeSformerReference(nn.Module):
    """TimeSformer's ``VisionTransformer``: clip ``(B, 3, T, H, W)`` -> logits ``(B, classes)``.

    Args mirror TimeSformer's constructor; ``drop_path_rate`` grows linearly over the blocks.
    """

    def __init__(
        self,
        num_classes: int = 400,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        num_frames: int = 8,
        attention_type: str = "divided_space_time",
    ) -> None:
        super().__init__()
        if attention_type not in TIMESFORMER_ATTENTION_TYPES:
            raise ValueError(f"attention_type must be one of {TIMESFORMER_ATTENTION_TYPES}, got {attention_type!r}")
        self.attention_type = attention_type
        self.num_features = embed_dim
        self.patch_embed = RefPatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (img_size // patch_size) ** 2 + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        if attention_type != "space_only":
            self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
            self.time_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            [
                RefBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, rate, attention_type)
                for rate in rates
            ]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """TimeSformer's init: truncated normal (0.02) tables and linears, zero ``temporal_fc``
        after the first block."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for block in list(self.blocks)[1:]:
            if self.attention_type == "divided_space_time":
                nn.init.zeros_(block.temporal_fc.weight)
                nn.init.zeros_(block.temporal_fc.bias)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token", "time_embed"}

    def _add_pos_embed(self, x: torch.Tensor, W: int) -> torch.Tensor:
        if x.size(1) == self.pos_embed.size(1):
            return x + self.pos_embed
        cls_pos_embed = self.pos_embed[0, 0, :].unsqueeze(0).unsqueeze(1)
        other_pos_embed = self.pos_embed[0, 1:, :].unsqueeze(0).transpose(1, 2)
        P = int(other_pos_embed.size(2) ** 0.5)
        H = x.size(1) // W
        other_pos_embed = other_pos_embed.reshape(1, x.size(2), P, P)
        new_pos_embed = F.interpolate(other_pos_embed, size=(H, W), mode="nearest")
        new_pos_embed = new_pos_embed.flatten(2).transpose(1, 2)
        return x + torch.cat((cls_pos_embed, new_pos_embed), 1)

    def _add_time_embed(self, x: torch.Tensor, B: int, T: int) -> torch.Tensor:
        cls_tokens = x[:B, 0, :].unsqueeze(1)
        x = rearrange(x[:, 1:], "(b t) n m -> (b n) t m", b=B, t=T)
        if T != self.time_embed.size(1):
            time_embed = F.interpolate(self.time_embed.transpose(1, 2), size=(T), mode="nearest")
            x = x + time_embed.transpose(1, 2)
        else:
            x = x + self.time_embed
        x = self.time_drop(x)
        x = rearrange(x, "(b n) t m -> b (n t) m", b=B, t=T)
        return torch.cat((cls_tokens, x), dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, 3, T, H, W)`` -> final-norm class token ``(B, D)``."""
        B = x.shape[0]
        x, T, W = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.size(0), -1, -1), x), dim=1)
        x = self.pos_drop(self._add_pos_embed(x, W))
        if self.attention_type != "space_only":
            x = self._add_time_embed(x, B, T)
        for blk in self.blocks:
            x = blk(x, B, T, W)
        if self.attention_type == "space_only":
            x = torch.mean(rearrange(x, "(b t) n m -> b t n m", b=B, t=T), 1)
        return self.norm(x)[:, 0]

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        """Class token ``(B, D)`` -> logits ``(B, classes)``."""
        return self.head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_timesformer_reference(cfg: CfgNode) -> TimeSformerReference:
    """TimeSformer's own model (:class:`TimeSformerReference`, randomly initialised, on CPU) at the
    width, depth, frames, training size, attention type and stochastic depth of ``cfg``: the
    baseline of ``benchmarks/benchmark.py``. It has TimeSformer's learned position tables whatever
    ``MODEL.POS_EMBED`` says; ``configs/k400_timesformer_b.yaml`` makes our model its equal."""
    return TimeSformerReference(**shared_model_kwargs(cfg))

"""VideoResFormer: a TimeSformer-style space-time ViT with ResFormer's positional embeddings.

Blocks follow TimeSformer's ``Block.forward`` (facebookresearch/TimeSformer, vit.py) exactly,
including its token layout: for ``divided_space_time`` and ``joint_space_time`` a clip is one
sequence ``(B, 1 + h * w * T, D)`` whose patch tokens are in ``(h w t)`` order (frame index
fastest); for ``space_only`` every frame is its own sequence ``(B * T, 1 + h * w, D)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Callable

import torch
from einops import rearrange
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn
from torch.utils.checkpoint import checkpoint

from resformer_video.models.attention import Attention, EfficientAttention, Grid
from resformer_video.models.checkpoint_filter import load_pretrained as load_weights_file
from resformer_video.models.pos_embed import GlobalPosEmbed, resize_pos_embed, resize_time_embed, sincos_1d_embed

ATTENTION_TYPES = ("divided_space_time", "joint_space_time", "space_only")
POS_EMBEDS = ("global_local", "global", "learned", "none")
TEMPORAL_EMBEDS = ("none", "learned")
TEMPORAL_EMBED_INITS = ("sincos", "zeros")
SPATIAL_ATTENTIONS = ("msa", "emsa")
NO_WEIGHT_DECAY_KEYS = ("cls_token", "pos_embed", "time_embed", "gpe.", ".lpe.")
# forward_intermediates' output formats: "NCHW" (timm's name; for clips the maps carry time,
# (B, D, T, h, w)) and "NLC" (patch tokens (B, T * h * w, D), frame-major).
FEATURE_FORMATS = ("NCHW", "NLC")


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


class PatchEmbed(nn.Module):
    """Per-frame patch embedding: ``(B, C, T, H, W)`` -> ``(B * T, h * w, D)`` and the grid ``(h, w)``."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if x.ndim != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"input size {height}x{width} is not divisible by the patch size {self.patch_size}")
        x = self.proj(rearrange(x, "b c t h w -> (b t) c h w"))
        grid = (x.shape[-2], x.shape[-1])
        return x.flatten(2).transpose(1, 2), grid


class Block(nn.Module):
    """One transformer block; TimeSformer's ``Block`` (``norm1``/``attn`` spatial, ``temporal_norm1``/
    ``temporal_attn``/``temporal_fc`` temporal, ``norm2``/``mlp``), with ResFormer's LPE in ``attn``.

    Args:
        dim, num_heads, mlp_ratio, qkv_bias: widths as in timm's ViT block.
        drop, attn_drop, drop_path: dropout after projections, on attention weights, stochastic depth.
        attention_type: ``divided_space_time``, ``joint_space_time`` or ``space_only``.
        spatial_attn: builds the (spatial or joint) attention layer ``attn`` from ``dim``.
        attn_impl: kernel of the temporal attention (``sdpa`` or ``explicit``).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        spatial_attn: Callable[[int], nn.Module],
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        attention_type: str = "divided_space_time",
        attn_impl: str = "sdpa",
        norm_layer: Callable[[int], nn.Module] = partial(nn.LayerNorm, eps=1e-6),
    ) -> None:
        super().__init__()
        _check_choice("attention_type", attention_type, ATTENTION_TYPES)
        self.attention_type = attention_type
        self.norm1 = norm_layer(dim)
        self.attn = spatial_attn(dim)
        if attention_type == "divided_space_time":
            self.temporal_norm1 = norm_layer(dim)
            self.temporal_attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop, attn_impl=attn_impl)
            self.temporal_fc = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)

    def forward(self, x: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
        """``(B, 1 + h * w * T, D)`` (``(B * T, 1 + h * w, D)`` for space_only) -> same shape."""
        if self.attention_type == "divided_space_time":
            x = self.divided_attention(x, frames, height, width)
        else:
            grid_frames = frames if self.attention_type == "joint_space_time" else 1
            x = x + self.drop_path(self.attn(self.norm1(x), (grid_frames, height, width)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def divided_attention(self, x: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
        """TimeSformer's temporal-then-spatial attention with residuals, ``(B, 1 + h * w * T, D)``."""
        batch = x.shape[0]
        init_cls, patches = x[:, :1], x[:, 1:]
        # Temporal attention across frames for each patch position (no class token).
        xt = rearrange(patches, "b (n t) m -> (b n) t m", t=frames)
        res_temporal = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))
        res_temporal = rearrange(res_temporal, "(b n) t m -> b (n t) m", b=batch)
        xt = patches + self.temporal_fc(res_temporal)
        # Spatial attention per frame, the class token repeated per frame and averaged back.
        xs = rearrange(xt, "b (n t) m -> (b t) n m", t=frames)
        xs = torch.cat((init_cls.repeat_interleave(frames, dim=0), xs), dim=1)
        res_spatial = self.drop_path(self.attn(self.norm1(xs), (1, height, width)))
        res_cls = rearrange(res_spatial[:, :1], "(b t) 1 m -> b t m", b=batch).mean(1, keepdim=True)
        res = rearrange(res_spatial[:, 1:], "(b t) n m -> b (n t) m", b=batch)
        return torch.cat((init_cls, xt), dim=1) + torch.cat((res_cls, res), dim=1)


class VideoResFormer(nn.Module):
    """Space-time vision transformer for clips ``(B, 3, T, H, W)``, any ``T >= 1``, any ``H, W``
    divisible by the patch size.

    Args:
        num_classes: classifier outputs (0: no head, ``forward`` returns features).
        img_size: training size; sets the grid of a ``learned`` position table.
        patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias: ViT shape.
        num_frames: frames of a ``learned`` temporal table.
        attention_type: ``divided_space_time``, ``joint_space_time`` or ``space_only``.
        pos_embed: ``global_local`` (GPE + LPE), ``global`` (GPE), ``learned`` (table) or ``none``.
        temporal_embed: ``learned`` (table of ``num_frames``, as TimeSformer) or ``none`` (then
            divided attention cannot tell the order of frames).
        temporal_embed_init: start of the learned table: ``sincos`` (sine-cosine code of the frame
            index, as the GPE's; from-scratch training needs it) or ``zeros`` (TimeSformer's).
        drop_rate, attn_drop_rate, drop_path_rate: dropouts and the last block's stochastic depth.
        head_dropout: dropout before the classifier.
        attn_impl: ``sdpa`` or ``explicit`` (MSA kernels; also EMSA's without head conv and IN).
        spatial_attention: ``msa`` or ``emsa`` (ResT efficient attention, for the spatial attention).
        emsa_sr_ratio, emsa_head_conv, emsa_instance_norm: EMSA reduction ratio and options.
    """

    def __init__(
        self,
        num_classes: int = 400,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        num_frames: int = 8,
        attention_type: str = "divided_space_time",
        pos_embed: str = "global_local",
        temporal_embed: str = "learned",
        temporal_embed_init: str = "sincos",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        head_dropout: float = 0.0,
        attn_impl: str = "sdpa",
        spatial_attention: str = "msa",
        emsa_sr_ratio: int = 2,
        emsa_head_conv: bool = True,
        emsa_instance_norm: bool = True,
    ) -> None:
        super().__init__()
        _check_choice("attention_type", attention_type, ATTENTION_TYPES)
        _check_choice("pos_embed", pos_embed, POS_EMBEDS)
        _check_choice("temporal_embed", temporal_embed, TEMPORAL_EMBEDS)
        _check_choice("temporal_embed_init", temporal_embed_init, TEMPORAL_EMBED_INITS)
        _check_choice("spatial_attention", spatial_attention, SPATIAL_ATTENTIONS)
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.attention_type = attention_type
        self.pos_embed_type = pos_embed
        self.temporal_embed_init = temporal_embed_init
        self.grid_size = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.grad_checkpointing = False
        self.global_pool = "token"  # timm's name for the pooling: the class token

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if pos_embed == "learned":
            num_patches = self.grid_size[0] * self.grid_size[1]
            self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        elif pos_embed in ("global", "global_local"):
            self.gpe = GlobalPosEmbed(embed_dim)
        if temporal_embed == "learned":
            self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)

        spatial_attn = self._spatial_attention_factory(
            num_heads,
            qkv_bias,
            attn_drop_rate,
            drop_rate,
            pos_embed == "global_local",
            attn_impl,
            spatial_attention,
            emsa_sr_ratio,
            emsa_head_conv,
            emsa_instance_norm,
        )
        dpr = [rate.item() for rate in torch.linspace(0, drop_path_rate, depth)]
        self.blocks = nn.ModuleList(
            [
                Block(
                    embed_dim,
                    num_heads,
                    spatial_attn,
                    mlp_ratio,
                    qkv_bias,
                    drop_rate,
                    attn_drop_rate,
                    dpr[i],
                    attention_type,
                    attn_impl,
                )
                for i in range(depth)
            ]
        )
        # timm's feature metadata: every block gives embed_dim channels at 1 / patch_size of H and W.
        self.feature_info = [dict(module=f"blocks.{i}", num_chs=embed_dim, reduction=patch_size) for i in range(depth)]
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(head_dropout)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

    @staticmethod
    def _spatial_attention_factory(
        num_heads: int,
        qkv_bias: bool,
        attn_drop: float,
        proj_drop: float,
        local_pos_embed: bool,
        attn_impl: str,
        spatial_attention: str,
        sr_ratio: int,
        head_conv: bool,
        instance_norm: bool,
    ) -> Callable[[int], nn.Module]:
        common = dict(
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop,
            proj_drop=proj_drop,
            local_pos_embed=local_pos_embed,
        )
        if spatial_attention == "emsa":
            return partial(
                EfficientAttention,
                sr_ratio=sr_ratio,
                head_conv=head_conv,
                instance_norm=instance_norm,
                attn_impl=attn_impl,
                **common,
            )
        return partial(Attention, attn_impl=attn_impl, **common)

    # ------------------------------------------------------------------------------------------
    # Initialisation
    # ------------------------------------------------------------------------------------------
    def init_weights(self) -> None:
        """The one place weights are initialised (timm style).

        Linear layers: truncated normal (std 0.02), zero bias; LayerNorms: ones and zeros; class
        token and learned position table: truncated normal (0.02); temporal table: the sine-cosine
        code of the frame index (``temporal_embed_init="sincos"``) or zeros (TimeSformer's);
        ``temporal_fc`` and the LPE conv: zeros (each block starts as its image counterpart);
        EMSA: reduction conv picks the centre token, head-mixing conv is the identity. Patch and
        GPE convolutions keep PyTorch's default initialisation, as in timm and ResFormer.

        Why not TimeSformer's zero table: with it the model starts blind to frame order (a reversed
        clip gives the same logits) and the table's gradient averages out over a class and its
        time-reversed partner, so from scratch the loss sits at chance on classes that differ only
        in order (docs/RESULTS.md: a brightness ramp up vs down stayed at chance for 150 steps from
        zeros and was learned by step 75 from sincos). TimeSformer fine-tunes image weights, where
        the checkpoint filter still starts the table at zeros.
        """
        trunc_normal_(self.cls_token, std=0.02)
        if hasattr(self, "pos_embed"):
            trunc_normal_(self.pos_embed, std=0.02)
        if hasattr(self, "time_embed"):
            with torch.no_grad():
                if self.temporal_embed_init == "sincos":
                    self.time_embed.copy_(sincos_1d_embed(self.num_frames, self.embed_dim)[None])
                else:
                    self.time_embed.zero_()
        self.apply(_init_module)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Names of parameters without weight decay: class token and positional embeddings."""
        return {name for name, _ in self.named_parameters() if any(key in name for key in NO_WEIGHT_DECAY_KEYS)}

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block in the backward pass (``torch.utils.checkpoint``, non-reentrant)."""
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        """The classifier head (timm's API): ``nn.Linear(D, num_classes)``, or ``nn.Identity`` for 0 classes."""
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new, freshly initialised head for ``num_classes`` (0: none, ``forward`` returns the
        ``(B, D)`` features), on the old one's device and dtype (timm's API).

        ``global_pool``: None (keep) or ``"token"``, the model's only pooling (the class token).
        """
        if global_pool not in (None, "token"):
            raise ValueError(
                f"global_pool: VideoResFormer pools with its class token only ('token'), got {global_pool!r}"
            )
        self.num_classes = num_classes
        if num_classes > 0:
            ref = self.cls_token
            self.head = nn.Linear(self.embed_dim, num_classes, device=ref.device, dtype=ref.dtype)
            _init_module(self.head)
        else:
            self.head = nn.Identity()
        self.head.train(self.training)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the blocks after the last of ``indices`` (see :func:`take_block_indices`), the final
        norm when ``prune_norm`` and the head when ``prune_head`` (timm's API, used by
        ``features_only``); returns the indices counted from the first block."""
        take = take_block_indices(len(self.blocks), indices)
        self.blocks = self.blocks[: max(take) + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0)
        return take

    @torch.jit.ignore
    def load_pretrained(self, checkpoint_path: str) -> None:
        """Load a local weights file of any layout ``MODEL.PRETRAINED`` takes, read by the one
        reader and converted (:func:`~resformer_video.models.checkpoint_filter.load_pretrained`).
        timm calls it for ``pretrained_cfg_overlay=dict(file=PATH)`` (``custom_load``, set by
        :mod:`resformer_video.models.timm_registry`), as it calls timm's ViT's for ``.npz`` files."""
        load_weights_file(self, checkpoint_path)

    # ------------------------------------------------------------------------------------------
    # Forward
    # ------------------------------------------------------------------------------------------
    def position_embeddings(self, height: int, width: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Class-token and patch position embeddings ``(1, 1, D)``, ``(1, h * w, D)`` (None if none)."""
        if self.pos_embed_type == "learned":
            table = resize_pos_embed(self.pos_embed, self.grid_size, (height, width), mode="nearest")
            return table[:, :1], table[:, 1:]
        if self.pos_embed_type in ("global", "global_local"):
            return None, self.gpe(height, width)
        return None, None

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        """Clip ``(B, C, T, H, W)`` -> token sequence of the block layout and its grid ``(T, h, w)``."""
        batch, frames = x.shape[0], x.shape[2]
        patches, (height, width) = self.patch_embed(x)  # (B * T, h * w, D)
        cls_pos, patch_pos = self.position_embeddings(height, width)
        cls = self.cls_token if cls_pos is None else self.cls_token + cls_pos
        if patch_pos is not None:
            patches = patches + patch_pos
        cls, patches = self.pos_drop(cls), self.pos_drop(patches)
        patches = rearrange(patches, "(b t) n m -> b t n m", b=batch)
        if hasattr(self, "time_embed"):
            patches = patches + resize_time_embed(self.time_embed, frames).unsqueeze(2)
        if self.attention_type == "space_only":
            tokens = torch.cat((cls.expand(batch * frames, -1, -1), patches.flatten(0, 1)), dim=1)
        else:
            tokens = torch.cat((cls.expand(batch, -1, -1), rearrange(patches, "b t n m -> b (n t) m")), dim=1)
        return tokens, (frames, height, width)

    def run_block(self, index: int, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Block ``index`` on the token sequence, checkpointed when enabled and training."""
        block = self.blocks[index]
        if self.grad_checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return checkpoint(block, x, *grid, use_reentrant=False)
        return block(x, *grid)

    def class_token(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """Class token ``(B, D)`` of a block output (space_only averages the frames' tokens)."""
        if self.attention_type == "space_only":
            return rearrange(x[:, 0], "(b t) m -> b t m", t=frames).mean(1)
        return x[:, 0]

    def patch_maps(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Patch tokens of a block output as maps ``(B, D, T, h, w)``."""
        frames, height, width = grid
        if self.attention_type == "space_only":
            return rearrange(x[:, 1:], "(b t) (h w) m -> b m t h w", t=frames, h=height, w=width)
        return rearrange(x[:, 1:], "b (h w t) m -> b m t h w", t=frames, h=height, w=width)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, C, T, H, W)`` -> final-norm class token ``(B, D)``."""
        x, grid = self.embed(x)
        for index in range(len(self.blocks)):
            x = self.run_block(index, x, grid)
        return self.norm(self.class_token(x, grid[0]))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        return_prefix_tokens: bool = False,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Block outputs of a clip ``(B, C, T, H, W)``, as timm's ViT ``forward_intermediates``.

        Args:
            indices: blocks to return: None all, an int the last ``n``, a sequence those blocks
                (negative counts from the end), in the order given.
            return_prefix_tokens: each intermediate is a pair ``(map, class token (B, 1, D))``.
            norm: apply the final LayerNorm to the intermediates.
            stop_early: run no block after the last one asked for (the final features then come
                from that block).
            output_fmt: ``"NCHW"``: patch maps ``(B, D, T, h, w)`` (``h = H / patch_size``; time is
                kept as its own axis); ``"NLC"``: patch tokens ``(B, T * h * w, D)``, frame-major.
            intermediates_only: return only the list.

        Returns:
            The list of intermediates, or ``(final, intermediates)`` where ``final`` is what
            :meth:`forward_features` returns (the final-norm class token ``(B, D)``, so
            ``forward_head(final)`` gives the logits).
        """
        if output_fmt not in FEATURE_FORMATS:
            raise ValueError(f"output_fmt must be one of {list(FEATURE_FORMATS)}, got {output_fmt!r}")
        take = take_block_indices(len(self.blocks), indices)
        last = max(take) if stop_early or intermediates_only else len(self.blocks) - 1
        x, grid = self.embed(x)
        outputs = {}
        for index in range(last + 1):
            x = self.run_block(index, x, grid)
            if index in take:
                outputs[index] = self.intermediate(x, grid, norm, output_fmt, return_prefix_tokens)
        intermediates = [outputs[index] for index in take]
        if intermediates_only:
            return intermediates
        return self.norm(self.class_token(x, grid[0])), intermediates

    def intermediate(
        self, x: torch.Tensor, grid: Grid, norm: bool, output_fmt: str, with_class_token: bool
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """One block output in :meth:`forward_intermediates`' format (``with_class_token``: and its
        class token ``(B, 1, D)``)."""
        maps = self.patch_maps(self.norm(x) if norm else x, grid)
        if output_fmt == "NLC":
            maps = rearrange(maps, "b m t h w -> b (t h w) m")
        if not with_class_token:
            return maps
        cls = self.class_token(x, grid[0])
        return maps, (self.norm(cls) if norm else cls)[:, None]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Class token ``(B, D)`` (:meth:`forward_features`) -> logits ``(B, num_classes)``; with
        ``pre_logits`` the classifier's input ``(B, D)`` (after the head dropout), as timm."""
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, C, T, H, W)`` -> logits ``(B, num_classes)``."""
        return self.forward_head(self.forward_features(x))


def take_block_indices(depth: int, indices: int | Sequence[int] | None) -> list[int]:
    """timm's block selection counted from the first block: None all ``depth`` blocks, an int
    ``n`` the last ``n``, a sequence those blocks (negative from the end), in its order."""
    if indices is None:
        indices = depth
    if isinstance(indices, int):
        if not 0 < indices <= depth:
            raise ValueError(f"block count must be in [1, {depth}], got {indices}")
        return list(range(depth - indices, depth))
    if not indices or any(not -depth <= i < depth for i in indices):
        raise ValueError(f"block indices must be in [-{depth}, {depth}), got {list(indices)}")
    return [i % depth for i in indices]


def _init_module(module: nn.Module) -> None:
    """Initialise one module (applied children first, so block-level rules override)."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, Block) and hasattr(module, "temporal_fc"):
        nn.init.zeros_(module.temporal_fc.weight)
        nn.init.zeros_(module.temporal_fc.bias)
    elif isinstance(module, Attention):
        _init_attention_extras(module)


def _init_attention_extras(attn: Attention) -> None:
    """Zero LPE conv; EMSA reduction conv = centre-token pick, head-mixing conv = identity."""
    if attn.lpe is not None:
        nn.init.zeros_(attn.lpe.weight)
        nn.init.zeros_(attn.lpe.bias)
    if isinstance(attn, EfficientAttention):
        if attn.sr is not None:
            init_centre_tap_(attn.sr, attn.sr_ratio // 2)
        if attn.head_conv is not None:
            init_identity_1x1_(attn.head_conv)


@torch.no_grad()
def init_centre_tap_(conv: nn.Conv2d, centre: int) -> None:
    """Depthwise conv that copies the input at kernel position ``(centre, centre)`` (zero bias)."""
    conv.weight.zero_()
    conv.weight[:, :, centre, centre] = 1.0
    if conv.bias is not None:
        conv.bias.zero_()


@torch.no_grad()
def init_identity_1x1_(conv: nn.Conv2d) -> None:
    """1x1 conv ``(C, C)`` set to the identity (zero bias)."""
    conv.weight.copy_(torch.eye(conv.out_channels, conv.in_channels).view_as(conv.weight))
    if conv.bias is not None:
        conv.bias.zero_()

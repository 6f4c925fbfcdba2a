"""The architectures in timm's model registry, and their entry points for ``hubconf.py``.

``import resformer_video`` registers ``resformer_video_{tiny,small,base}_patch16_224`` (ResFormer:
global + local positional embeddings, divided space-time, 8 frames) and
``resformer_video_timesformer_base_patch16_224`` (the TimeSformer-B baseline: learned position and
time tables), so ``timm.create_model(name, ...)`` and ``timm.list_models("*resformer*")`` work. No
weights are downloaded: pass a local file with ``pretrained=True,
pretrained_cfg_overlay=dict(file=PATH)``; any layout ``MODEL.PRETRAINED`` takes (timm/DeiT ViT,
official ResFormer, TimeSformer, ours) is read by the package's one reader and converted, as
``MODEL.PRETRAINED`` is (timm's ``custom_load``: the model's ``load_pretrained``). A state dict
given as ``pretrained_cfg_overlay=dict(state_dict=...)`` goes through :func:`timm_checkpoint_filter`.
Keyword arguments override the architecture's (e.g. ``num_classes``, ``depth``, ``num_frames``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from resformer_video.models.archs import ARCHS, TIMM_SIZES
from resformer_video.models.checkpoint_filter import checkpoint_filter_fn
from resformer_video.models.resformer import VideoResFormer
from resformer_video.utils.weights import extract_state_dict

logger = logging.getLogger(__name__)

# Architecture name -> VideoResFormer arguments, from the architecture table (models/archs.py).
TIMM_ARCHS: dict[str, dict[str, Any]] = {
    f"resformer_video_{size}_patch16_224": dict(
        embed_dim=ARCHS[f"resformer_{size}"].width,
        depth=ARCHS[f"resformer_{size}"].depth,
        num_heads=ARCHS[f"resformer_{size}"].heads,
    )
    for size in TIMM_SIZES
}
TIMM_ARCHS["resformer_video_timesformer_base_patch16_224"] = dict(
    TIMM_ARCHS["resformer_video_base_patch16_224"], pos_embed="learned", temporal_embed="learned"
)


def _pretrained_cfg(**overrides: Any) -> dict[str, Any]:
    """timm's pretrained_cfg for a Kinetics-400 video model; no url: weights come from a local file.
    ``classifier`` is None because :func:`checkpoint_filter_fn` drops a head of another class
    count itself (timm would drop every head whose count differs from 400)."""
    cfg = dict(
        num_classes=400,
        input_size=(3, 224, 224),
        pool_size=None,
        crop_pct=224 / 256,
        interpolation="bilinear",
        mean=(0.45, 0.45, 0.45),
        std=(0.225, 0.225, 0.225),
        first_conv="patch_embed.proj",
        classifier=None,
        license="apache-2.0",
    )
    cfg.update(overrides)
    return cfg


# Read by timm's register_model from this module (its registry API), one entry per architecture.
default_cfgs = generate_default_cfgs({name: _pretrained_cfg() for name in TIMM_ARCHS})


def timm_checkpoint_filter(state_dict: Mapping[str, Any], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm's ``pretrained_filter_fn``, for a state dict given in memory
    (``pretrained_cfg_overlay=dict(state_dict=...)``): unwrap (``model_state`` etc.) and convert any
    layout that ``MODEL.PRETRAINED`` takes to ``model``'s keys (:func:`checkpoint_filter_fn`),
    logging what changed. Files do not come here: see :func:`local_file_overlay`."""
    notes: list = []
    dropped: list = []
    out = checkpoint_filter_fn(extract_state_dict(dict(state_dict)), model, notes, dropped)
    for note in notes:
        logger.info("%s", note)
    return out


def local_file_overlay(overlay: Mapping[str, Any] | None) -> dict[str, Any]:
    """``pretrained_cfg_overlay`` with ``custom_load`` on when it names a ``file``, so that timm hands
    the path to :meth:`VideoResFormer.load_pretrained` (the package's one reader) instead of reading
    it with its own."""
    overlay = dict(overlay or {})
    if overlay.get("file"):
        overlay["custom_load"] = True
    return overlay


def create_video_resformer(variant: str, pretrained: bool = False, **kwargs: Any) -> VideoResFormer:
    """Build ``variant`` through timm (``pretrained_cfg``, ``pretrained_cfg_overlay`` understood);
    weights missing from the file stay at initialisation, as with ``MODEL.PRETRAINED``.

    ``features_only=True`` gives timm's ``FeatureGetterNet`` as for timm's ViT: a list of block
    outputs ``(B, D, T, H / 16, W / 16)`` from ``forward_intermediates``, the blocks chosen by
    ``out_indices`` (default 3: the last three; a sequence picks blocks), the blocks after the
    last one dropped, and ``feature_info`` describing them.
    """
    model_args = dict(TIMM_ARCHS[variant], **kwargs)
    model_args["pretrained_cfg_overlay"] = local_file_overlay(model_args.get("pretrained_cfg_overlay"))
    out_indices = model_args.pop("out_indices", 3)
    return build_model_with_cfg(
        VideoResFormer,
        variant,
        pretrained,
        pretrained_filter_fn=timm_checkpoint_filter,
        pretrained_strict=False,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **model_args,
    )


@register_model
def resformer_video_tiny_patch16_224(pretrained: bool = False, **kwargs: Any) -> VideoResFormer:
    """ResFormer-Ti video model (192 wide, 12 blocks, 3 heads; GPE + LPE)."""
    return create_video_resformer("resformer_video_tiny_patch16_224", pretrained, **kwargs)


@register_model
def resformer_video_small_patch16_224(pretrained: bool = False, **kwargs: Any) -> VideoResFormer:
    """ResFormer-S video model (384 wide, 12 blocks, 6 heads; GPE + LPE)."""
    return create_video_resformer("resformer_video_small_patch16_224", pretrained, **kwargs)


@register_model
def resformer_video_base_patch16_224(pretrained: bool = False, **kwargs: Any) -> VideoResFormer:
    """ResFormer-B video model (768 wide, 12 blocks, 12 heads; GPE + LPE)."""
    return create_video_resformer("resformer_video_base_patch16_224", pretrained, **kwargs)


@register_model
def resformer_video_timesformer_base_patch16_224(pretrained: bool = False, **kwargs: Any) -> VideoResFormer:
    """TimeSformer-B (learned position and time tables): loads TimeSformer's K400 checkpoints."""
    return create_video_resformer("resformer_video_timesformer_base_patch16_224", pretrained, **kwargs)

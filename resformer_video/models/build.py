"""Build the model from the config: the only place that reads ``cfg.MODEL``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from yacs.config import CfgNode

from resformer_video.errors import ConfigError
from resformer_video.models.archs import ARCHS
from resformer_video.models.checkpoint_filter import CheckpointError, LoadReport, load_pretrained
from resformer_video.models.flops import count_flops, count_parameters
from resformer_video.models.resformer import VideoResFormer

# Architecture -> (width, heads, depth), from the one table in models/archs.py.
ARCH_SPECS: dict[str, tuple[int, int, int]] = {name: (s.width, s.heads, s.depth) for name, s in ARCHS.items()}
MLP_RATIO = 4.0
NO_PRETRAINED = "none"  # MODEL.PRETRAINED value: train from scratch on purpose


def shared_model_kwargs(cfg: CfgNode) -> dict[str, Any]:
    """Constructor arguments that :class:`VideoResFormer` and TimeSformer's model
    (:class:`~benchmarks.harness.timesformer_reference.TimeSformerReference`) share."""
    if cfg.MODEL.ARCH not in ARCH_SPECS:
        raise ValueError(f"MODEL.ARCH: must be one of {list(ARCH_SPECS)}, got {cfg.MODEL.ARCH!r}")
    width, heads, depth = ARCH_SPECS[cfg.MODEL.ARCH]
    return dict(
        num_classes=cfg.MODEL.NUM_CLASSES,
        img_size=cfg.DATA.TRAIN_CROP_SIZES[0],
        patch_size=cfg.MODEL.PATCH_SIZE,
        embed_dim=width,
        depth=cfg.MODEL.DEPTH or depth,
        num_heads=heads,
        mlp_ratio=MLP_RATIO,
        num_frames=cfg.DATA.NUM_FRAMES,
        attention_type=cfg.MODEL.ATTENTION_TYPE,
        drop_path_rate=cfg.MODEL.DROP_PATH_RATE,
    )


def build_model(cfg: CfgNode) -> VideoResFormer:
    """A :class:`VideoResFormer` for ``cfg`` (on CPU), initialised from ``MODEL.PRETRAINED`` when it names a file.

    The learned position table (``MODEL.POS_EMBED learned``) is sized for ``DATA.TRAIN_CROP_SIZES[0]``
    and the learned temporal table for ``DATA.NUM_FRAMES``.
    """
    return build_model_and_report(cfg)[0]


def build_model_and_report(cfg: CfgNode) -> tuple[VideoResFormer, LoadReport | None]:
    """:func:`build_model` and what the converter loaded from ``MODEL.PRETRAINED`` (None without a file)."""
    emsa = cfg.MODEL.EMSA
    model = VideoResFormer(
        **shared_model_kwargs(cfg),
        pos_embed=cfg.MODEL.POS_EMBED,
        temporal_embed=cfg.MODEL.TEMPORAL_EMBED,
        temporal_embed_init=cfg.MODEL.TEMPORAL_EMBED_INIT,
        head_dropout=cfg.MODEL.DROPOUT,
        attn_impl=cfg.MODEL.ATTN_IMPL,
        spatial_attention=cfg.MODEL.SPATIAL_ATTENTION,
        emsa_sr_ratio=emsa.SR_RATIO,
        emsa_head_conv=emsa.HEAD_CONV,
        emsa_instance_norm=emsa.INSTANCE_NORM,
    )
    if cfg.MODEL.GRAD_CHECKPOINT:
        model.set_grad_checkpointing(True)
    return model, load_config_pretrained(model, cfg)


def pretrained_path(cfg: CfgNode) -> str:
    """``MODEL.PRETRAINED`` as a file path: ``""`` when it is unset or ``none`` (from scratch on purpose)."""
    value = cfg.MODEL.PRETRAINED
    return "" if value.strip().lower() == NO_PRETRAINED else value


def load_config_pretrained(model: VideoResFormer, cfg: CfgNode) -> LoadReport | None:
    """Initialise ``model`` from ``MODEL.PRETRAINED`` (see :func:`pretrained_path`); the converter's
    :class:`LoadReport`, or None when there is no file to load.

    Raises:
        CheckpointError: unreadable or incompatible weights, naming ``MODEL.PRETRAINED`` and the model.
    """
    path = pretrained_path(cfg)
    if not path:
        return None
    try:
        return load_pretrained(model, path)
    except CheckpointError as err:
        raise CheckpointError(
            f"MODEL.PRETRAINED: {err} (the model is MODEL.ARCH "
            f"{cfg.MODEL.ARCH}, {model.embed_dim} wide, {len(model.blocks)} "
            "blocks: are these weights of another architecture?)"
        ) from None


def model_info_lines(cfg: CfgNode, resolutions: Sequence[int]) -> list[str]:
    """Lines describing the model of ``cfg`` (``tools/model_info.py``): its settings and parameters,
    then GFLOPs (multiply-adds) per view of ``DATA.NUM_FRAMES`` x size x size for each size.

    Raises:
        ConfigError: a size that is not a multiple of ``MODEL.PATCH_SIZE`` (named ``--resolutions``).
    """
    model = build_model(cfg).eval()
    frames, patch = cfg.DATA.NUM_FRAMES, cfg.MODEL.PATCH_SIZE
    lines = [
        f"model: {cfg.MODEL.ARCH} depth={len(model.blocks)} width={model.embed_dim} "
        f"attention={cfg.MODEL.ATTENTION_TYPE} spatial={cfg.MODEL.SPATIAL_ATTENTION} "
        f"pos_embed={cfg.MODEL.POS_EMBED} temporal_embed={cfg.MODEL.TEMPORAL_EMBED}",
        f"parameters: {count_parameters(model) / 1e6:.2f} M",
    ]
    for size in resolutions:
        if size % patch:
            raise ConfigError("--resolutions", f"size {size} is not divisible by MODEL.PATCH_SIZE {patch}")
        gflops = count_flops(model, frames, size, size) / 1e9
        lines.append(f"{frames}x{size}x{size}: {gflops:.4g} GFLOPs (multiply-adds) per view")
    return lines

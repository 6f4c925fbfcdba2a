"""Convert weights to the model's layout and load them: timm/DeiT ViT, official ResFormer image
classification, TimeSformer (PySlowFast's save layout), or our own checkpoints. Nothing is downloaded.

Files are read, and said what they are, by :mod:`resformer_video.utils.weights` (the one reader);
this module converts their state dict and loads it.

Conversions (:func:`checkpoint_filter_fn`, timm's ``pretrained_filter_fn`` signature):
- wrappers ``model_state`` / ``model`` / ``state_dict`` and ``module.`` / ``model.`` prefixes are removed;
- ResFormer's GPE conv ``pos_embed.embed_layer`` becomes ``gpe.proj`` and its LPE conv
  ``blocks.N.attn.get_v`` becomes ``blocks.N.attn.lpe``;
- a linear patch embedding ``(D, 3 * p * p)`` becomes a conv ``(D, 3, p, p)``;
- a learned position table of another grid is resized (bicubic), a temporal table of another
  length resized (nearest, as TimeSformer);
- blocks without temporal attention get it from their spatial attention (``attn`` -> ``temporal_attn``,
  ``norm1`` -> ``temporal_norm1``) and a zero ``temporal_fc``, so they start as image blocks;
- a classifier head of another class count is dropped.
Any other shape mismatch is an error naming the first offending key.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from resformer_video.errors import CheckpointError
from resformer_video.models.pos_embed import resize_pos_embed, resize_time_embed
from resformer_video.utils import weights

# Reading and identifying, re-exported here for their old import path.
from resformer_video.utils.weights import (  # noqa: F401
    extract_state_dict,
    is_own_checkpoint,
    own_config_text,
    read_checkpoint,
    strip_prefixes,
)

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

RESFORMER_RENAMES = (
    (re.compile(r"^pos_embed\.embed_layer\."), "gpe.proj."),
    (re.compile(r"^(blocks\.\d+)\.attn\.get_v\."), r"\1.attn.lpe."),
)
TEMPORAL_COPIES = (
    ("attn.qkv.", "temporal_attn.qkv."),
    ("attn.proj.", "temporal_attn.proj."),
    ("norm1.", "temporal_norm1."),
)
HEAD_KEYS = ("head.weight", "head.bias")


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did: what the file held (``kind``, from
    :func:`~resformer_video.utils.weights.checkpoint_kind`), keys the model kept at initialisation
    (``missing_keys``), checkpoint keys the model has no place for (``unexpected_keys``), checkpoint
    keys dropped on purpose (``dropped_keys``, e.g. a head of another class count), conversions
    (``notes``) and the number of model tensors loaded from the file (``matched``)."""

    path: str
    kind: str = weights.UNKNOWN
    matched: int = 0
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    dropped_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded weights from {self.path} ({weights.KIND_NAMES[self.kind]})"]
        lines += [f"  {note}" for note in self.notes]
        for name, keys in (
            ("missing (kept at initialisation)", self.missing_keys),
            ("unexpected (ignored)", self.unexpected_keys),
            ("dropped", self.dropped_keys),
        ):
            if keys:
                lines.append(f"  {name}: {', '.join(summarize_keys(keys))}")
        return "\n".join(lines)


def summarize_keys(keys: Iterable[str]) -> list[str]:
    """Collapse per-block keys: ``blocks.0.attn.lpe.weight`` ... -> ``blocks.*.attn.lpe.weight (x12)``."""
    counts: dict[str, int] = {}
    for key in keys:
        pattern = re.sub(r"^blocks\.\d+\.", "blocks.*.", key)
        counts[pattern] = counts.get(pattern, 0) + 1
    return [f"{key} (x{n})" if n > 1 else key for key, n in counts.items()]


# ----------------------------------------------------------------------------------------------
# Converting
# ----------------------------------------------------------------------------------------------
def checkpoint_filter_fn(
    state_dict: Mapping[str, torch.Tensor],
    model: nn.Module,
    notes: list[str] | None = None,
    dropped: list[str] | None = None,
) -> StateDict:
    """Convert a timm/DeiT, ResFormer, TimeSformer or own state dict to ``model``'s layout.

    Conversions made are appended to ``notes`` and keys dropped on purpose to ``dropped``.

    Raises:
        CheckpointError: a tensor whose shape cannot be converted (message starts with its key).
    """
    notes = [] if notes is None else notes
    dropped = [] if dropped is None else dropped
    target = model.state_dict()
    out = _rename_resformer_keys(strip_prefixes(dict(state_dict)), notes)
    _convert_patch_embed(out, target)
    _resize_embeddings(out, model, notes)
    _add_temporal_attention(out, target, notes)
    _add_zero_time_embed(out, target, notes)
    _drop_mismatched_head(out, target, notes, dropped)
    _check_shapes(out, target)
    return out


def _rename_resformer_keys(state_dict: StateDict, notes: list[str]) -> StateDict:
    out, renamed = {}, 0
    for key, value in state_dict.items():
        new_key = key
        for pattern, repl in RESFORMER_RENAMES:
            new_key = pattern.sub(repl, new_key)
        renamed += new_key != key
        out[new_key] = value
    if renamed:
        notes.append(f"renamed {renamed} ResFormer keys (pos_embed.embed_layer -> gpe.proj, attn.get_v -> attn.lpe)")
    return out


def _convert_patch_embed(state_dict: StateDict, target: StateDict) -> None:
    key = "patch_embed.proj.weight"
    if key in state_dict and key in target and state_dict[key].ndim == 2:
        state_dict[key] = state_dict[key].reshape(target[key].shape)


def _resize_embeddings(state_dict: StateDict, model: nn.Module, notes: list[str]) -> None:
    if isinstance(state_dict.get("pos_embed"), torch.Tensor) and hasattr(model, "pos_embed"):
        src, dst = state_dict["pos_embed"], model.pos_embed
        if src.ndim == 3 and src.shape[1] != dst.shape[1] and src.shape[2] == dst.shape[2]:
            side = math.isqrt(src.shape[1] - 1)
            if side * side != src.shape[1] - 1:
                raise CheckpointError(f"pos_embed: cannot resize a non-square table of {src.shape[1]} tokens")
            state_dict["pos_embed"] = resize_pos_embed(src, (side, side), model.grid_size, "bicubic")
            notes.append(f"resized pos_embed from {side}x{side} to {model.grid_size[0]}x{model.grid_size[1]} patches")
    if isinstance(state_dict.get("time_embed"), torch.Tensor) and hasattr(model, "time_embed"):
        src, frames = state_dict["time_embed"], model.time_embed.shape[1]
        if src.ndim == 3 and src.shape[1] != frames and src.shape[2] == model.time_embed.shape[2]:
            state_dict["time_embed"] = resize_time_embed(src, frames)
            notes.append(f"resized time_embed from {src.shape[1]} to {frames} frames")


def _add_temporal_attention(state_dict: StateDict, target: StateDict, notes: list[str]) -> None:
    """Initialise missing temporal attention from the spatial one, with a zero ``temporal_fc``."""
    blocks = sorted({int(m.group(1)) for k in target for m in [re.match(r"blocks\.(\d+)\.temporal_fc\.", k)] if m})
    initialised = 0
    for i in blocks:
        prefix = f"blocks.{i}."
        if any(k.startswith(prefix + "temporal_") for k in state_dict):
            continue
        for src, dst in TEMPORAL_COPIES:
            for key in [k for k in state_dict if k.startswith(prefix + src)]:
                new_key = prefix + dst + key[len(prefix + src) :]
                if new_key in target:
                    state_dict[new_key] = state_dict[key].clone()
        for name in ("weight", "bias"):
            key = f"{prefix}temporal_fc.{name}"
            state_dict[key] = torch.zeros_like(target[key])
        initialised += 1
    if initialised:
        notes.append(f"temporal attention of {initialised} blocks initialised from spatial attention (temporal_fc = 0)")


def _add_zero_time_embed(state_dict: StateDict, target: StateDict, notes: list[str]) -> None:
    """An image checkpoint has no temporal table: start from zeros, as TimeSformer, so that the
    video model begins as the image model (the random init is for training from scratch)."""
    if "time_embed" in target and "time_embed" not in state_dict:
        state_dict["time_embed"] = torch.zeros_like(target["time_embed"])
        notes.append("time_embed initialised to zeros (the checkpoint has no temporal table)")


def _drop_mismatched_head(state_dict: StateDict, target: StateDict, notes: list[str], dropped: list[str]) -> None:
    if (
        all(k in state_dict and k in target for k in HEAD_KEYS)
        and state_dict["head.weight"].shape != target["head.weight"].shape
    ):
        notes.append(
            f"dropped the classifier head ({state_dict['head.weight'].shape[0]} classes; the "
            f"model has {target['head.weight'].shape[0]})"
        )
        for key in HEAD_KEYS:
            dropped.append(key)
            del state_dict[key]


def _check_shapes(state_dict: StateDict, target: StateDict) -> None:
    for key, value in state_dict.items():
        if key in target and value.shape != target[key].shape:
            raise CheckpointError(
                f"{key}: checkpoint shape {tuple(value.shape)} does not match the model's {tuple(target[key].shape)}"
            )


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
def load_pretrained(model: nn.Module, path: str, obj: Any = None) -> LoadReport:
    """Initialise ``model`` from the weights in ``path`` (converted by :func:`checkpoint_filter_fn`).
    ``obj``: the file's content when already read by the one reader
    (:func:`resformer_video.utils.weights.read_checkpoint`).

    Returns the :class:`LoadReport`, which is also logged.

    Raises:
        CheckpointError: unreadable file or incompatible weights; the message starts with ``path``
            and names the first offending key.
    """
    obj = weights.read_checkpoint(path) if obj is None else obj
    report = LoadReport(path, kind=weights.checkpoint_kind(obj))
    try:
        state_dict = checkpoint_filter_fn(extract_state_dict(obj), model, report.notes, report.dropped_keys)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    result = model.load_state_dict(state_dict, strict=False)
    report.missing_keys, report.unexpected_keys = list(result.missing_keys), list(result.unexpected_keys)
    report.matched = len(state_dict) - len(report.unexpected_keys)
    logger.info("%s", report)
    return report


# ----------------------------------------------------------------------------------------------
# Trained weights (test, predict, export, extract_features): ours strictly, any other layout converted
# ----------------------------------------------------------------------------------------------
@dataclass
class TrainedWeights:
    """What :func:`load_trained_weights` loaded: the file's ``kind``
    (:func:`~resformer_video.utils.weights.checkpoint_kind`); ``own`` for a resformer-video training
    checkpoint (loaded strictly; ``cfg_text`` and ``class_names`` come from it), else the
    converter's ``report``."""

    path: str
    kind: str
    cfg_text: str = ""
    class_names: list[str] | None = None
    report: LoadReport | None = None

    @property
    def own(self) -> bool:
        return self.kind == weights.OWN


def load_trained_weights(model: nn.Module, path: str, obj: Any = None) -> TrainedWeights:
    """Load trained weights into ``model``: our training checkpoint strictly, any layout that
    :func:`load_pretrained` converts (timm/DeiT ViT, official ResFormer, TimeSformer's save
    layout) through the converter, warning when model weights stay at initialisation. ``obj``: the
    file's content when already read.

    Raises:
        CheckpointError: unreadable file, or weights that do not fit ``model`` (message starts with
            ``path``).
    """
    obj = weights.read_checkpoint(path) if obj is None else obj
    if not weights.is_own_checkpoint(obj):
        report = load_pretrained(model, path, obj)
        if report.missing_keys:
            logger.warning(
                "%s: %d model weights are not in the file and stay at initialisation: %s",
                path,
                len(report.missing_keys),
                ", ".join(summarize_keys(report.missing_keys)),
            )
        return TrainedWeights(path, report.kind, report=report)
    try:
        model.load_state_dict(obj["model_state"])
    except RuntimeError as err:  # "Error(s) in loading state_dict ...:" then one line per problem
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        raise CheckpointError(f"{path}: weights do not match the model: {detail[:300]}") from None
    names = obj.get("class_names")
    return TrainedWeights(
        path, weights.OWN, cfg_text=weights.own_config_text(obj), class_names=list(names) if names else None
    )

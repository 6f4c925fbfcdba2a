"""Weights files: the one reader, and the one rule for what a file holds.

Every weights file the package takes is read by :func:`read_checkpoint`, once: our training
checkpoints when training resumes, ``best.pyth``, ``TEST.CHECKPOINT_FILE_PATH``, ``MODEL.PRETRAINED``,
``--checkpoint`` of predict, export and extract_features, and the local file of timm's
``create_model`` and torch.hub. :func:`checkpoint_kind` says what the content is:

- ``OWN``: a resformer-video training checkpoint (written by :mod:`resformer_video.utils.checkpoint`):
  ``model_state`` with the model's own key names, and ``epoch``; its ``cfg`` (YAML text) and
  ``class_names`` describe the run. Loaded strictly.
- ``SLOWFAST``: PySlowFast's save layout, as in TimeSformer's released checkpoints: ``model_state``
  and ``epoch`` too, but the keys prefixed ``model.`` (TimeSformer's wrapper) or ``module.`` (DDP).
- ``WRAPPED``: a state dict under ``model_state``, ``model`` (DeiT, official ResFormer) or
  ``state_dict`` (timm's train.py).
- ``STATE_DICT``: a plain state dict (timm's ViT weights, ``.safetensors`` files,
  ``torch.save(model.state_dict())``).
- ``UNKNOWN``: no state dict.

Everything but ``OWN`` goes through the converter (:mod:`resformer_video.models.checkpoint_filter`,
which also loads). Writing checkpoints and the resume bookkeeping: :mod:`resformer_video.utils.checkpoint`.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from resformer_video.errors import CheckpointError

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

OWN = "own"
SLOWFAST = "slowfast"
WRAPPED = "wrapped"
STATE_DICT = "state_dict"
UNKNOWN = "unknown"
# checkpoint_kind() -> words for messages.
KIND_NAMES = {
    OWN: "a resformer-video training checkpoint",
    SLOWFAST: "a PySlowFast / TimeSformer checkpoint (prefixed model_state keys)",
    WRAPPED: "a state dict in a wrapper (timm, DeiT or ResFormer weights)",
    STATE_DICT: "a plain state dict (timm, safetensors)",
    UNKNOWN: "no state dict",
}

OWN_KEYS = ("model_state", "epoch")
WRAPPER_KEYS = ("model_state", "model", "state_dict")
STRIP_PREFIXES = ("module.", "model.", "_orig_mod.")  # DDP, TimeSformer's wrapper, torch.compile


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
class _Placeholder(dict):
    """Stands in for a non-tensor object stored in a checkpoint (e.g. TimeSformer's config node)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        self.__dict__["pickled_state"] = state


def read_checkpoint(path: str) -> Any:
    """The content of the weights file ``path``, on the CPU: ``torch.load`` with
    ``weights_only=True`` (``.safetensors`` files: safetensors). Objects of other classes (e.g. a
    config node in a TimeSformer checkpoint) are loaded as inert placeholders instead of running
    their code.

    Raises:
        CheckpointError: missing file or unreadable content (message starts with the path; the
            reader's own exception is its ``__cause__``).
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first_error = err
    except Exception as err:  # truncated zip, garbage bytes, ...
        raise _unreadable(path, err) from err
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        with torch.serialization.safe_globals([(_Placeholder, name) for name in unsafe]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise _unreadable(path, first_error) from first_error
    logger.info("%s: loaded with placeholders for %s", path, ", ".join(unsafe))
    return obj


def _read_safetensors(path: str) -> StateDict:
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise _unreadable(path, err) from err


def _unreadable(path: str, err: BaseException) -> CheckpointError:
    return CheckpointError(f"{path}: cannot read checkpoint ({_first_line(err)})")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# ----------------------------------------------------------------------------------------------
# Saying what it is
# ----------------------------------------------------------------------------------------------
def checkpoint_kind(obj: Any) -> str:
    """What the content of a weights file is: ``OWN``, ``SLOWFAST``, ``WRAPPED``, ``STATE_DICT`` or
    ``UNKNOWN`` (module docstring). The one rule for "is this ours": ``model_state`` and ``epoch``
    with the model's own key names; PySlowFast's layout has the same two entries, with
    ``model.``-prefixed keys in TimeSformer's checkpoints."""
    if not isinstance(obj, Mapping):
        return UNKNOWN
    state = obj.get("model_state")
    if isinstance(state, Mapping) and "epoch" in obj:
        return SLOWFAST if any(str(key).startswith(STRIP_PREFIXES) for key in state) else OWN
    if any(isinstance(obj.get(key), Mapping) for key in WRAPPER_KEYS):
        return WRAPPED
    if obj and all(isinstance(value, torch.Tensor) for value in obj.values()):
        return STATE_DICT
    return UNKNOWN


def is_own_checkpoint(obj: Any) -> bool:
    """True for a resformer-video training checkpoint (:func:`checkpoint_kind` is ``OWN``)."""
    return checkpoint_kind(obj) == OWN


def own_config_text(obj: Any) -> str:
    """The YAML config saved in one of our training checkpoints ("" for any other file)."""
    text = obj.get("cfg") if is_own_checkpoint(obj) else None
    return text if isinstance(text, str) else ""


def read_training_checkpoint(path: str) -> dict[str, Any]:
    """One of our training checkpoints (resume, ``best.pyth``, the latest one of a run), on the CPU.

    Raises:
        CheckpointError (a ValueError): ``"{path}: damaged or unreadable checkpoint (...)"``, or
            ``"{path}: not a resformer-video training checkpoint (...)"``.
    """
    try:
        obj = read_checkpoint(path)
    except CheckpointError as err:
        cause = err.__cause__
        detail = f"{type(cause).__name__}: {_first_line(cause)}" if cause is not None else str(err)[len(path) + 2 :]
        raise CheckpointError(f"{path}: damaged or unreadable checkpoint ({detail})") from err
    if not is_own_checkpoint(obj):
        missing = [key for key in OWN_KEYS if not isinstance(obj, Mapping) or key not in obj]
        why = f"missing {missing}" if missing else KIND_NAMES[checkpoint_kind(obj)]
        raise CheckpointError(f"{path}: not a resformer-video training checkpoint ({why})")
    return obj


# ----------------------------------------------------------------------------------------------
# The state dict inside
# ----------------------------------------------------------------------------------------------
def extract_state_dict(obj: Any) -> StateDict:
    """The tensor state dict inside a checkpoint's content (wrappers and prefixes removed).

    Raises:
        CheckpointError: no state dict, or a non-tensor entry (message starts with its key).
    """
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"no state dict found (got {type(obj).__name__})")
    bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(
            f"{bad}: not a tensor ({type(obj[bad]).__name__}); no state dict found "
            f"(top-level keys: {', '.join(list(map(str, obj))[:8])})"
        )
    return strip_prefixes(dict(obj))


def strip_prefixes(state_dict: StateDict) -> StateDict:
    """Remove ``module.`` (DDP), ``model.`` (TimeSformer's wrapper) and ``_orig_mod.``
    (torch.compile) prefixes, repeatedly."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(STRIP_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out

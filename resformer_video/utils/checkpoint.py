"""Training checkpoints: atomic writes, RNG states, resuming and finding the latest valid one.
Files are read by the one weights reader (:mod:`resformer_video.utils.weights`;
:func:`load_checkpoint_file` is its :func:`~resformer_video.utils.weights.read_training_checkpoint`).

A checkpoint ``OUTPUT_DIR/checkpoints/checkpoint_epoch_00005.pyth`` (written after 5 finished
epochs) is a dict with ``model_state`` (the unwrapped model: no ``module.`` or ``_orig_mod.``
prefix), ``optimizer_state``, ``scaler_state``, ``schedule``, ``epoch`` (finished epochs),
``cfg`` (YAML text), ``class_names`` and ``rng_states`` (one per rank). It holds only tensors and
plain Python values, so it is read with ``weights_only=True`` (no pickled code runs).

``OUTPUT_DIR/checkpoints/best.pyth`` is the model of the epoch with the best validation top-1 so
far (no optimiser state; ``val`` holds that epoch's validation metrics); it is not a resume point.

A run stopped by SIGTERM or Ctrl-C writes ``checkpoint_epoch_00004_iter_000120.pyth`` (4 finished
epochs and 120 iterations of the fifth): the same entries plus ``iteration`` and ``progress`` (the
training meter and failed-video counts). Training resumes from it; the next epoch's checkpoint
replaces it.
"""

from __future__ import annotations

import logging
import os
import random
import re
from typing import Any

import numpy as np
import torch
from torch import nn

from resformer_video.utils import distributed
from resformer_video.utils.atomic import TEMP_SUFFIX, is_temp_file, write_error
from resformer_video.utils.weights import read_training_checkpoint as load_checkpoint_file

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint_epoch_(\d{5})\.pyth$")
MID_EPOCH_PATTERN = re.compile(r"^checkpoint_epoch_(\d{5})_iter_(\d{6})\.pyth$")
BEST_CHECKPOINT = "best.pyth"


def get_checkpoint_dir(output_dir: str) -> str:
    return os.path.join(output_dir, CHECKPOINT_DIR)


def get_checkpoint_path(output_dir: str, epoch: int) -> str:
    """``output_dir/checkpoints/checkpoint_epoch_{epoch:05d}.pyth`` (``epoch`` finished epochs)."""
    return os.path.join(get_checkpoint_dir(output_dir), f"checkpoint_epoch_{epoch:05d}.pyth")


def get_mid_epoch_path(output_dir: str, epoch: int, iteration: int) -> str:
    """``output_dir/checkpoints/checkpoint_epoch_{epoch:05d}_iter_{iteration:06d}.pyth``: written when
    a run is stopped (SIGTERM, Ctrl-C) after ``epoch`` finished epochs and ``iteration`` iterations
    of the next."""
    return os.path.join(get_checkpoint_dir(output_dir), f"checkpoint_epoch_{epoch:05d}_iter_{iteration:06d}.pyth")


def get_best_path(output_dir: str) -> str:
    """``output_dir/checkpoints/best.pyth``: the model with the best validation top-1 so far."""
    return os.path.join(get_checkpoint_dir(output_dir), BEST_CHECKPOINT)


def read_best_top1(output_dir: str) -> float | None:
    """The validation top-1 stored in ``best.pyth``; None without a readable one."""
    path = get_best_path(output_dir)
    if not os.path.isfile(path):
        return None
    try:
        return float(load_checkpoint_file(path)["val"]["clip_top1"])
    except (ValueError, KeyError, TypeError) as err:
        logger.warning("ignoring %s: %s", path, err)
        return None


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel, torch.compile and engine wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def get_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (if present) CUDA RNG states, as tensors and plain values."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a state from :func:`get_rng_state`."""
    random.setstate(_as_tuple(state["python"]))
    npst = state["numpy"]
    np.random.set_state(
        (npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _as_tuple(value: Any) -> Any:
    """Lists back to tuples, recursively (random.setstate needs tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(v) for v in value)
    return value


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``.

    A crash at any moment leaves either the old file or the complete new one, never a partial one
    (a process killed while writing leaves its temporary file: :func:`remove_temp_files`). A failed
    write (a full disk) raises OSError naming ``path`` and the cause, and removes the temporary file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp_path = os.path.join(folder, f".{os.path.basename(path)}{TEMP_SUFFIX}{os.getpid()}")
    try:
        with open(tmp_path, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as err:  # torch's "No space left on device [enforce fail at ...]" names no file
        raise write_error(err, path) from err
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
    """Make the rename durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    path: str,
    model: nn.Module,
    epoch: int,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: Any | None = None,
    cfg_text: str = "",
    class_names: list[str] | None = None,
    rng_states: list[dict[str, Any]] | None = None,
    schedule: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (call on rank 0 only). ``epoch``: finished epochs; ``extra``:
    more plain entries (e.g. ``val`` metrics)."""
    state = {
        "epoch": epoch,
        "model_state": unwrap_model(model).state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scaler_state": scaler.state_dict() if scaler is not None else None,
        "schedule": schedule or {},
        "cfg": cfg_text,
        "class_names": list(class_names) if class_names is not None else None,
        "rng_states": rng_states or [],
        **(extra or {}),
    }
    atomic_torch_save(state, path)


def list_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """``(epoch, path)`` of every ``checkpoint_epoch_*.pyth`` in ``output_dir/checkpoints``, by epoch."""
    folder = get_checkpoint_dir(output_dir)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        match = CHECKPOINT_PATTERN.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(folder, name)))
    return sorted(found)


def list_mid_epoch_checkpoints(output_dir: str) -> list[tuple[int, int, str]]:
    """``(epoch, iteration, path)`` of every mid-epoch checkpoint in ``output_dir/checkpoints``, in order."""
    folder = get_checkpoint_dir(output_dir)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        match = MID_EPOCH_PATTERN.match(name)
        if match:
            found.append((int(match.group(1)), int(match.group(2)), os.path.join(folder, name)))
    return sorted(found)


def resume_points(output_dir: str) -> list[tuple[tuple[int, int], str]]:
    """Every checkpoint training can continue from, as ``((epoch, iteration), path)`` oldest first:
    the epochs' (iteration 0) and the mid-epoch ones."""
    points = [((epoch, 0), path) for epoch, path in list_checkpoints(output_dir)]
    points += [((epoch, iteration), path) for epoch, iteration, path in list_mid_epoch_checkpoints(output_dir)]
    return sorted(points)


def remove_mid_epoch_checkpoints(output_dir: str, keep: str | None = None) -> None:
    """Delete the mid-epoch checkpoints but ``keep`` (one is superseded by any later checkpoint)."""
    for _, _, path in list_mid_epoch_checkpoints(output_dir):
        if path != keep:
            os.remove(path)


def remove_temp_files(output_dir: str) -> list[str]:
    """Delete the temporary files that writers killed mid-write left in ``output_dir`` and its
    checkpoints folder (a checkpoint's can be a gigabyte); call it holding the folder's lock.
    Returns the removed paths."""
    removed = []
    for folder in (output_dir, get_checkpoint_dir(output_dir)):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if is_temp_file(name) and os.path.isfile(path):
                os.remove(path)
                removed.append(path)
    return removed


def find_latest_valid_checkpoint(output_dir: str, mid_epoch: bool = False) -> tuple[str, dict[str, Any]] | None:
    """The newest checkpoint in ``output_dir/checkpoints`` that loads, as ``(path, state)``; with
    ``mid_epoch`` (resuming training) the mid-epoch checkpoints count too.

    Damaged files (truncated, unreadable) are reported with a warning and skipped; None when no
    valid checkpoint exists. Under a process group rank 0 chooses and every rank loads that file,
    so all ranks resume from (or test) the same epoch even where a shared file system shows them
    different directory listings for a while.
    """
    found = None
    if distributed.is_master_proc():
        points = (
            resume_points(output_dir)
            if mid_epoch
            else [((epoch, 0), path) for epoch, path in list_checkpoints(output_dir)]
        )
        found = _first_loadable([path for _, path in reversed(points)])
    chosen = distributed.all_gather_objects(found[0] if found else None)[0]
    if chosen is None:
        return None
    return found if found is not None else (chosen, load_checkpoint_file(chosen))


def _first_loadable(paths: list[str]) -> tuple[str, dict[str, Any]] | None:
    """The first of ``paths`` that loads, as ``(path, state)`` (damaged ones are reported and skipped)."""
    for path in paths:
        try:
            return path, load_checkpoint_file(path)
        except ValueError as err:
            logger.warning("skipping %s; trying the previous checkpoint", err)
    return None


def load_checkpoint(
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: Any | None = None,
    rank: int = 0,
) -> int:
    """Restore model (strict), optimiser, scaler and this rank's RNG state; return finished epochs."""
    unwrap_model(model).load_state_dict(state["model_state"])
    if optimizer is not None and state.get("optimizer_state") is not None:
        optimizer.load_state_dict(state["optimizer_state"])
    if scaler is not None and state.get("scaler_state"):
        scaler.load_state_dict(state["scaler_state"])
    rng_states = state.get("rng_states") or []
    if rank < len(rng_states):
        set_rng_state(rng_states[rank])
    elif rng_states:
        logger.warning(
            "checkpoint has RNG states for %d ranks, not for rank %d: RNG not restored", len(rng_states), rank
        )
    return int(state["epoch"])

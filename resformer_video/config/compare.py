"""Comparing a stored config (YAML text, as checkpoints and study runs keep it) with the current one.

A folder written by one run must not silently take in another: training resumes from a checkpoint
only when the checkpoint's config and the current one agree on everything that changes the result
(:func:`check_resume_config`), and the study reruns a run folder only with its own config. Keys
that say where a run writes, how it logs or how fast it goes are not compared
(:data:`RUN_PLACE_KEYS`); resuming also lets the keys of :data:`RESUME_FREE_KEYS` change, and
``TRAIN.RESUME_ALLOWED_CHANGES`` names more that the user accepts.

A key missing from the stored config (one added to the defaults since) counts as its default; a
stored key that no longer exists is not compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from yacs.config import CfgNode

from resformer_video.config.defaults import get_cfg_defaults
from resformer_video.config.loader import ConfigError, covers

# Where a run writes, how it logs and how fast it loads data: never compared. A key names itself
# and, for a section, every key in it.
RUN_PLACE_KEYS = ("OUTPUT_DIR", "LOG_PERIOD", "DATA_LOADER", "TENSORBOARD")
# What else may differ when training resumes (config/defaults.py, TRAIN.AUTO_RESUME, says why):
# what runs and how it is tested or evaluated, how many epochs in all, the checkpoint period, and
# how the same computation is spread over devices or sped up.
RESUME_FREE_KEYS = RUN_PLACE_KEYS + (
    "TEST",
    "TRAIN.ENABLE",
    "TRAIN.AUTO_RESUME",
    "TRAIN.RESUME_ALLOWED_CHANGES",
    "TRAIN.EVAL_PERIOD",
    "TRAIN.CHECKPOINT_PERIOD",
    "SOLVER.MAX_EPOCH",
    "NUM_GPUS",
    "DIST_BACKEND",
    "DIST_TIMEOUT_MIN",
    "TRAIN.COMPILE",
    "TRAIN.BACKWARD_PER_RESOLUTION",
    "TRAIN.PRECISION_FALLBACK",
    "MODEL.GRAD_CHECKPOINT",
    "MODEL.ATTN_IMPL",
    "DATA.DECODER",
    "DATA.DECODER_FALLBACK",
)
SHOWN_DIFFERENCES = 5


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"SECTION.KEY": value}``."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def config_differences(stored_yaml: str, cfg: CfgNode, free_keys: Sequence[str] = RUN_PLACE_KEYS) -> list[str]:
    """``"KEY: stored -> now"`` for every key not covered by ``free_keys`` whose value differs
    (sorted). Keys the stored config lacks count as their defaults; keys the current defaults
    lack are not compared."""
    now = flatten(yaml.safe_load(cfg.dump()))
    stored = flatten(yaml.safe_load(get_cfg_defaults().dump()))
    stored.update({k: v for k, v in flatten(yaml.safe_load(stored_yaml) or {}).items() if k in now})
    return [
        f"{key}: {stored[key]!r} -> {now[key]!r}"
        for key in sorted(now)
        if not covers(free_keys, key) and stored.get(key) != now[key]
    ]


def summarize_differences(diffs: Sequence[str]) -> str:
    """The first :data:`SHOWN_DIFFERENCES` of ``diffs`` joined with ``; `` (and how many more)."""
    shown = "; ".join(diffs[:SHOWN_DIFFERENCES])
    more = len(diffs) - SHOWN_DIFFERENCES
    return shown + (f"; and {more} more" if more > 0 else "")


def check_resume_config(stored_yaml: str, cfg: CfgNode, checkpoint_path: str) -> None:
    """Raise :class:`ConfigError` (naming ``OUTPUT_DIR``) when the config stored in the checkpoint
    differs from ``cfg`` in a key that changes the result: not in :data:`RESUME_FREE_KEYS` nor in
    ``TRAIN.RESUME_ALLOWED_CHANGES``. A checkpoint without a stored config is not checked."""
    if not stored_yaml.strip():
        return
    free = RESUME_FREE_KEYS + tuple(cfg.TRAIN.RESUME_ALLOWED_CHANGES)
    diffs = config_differences(stored_yaml, cfg, free)
    if not diffs:
        return
    keys = [diff.split(":", 1)[0] for diff in diffs]
    raise ConfigError(
        "OUTPUT_DIR",
        f"{checkpoint_path} was written by a run with another config "
        f"({summarize_differences(diffs)}); resuming would mix two runs. Rerun with that run's "
        f"config, use another OUTPUT_DIR, or accept the changes with TRAIN.RESUME_ALLOWED_CHANGES "
        f'"{keys}"',
    )

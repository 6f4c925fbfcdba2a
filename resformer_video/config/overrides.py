"""Derived configs: a frozen copy of a config with a few keys changed."""

from __future__ import annotations

from typing import Any

from yacs.config import CfgNode


def cfg_with(cfg: CfgNode, *opts: Any) -> CfgNode:
    """A frozen copy of ``cfg`` with ``KEY, VALUE, ...`` overrides (e.g. ``"DATA.TEST_CROP_SIZE", 160``)."""
    out = cfg.clone()
    out.defrost()
    out.merge_from_list(list(opts))
    out.freeze()
    return out

"""Alternating (paired) timing of training-step variants: robust to load from other processes."""

from __future__ import annotations

import logging
import statistics
from typing import Any, Callable

import torch
from yacs.config import CfgNode

from benchmarks.harness.options import BASELINES, BenchmarkOptions
from benchmarks.harness.steps import variant_train_step
from benchmarks.harness.timing import time_calls

logger = logging.getLogger(__name__)


def paired_variants(opts: BenchmarkOptions) -> list[tuple[str, str, str, list[int]]]:
    """``(key, variant, precision, sizes)`` of each step timed in turn: ``sdpa`` and the other
    ``attn_impls`` at the largest training size and ``opts.precision``; below fp32 also the
    baselines at fp32 (keys ``"<impl> fp32"``); with several training sizes the sdpa
    multi-resolution step (key ``"sdpa <s0>+<s1>+..."``)."""
    assert opts.train_sizes is not None and opts.precision is not None
    top = opts.train_sizes[:1]
    out = [(impl, impl, opts.precision, top) for impl in dict.fromkeys(opts.attn_impls)]
    if opts.precision != "fp32":
        out += [(f"{impl} fp32", impl, "fp32", top) for impl in BASELINES if impl in opts.attn_impls]
    if len(opts.train_sizes) > 1:
        multi = "sdpa " + "+".join(str(s) for s in opts.train_sizes)
        out.append((multi, "sdpa", opts.precision, list(opts.train_sizes)))
    return out


def paired_speedups(cfg: CfgNode, opts: BenchmarkOptions, device: torch.device) -> dict[str, Any]:
    """The sdpa training step against each baseline variant, and the multi-resolution step against
    the single-size one, timed alternately.

    All :func:`paired_variants` are built and warmed up, then ``paired_repeats`` times one step of
    each is timed in turn, so that load from other processes hits them alike. ``speedups``: per
    baseline the median of the per-round ratios ``baseline_ms / sdpa_ms``; ``multi_ratio``: the
    median of ``multi_ms / sdpa_ms`` (None with one training size).
    """
    assert opts.train_sizes is not None and opts.batch is not None
    variants = paired_variants(opts)
    steps: dict[str, Callable[[], None]] = {
        key: variant_train_step(cfg, impl, sizes, opts.batch, precision, device)
        for key, impl, precision, sizes in variants
    }
    for step in steps.values():  # at least one warm-up step each (optimiser state, caches)
        for _ in range(max(opts.warmup, 1)):
            step()
    times: dict[str, list[float]] = {key: [] for key in steps}
    for _ in range(opts.paired_repeats):
        for key, step in steps.items():
            times[key] += time_calls(step, device, 0, 1).times_ms
    multi = next((key for key, _, _, sizes in variants if len(sizes) > 1), None)
    ratios = {key: _ratios(times[key], times["sdpa"]) for key in steps if key not in ("sdpa", multi)}
    result = {
        "size": opts.train_sizes[0],
        "precision": opts.precision,
        "batch": opts.batch,
        "times_ms": times,
        "ratios": ratios,
        "speedups": {key: statistics.median(r) for key, r in ratios.items()},
        "multi": multi,
        "multi_ratio": statistics.median(_ratios(times[multi], times["sdpa"])) if multi else None,
    }
    for key, value in result["speedups"].items():
        logger.info(
            "paired sdpa / %s speed-up: %.3f (ratios %s)", key, value, ", ".join(f"{r:.3f}" for r in ratios[key])
        )
    if multi:
        logger.info("paired %s / sdpa step time: %.3f", multi, result["multi_ratio"])
    return result


def _ratios(times_ms: list[float], base_ms: list[float]) -> list[float]:
    """``times_ms / base_ms`` round by round."""
    return [t / b for t, b in zip(times_ms, base_ms)]

"""What bounds a training step: ``torch.profiler``'s top ops and their shares by category."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from yacs.config import CfgNode

from benchmarks.harness.options import BenchmarkOptions
from benchmarks.harness.steps import build_variant, make_train_step
from benchmarks.harness.timing import synchronize, time_calls
from resformer_video.utils.precision import autocast_dtype

# Profiler op and kernel names by category, for :class:`StepBreakdown`; the first match wins.
_OP_CATEGORIES = (
    (
        "attention",
        re.compile(r"scaled_dot_product|sdpa|flash|fmha|efficient_attention|(?<!log_)softmax", re.I),
    ),  # not the loss's log_softmax
    ("gemm", re.compile(r"aten::(mm|addmm|bmm|baddbmm)$|gemm|xmma|cutlass|cublas", re.I)),
)


@dataclass
class StepBreakdown:
    """Where a training step's time goes (shares of the summed self time of the profiled ops, or
    of the CUDA kernels on a GPU) and what that bounds.

    ``gemm`` is the matrix multiplications (on this model the linear layers' forward and backward
    GEMMs, plus the explicit path's attention products); ``attention`` the attention kernels and
    softmax; ``other`` everything else (elementwise, copies, norms, convolutions, optimiser).
    ``gemm_tflops`` is the rate of one stand-alone GEMM of the MLP's shape on the same device and
    precision, for comparison with the step's achieved TFLOP/s.
    """

    shares: dict[str, float]
    gemm_tflops: float | None = None

    @property
    def gemm_bound_speedup(self) -> float:
        """How much faster any step doing the same GEMMs at the same rate could be, at most:
        ``1 / gemm share`` (everything else free)."""
        share = self.shares.get("gemm", 0.0)
        return 1.0 / share if share > 0 else float("inf")

    def describe(self) -> str:
        parts = ", ".join(f"{name} {share:.1%}" for name, share in self.shares.items())
        text = (
            f"time by category: {parts}. A step with these GEMMs at this rate can be at most "
            f"{self.gemm_bound_speedup:.2f}x faster (everything but the GEMMs free)."
        )
        if self.gemm_tflops is not None:
            text += f" A stand-alone GEMM of the MLP's shape runs at {self.gemm_tflops:.3g} TFLOP/s here."
        return text


def _category(name: str) -> str:
    return next((cat for cat, pattern in _OP_CATEGORIES if pattern.search(name)), "other")


def breakdown_from_profile(events: Sequence[Any], device: torch.device) -> dict[str, float]:
    """Shares of self time by category from ``prof.key_averages()``: every op's self CPU time on
    CPU, the CUDA kernels' time on a GPU (the ops that launch them would count it twice)."""
    totals = {"gemm": 0.0, "attention": 0.0, "other": 0.0}
    for event in events:
        if device.type == "cuda":
            if getattr(event, "device_type", None) != torch.autograd.DeviceType.CUDA:
                continue
            spent = event.self_device_time_total
        else:
            spent = event.self_cpu_time_total
        totals[_category(event.key)] += spent
    grand = sum(totals.values()) or 1.0
    return {cat: value / grand for cat, value in totals.items()}


def standalone_gemm_tflops(
    tokens: int, width: int, hidden: int, precision: str, device: torch.device, repeats: int = 5
) -> float:
    """TFLOP/s of ``(tokens, width) @ (width, hidden)`` (the MLP's first layer over a step's
    tokens) in ``precision``, median of ``repeats`` after one warm-up."""
    dtype = autocast_dtype(precision) or torch.float32
    a = torch.randn(tokens, width, device=device, dtype=dtype)
    b = torch.randn(width, hidden, device=device, dtype=dtype)
    timing = time_calls(lambda: torch.mm(a, b), device, 1, repeats)
    return 2.0 * tokens * width * hidden / (timing.median_ms / 1000.0) / 1e12


def profile_train_step(
    cfg: CfgNode, opts: BenchmarkOptions, device: torch.device, row_limit: int = 15
) -> tuple[str, StepBreakdown]:
    """``torch.profiler``'s top ops (by self time) of the sdpa single-size step and its
    :class:`StepBreakdown`."""
    from torch.profiler import ProfilerActivity, profile

    assert opts.train_sizes is not None and opts.batch is not None
    model = build_variant(cfg, "sdpa", device)
    step = make_train_step(cfg, model, opts.train_sizes[:1], opts.batch, opts.precision, device)
    step()  # warm-up outside the trace
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(opts.profile_steps):
            step()
        synchronize(device)
    events = prof.key_averages()
    sort_by = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = events.table(sort_by=sort_by, row_limit=row_limit)
    size, patch = opts.train_sizes[0], cfg.MODEL.PATCH_SIZE
    tokens = opts.batch * cfg.DATA.NUM_FRAMES * (size // patch) ** 2
    width = model.num_features
    del model, step
    gemm = standalone_gemm_tflops(tokens, width, int(width * 4), str(opts.precision), device)
    return table, StepBreakdown(breakdown_from_profile(events, device), gemm)

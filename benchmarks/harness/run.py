"""Training-step and inference throughput, peak memory and FLOP utilisation of a configured model.

:func:`run_benchmark` measures, on random clips (no data loading; ``benchmarks/benchmark_data.py``
measures decoding), for the architecture, frames, batch, precision and attention of a config:

- ``train``: one training step of the engine (``forward_backward`` with its
  :class:`MultiResolutionLoss`, then ``optimizer_step``) at the largest training size for each
  step variant - our model with ``MODEL.ATTN_IMPL sdpa`` and ``explicit`` (softmax(QK^T)V as in
  TimeSformer), and ``timesformer``: TimeSformer's own model (:class:`TimeSformerReference`, its
  forward op for op) at the same width, depth, frames and size -, the multi-resolution step over
  all training sizes (cross-entropy per size + scale consistency), and - at bf16/fp16 - the fp32
  baseline steps of the mixed-precision speed-up;
- ``infer``: a no-grad forward at each resolution of the test sweep.

Each row gives the median step time, clips/s, peak memory (see :mod:`.timing`), achieved TFLOP/s
(FLOPs = 2 x the multiply-adds of :func:`count_flops`; a training step counts 3 x the forward) and,
where the device's peak is known (:data:`~.hardware.PEAK_TFLOPS` or ``peak_tflops``), the model
FLOPs utilisation. :func:`~.report.check_targets` compares the rows with the project's speed
targets; :func:`paired_speedups` times the variants alternately (robust to load from other
processes), and :func:`~.profile.profile_train_step` says what bounds the step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Callable

import torch
from torch import nn
from yacs.config import CfgNode

from benchmarks.harness.hardware import device_peak_tflops, machine_info
from benchmarks.harness.options import BASELINES, BenchmarkOptions, resolve_options
from benchmarks.harness.paired import paired_speedups
from benchmarks.harness.profile import profile_train_step
from benchmarks.harness.report import BenchmarkReport, BenchmarkRow, check_targets, compare_rows
from benchmarks.harness.steps import build_variant, make_infer_step, variant_train_step
from benchmarks.harness.timing import PeakMemoryMeter, Timing, time_calls
from resformer_video.models import count_flops

logger = logging.getLogger(__name__)


class _FlopCache:
    """Forward multiply-adds per clip, counted once per (frames, size) with ``count_flops``."""

    def __init__(self, cfg: CfgNode) -> None:
        self.cfg = cfg
        self._macs: dict[tuple[int, int], float] = {}
        self._model: nn.Module | None = None

    def forward_flops(self, frames: int, size: int) -> float:
        """FLOPs (2 x multiply-adds) of one forward of one clip ``(3, frames, size, size)``."""
        key = (frames, size)
        if key not in self._macs:
            if self._model is None:
                self._model = build_variant(self.cfg, "sdpa", torch.device("cpu")).eval()
            self._macs[key] = float(count_flops(self._model, frames, size, size))
        return 2.0 * self._macs[key]


def measure(
    name: str,
    mode: str,
    step: Callable[[], None],
    *,
    attn_impl: str,
    precision: str,
    sizes: Sequence[int],
    batch: int,
    frames: int,
    device: torch.device,
    warmup: int,
    repeats: int,
    flops_per_clip: float | None,
    peak: float | None,
) -> BenchmarkRow:
    """Time ``step`` (warm-up + median of repeats) under a peak-memory meter and make its row."""
    with PeakMemoryMeter(device) as meter:
        timing: Timing = time_calls(step, device, warmup, repeats)
    mem = meter.result
    assert mem is not None
    clips_per_s = batch / (timing.median_ms / 1000.0)
    tflops = None if flops_per_clip is None else flops_per_clip * clips_per_s / 1e12
    mfu = None if (tflops is None or not peak) else tflops / peak
    gflops = None if flops_per_clip is None else flops_per_clip / 1e9
    logger.info("%s: %.1f ms/step (median of %d), %.3g clips/s", name, timing.median_ms, repeats, clips_per_s)
    return BenchmarkRow(
        name,
        mode,
        attn_impl,
        precision,
        list(sizes),
        batch,
        frames,
        timing.median_ms,
        timing.min_ms,
        timing.max_ms,
        repeats,
        clips_per_s,
        mem.peak_mb,
        mem.base_mb,
        mem.kind,
        gflops,
        tflops,
        mfu,
    )


def _train_variants(opts: BenchmarkOptions) -> list[tuple[str, str, str, list[int]]]:
    """(name, attn_impl, precision, sizes) of every training row."""
    assert opts.train_sizes is not None
    top = [opts.train_sizes[0]]
    rows = [(f"train {impl} {top[0]}", impl, opts.precision, top) for impl in opts.attn_impls]
    if len(opts.train_sizes) > 1:
        multi = "+".join(str(s) for s in opts.train_sizes)
        rows.append((f"train sdpa {multi}", "sdpa", opts.precision, list(opts.train_sizes)))
    if opts.precision != "fp32":
        rows += [(f"train {impl} {top[0]} fp32", impl, "fp32", top) for impl in BASELINES if impl in opts.attn_impls]
    return rows


def _run_train(
    cfg: CfgNode, opts: BenchmarkOptions, device: torch.device, flops: _FlopCache, peak_override: float | None
) -> list[BenchmarkRow]:
    frames, batch = cfg.DATA.NUM_FRAMES, opts.batch
    assert batch is not None
    rows = []
    for name, impl, precision, sizes in _train_variants(opts):
        step = variant_train_step(cfg, impl, sizes, batch, precision, device)
        train_flops = 3.0 * sum(flops.forward_flops(frames, s) for s in sizes)
        peak = peak_override or device_peak_tflops(device, precision)
        rows.append(
            measure(
                name,
                "train",
                step,
                attn_impl=impl,
                precision=precision,
                sizes=sizes,
                batch=batch,
                frames=frames,
                device=device,
                warmup=opts.warmup,
                repeats=opts.repeats,
                flops_per_clip=train_flops,
                peak=peak,
            )
        )
        del step
        _free(device)
    return rows


def _run_infer(
    cfg: CfgNode, opts: BenchmarkOptions, device: torch.device, flops: _FlopCache, peak_override: float | None
) -> list[BenchmarkRow]:
    frames, batch = cfg.DATA.NUM_FRAMES, opts.batch
    assert batch is not None and opts.resolutions is not None
    model = build_variant(cfg, "sdpa", device)
    peak = peak_override or device_peak_tflops(device, opts.precision)
    rows = []
    for size in opts.resolutions:
        step = make_infer_step(model, size, batch, frames, opts.precision, device)
        rows.append(
            measure(
                f"infer sdpa {size}",
                "infer",
                step,
                attn_impl="sdpa",
                precision=opts.precision,
                sizes=[size],
                batch=batch,
                frames=frames,
                device=device,
                warmup=opts.warmup,
                repeats=opts.repeats,
                flops_per_clip=flops.forward_flops(frames, size),
                peak=peak,
            )
        )
    return rows


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_benchmark(cfg: CfgNode, opts: BenchmarkOptions) -> BenchmarkReport:
    """Measure the rows chosen by ``opts.mode`` and check the targets (see the module docstring)."""
    opts = resolve_options(cfg, opts)
    device = torch.device(opts.device)
    report = BenchmarkReport(machine_info(device), _setup(cfg, opts))
    flops = _FlopCache(cfg)
    if opts.mode in ("train", "all"):
        report.rows += _run_train(cfg, opts, device, flops, opts.peak_tflops)
    if opts.mode in ("infer", "all"):
        report.rows += _run_infer(cfg, opts, device, flops, opts.peak_tflops)
    if opts.paired_repeats > 0:
        report.paired = paired_speedups(cfg, opts, device)
    report.targets = check_targets(report.rows, device, report.paired)
    report.comparisons = compare_rows(report.rows)
    if opts.profile:
        report.profile, breakdown = profile_train_step(cfg, opts, device)
        report.breakdown = {
            **asdict(breakdown),
            "gemm_bound_speedup": breakdown.gemm_bound_speedup,
            "summary": breakdown.describe(),
        }
    return report


def _setup(cfg: CfgNode, opts: BenchmarkOptions) -> dict[str, Any]:
    return {
        "arch": cfg.MODEL.ARCH,
        "depth": cfg.MODEL.DEPTH,
        "attention_type": cfg.MODEL.ATTENTION_TYPE,
        "pos_embed": cfg.MODEL.POS_EMBED,
        "frames": cfg.DATA.NUM_FRAMES,
        "num_classes": cfg.MODEL.NUM_CLASSES,
        "grad_checkpoint": cfg.MODEL.GRAD_CHECKPOINT,
        "optimizer": cfg.SOLVER.OPTIMIZING_METHOD,
        "sc_weight": cfg.SCALE_CONSISTENCY.WEIGHT,
        **{k: v for k, v in asdict(opts).items() if k not in ("profile", "profile_steps")},
    }

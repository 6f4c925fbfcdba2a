"""Benchmark results: the rows, the report, the project's speed targets and the Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from benchmarks.harness.options import BASELINES, TIMESFORMER

# Speed targets: the sdpa training step against the explicit one at equal config (CPU fp32); on a
# CPU with native bf16 the bf16 step against TimeSformer's own model in fp32, and the
# multi-resolution step's time against the single-size one's (at most); on a GPU in bf16 against
# the fp32 explicit step, plus a minimum MFU.
CPU_SDPA_SPEEDUP_TARGET = 1.2
CPU_BF16_SPEEDUP_TARGET = 2.2
MULTI_RES_TIME_RATIO_TARGET = 1.9
GPU_BF16_SPEEDUP_TARGET = 3.0
GPU_MFU_TARGET = 0.45


@dataclass
class BenchmarkRow:
    """One measured configuration; times in ms, memory in MiB, throughput in clips/s."""

    name: str
    mode: str
    attn_impl: str
    precision: str
    sizes: list[int]
    batch: int
    frames: int
    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    clips_per_s: float
    peak_mem_mb: float
    base_mem_mb: float
    mem_kind: str
    gflops_per_clip: float | None = None
    tflops: float | None = None
    mfu: float | None = None


@dataclass
class BenchmarkReport:
    machine: dict[str, Any]
    setup: dict[str, Any]
    rows: list[BenchmarkRow] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[str] = field(default_factory=list)
    paired: dict[str, Any] = field(default_factory=dict)
    profile: str = ""
    breakdown: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _find(rows: Sequence[BenchmarkRow], impl: str, precision: str, multi: bool = False) -> BenchmarkRow | None:
    """The first training row of ``impl`` at ``precision``, single-size or (``multi``) not."""
    for row in rows:
        if (
            row.mode == "train"
            and (len(row.sizes) > 1) == multi
            and row.attn_impl == impl
            and row.precision == precision
        ):
            return row
    return None


def check_targets(
    rows: Sequence[BenchmarkRow], device: torch.device, paired: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The speed targets that these rows can answer, each with its value, threshold and ``met``.

    CPU fp32: the sdpa step >= 1.2x each baseline step (``explicit``, ``timesformer``). CPU bf16:
    the bf16 sdpa step >= 2.2x TimeSformer's model's fp32 step, and the multi-resolution step
    <= 1.9x the time of the single-size one. On CPU both come from the alternating ``paired``
    measurement when given, else from the rows. CUDA: the bf16 sdpa step >= 3x each fp32 baseline
    step, and bf16 sdpa MFU >= 45% (when the peak is known).
    """
    if device.type == "cuda":
        return _cuda_targets(rows)
    if paired and paired["precision"] in ("fp32", "bf16"):
        return _cpu_paired_targets(paired)
    targets = []
    sdpa32, sdpa16 = _find(rows, "sdpa", "fp32"), _find(rows, "sdpa", "bf16")
    for impl in BASELINES:
        base32 = _find(rows, impl, "fp32")
        if sdpa32 and base32:
            targets.append(
                _target(
                    f"cpu fp32 train: sdpa / {impl} speed-up",
                    sdpa32.clips_per_s / base32.clips_per_s,
                    CPU_SDPA_SPEEDUP_TARGET,
                )
            )
    timesformer32, multi16 = _find(rows, TIMESFORMER, "fp32"), _find(rows, "sdpa", "bf16", multi=True)
    if sdpa16 and timesformer32:
        targets.append(
            _target(
                "cpu train: bf16 sdpa / fp32 timesformer speed-up",
                sdpa16.clips_per_s / timesformer32.clips_per_s,
                CPU_BF16_SPEEDUP_TARGET,
            )
        )
    if sdpa16 and multi16:
        targets.append(_multi_res_target("cpu bf16 train", multi16.median_ms / sdpa16.median_ms))
    return targets


def _cpu_paired_targets(paired: dict[str, Any]) -> list[dict[str, Any]]:
    speedups = paired["speedups"]
    if paired["precision"] == "fp32":
        return [
            _target(f"cpu fp32 train: sdpa / {impl} speed-up (paired)", value, CPU_SDPA_SPEEDUP_TARGET)
            for impl, value in speedups.items()
        ]
    targets = []
    baseline = f"{TIMESFORMER} fp32"
    if baseline in speedups:
        targets.append(
            _target(
                "cpu train: bf16 sdpa / fp32 timesformer speed-up (paired)", speedups[baseline], CPU_BF16_SPEEDUP_TARGET
            )
        )
    if paired.get("multi_ratio") is not None:
        targets.append(_multi_res_target("cpu bf16 train", paired["multi_ratio"], " (paired)"))
    return targets


def _cuda_targets(rows: Sequence[BenchmarkRow]) -> list[dict[str, Any]]:
    targets = []
    sdpa16 = _find(rows, "sdpa", "bf16")
    for impl in BASELINES:
        base32 = _find(rows, impl, "fp32")
        if sdpa16 and base32:
            targets.append(
                _target(
                    f"cuda train: bf16 sdpa / fp32 {impl} speed-up",
                    sdpa16.clips_per_s / base32.clips_per_s,
                    GPU_BF16_SPEEDUP_TARGET,
                )
            )
    if sdpa16 and sdpa16.mfu is not None:
        targets.append(_target("cuda train: bf16 sdpa MFU", sdpa16.mfu, GPU_MFU_TARGET))
    return targets


def _multi_res_target(prefix: str, ratio: float, suffix: str = "") -> dict[str, Any]:
    return _target(
        f"{prefix}: multi-resolution / single-size step time{suffix}", ratio, MULTI_RES_TIME_RATIO_TARGET, at_most=True
    )


def compare_rows(rows: Sequence[BenchmarkRow]) -> list[str]:
    """One line per informative ratio: multi-resolution vs single-size step (time and FLOPs), and
    each attention implementation's step time against the first row's."""
    lines = []
    singles = [r for r in rows if r.mode == "train" and len(r.sizes) == 1]
    for multi in (r for r in rows if r.mode == "train" and len(r.sizes) > 1):
        base = next(
            (
                r
                for r in singles
                if r.attn_impl == multi.attn_impl and r.precision == multi.precision and r.sizes[0] == multi.sizes[0]
            ),
            None,
        )
        if base is not None:
            flop_ratio = (
                multi.gflops_per_clip / base.gflops_per_clip
                if multi.gflops_per_clip and base.gflops_per_clip
                else float("nan")
            )
            lines.append(
                f"{multi.name} takes {multi.median_ms / base.median_ms:.2f}x the time of "
                f"{base.name} for {flop_ratio:.2f}x the FLOPs"
            )
    for row in singles[1:]:
        lines.append(
            f"{singles[0].name} is {row.median_ms / singles[0].median_ms:.2f}x as fast "
            f"as {row.name} by the median step ({row.min_ms / singles[0].min_ms:.2f}x by "
            f"the fastest step, which load on the machine disturbs least)"
        )
    return lines


def _target(name: str, value: float, threshold: float, at_most: bool = False) -> dict[str, Any]:
    """A target: ``value >= threshold`` (or ``<=`` with ``at_most``)."""
    met = value <= threshold if at_most else value >= threshold
    return {"name": name, "value": value, "threshold": threshold, "bound": "<=" if at_most else ">=", "met": met}


_COLUMNS = (
    ("step", "name", "{}"),
    ("batch", "batch", "{}"),
    ("ms/step", "median_ms", "{:.1f}"),
    ("min ms", "min_ms", "{:.1f}"),
    ("clips/s", "clips_per_s", "{:.3g}"),
    ("peak MiB", "peak_mem_mb", "{:.0f}"),
    ("base MiB", "base_mem_mb", "{:.0f}"),
    ("GFLOP/clip", "gflops_per_clip", "{:.4g}"),
    ("TFLOP/s", "tflops", "{:.3g}"),
    ("MFU", "mfu", "{:.1%}"),
)


def format_report(report: BenchmarkReport) -> str:
    """The report as Markdown: setup line, one table of rows, the targets and the profile."""
    m, s = report.machine, report.setup
    native_bf16 = ", ".join(m.get("cpu_bf16", [])) or "none"
    lines = [
        f"machine: {m['cpu']} ({m['cpu_count']} cores, {m['torch_threads']} torch threads, "
        f"load {m['load_avg_1_5_15']}, native bf16 {native_bf16})"
        + (f", GPU {m['gpu']}" if "gpu" in m else "")
        + f", torch {m['torch']}",
        f"model: {s['arch']} depth {s['depth'] or 'default'}, {s['frames']} frames, "
        f"{s['attention_type']}, precision {s['precision']}, device {s['device']}, "
        f"warm-up {s['warmup']}, median of {s['repeats']}",
    ]
    if s["device"] == "cpu" and s["precision"] == "bf16" and native_bf16 == "none":
        lines.append(
            "note: this CPU has no native bf16 (no AVX512-BF16 / AMX-BF16): its bf16 "
            "steps are emulated, so they say nothing about the bf16 targets"
        )
    if report.rows:
        lines += ["", "| " + " | ".join(c[0] for c in _COLUMNS) + " |", "|" + "|".join("---" for _ in _COLUMNS) + "|"]
    for row in report.rows:
        cells = [_cell(fmt, getattr(row, attr)) for _, attr, fmt in _COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + report.comparisons if report.comparisons else []
    if report.paired:
        p = report.paired
        times = ", ".join(f"{impl} ms {_ms_list(ms)}" for impl, ms in p["times_ms"].items())
        speedups = ", ".join(f"over {impl} {value:.3f}" for impl, value in p["speedups"].items())
        lines.append(
            f"paired (alternating) training steps at {p['size']}, {p['precision']}, "
            f"batch {p['batch']}: {times}; sdpa speed-up (median of rounds) {speedups}"
        )
        if p.get("multi_ratio") is not None:
            lines.append(
                f"paired multi-resolution ({p['multi']}) / single-size step time "
                f"(median of rounds): {p['multi_ratio']:.3f}"
            )
    for target in report.targets:
        lines.append(
            f"\ntarget {target['name']}: {target['value']:.3g} "
            f"({target['bound']} {target['threshold']:g}) "
            f"{'met' if target['met'] else 'MISSED'}"
        )
    if report.profile:
        lines += [
            "",
            "top ops of the sdpa training step (torch.profiler):",
            report.profile,
            report.breakdown["summary"],
        ]
    return "\n".join(lines)


def _ms_list(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in values) + "]"


def _cell(fmt: str, value: Any) -> str:
    return "-" if value is None else fmt.format(value)

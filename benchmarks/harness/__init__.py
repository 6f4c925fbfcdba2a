"""Speed and memory of the engine's training step and of inference (``benchmarks/benchmark.py``).

- :mod:`.options`: what to measure (:class:`BenchmarkOptions`) and its defaults from the config;
- :mod:`.steps`: one engine training step / one inference forward as a closure, per variant
  (our model with sdpa or explicit attention, TimeSformer's own model);
- :mod:`.timing`: wall time and peak memory of calls, on CPU and CUDA;
- :mod:`.run`: the measured rows (:func:`run_benchmark`); :mod:`.paired`: alternating timing;
- :mod:`.profile`: what bounds a step; :mod:`.hardware`: the machine and GPU peak FLOP rates;
- :mod:`.report`: rows, the speed targets and the Markdown report;
- :mod:`.timesformer_reference`: TimeSformer's model op for op (the baseline).
"""

from benchmarks.harness.hardware import device_peak_tflops, machine_info, peak_tflops_for
from benchmarks.harness.options import (
    BASELINES,
    MODES,
    PRECISIONS,
    STEP_VARIANTS,
    BenchmarkOptionError,
    BenchmarkOptions,
    resolve_options,
)
from benchmarks.harness.paired import paired_speedups
from benchmarks.harness.profile import StepBreakdown, breakdown_from_profile, profile_train_step
from benchmarks.harness.report import BenchmarkReport, BenchmarkRow, check_targets, compare_rows, format_report
from benchmarks.harness.run import run_benchmark

__all__ = [
    "BASELINES",
    "MODES",
    "PRECISIONS",
    "STEP_VARIANTS",
    "BenchmarkOptionError",
    "BenchmarkOptions",
    "BenchmarkReport",
    "BenchmarkRow",
    "StepBreakdown",
    "breakdown_from_profile",
    "check_targets",
    "compare_rows",
    "device_peak_tflops",
    "format_report",
    "machine_info",
    "paired_speedups",
    "peak_tflops_for",
    "profile_train_step",
    "resolve_options",
    "run_benchmark",
]

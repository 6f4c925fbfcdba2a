"""Timing and peak-memory measurement for benchmarks, on CPU and CUDA.

Timing: ``warmup`` untimed calls, then ``repeats`` timed calls; the median is reported. On CUDA
each call is bracketed by CUDA events and the stream is synchronised before reading them; on CPU
``time.perf_counter`` is used.

Peak memory:
- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` - bytes held by
  tensors (weights, optimiser state, activations, workspaces), not the caching allocator's reserve.
- CPU: the process's peak resident set size (``VmHWM`` in ``/proc/self/status``) over the
  measurement, after resetting it by writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0). It
  covers the whole process (Python, libraries, weights, optimiser state, activations), so
  ``base_mb`` (the resident size just before) is reported too; ``peak - base`` is what the measured
  calls added. Before reading the base, freed heap memory is handed back to the OS (glibc
  ``malloc_trim``), so memory freed by an earlier measurement does not hide this one's growth.
  Where the reset is not possible (non-Linux), ``ru_maxrss`` is used and
  ``reset`` is False: the value is then the peak since the process started.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch

_MIB = 1024.0 * 1024.0


@dataclass
class Timing:
    """Per-call wall times of the timed repeats, in milliseconds."""

    times_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def min_ms(self) -> float:
        return min(self.times_ms)

    @property
    def max_ms(self) -> float:
        return max(self.times_ms)


@dataclass
class MemoryPeak:
    """Peak and starting memory of a measurement, in MiB (see the module docstring)."""

    peak_mb: float
    base_mb: float
    kind: str  # "cuda_allocated" or "cpu_rss"
    reset: bool  # False when the CPU peak could not be reset (peak since process start)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed (CUDA events on GPU)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    timer = _cuda_call_ms if device.type == "cuda" else _cpu_call_ms
    return Timing([timer(fn, device) for _ in range(repeats)])


def _cuda_call_ms(fn: Callable[[], object], device: torch.device) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize(device)
    return float(start.elapsed_time(end))


def _cpu_call_ms(fn: Callable[[], object], device: torch.device) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


class PeakMemoryMeter:
    """Context manager measuring the peak memory of the code it wraps; ``result`` after exit."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.result: MemoryPeak | None = None
        self._base = 0.0
        self._reset = False

    def __enter__(self) -> PeakMemoryMeter:
        synchronize(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device) / _MIB
        else:
            release_cpu_memory()
            self._reset = _reset_cpu_peak()
            self._base = _proc_status_mb("VmRSS") or 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / _MIB
            self.result = MemoryPeak(peak, self._base, "cuda_allocated", True)
        else:
            peak = _proc_status_mb("VmHWM") if self._reset else None
            if peak is None:
                peak = _ru_maxrss_mb()
            self.result = MemoryPeak(peak, self._base, "cpu_rss", self._reset)


def release_cpu_memory() -> None:
    """Collect garbage and return free heap pages to the OS (glibc ``malloc_trim``; no-op elsewhere)."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    try:
        trim = ctypes.CDLL(libc_name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)


def _reset_cpu_peak() -> bool:
    """Reset the process's peak RSS (Linux ``clear_refs`` 5); False where that is unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _proc_status_mb(field: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` (e.g. ``VmRSS``, ``VmHWM``) in MiB, None if absent."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _ru_maxrss_mb() -> float:
    """Peak RSS since process start (kB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / _MIB if sys.platform == "darwin" else value / 1024.0

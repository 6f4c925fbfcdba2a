"""What machine this is: CPU model and feature flags, its class (AVX-512 / AVX2 / other), core and
thread counts, torch version and GPU. The one reader of ``/proc/cpuinfo`` in the package; result
files (study, benchmarks) record :func:`machine_info` next to their numbers."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

CPUINFO = "/proc/cpuinfo"


def _cpuinfo_lines(prefixes: tuple, path: str = CPUINFO) -> list:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.split(":", 1)[-1].strip() for line in handle if line.startswith(prefixes)]
    except OSError:
        return []


def cpu_flags(path: str = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (x86 ``flags``: ``avx2``, ``avx512f``,
    ``avx512_bf16`` ...; ARM ``Features``); where ``path`` cannot be read (other systems), the
    vector level torch detected (``avx2`` / ``avx512f``) or nothing."""
    lines = _cpuinfo_lines(("flags", "Features"), path)
    if lines:
        return frozenset(flag for line in lines for flag in line.split())
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")().lower()
    return frozenset({"avx2", "avx512f"} if "avx512" in capability else {"avx2"} if "avx2" in capability else ())


def cpu_model(path: str = CPUINFO) -> str:
    """The CPU's model name (``platform.processor()`` where ``path`` cannot be read)."""
    names = _cpuinfo_lines(("model name",), path)
    return names[0] if names else (platform.processor() or "unknown")


def cpu_class(flags: frozenset[str] | None = None) -> str:
    """``"AVX-512 with native bf16"``, ``"AVX-512"``, ``"AVX2"`` or the machine's architecture:
    the CPU classes whose float rounding (and libx264 code paths) differ."""
    flags = cpu_flags() if flags is None else flags
    if "avx512f" in flags:
        native = {"avx512_bf16", "amx_bf16"} & set(flags)
        return "AVX-512 with native bf16" if native else "AVX-512"
    if "avx2" in flags:
        return "AVX2"
    return platform.machine() or "unknown"


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """Platform, CPU model, class and count, load, torch version and threads, GPU when there is one
    (``device``'s, else GPU 0's)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "host": platform.node(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_class": cpu_class(),
        "cpu_count": os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if device is not None:
        info["device"] = device.type
    if (device is None or device.type == "cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device if device is not None else 0)
        info["cuda"] = torch.version.cuda
    return info

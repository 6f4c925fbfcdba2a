"""Numeric precision: the one place for its names, their autocast dtypes and the device checks.

Names: ``fp32`` (no autocast), ``bf16`` and ``fp16`` (``torch.autocast`` at that dtype). Configs
may still say ``none`` (the old name of ``fp32``; :data:`LEGACY_ALIASES`).

Where each runs:

- ``fp32`` everywhere;
- ``bf16`` on a GPU that supports it (``torch.cuda.is_bf16_supported``) and on a CPU with native
  bf16 arithmetic (:func:`cpu_bf16_features`: AVX512-BF16 or AMX-BF16 on x86, the BF16 extension
  on ARM). Elsewhere bf16 is emulated and far slower than float32 (about 50x on an AVX2-only CPU):
  the engine refuses it (or falls back to float32 with ``TRAIN.PRECISION_FALLBACK``), an explicit
  request from a tool (``tools/predict.py --precision bf16``) runs with a warning;
- ``fp16`` on CUDA only (with a gradient scaler when training).

:func:`config_precision` resolves ``TRAIN.MIXED_PRECISION`` for the training and test loops;
:func:`default_precision` is the inference default (``bf16`` where it is native, else ``fp32``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from contextlib import AbstractContextManager
from typing import Callable

import torch
from yacs.config import CfgNode

from resformer_video.errors import ConfigError, PrecisionUnavailable  # noqa: F401  (re-exported here)
from resformer_video.utils.machine import CPUINFO, cpu_flags

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")
LEGACY_ALIASES: dict[str, str] = {"none": "fp32"}
# What TRAIN.MIXED_PRECISION accepts.
CONFIG_PRECISIONS = PRECISIONS + tuple(LEGACY_ALIASES)
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MIXED_PRECISION_KEY = "TRAIN.MIXED_PRECISION"
FALLBACK_KEY = "TRAIN.PRECISION_FALLBACK"
# CPU features (names of torch.cpu.get_capabilities and of /proc/cpuinfo flags) that give native
# bf16 arithmetic: x86 AVX512-BF16 and AMX-BF16; ARM's BF16 extension (FEAT_BF16 / SVE-BF16).
X86_BF16_FEATURES = ("avx512_bf16", "amx_bf16")
ARM_BF16_FEATURES = ("bf16", "sve_bf16")


def canonical_precision(name: str) -> str:
    """``name`` as one of :data:`PRECISIONS` (``none`` -> ``fp32``).

    Raises:
        ValueError: an unknown name.
    """
    name = LEGACY_ALIASES.get(name, name)
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {name!r}")
    return name


def autocast_dtype(name: str) -> torch.dtype | None:
    """The autocast dtype of precision ``name`` (None for ``fp32``)."""
    return AUTOCAST_DTYPES[canonical_precision(name)]


def cpu_bf16_features() -> tuple[str, ...]:
    """This CPU's native-bf16 features (empty without any): torch's runtime CPU detection
    (``torch.cpu.get_capabilities``) joined with the flags of ``/proc/cpuinfo`` (Linux).

    ``torch.ops.mkldnn._is_mkldnn_bf16_supported`` is not used: it asks whether oneDNN can run
    bf16 at all, which it also does on AVX-512 CPUs without AVX512-BF16, by conversion (slower
    than fp32).
    """
    wanted = ARM_BF16_FEATURES if _is_arm() else X86_BF16_FEATURES
    found = _torch_cpu_features(wanted) | _cpuinfo_flags(wanted)
    return tuple(name for name in wanted if name in found)


def _is_arm() -> bool:
    return platform.machine().lower() in ("arm64", "aarch64")


def _torch_cpu_features(wanted: tuple[str, ...]) -> set:
    get_capabilities: Callable[[], dict[str, object]] | None = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is None:  # older torch: only the AVX512-BF16 probe
        probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        return {"avx512_bf16"} if probe is not None and probe() else set()
    caps = get_capabilities()
    return {name for name in wanted if caps.get(name) is True}


def _cpuinfo_flags(wanted: tuple[str, ...], path: str = CPUINFO) -> set:
    """Which of ``wanted`` the ``flags`` (x86) or ``Features`` (ARM) lines of ``path`` list."""
    flags = cpu_flags(path) if os.path.isfile(path) else frozenset()
    # The kernel spells ARM's SVE-BF16 "svebf16".
    return {name for name in wanted if name in flags or name.replace("_", "") in flags}


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes in bf16 natively (see :func:`cpu_bf16_features`)."""
    return bool(cpu_bf16_features())


def bf16_is_native(device: torch.device) -> bool:
    """bf16 runs at full speed on ``device``: a GPU that supports it, a CPU with native bf16."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def unavailable_reason(name: str, device: torch.device) -> str | None:
    """Why precision ``name`` should not run on ``device`` (None when it runs natively)."""
    name = canonical_precision(name)
    if name == "fp16" and device.type != "cuda":
        where = "the CPU" if device.type == "cpu" else device.type
        return f"fp16 autocast is for CUDA GPUs, not {where}; use fp32 or bf16"
    if name != "bf16" or bf16_is_native(device):
        return None
    if device.type == "cuda":
        return "bf16 is not supported by this GPU; use fp16 or fp32"
    wanted = "/".join(ARM_BF16_FEATURES if _is_arm() else X86_BF16_FEATURES)
    return (
        f"this {device.type} has no native bf16 (none of the CPU flags {wanted}); emulated "
        "bf16 is far slower than fp32 here"
    )


def check_precision(name: str, device: torch.device, allow_emulated: bool = False) -> str:
    """``name`` (canonical) if it can run on ``device``.

    Args:
        allow_emulated: run bf16 on a CPU without native bf16 anyway (with a warning): for an
            explicit request from a tool, where slow is still correct.

    Raises:
        ValueError: an unknown name.
        PrecisionUnavailable: fp16 off CUDA, bf16 on a GPU without it, bf16 on a CPU without
            native bf16 (unless ``allow_emulated``).
    """
    name = canonical_precision(name)
    reason = unavailable_reason(name, device)
    if reason is None:
        return name
    if allow_emulated and name == "bf16" and device.type == "cpu":
        logger.warning("precision bf16: %s; running it as asked", reason)
        return name
    raise PrecisionUnavailable(f"precision {name}: {reason}")


def default_precision(device: torch.device) -> str:
    """The inference default on ``device``: ``bf16`` where it is native (CUDA or CPU), else
    ``fp32``."""
    return "bf16" if bf16_is_native(device) else "fp32"


def config_precision(cfg: CfgNode, device: torch.device) -> str:
    """The precision the training and test loops use on ``device`` for ``TRAIN.MIXED_PRECISION``.

    When it cannot run there and ``TRAIN.PRECISION_FALLBACK`` is True, ``fp32`` (logged as a
    warning); fp16 off CUDA is an error either way.

    Raises:
        ConfigError: naming ``TRAIN.MIXED_PRECISION``, with the reason.
    """
    requested = canonical_precision(cfg.TRAIN.MIXED_PRECISION)
    reason = unavailable_reason(requested, device)
    if reason is None:
        return requested
    if requested == "bf16" and cfg.TRAIN.PRECISION_FALLBACK:
        logger.warning("%s bf16: %s; %s is True: running in fp32", MIXED_PRECISION_KEY, reason, FALLBACK_KEY)
        return "fp32"
    hint = f" (or set {FALLBACK_KEY} True to run in fp32)" if requested == "bf16" else ""
    raise _config_error(f"{reason}{hint}")


def _config_error(message: str) -> ValueError:
    return ConfigError(MIXED_PRECISION_KEY, message)


def config_autocast_dtype(cfg: CfgNode, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of :func:`config_precision` (None for fp32), after logging the start-up
    line that states it, e.g. ``precision bf16 (autocast, cpu)``."""
    name = config_precision(cfg, device)
    logger.info("precision %s", describe_precision(name, device))
    return AUTOCAST_DTYPES[name]


def describe_precision(name: str, device: torch.device) -> str:
    """E.g. ``bf16 (autocast, cpu)`` or ``fp32 (cuda)``: what the start-up log states."""
    name = canonical_precision(name)
    mode = "" if name == "fp32" else "autocast, "
    return f"{name} ({mode}{device.type})"


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """``torch.autocast`` on ``device`` at ``dtype``, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for float16 (bfloat16 and float32 need none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

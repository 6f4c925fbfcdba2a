"""What the benchmark runs on: the machine's description and the GPUs' peak FLOP rates."""

from __future__ import annotations

from typing import Any

import torch

from resformer_video.utils.machine import machine_info as base_machine_info
from resformer_video.utils.precision import cpu_bf16_features

# Dense peak TFLOP/s (no sparsity) by device-name substring; the first match wins, so the more
# specific names come first. "fp32" is plain FP32 without TF32 (PyTorch's default for matmuls).
# Sources: NVIDIA data sheets (H100/H200 SXM, H100 PCIe/NVL, A100, L40S, L40, L4, V100, RTX 4090).
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "fp32": 51.2}),
    ("H100 NVL", {"bf16": 835.0, "fp16": 835.0, "fp32": 60.0}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9}),
    ("H200", {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.0, "fp16": 362.0, "fp32": 91.6}),
    ("L40", {"bf16": 181.0, "fp16": 181.0, "fp32": 90.5}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "fp32": 30.3}),
    ("V100", {"fp16": 125.0, "fp32": 15.7}),
    ("RTX 4090", {"bf16": 165.2, "fp16": 165.2, "fp32": 82.6}),
)


def peak_tflops_for(device_name: str, precision: str) -> float | None:
    """Dense peak TFLOP/s of a GPU named ``device_name`` at ``precision`` (:data:`PEAK_TFLOPS`),
    or None when the GPU or the precision is not in the table."""
    for key, peaks in PEAK_TFLOPS:
        if key in device_name:
            return peaks.get(precision)
    return None


def device_peak_tflops(device: torch.device, precision: str) -> float | None:
    """:func:`peak_tflops_for` the CUDA ``device``; None on CPU."""
    if device.type != "cuda":
        return None
    return peak_tflops_for(torch.cuda.get_device_name(device), precision)


def machine_info(device: torch.device) -> dict[str, Any]:
    """:func:`resformer_video.utils.machine.machine_info` plus the CPU's native-bf16 features."""
    return dict(base_machine_info(device), cpu_bf16=list(cpu_bf16_features()))

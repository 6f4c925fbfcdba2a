"""Export the inference model (eval mode, float32, clip -> logits) to TorchScript or ONNX and check it.

The exported graph maps a clip ``(B, 3, T, S, S)`` to logits ``(B, K)`` for the ``T`` and ``S``
given at export (the positional embedding is computed for that token grid). TorchScript uses
``torch.jit.trace``; ONNX uses ``torch.onnx.export`` with the ``torch.export``-based (dynamo)
exporter, which translates ``scaled_dot_product_attention``, falling back to the legacy
TorchScript-based exporter if that fails. Both keep the batch dimension dynamic where the exporter
allows it (:attr:`ExportResult.dynamic_batch`). With ``dynamic_resolution`` the ONNX graph also
takes any height and width that are multiples of the patch size - ResFormer's positional
embeddings are computed from the token grid inside the graph - so one file serves every test
resolution; only the dynamo exporter can do that, so there is no fallback then.

:func:`verify_export` runs the exported file on a fresh random clip - TorchScript with
``torch.jit.load``, ONNX with onnxruntime when installed, else ``onnx.reference.ReferenceEvaluator``
- and returns the largest absolute difference from eager PyTorch.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from resformer_video.utils.atomic import check_writable_folder

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
DEFAULT_TOLERANCE = 1e-4
DEFAULT_OPSET = 18
_EXTENSIONS = {"onnx": ".onnx", "torchscript": ".pt"}


@dataclass
class ExportResult:
    path: str
    fmt: str
    exporter: str  # "jit.trace", "onnx-dynamo" or "onnx-legacy"
    dynamic_batch: bool
    dynamic_resolution: bool = False


@dataclass
class VerifyResult:
    max_abs_diff: float
    tolerance: float
    runtime: str  # "torch.jit", "onnxruntime" or "onnx.reference"
    batch: int
    height: int = 0
    width: int = 0

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def default_export_path(output_dir: str, arch: str, fmt: str, frames: int, size: int) -> str:
    """``output_dir/export/{arch}_{frames}x{size}.onnx`` (or ``.pt`` for TorchScript)."""
    return os.path.join(output_dir, "export", f"{arch}_{frames}x{size}{_EXTENSIONS[fmt]}")


def example_clip(batch: int, frames: int, size: int, seed: int, width: int | None = None) -> torch.Tensor:
    """A reproducible standard-normal clip ``(batch, 3, frames, size, width or size)``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, frames, size, width or size, generator=generator)


def cpu_eval_copy(model: nn.Module) -> nn.Module:
    """A float32, CPU, eval-mode copy of ``model``: what is exported and what it is checked against."""
    return copy.deepcopy(model).float().cpu().eval()


def export_model(
    model: nn.Module,
    fmt: str,
    frames: int,
    size: int,
    path: str,
    opset: int = DEFAULT_OPSET,
    dynamic_resolution: bool = False,
    patch_size: int = 16,
) -> ExportResult:
    """Write a CPU float32 eval-mode copy of ``model`` for clips ``(B, 3, frames, size, size)``
    (``model`` itself is left where and as it is); with ``dynamic_resolution`` (ONNX only) for
    clips ``(B, 3, frames, H, W)`` with ``H``, ``W`` multiples of ``patch_size``.

    Raises:
        ValueError: a bad format or option.
        OSError: ``path``'s folder cannot be written (named, with the cause), checked first.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format: must be one of {list(FORMATS)}, got {fmt!r}")
    if dynamic_resolution and fmt != "onnx":
        raise ValueError(
            "--dynamic-resolution: only the ONNX exporter keeps height and width dynamic; use --format onnx"
        )
    check_writable_folder(os.path.dirname(os.path.abspath(path)))
    model = cpu_eval_copy(model)
    example = example_clip(2, frames, size, seed=0)
    if fmt == "torchscript":
        return _export_torchscript(model, example, path)
    if dynamic_resolution:
        _onnx_dynamo(model, example, path, opset, patch_size)
        return ExportResult(path, "onnx", "onnx-dynamo", dynamic_batch=True, dynamic_resolution=True)
    return _export_onnx(model, example, path, opset)


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: str) -> ExportResult:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape-derived ints, jit deprecation
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, path)
    return ExportResult(path, "torchscript", "jit.trace", dynamic_batch=True)


def _export_onnx(model: nn.Module, example: torch.Tensor, path: str, opset: int) -> ExportResult:
    try:
        _onnx_dynamo(model, example, path, opset)
        return ExportResult(path, "onnx", "onnx-dynamo", dynamic_batch=True)
    except Exception as err:  # the exporters raise many types; fall back and say why
        logger.warning(
            "dynamo ONNX export failed (%s: %s); using the legacy exporter",
            type(err).__name__,
            str(err).splitlines()[0] if str(err) else "",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            path,
            dynamo=False,
            opset_version=opset,
            input_names=["clip"],
            output_names=["logits"],
            dynamic_axes={"clip": {0: "batch"}, "logits": {0: "batch"}},
        )
    return ExportResult(path, "onnx", "onnx-legacy", dynamic_batch=True)


def _onnx_dynamo(model: nn.Module, example: torch.Tensor, path: str, opset: int, patch_size: int | None = None) -> None:
    """The dynamo export: batch dynamic, and height and width too when ``patch_size`` is given."""
    batch = torch.export.Dim("batch", min=1, max=1024)
    dims = {0: batch}
    if patch_size:  # multiples of the patch, up to 64 patches (1024 px at 16) a side
        dims[3] = patch_size * torch.export.Dim("patches_h", min=1, max=64)
        dims[4] = patch_size * torch.export.Dim("patches_w", min=1, max=64)
    progress = io.StringIO()  # the exporter prints its progress; keep it for the debug log
    with contextlib.redirect_stdout(progress), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            None,
            dynamo=True,
            opset_version=opset,
            input_names=["clip"],
            output_names=["logits"],
            dynamic_shapes=(dims,),
            verbose=False,
        )
    logger.debug("%s", progress.getvalue())
    program.save(path, external_data=False)


# ------------------------------------------------------------------------------------------------
# Verification
# ------------------------------------------------------------------------------------------------


def load_runner(path: str, fmt: str) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """A function clip ``np.float32 (B, 3, T, S, S)`` -> logits for the exported file, and its name."""
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still works
            module = torch.jit.load(path, map_location="cpu").eval()

        def run_jit(clip: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(clip)).numpy()

        return run_jit, "torch.jit"
    return _onnx_runner(path)


def _onnx_runner(path: str) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(path)
        name = evaluator.input_names[0]
        return (lambda clip: evaluator.run(None, {name: clip})[0]), "onnx.reference"
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return (lambda clip: session.run(None, {name: clip})[0]), "onnxruntime"


def verify_export(
    model: nn.Module,
    result: ExportResult,
    frames: int,
    size: int,
    tolerance: float = DEFAULT_TOLERANCE,
    batch: int = 3,
    seed: int = 1,
    width: int | None = None,
) -> VerifyResult:
    """Largest absolute logit difference between the exported file and eager ``model`` on a random
    clip ``(batch, 3, frames, size, width or size)`` other than the export example (which has
    batch 2, so the default batch 3 also checks that the batch dimension is dynamic)."""
    model = cpu_eval_copy(model)
    clip = example_clip(batch, frames, size, seed, width)
    run, runtime = load_runner(result.path, result.fmt)
    with torch.no_grad():
        expected = model(clip).numpy()
    got = np.asarray(run(clip.numpy()))
    if got.shape != expected.shape:
        raise ValueError(f"{result.path}: output shape {got.shape} differs from eager {expected.shape}")
    diff = float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max())
    return VerifyResult(diff, tolerance, runtime, batch, int(clip.shape[3]), int(clip.shape[4]))

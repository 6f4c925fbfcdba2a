"""Training-step and inference throughput, peak memory and FLOP utilisation of a configured model.

:func:`run_benchmark` measures, on random clips (no data loading; ``tools/benchmark_data.py``
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
where the device's peak is known (:data:`PEAK_TFLOPS` or ``peak_tflops``), the model FLOPs
utilisation. :func:`check_targets` compares the rows with the project's speed targets;
:func:`paired_speedups` times the variants alternately (robust to load from other processes), and
:func:`profile_train_step` says what bounds the step (:class:`StepBreakdown`).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from yacs.config import CfgNode

from resformer_video.config import cfg_with
from resformer_video.engine.precision import DTYPES, autocast, make_grad_scaler
from resformer_video.engine.train import build_train_state, forward_backward, optimizer_step
from resformer_video.inference.timing import PeakMemoryMeter, Timing, synchronize, time_calls
from resformer_video.models import build_model, build_timesformer_reference, count_flops
from resformer_video.models.attention import ATTN_IMPLS

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")
# train / infer: those rows; all: both; paired: only the alternating timing of the step variants.
MODES = ("train", "infer", "all", "paired")
# Single-size training-step variants: our model with each attention implementation, and
# TimeSformer's own model. The first is the one the targets measure; the others are baselines.
TIMESFORMER = "timesformer"
STEP_VARIANTS = ATTN_IMPLS + (TIMESFORMER,)
BASELINES = ("explicit", TIMESFORMER)

# Dense peak TFLOP/s (no sparsity) by device-name substring; the first match wins, so the more
# specific names come first. "fp32" is plain FP32 without TF32 (PyTorch's default for matmuls).
# Sources: NVIDIA data sheets (H100/H200 SXM, H100 PCIe/NVL, A100, L40S, L40, L4, V100, RTX 4090).
PEAK_TFLOPS: Tuple[Tuple[str, Dict[str, float]], ...] = (
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

# Speed targets: the sdpa training step against the explicit one at equal config (CPU fp32), and
# on a GPU in bf16 against the fp32 explicit step, plus a minimum MFU.
CPU_SDPA_SPEEDUP_TARGET = 1.2
GPU_BF16_SPEEDUP_TARGET = 3.0
GPU_MFU_TARGET = 0.45


@dataclass
class BenchmarkOptions:
    """What to measure; ``None`` fields default from the config (see :func:`resolve_options`)."""

    batch: Optional[int] = None
    precision: Optional[str] = None
    device: str = "cpu"
    mode: str = "all"
    train_sizes: Optional[List[int]] = None
    resolutions: Optional[List[int]] = None
    attn_impls: Tuple[str, ...] = STEP_VARIANTS
    warmup: int = 1
    repeats: int = 3
    peak_tflops: Optional[float] = None
    profile: bool = False
    profile_steps: int = 2
    paired_repeats: int = 0


@dataclass
class BenchmarkRow:
    """One measured configuration; times in ms, memory in MiB, throughput in clips/s."""

    name: str
    mode: str
    attn_impl: str
    precision: str
    sizes: List[int]
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
    gflops_per_clip: Optional[float] = None
    tflops: Optional[float] = None
    mfu: Optional[float] = None


@dataclass
class BenchmarkReport:
    machine: Dict[str, Any]
    setup: Dict[str, Any]
    rows: List[BenchmarkRow] = field(default_factory=list)
    targets: List[Dict[str, Any]] = field(default_factory=list)
    comparisons: List[str] = field(default_factory=list)
    paired: Dict[str, Any] = field(default_factory=dict)
    profile: str = ""
    breakdown: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------
# Setup
# ------------------------------------------------------------------------------------------------

def resolve_options(cfg: CfgNode, opts: BenchmarkOptions) -> BenchmarkOptions:
    """Fill the unset fields from the config and check the choices (one-line ``ValueError``).

    ``batch`` defaults to ``TRAIN.BATCH_SIZE``; ``precision`` to ``TRAIN.MIXED_PRECISION`` on CUDA
    and to fp32 on CPU (as the engine trains there); ``train_sizes`` to ``DATA.TRAIN_CROP_SIZES`` when it
    has several sizes, else to the largest size with its 160/224 and 128/224 scalings (as in
    ResFormer's 224/160/128); ``resolutions`` to ``TEST.RESOLUTIONS`` or ``[DATA.TEST_CROP_SIZE]``;
    ``paired_repeats`` to ``repeats`` in ``paired`` mode.
    """
    precision = opts.precision or _config_precision(cfg, opts.device)
    _check_choice("--precision", precision, PRECISIONS)
    _check_choice("--mode", opts.mode, MODES)
    for impl in opts.attn_impls:
        _check_choice("--attn", impl, STEP_VARIANTS)
    if opts.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: cuda requested but CUDA is not available")
    if precision == "fp16" and opts.device == "cpu":
        raise ValueError("--precision: fp16 autocast is for CUDA; use fp32 or bf16 on CPU")
    patch = cfg.MODEL.PATCH_SIZE
    train_sizes = opts.train_sizes or _default_train_sizes(list(cfg.DATA.TRAIN_CROP_SIZES), patch)
    resolutions = opts.resolutions or list(cfg.TEST.RESOLUTIONS) or [cfg.DATA.TEST_CROP_SIZE]
    for flag, sizes in (("--train-sizes", train_sizes), ("--resolutions", resolutions)):
        bad = [size for size in sizes if size < patch or size % patch]
        if bad:
            raise ValueError(f"{flag}: sizes {bad} are not positive multiples of MODEL.PATCH_SIZE {patch}")
    batch = opts.batch or cfg.TRAIN.BATCH_SIZE
    if batch < 1 or opts.repeats < 1 or opts.warmup < 0:
        raise ValueError(f"need --batch >= 1, --repeats >= 1, --warmup >= 0, got "
                         f"{batch}, {opts.repeats}, {opts.warmup}")
    paired = opts.paired_repeats or (opts.repeats if opts.mode == "paired" else 0)
    if paired and ("sdpa" not in opts.attn_impls or len(set(opts.attn_impls)) < 2):
        raise ValueError(f"--attn: paired timing needs sdpa and a baseline {list(BASELINES)}, "
                         f"got {list(opts.attn_impls)}")
    return BenchmarkOptions(**{**asdict(opts), "batch": batch, "precision": precision,
                               "paired_repeats": paired,
                               "train_sizes": sorted(set(train_sizes), reverse=True),
                               "resolutions": list(resolutions)})


def _config_precision(cfg: CfgNode, device: str) -> str:
    mode = cfg.TRAIN.MIXED_PRECISION
    return "fp32" if mode == "none" or device == "cpu" else mode


def _check_choice(flag: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{flag}: must be one of {list(choices)}, got {value!r}")


def _default_train_sizes(sizes: List[int], patch: int) -> List[int]:
    if len(sizes) > 1:
        return sizes
    top = sizes[0]
    scaled = [max(patch, round(top * frac / patch) * patch) for frac in (160 / 224, 128 / 224)]
    return sorted({top, *scaled}, reverse=True)


def peak_tflops_for(device_name: str, precision: str) -> Optional[float]:
    """Dense peak TFLOP/s of a GPU named ``device_name`` at ``precision`` (:data:`PEAK_TFLOPS`),
    or None when the GPU or the precision is not in the table."""
    for key, peaks in PEAK_TFLOPS:
        if key in device_name:
            return peaks.get(precision)
    return None


def device_peak_tflops(device: torch.device, precision: str) -> Optional[float]:
    """:func:`peak_tflops_for` the CUDA ``device``; None on CPU."""
    if device.type != "cuda":
        return None
    return peak_tflops_for(torch.cuda.get_device_name(device), precision)


def machine_info(device: torch.device) -> Dict[str, Any]:
    """Host, CPU, threads, load average, torch version and (on CUDA) the GPU name."""
    info = {
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device.type,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def variant_train_step(cfg: CfgNode, variant: str, sizes: Sequence[int], batch: int, precision: str,
                       device: torch.device) -> Callable[[], None]:
    """:func:`make_train_step` for a fresh model of ``variant``. The TimeSformer baseline runs
    eager, as its code does, whatever ``TRAIN.COMPILE`` says."""
    if variant == TIMESFORMER:
        cfg = cfg_with(cfg, "TRAIN.COMPILE", False)
    return make_train_step(cfg, _build(cfg, variant, device), sizes, batch, precision, device)


def _build(cfg: CfgNode, variant: str, device: torch.device) -> nn.Module:
    """The model of a step variant (see :data:`STEP_VARIANTS`), randomly initialised on ``device``."""
    if variant == TIMESFORMER:
        return build_timesformer_reference(cfg).to(device)
    # Weights do not change the speed: skip loading MODEL.PRETRAINED.
    return build_model(cfg_with(cfg, "MODEL.ATTN_IMPL", variant, "MODEL.PRETRAINED", "")).to(device)


# ------------------------------------------------------------------------------------------------
# Steps
# ------------------------------------------------------------------------------------------------

def make_train_step(cfg: CfgNode, model: nn.Module, sizes: Sequence[int], batch: int,
                    precision: str, device: torch.device) -> Callable[[], None]:
    """A closure running one engine training step on fixed random clips ``(batch, 3, T, s, s)``.

    The step is the engine's own (:func:`build_train_state`, :func:`forward_backward`,
    :func:`optimizer_step`): a forward per size, :class:`MultiResolutionLoss` (cross-entropy at
    every size plus scale consistency towards the next larger size), backward (with a gradient
    scaler for fp16), gradient clipping if configured, and the optimiser's step. Gradient
    accumulation is off (one micro-batch per step); ``TRAIN.COMPILE`` is honoured.
    """
    # The engine's dtype comes from TRAIN.MIXED_PRECISION (float32 on CPU); set ours instead, which
    # also allows bf16 on CPU.
    state = build_train_state(cfg_with(cfg, "TRAIN.MIXED_PRECISION", "none"), model, device)
    state.dtype = DTYPES.get(precision)
    state.scaler = make_grad_scaler(device, state.dtype)
    state.accum_steps = 1
    frames, classes = cfg.DATA.NUM_FRAMES, cfg.MODEL.NUM_CLASSES
    clips = [torch.randn(batch, 3, frames, s, s, device=device) for s in sizes]
    labels = torch.randint(0, classes, (batch,), device=device)
    model.train()

    def step() -> None:
        forward_backward(state, clips, labels)
        optimizer_step(state)

    return step


def make_infer_step(model: nn.Module, size: int, batch: int, frames: int, precision: str,
                    device: torch.device) -> Callable[[], None]:
    """A closure running one no-grad forward of random clips ``(batch, 3, frames, size, size)``."""
    clip = torch.randn(batch, 3, frames, size, size, device=device)
    dtype = DTYPES.get(precision)
    model.eval()

    def step() -> None:
        with torch.inference_mode(), autocast(device, dtype):
            model(clip)

    return step


# ------------------------------------------------------------------------------------------------
# Measurement
# ------------------------------------------------------------------------------------------------

class _FlopCache:
    """Forward multiply-adds per clip, counted once per (frames, size) with ``count_flops``."""

    def __init__(self, cfg: CfgNode) -> None:
        self.cfg = cfg
        self._macs: Dict[Tuple[int, int], float] = {}
        self._model: Optional[nn.Module] = None

    def forward_flops(self, frames: int, size: int) -> float:
        """FLOPs (2 x multiply-adds) of one forward of one clip ``(3, frames, size, size)``."""
        key = (frames, size)
        if key not in self._macs:
            if self._model is None:
                self._model = _build(self.cfg, "sdpa", torch.device("cpu")).eval()
            self._macs[key] = float(count_flops(self._model, frames, size, size))
        return 2.0 * self._macs[key]


def measure(name: str, mode: str, step: Callable[[], None], *, attn_impl: str, precision: str,
            sizes: Sequence[int], batch: int, frames: int, device: torch.device, warmup: int,
            repeats: int, flops_per_clip: Optional[float], peak: Optional[float]) -> BenchmarkRow:
    """Time ``step`` (warm-up + median of repeats) under a peak-memory meter and make its row."""
    with PeakMemoryMeter(device) as meter:
        timing: Timing = time_calls(step, device, warmup, repeats)
    mem = meter.result
    assert mem is not None
    clips_per_s = batch / (timing.median_ms / 1000.0)
    tflops = None if flops_per_clip is None else flops_per_clip * clips_per_s / 1e12
    mfu = None if (tflops is None or not peak) else tflops / peak
    gflops = None if flops_per_clip is None else flops_per_clip / 1e9
    logger.info("%s: %.1f ms/step (median of %d), %.3g clips/s", name, timing.median_ms, repeats,
                clips_per_s)
    return BenchmarkRow(name, mode, attn_impl, precision, list(sizes), batch, frames,
                        timing.median_ms, timing.min_ms, timing.max_ms, repeats, clips_per_s,
                        mem.peak_mb, mem.base_mb, mem.kind, gflops, tflops, mfu)


def _train_variants(opts: BenchmarkOptions) -> List[Tuple[str, str, str, List[int]]]:
    """(name, attn_impl, precision, sizes) of every training row."""
    assert opts.train_sizes is not None
    top = [opts.train_sizes[0]]
    rows = [(f"train {impl} {top[0]}", impl, opts.precision, top) for impl in opts.attn_impls]
    if len(opts.train_sizes) > 1:
        multi = "+".join(str(s) for s in opts.train_sizes)
        rows.append((f"train sdpa {multi}", "sdpa", opts.precision, list(opts.train_sizes)))
    if opts.precision != "fp32":
        rows += [(f"train {impl} {top[0]} fp32", impl, "fp32", top)
                 for impl in BASELINES if impl in opts.attn_impls]
    return rows


def _run_train(cfg: CfgNode, opts: BenchmarkOptions, device: torch.device, flops: _FlopCache,
               peak_override: Optional[float]) -> List[BenchmarkRow]:
    frames, batch = cfg.DATA.NUM_FRAMES, opts.batch
    assert batch is not None
    rows = []
    for name, impl, precision, sizes in _train_variants(opts):
        step = variant_train_step(cfg, impl, sizes, batch, precision, device)
        train_flops = 3.0 * sum(flops.forward_flops(frames, s) for s in sizes)
        peak = peak_override or device_peak_tflops(device, precision)
        rows.append(measure(name, "train", step, attn_impl=impl, precision=precision, sizes=sizes,
                            batch=batch, frames=frames, device=device, warmup=opts.warmup,
                            repeats=opts.repeats, flops_per_clip=train_flops, peak=peak))
        del step
        _free(device)
    return rows


def _run_infer(cfg: CfgNode, opts: BenchmarkOptions, device: torch.device, flops: _FlopCache,
               peak_override: Optional[float]) -> List[BenchmarkRow]:
    frames, batch = cfg.DATA.NUM_FRAMES, opts.batch
    assert batch is not None and opts.resolutions is not None
    model = _build(cfg, "sdpa", device)
    peak = peak_override or device_peak_tflops(device, opts.precision)
    rows = []
    for size in opts.resolutions:
        step = make_infer_step(model, size, batch, frames, opts.precision, device)
        rows.append(measure(f"infer sdpa {size}", "infer", step, attn_impl="sdpa",
                            precision=opts.precision, sizes=[size], batch=batch, frames=frames,
                            device=device, warmup=opts.warmup, repeats=opts.repeats,
                            flops_per_clip=flops.forward_flops(frames, size), peak=peak))
    return rows


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# Profiler op and kernel names by category, for :class:`StepBreakdown`; the first match wins.
_OP_CATEGORIES = (
    ("attention", re.compile(r"scaled_dot_product|sdpa|flash|fmha|efficient_attention|(?<!log_)softmax",
                             re.I)),  # not the loss's log_softmax
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

    shares: Dict[str, float]
    gemm_tflops: Optional[float] = None

    @property
    def gemm_bound_speedup(self) -> float:
        """How much faster any step doing the same GEMMs at the same rate could be, at most:
        ``1 / gemm share`` (everything else free)."""
        share = self.shares.get("gemm", 0.0)
        return 1.0 / share if share > 0 else float("inf")

    def describe(self) -> str:
        parts = ", ".join(f"{name} {share:.1%}" for name, share in self.shares.items())
        text = (f"time by category: {parts}. A step with these GEMMs at this rate can be at most "
                f"{self.gemm_bound_speedup:.2f}x faster (everything but the GEMMs free).")
        if self.gemm_tflops is not None:
            text += f" A stand-alone GEMM of the MLP's shape runs at {self.gemm_tflops:.3g} TFLOP/s here."
        return text


def _category(name: str) -> str:
    return next((cat for cat, pattern in _OP_CATEGORIES if pattern.search(name)), "other")


def breakdown_from_profile(events: Sequence[Any], device: torch.device) -> Dict[str, float]:
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


def standalone_gemm_tflops(tokens: int, width: int, hidden: int, precision: str,
                           device: torch.device, repeats: int = 5) -> float:
    """TFLOP/s of ``(tokens, width) @ (width, hidden)`` (the MLP's first layer over a step's
    tokens) in ``precision``, median of ``repeats`` after one warm-up."""
    dtype = DTYPES.get(precision) or torch.float32
    a = torch.randn(tokens, width, device=device, dtype=dtype)
    b = torch.randn(width, hidden, device=device, dtype=dtype)
    timing = time_calls(lambda: torch.mm(a, b), device, 1, repeats)
    return 2.0 * tokens * width * hidden / (timing.median_ms / 1000.0) / 1e12


def profile_train_step(cfg: CfgNode, opts: BenchmarkOptions, device: torch.device,
                       row_limit: int = 15) -> Tuple[str, StepBreakdown]:
    """``torch.profiler``'s top ops (by self time) of the sdpa single-size step and its
    :class:`StepBreakdown`."""
    from torch.profiler import ProfilerActivity, profile

    assert opts.train_sizes is not None and opts.batch is not None
    model = _build(cfg, "sdpa", device)
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


def paired_speedups(cfg: CfgNode, opts: BenchmarkOptions, device: torch.device) -> Dict[str, Any]:
    """The sdpa training step against each baseline variant at the largest size, timed alternately.

    All variants are built and warmed up, then ``paired_repeats`` times one step of each is timed
    in turn, so that load from other processes hits them alike; the speed-up over a baseline is
    the median of the per-round ratios ``baseline_ms / sdpa_ms``.
    """
    assert opts.train_sizes is not None and opts.batch is not None
    sizes = opts.train_sizes[:1]
    variants = list(dict.fromkeys(opts.attn_impls))
    steps = {impl: variant_train_step(cfg, impl, sizes, opts.batch, str(opts.precision), device)
             for impl in variants}
    for step in steps.values():  # at least one warm-up step each (optimiser state, caches)
        for _ in range(max(opts.warmup, 1)):
            step()
    times: Dict[str, List[float]] = {impl: [] for impl in steps}
    for _ in range(opts.paired_repeats):
        for impl, step in steps.items():
            times[impl] += time_calls(step, device, 0, 1).times_ms
    ratios = {impl: [b / s for s, b in zip(times["sdpa"], times[impl])]
              for impl in variants if impl != "sdpa"}
    result = {"size": sizes[0], "precision": opts.precision, "batch": opts.batch, "times_ms": times,
              "ratios": ratios, "speedups": {impl: statistics.median(r) for impl, r in ratios.items()}}
    for impl, value in result["speedups"].items():
        logger.info("paired sdpa / %s speed-up: %.3f (ratios %s)", impl, value,
                    ", ".join(f"{r:.3f}" for r in ratios[impl]))
    return result


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
        report.breakdown = {**asdict(breakdown), "gemm_bound_speedup": breakdown.gemm_bound_speedup,
                            "summary": breakdown.describe()}
    return report


def _setup(cfg: CfgNode, opts: BenchmarkOptions) -> Dict[str, Any]:
    return {
        "arch": cfg.MODEL.ARCH, "depth": cfg.MODEL.DEPTH, "attention_type": cfg.MODEL.ATTENTION_TYPE,
        "pos_embed": cfg.MODEL.POS_EMBED, "frames": cfg.DATA.NUM_FRAMES,
        "num_classes": cfg.MODEL.NUM_CLASSES, "grad_checkpoint": cfg.MODEL.GRAD_CHECKPOINT,
        "optimizer": cfg.SOLVER.OPTIMIZING_METHOD, "sc_weight": cfg.SCALE_CONSISTENCY.WEIGHT,
        **{k: v for k, v in asdict(opts).items() if k not in ("profile", "profile_steps")},
    }


# ------------------------------------------------------------------------------------------------
# Targets and formatting
# ------------------------------------------------------------------------------------------------

def _find(rows: Sequence[BenchmarkRow], impl: str, precision: str) -> Optional[BenchmarkRow]:
    for row in rows:
        if row.mode == "train" and len(row.sizes) == 1 and row.attn_impl == impl \
                and row.precision == precision:
            return row
    return None


def check_targets(rows: Sequence[BenchmarkRow], device: torch.device,
                  paired: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """The speed targets that these rows can answer, each with its value, threshold and ``met``.

    CPU fp32: the sdpa step >= 1.2x each baseline step (``explicit``, ``timesformer``; from the
    alternating ``paired`` measurement when given, else from the rows). CUDA: the bf16 sdpa step
    >= 3x each fp32 baseline step, and bf16 sdpa MFU >= 45% (when the peak is known).
    """
    targets = []
    if device.type == "cpu" and paired and paired["precision"] == "fp32":
        for impl, speedup in paired["speedups"].items():
            targets.append(_target(f"cpu fp32 train: sdpa / {impl} speed-up (paired)", speedup,
                                   CPU_SDPA_SPEEDUP_TARGET))
        return targets
    sdpa32, sdpa16 = _find(rows, "sdpa", "fp32"), _find(rows, "sdpa", "bf16")
    for impl in BASELINES:
        base32 = _find(rows, impl, "fp32")
        if device.type == "cpu" and sdpa32 and base32:
            targets.append(_target(f"cpu fp32 train: sdpa / {impl} speed-up",
                                   sdpa32.clips_per_s / base32.clips_per_s, CPU_SDPA_SPEEDUP_TARGET))
        if device.type == "cuda" and sdpa16 and base32:
            targets.append(_target(f"cuda train: bf16 sdpa / fp32 {impl} speed-up",
                                   sdpa16.clips_per_s / base32.clips_per_s, GPU_BF16_SPEEDUP_TARGET))
    if device.type == "cuda" and sdpa16 and sdpa16.mfu is not None:
        targets.append(_target("cuda train: bf16 sdpa MFU", sdpa16.mfu, GPU_MFU_TARGET))
    return targets


def compare_rows(rows: Sequence[BenchmarkRow]) -> List[str]:
    """One line per informative ratio: multi-resolution vs single-size step (time and FLOPs), and
    each attention implementation's step time against the first row's."""
    lines = []
    singles = [r for r in rows if r.mode == "train" and len(r.sizes) == 1]
    for multi in (r for r in rows if r.mode == "train" and len(r.sizes) > 1):
        base = next((r for r in singles if r.attn_impl == multi.attn_impl
                     and r.precision == multi.precision and r.sizes[0] == multi.sizes[0]), None)
        if base is not None:
            flop_ratio = (multi.gflops_per_clip / base.gflops_per_clip
                          if multi.gflops_per_clip and base.gflops_per_clip else float("nan"))
            lines.append(f"{multi.name} takes {multi.median_ms / base.median_ms:.2f}x the time of "
                         f"{base.name} for {flop_ratio:.2f}x the FLOPs")
    for row in singles[1:]:
        lines.append(f"{singles[0].name} is {row.median_ms / singles[0].median_ms:.2f}x as fast "
                     f"as {row.name} by the median step ({row.min_ms / singles[0].min_ms:.2f}x by "
                     f"the fastest step, which load on the machine disturbs least)")
    return lines


def _target(name: str, value: float, threshold: float) -> Dict[str, Any]:
    return {"name": name, "value": value, "threshold": threshold, "met": value >= threshold}


_COLUMNS = (("step", "name", "{}"), ("batch", "batch", "{}"), ("ms/step", "median_ms", "{:.1f}"),
            ("min ms", "min_ms", "{:.1f}"),
            ("clips/s", "clips_per_s", "{:.3g}"), ("peak MiB", "peak_mem_mb", "{:.0f}"),
            ("base MiB", "base_mem_mb", "{:.0f}"), ("GFLOP/clip", "gflops_per_clip", "{:.4g}"),
            ("TFLOP/s", "tflops", "{:.3g}"), ("MFU", "mfu", "{:.1%}"))


def format_report(report: BenchmarkReport) -> str:
    """The report as Markdown: setup line, one table of rows, the targets and the profile."""
    m, s = report.machine, report.setup
    lines = [f"machine: {m['cpu']} ({m['cpu_count']} cores, {m['torch_threads']} torch threads, "
             f"load {m['load_avg_1_5_15']})" + (f", GPU {m['gpu']}" if "gpu" in m else "")
             + f", torch {m['torch']}",
             f"model: {s['arch']} depth {s['depth'] or 'default'}, {s['frames']} frames, "
             f"{s['attention_type']}, precision {s['precision']}, device {s['device']}, "
             f"warm-up {s['warmup']}, median of {s['repeats']}"]
    if report.rows:
        lines += ["", "| " + " | ".join(c[0] for c in _COLUMNS) + " |",
                  "|" + "|".join("---" for _ in _COLUMNS) + "|"]
    for row in report.rows:
        cells = [_cell(fmt, getattr(row, attr)) for _, attr, fmt in _COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + report.comparisons if report.comparisons else []
    if report.paired:
        p = report.paired
        times = ", ".join(f"{impl} ms {_ms_list(ms)}" for impl, ms in p["times_ms"].items())
        speedups = ", ".join(f"over {impl} {value:.3f}" for impl, value in p["speedups"].items())
        lines.append(f"paired (alternating) training steps at {p['size']}, {p['precision']}, "
                     f"batch {p['batch']}: {times}; sdpa speed-up (median of rounds) {speedups}")
    for target in report.targets:
        lines.append(f"\ntarget {target['name']}: {target['value']:.3g} "
                     f"(>= {target['threshold']:g}) {'met' if target['met'] else 'MISSED'}")
    if report.profile:
        lines += ["", "top ops of the sdpa training step (torch.profiler):", report.profile,
                  report.breakdown["summary"]]
    return "\n".join(lines)


def _ms_list(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in values) + "]"


def _cell(fmt: str, value: Any) -> str:
    return "-" if value is None else fmt.format(value)

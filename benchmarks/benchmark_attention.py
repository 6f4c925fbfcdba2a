#!/usr/bin/env python
"""Inference speed and memory of MSA vs EMSA spatial attention, on CPU.

Variants: ``msa`` (fused ``scaled_dot_product_attention``), ``msa-explicit`` (``MODEL.ATTN_IMPL
explicit``: softmax(QK^T)V with the attention maps materialised), ``emsa`` (ResT's EMSA with head
conv and instance norm: explicit maps) and ``emsa-fused`` (``MODEL.EMSA.HEAD_CONV False``,
``MODEL.EMSA.INSTANCE_NORM False``: spatial-reduction attention on the fused kernel). Every
(architecture, variant, size) combination runs in its own subprocess, batch 1, ``DATA.NUM_FRAMES``
frames: one warm-up forward (a combination whose warm-up takes longer than ``--max-seconds`` is
skipped and reported as such), then ``--repeats`` timed forwards; with ``--paired`` the variants of
one (architecture, size) share a subprocess and run in turn, ``--repeats`` rounds, so that load
from other processes hits them alike (the speed-up column is the median over rounds of the
per-round ratio to ``msa``). Reported: parameters, GFLOPs
(multiply-adds, fvcore), latency (median), clips/s, and the peak live heap during one forward above
the heap before it (glibc ``mallinfo2`` in-use + mmapped bytes, sampled before and after every
module's forward): the activations' peak, without what the allocator keeps cached. Prints a
Markdown table::

    python benchmarks/benchmark_attention.py --archs resformer_tiny resformer_base \\
        --sizes 224 288 384 448 --repeats 3 [--paired] [KEY VALUE ...]
"""

from __future__ import annotations

import ctypes
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from yacs.config import CfgNode

# benchmarks/ is not installed: `python benchmarks/X.py` needs the repository root on the path.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness.timing import time_calls  # noqa: E402
from resformer_video.config import load_config  # noqa: E402
from resformer_video.models import build_model, count_flops, count_parameters  # noqa: E402
from resformer_video.utils.parser import build_parser  # noqa: E402

VARIANTS = {
    "msa": ["MODEL.SPATIAL_ATTENTION", "msa", "MODEL.ATTN_IMPL", "sdpa"],
    "msa-explicit": ["MODEL.SPATIAL_ATTENTION", "msa", "MODEL.ATTN_IMPL", "explicit"],
    "emsa": ["MODEL.SPATIAL_ATTENTION", "emsa", "MODEL.EMSA.HEAD_CONV", "True", "MODEL.EMSA.INSTANCE_NORM", "True"],
    "emsa-fused": [
        "MODEL.SPATIAL_ATTENTION",
        "emsa",
        "MODEL.ATTN_IMPL",
        "sdpa",
        "MODEL.EMSA.HEAD_CONV",
        "False",
        "MODEL.EMSA.INSTANCE_NORM",
        "False",
    ],
}


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _live_heap_function():
    """A function returning the bytes glibc's malloc has handed out and not yet got back."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2

    def live() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    return live


def peak_forward_heap(model: nn.Module, clip: torch.Tensor) -> float:
    """Peak live heap (bytes) during one forward above the heap before it, sampled at module edges."""
    live = _live_heap_function()
    peak = [0]

    def sample(*_args) -> None:
        peak[0] = max(peak[0], live())

    handles = [
        h for m in model.modules() for h in (m.register_forward_pre_hook(sample), m.register_forward_hook(sample))
    ]
    try:
        before = live()
        model(clip)
    finally:
        for handle in handles:
            handle.remove()
    return max(0, peak[0] - before)


def forward_seconds(model: nn.Module, clip: torch.Tensor, clock: str) -> float:
    """Seconds of one forward: wall clock, or this process's CPU time (``cpu``: insensitive to
    other processes taking the cores, exact for one thread)."""
    if clock == "wall":
        return time_calls(lambda: model(clip), torch.device("cpu"), warmup=0, repeats=1).median_ms / 1000.0
    start = time.process_time()
    model(clip)
    return time.process_time() - start


def measure_in_turn(
    cfgs: dict[str, CfgNode], size: int, rounds: int, max_seconds: float, clock: str = "wall"
) -> dict[str, dict[str, object]]:
    """Latency per round, heap peak and FLOPs of each variant's model on one ``size`` clip (batch 1).

    The variants' forwards run in turn, ``rounds`` times, so that load from other processes hits
    them alike; a variant whose warm-up forward takes longer than ``max_seconds`` is skipped.
    """
    rows: dict[str, dict[str, object]] = {}
    models = {}
    frames = next(iter(cfgs.values())).DATA.NUM_FRAMES
    clip = torch.randn(1, 3, frames, size, size)
    with torch.inference_mode():
        for variant, cfg in cfgs.items():
            model = build_model(cfg).eval()
            rows[variant] = {"params_m": count_parameters(model) / 1e6, "rounds_s": []}
            warmup_s = forward_seconds(model, clip, clock)
            if warmup_s > max_seconds:
                rows[variant]["skipped"] = f"warm-up forward took {warmup_s:.0f} s > {max_seconds:.0f} s"
            else:
                models[variant] = model
        for _ in range(rounds):
            for variant, model in models.items():
                rows[variant]["rounds_s"].append(forward_seconds(model, clip, clock))
        for variant, model in models.items():
            rows[variant]["heap_mb"] = peak_forward_heap(model, clip) / 2**20
    for variant in models:
        rows[variant]["latency_s"] = statistics.median(rows[variant]["rounds_s"])
        rows[variant]["gflops"] = count_flops(models[variant], frames, size, size) / 1e9
    return rows


def run_child(spec: dict[str, object]) -> None:
    torch.set_num_threads(int(spec["threads"]))
    cfgs = {variant: load_config(spec["cfg_file"], opts) for variant, opts in spec["variants"].items()}
    print(
        json.dumps(
            measure_in_turn(cfgs, int(spec["size"]), int(spec["repeats"]), float(spec["max_seconds"]), spec["clock"])
        )
    )


def run_combination(spec: dict[str, object], timeout: float) -> dict[str, dict[str, object]]:
    """Run the variants of one (architecture, size) in a fresh subprocess; their rows of results."""
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {variant: {"skipped": f"timed out after {timeout:.0f} s"} for variant in spec["variants"]}
    if proc.returncode:
        reason = f"failed: {proc.stderr.strip().splitlines()[-1:]}"
        return {variant: {"skipped": reason} for variant in spec["variants"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def speedup(row: dict[str, object], reference: dict[str, object] | None) -> str:
    """Median over rounds of ``reference time / row time`` (paired when run in turn)."""
    if reference is None or "latency_s" not in row or "latency_s" not in reference:
        return "-"
    ratios = [ref / own for ref, own in zip(reference["rounds_s"], row["rounds_s"])]
    return f"{statistics.median(ratios):.2f}"


def format_row(
    arch: str, variant: str, frames: int, size: int, row: dict[str, object], reference: dict[str, object] | None
) -> str:
    head = f"| {arch} | {variant} | {frames}x{size} | {row.get('params_m', 0):.2f} |"
    if "skipped" in row:
        return f"{head} - | skipped: {row['skipped']} | - | - | - | - |"
    rounds = ", ".join(f"{t:.2f}" for t in row["rounds_s"])
    return (
        f"{head} {row['gflops']:.1f} | {row['latency_s']:.2f} | {rounds} | {1 / row['latency_s']:.2f} | "
        f"{speedup(row, reference)} | {row['heap_mb']:.0f} |"
    )


def main(argv: Sequence[str] | None = None) -> None:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--child":
        run_child(json.loads(sys.argv[2]))
        return
    parser = build_parser("MSA vs EMSA inference throughput and peak memory (CPU).")
    parser.add_argument("--archs", nargs="+", default=["resformer_tiny", "resformer_base"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 288, 384, 448])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards (rounds) per variant")
    parser.add_argument(
        "--paired", action="store_true", help="run the variants of each size in one process, in turn every round"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="skip a combination whose warm-up forward takes longer"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: time forwards by the process's CPU time (use with --threads 1 on a machine shared with other jobs)",
    )
    args = parser.parse_args(argv)
    frames = load_config(args.cfg_file, args.opts).DATA.NUM_FRAMES  # fails early on a bad config
    print(
        "| arch | spatial attention | frames x size | params (M) | GFLOPs | latency (s) | rounds (s) "
        "| clips/s | speed vs msa | peak forward heap (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    groups = [args.variants] if args.paired else [[variant] for variant in args.variants]
    for arch in args.archs:
        for size in args.sizes:
            rows: dict[str, dict[str, object]] = {}
            for group in groups:
                variants = {v: list(args.opts or []) + ["MODEL.ARCH", arch] + VARIANTS[v] for v in group}
                spec = {
                    "cfg_file": args.cfg_file,
                    "variants": variants,
                    "size": size,
                    "repeats": args.repeats,
                    "max_seconds": args.max_seconds,
                    "threads": args.threads,
                    "clock": args.clock,
                }
                timeout = len(group) * args.max_seconds * (args.repeats + 4) + 120
                rows.update(run_combination(spec, timeout=timeout))
            for variant in args.variants:
                print(format_row(arch, variant, frames, size, rows[variant], rows.get("msa")), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Inference speed and memory of MSA vs EMSA spatial attention, on CPU.

Variants: ``msa`` (fused ``scaled_dot_product_attention``), ``msa-explicit`` (``MODEL.ATTN_IMPL
explicit``: softmax(QK^T)V with the attention maps materialised, as EMSA must) and ``emsa``. Every
(architecture, variant, size) combination runs in its own subprocess, batch 1, ``DATA.NUM_FRAMES``
frames: one warm-up forward (a combination whose warm-up takes longer than ``--max-seconds`` is
skipped and reported as such), then ``--repeats`` timed forwards. Reported: parameters, GFLOPs
(multiply-adds, fvcore), latency (median), clips/s, and the peak live heap during one forward above
the heap before it (glibc ``mallinfo2`` in-use + mmapped bytes, sampled before and after every
module's forward): the activations' peak, without what the allocator keeps cached. Prints a
Markdown table::

    python tools/benchmark_attention.py --archs resformer_tiny resformer_base \\
        --sizes 224 288 384 448 --repeats 3
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from resformer_video.benchmark.timing import time_calls  # noqa: E402
from resformer_video.config import load_config  # noqa: E402
from resformer_video.models import build_model, count_flops, count_parameters  # noqa: E402
from resformer_video.utils.parser import build_parser  # noqa: E402

VARIANTS = {
    "msa": ["MODEL.SPATIAL_ATTENTION", "msa", "MODEL.ATTN_IMPL", "sdpa"],
    "msa-explicit": ["MODEL.SPATIAL_ATTENTION", "msa", "MODEL.ATTN_IMPL", "explicit"],
    "emsa": ["MODEL.SPATIAL_ATTENTION", "emsa"],
}


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                     "usmblks", "fsmblks", "uordblks", "fordblks",
                                                     "keepcost")]


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

    handles = [h for m in model.modules()
               for h in (m.register_forward_pre_hook(sample), m.register_forward_hook(sample))]
    try:
        before = live()
        model(clip)
    finally:
        for handle in handles:
            handle.remove()
    return max(0, peak[0] - before)


def measure(cfg, size: int, repeats: int, max_seconds: float) -> Dict[str, object]:
    """Latency, heap peak and FLOPs of the model of ``cfg`` on one ``size`` clip (batch 1)."""
    model = build_model(cfg).eval()
    clip = torch.randn(1, 3, cfg.DATA.NUM_FRAMES, size, size)
    row: Dict[str, object] = {"params_m": count_parameters(model) / 1e6}
    cpu = torch.device("cpu")

    def forward() -> None:
        model(clip)

    with torch.inference_mode():
        warmup_s = time_calls(forward, cpu, warmup=0, repeats=1).max_ms / 1000.0
        if warmup_s > max_seconds:
            row["skipped"] = f"warm-up forward took {warmup_s:.0f} s > {max_seconds:.0f} s"
            return row
        timing = time_calls(forward, cpu, warmup=0, repeats=repeats)
        row["heap_mb"] = peak_forward_heap(model, clip) / 2**20
    row["latency_s"] = timing.median_ms / 1000.0
    row["gflops"] = count_flops(model, cfg.DATA.NUM_FRAMES, size, size) / 1e9
    return row


def run_child(spec: Dict[str, object]) -> None:
    torch.set_num_threads(int(spec["threads"]))
    cfg = load_config(spec["cfg_file"], spec["opts"])
    print(json.dumps(measure(cfg, int(spec["size"]), int(spec["repeats"]), float(spec["max_seconds"]))))


def run_combination(spec: Dict[str, object], timeout: float) -> Dict[str, object]:
    """Run one combination in a fresh subprocess; its row of results."""
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {timeout:.0f} s"}
    if proc.returncode:
        return {"skipped": f"failed: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def format_row(arch: str, variant: str, frames: int, size: int, row: Dict[str, object]) -> str:
    head = f"| {arch} | {variant} | {frames}x{size} | {row.get('params_m', 0):.2f} |"
    if "skipped" in row:
        return f"{head} - | skipped: {row['skipped']} | - | - |"
    return (f"{head} {row['gflops']:.1f} | {row['latency_s']:.2f} | {1 / row['latency_s']:.2f} | "
            f"{row['heap_mb']:.0f} |")


def main(argv: Optional[Sequence[str]] = None) -> None:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--child":
        run_child(json.loads(sys.argv[2]))
        return
    parser = build_parser("MSA vs EMSA inference throughput and peak memory (CPU).")
    parser.add_argument("--archs", nargs="+", default=["resformer_tiny", "resformer_base"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 288, 384, 448])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="skip a combination whose warm-up forward takes longer")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    frames = load_config(args.cfg_file, args.opts).DATA.NUM_FRAMES  # fails early on a bad config
    print("| arch | spatial attention | frames x size | params (M) | GFLOPs | latency (s) | clips/s "
          "| peak forward heap (MB) |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for arch in args.archs:
        for size in args.sizes:
            for variant in args.variants:
                opts = list(args.opts or []) + ["MODEL.ARCH", arch] + VARIANTS[variant]
                spec = {"cfg_file": args.cfg_file, "opts": opts, "size": size, "repeats": args.repeats,
                        "max_seconds": args.max_seconds, "threads": args.threads}
                row = run_combination(spec, timeout=args.max_seconds * (args.repeats + 4) + 120)
                print(format_row(arch, variant, frames, size, row), flush=True)


if __name__ == "__main__":
    main()

"""The benchmark harness: timing and memory meters, target checks, and an end-to-end tiny CPU run."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.harness import (
    BenchmarkOptions,
    BenchmarkRow,
    StepBreakdown,
    breakdown_from_profile,
    check_targets,
    format_report,
    peak_tflops_for,
    run_benchmark,
)
from benchmarks.harness.timing import PeakMemoryMeter, time_calls

from conftest import make_cfg

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def test_time_calls_runs_warmup_then_repeats():
    calls = []
    timing = time_calls(lambda: calls.append(1), CPU, warmup=2, repeats=5)
    assert len(calls) == 7 and len(timing.times_ms) == 5
    assert 0 <= timing.min_ms <= timing.median_ms <= timing.max_ms


def test_cpu_peak_memory_sees_a_temporary_allocation():
    with PeakMemoryMeter(CPU) as meter:
        block = np.ones(160 * 2**20 // 8)  # 160 MiB, touched, then freed
        del block
    mem = meter.result
    assert mem.kind == "cpu_rss"
    if mem.reset:
        assert mem.peak_mb - mem.base_mb > 120
    assert mem.peak_mb > 120


def test_peak_table_lookup():
    assert peak_tflops_for("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4)
    assert peak_tflops_for("NVIDIA H100 PCIe", "bf16") == pytest.approx(756.0)
    assert peak_tflops_for("NVIDIA H200", "fp32") == pytest.approx(66.9)
    assert peak_tflops_for("NVIDIA A100-SXM4-80GB", "bf16") == pytest.approx(312.0)
    assert peak_tflops_for("NVIDIA L40", "bf16") == pytest.approx(181.0)  # not the L4's 121
    assert peak_tflops_for("NVIDIA L4", "bf16") == pytest.approx(121.0)
    assert peak_tflops_for("Tesla V100-SXM2-16GB", "bf16") is None
    assert peak_tflops_for("Some Future GPU", "bf16") is None


def _row(impl: str, precision: str, clips_per_s: float, mfu=None) -> BenchmarkRow:
    return BenchmarkRow(
        f"train {impl}",
        "train",
        impl,
        precision,
        [224],
        1,
        8,
        1.0,
        1.0,
        1.0,
        1,
        clips_per_s,
        1.0,
        1.0,
        "x",
        1.0,
        1.0,
        mfu,
    )


def test_check_targets_compares_sdpa_with_each_baseline():
    rows = [_row("sdpa", "fp32", 1.3), _row("explicit", "fp32", 1.0), _row("timesformer", "fp32", 1.2)]
    targets = check_targets(rows, CPU)
    assert [t["name"] for t in targets] == [
        "cpu fp32 train: sdpa / explicit speed-up",
        "cpu fp32 train: sdpa / timesformer speed-up",
    ]
    assert [t["met"] for t in targets] == [True, False]
    assert targets[0]["value"] == pytest.approx(1.3) and targets[1]["value"] == pytest.approx(1.3 / 1.2)
    gpu = check_targets([_row("sdpa", "bf16", 3.5, mfu=0.4), _row("explicit", "fp32", 1.0)], torch.device("cuda"))
    assert [(t["name"], t["met"]) for t in gpu] == [
        ("cuda train: bf16 sdpa / fp32 explicit speed-up", True),
        ("cuda train: bf16 sdpa MFU", False),
    ]


class _Event:
    def __init__(self, key: str, self_cpu_time_total: float, on_gpu: bool = False) -> None:
        self.key, self.self_cpu_time_total = key, self_cpu_time_total
        self.self_device_time_total = self_cpu_time_total if on_gpu else 0.0
        self.device_type = torch.autograd.DeviceType.CUDA if on_gpu else torch.autograd.DeviceType.CPU


def test_breakdown_sorts_ops_into_gemm_attention_and_other():
    events = [
        _Event("aten::mm", 50.0),
        _Event("aten::addmm", 30.0),
        _Event("aten::_scaled_dot_product_flash_attention_for_cpu", 8.0),
        _Event("aten::_softmax", 2.0),
        _Event("aten::add", 5.0),
        _Event("aten::copy_", 4.0),
        _Event("aten::_log_softmax", 1.0),
    ]  # the loss, not attention
    shares = breakdown_from_profile(events, CPU)
    assert shares == pytest.approx({"gemm": 0.8, "attention": 0.1, "other": 0.1})
    breakdown = StepBreakdown(shares, gemm_tflops=0.2)
    assert breakdown.gemm_bound_speedup == pytest.approx(1.25)
    assert "at most 1.25x faster" in breakdown.describe()


def test_breakdown_on_cuda_counts_kernels_not_the_ops_that_launch_them():
    events = [
        _Event("aten::mm", 900.0),
        _Event("aten::_softmax", 900.0),  # host side: ignored
        _Event("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", 60.0, on_gpu=True),
        _Event("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits>", 25.0, on_gpu=True),
        _Event("void at::native::vectorized_elementwise_kernel<4, GeluCUDAKernel>", 15.0, on_gpu=True),
    ]
    shares = breakdown_from_profile(events, torch.device("cuda"))
    assert shares == pytest.approx({"gemm": 0.6, "attention": 0.25, "other": 0.15})


@pytest.mark.slow
def test_benchmark_runs_end_to_end_on_cpu(tmp_path, capsys):
    cfg = make_cfg(DATA__NUM_FRAMES=2)
    report = run_benchmark(
        cfg,
        BenchmarkOptions(
            batch=1,
            device="cpu",
            mode="all",
            warmup=0,
            repeats=1,
            train_sizes=[48, 32],
            resolutions=[32, 48],
            paired_repeats=2,
            profile=True,
            profile_steps=1,
        ),
    )
    names = [row.name for row in report.rows]
    assert names == [
        "train sdpa 48",
        "train explicit 48",
        "train timesformer 48",
        "train sdpa 48+32",
        "infer sdpa 32",
        "infer sdpa 48",
    ]
    for row in report.rows:
        assert row.median_ms > 0 and row.clips_per_s > 0 and row.tflops > 0
        assert row.peak_mem_mb > 0 and row.gflops_per_clip > 0 and row.mfu is None
    by_name = {row.name: row for row in report.rows}
    # Training counts 3 forwards; the multi-resolution step the forwards of both sizes.
    multi, single = by_name["train sdpa 48+32"], by_name["train sdpa 48"]
    assert multi.gflops_per_clip > single.gflops_per_clip
    assert by_name["infer sdpa 48"].gflops_per_clip > by_name["infer sdpa 32"].gflops_per_clip
    assert [t["name"] for t in report.targets] == [
        "cpu fp32 train: sdpa / explicit speed-up (paired)",
        "cpu fp32 train: sdpa / timesformer speed-up (paired)",
    ]
    paired = report.paired
    assert [len(paired["times_ms"][impl]) for impl in ("sdpa", "explicit", "timesformer")] == [2, 2, 2]
    assert [t["value"] for t in report.targets] == [paired["speedups"]["explicit"], paired["speedups"]["timesformer"]]
    shares = report.breakdown["shares"]
    assert set(shares) == {"gemm", "attention", "other"} and sum(shares.values()) == pytest.approx(1.0)
    assert shares["gemm"] > 0.05 and report.breakdown["gemm_tflops"] > 0
    assert report.machine["cpu_count"] >= 1 and report.setup["batch"] == 1
    text = format_report(report)
    assert "| train explicit 48 |" in text and "target cpu fp32" in text and "paired" in text
    assert "time by category: gemm" in text
    json.dumps(report.to_dict())


@pytest.mark.slow
def test_benchmark_tool_writes_json_and_rejects_late_flags(tmp_path, capsys):
    main = runpy.run_path(str(REPO / "benchmarks" / "benchmark.py"))["main"]
    out = tmp_path / "bench.json"
    small = [
        "MODEL.ARCH",
        "resformer_tiny",
        "MODEL.DEPTH",
        "1",
        "DATA.NUM_FRAMES",
        "2",
        "MODEL.NUM_CLASSES",
        "4",
        "DATA.TRAIN_CROP_SIZES",
        "[32]",
    ]
    code = main(
        [
            "--device",
            "cpu",
            "--batch",
            "1",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--mode",
            "infer",
            "--resolutions",
            "32,64",
            "--json",
            str(out),
            *small,
        ]
    )
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["sizes"] for r in rows] == [[32], [64]]
    with pytest.raises(SystemExit):
        main(["--device", "cpu", *small, "--batch", "1"])
    assert "flags must come before" in capsys.readouterr().err


def test_cpu_bf16_targets_from_rows():
    """bf16 sdpa against TimeSformer's model in fp32 (>= 2.2x) and multi- vs single-size step time
    (<= 1.9x)."""
    multi = _row("sdpa", "bf16", 1.0)
    multi.sizes, multi.median_ms = [224, 160, 128], 2.0
    rows = [_row("sdpa", "bf16", 2.5), _row("timesformer", "fp32", 1.0), multi]
    targets = check_targets(rows, CPU)
    assert [(t["name"], t["bound"], t["met"]) for t in targets] == [
        ("cpu train: bf16 sdpa / fp32 timesformer speed-up", ">=", True),
        ("cpu bf16 train: multi-resolution / single-size step time", "<=", False),
    ]
    assert targets[1]["value"] == pytest.approx(2.0)


def test_paired_bf16_run_times_fp32_baselines_and_the_multi_resolution_step():
    """At a tiny size (bf16 may be emulated here: slow but correct)."""
    cfg = make_cfg(DATA__NUM_FRAMES=2, MODEL__DEPTH=1)
    report = run_benchmark(
        cfg,
        BenchmarkOptions(
            batch=1,
            device="cpu",
            mode="paired",
            warmup=0,
            repeats=2,
            train_sizes=[32, 16],
            precision="bf16",
            attn_impls=("sdpa", "timesformer"),
        ),
    )
    paired = report.paired
    assert list(paired["times_ms"]) == ["sdpa", "timesformer", "timesformer fp32", "sdpa 32+16"]
    assert all(len(times) == 2 for times in paired["times_ms"].values())
    assert paired["multi_ratio"] == pytest.approx(
        float(np.median([m / s for m, s in zip(paired["times_ms"]["sdpa 32+16"], paired["times_ms"]["sdpa"])]))
    )
    assert [t["name"] for t in report.targets] == [
        "cpu train: bf16 sdpa / fp32 timesformer speed-up (paired)",
        "cpu bf16 train: multi-resolution / single-size step time (paired)",
    ]
    assert "paired multi-resolution (sdpa 32+16)" in format_report(report)


def test_benchmark_tool_names_the_flag_in_option_errors(capsys):
    main = runpy.run_path(str(REPO / "benchmarks" / "benchmark.py"))["main"]
    code = main(["--device", "cpu", "--precision", "fp16", "--mode", "infer", "MODEL.DEPTH", "1"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: --precision: precision fp16: fp16 autocast is for CUDA")

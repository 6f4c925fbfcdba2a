"""benchmarks/gpu_check.py on a machine without a GPU: exit 0, every GPU check reported as skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_check

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_gpu_check_on_cpu_skips_every_gpu_check(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stdout and "no CUDA device" in proc.stdout
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    names = [c["name"] for c in summary["checks"]]
    assert names == ["train_test_bf16", "benchmark_bf16", "benchmark_fp32", "compiled_step", "nvdec"]
    assert all(c["status"] == "skipped" and "no CUDA device" in c["reason"] for c in summary["checks"])
    assert summary["passed"] and summary["skipped"] == names
    assert summary["environment"]["cuda_available"] is False
    report = (tmp_path / "gpu_check.md").read_text()
    assert report.count("SKIPPED") == len(names) and "**Skipped**" in report


def test_a_failing_check_is_reported_and_fails_the_run(tmp_path, monkeypatch):
    def broken(out, timeout):
        raise RuntimeError("CUDA error: no kernel image")

    monkeypatch.setitem(gpu_check.CHECKS, "nvdec", broken)
    monkeypatch.setattr(gpu_check, "environment", lambda: {"cuda_available": True})
    monkeypatch.setitem(
        gpu_check.CHECKS,
        "benchmark_fp32",
        lambda out, timeout: {
            "rows": [
                {
                    "name": "train sdpa 224",
                    "precision": "fp32",
                    "median_ms": 12.5,
                    "clips_per_s": 640.0,
                    "peak_mem_mb": 9000.0,
                    "mfu": 0.41,
                }
            ]
        },
    )
    assert gpu_check.main(["--out", str(tmp_path), "--checks", "benchmark_fp32", "nvdec"]) == 1
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [c["status"] for c in summary["checks"]] == ["ok", "failed"]
    assert "no kernel image" in summary["checks"][1]["reason"] and not summary["passed"]
    assert "| train sdpa 224 | fp32 | 12.5 | 640 | 9000 | 41.0% |" in (tmp_path / "gpu_check.md").read_text()

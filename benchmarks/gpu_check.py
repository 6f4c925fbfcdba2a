#!/usr/bin/env python
"""One command for a machine with a GPU: run every CUDA path once and write one summary.

    python benchmarks/gpu_check.py --out gpu_check            # about 5-8 minutes on one GPU

Checks, each in its own subprocess with its own time limit (so one failure or hang does not stop
the others), in this order:

1. ``train_test_bf16``: a short bf16 training + test of a tiny ResFormer on generated synthetic
   data (``make_synthetic_dataset``; ``tools/run_net.py``, ``NUM_GPUS 1``,
   ``TRAIN.MIXED_PRECISION bf16``, repeated sampling 2, 2 loader workers); reads the test results.
2. ``benchmark_bf16`` and ``benchmark_fp32``: ``benchmarks/benchmark.py`` on ResFormer-B
   (``configs/k400_resformer_b.yaml``, batch 8): training steps with sdpa, explicit attention and
   TimeSformer's own model, the multi-resolution step, inference, TFLOP/s and MFU.
3. ``compiled_step``: the same benchmark's sdpa training step with ``TRAIN.COMPILE True``.
4. ``nvdec``: a generated Kinetics-like H.264 file (10 s, 340x256, 30 fps, key frames 250 apart)
   decoded with ``DATA.DECODER torchcodec_cuda`` (NVDEC) against CPU torchcodec: clips/s and the
   mean absolute pixel difference.

Writes ``OUT/gpu_check.json`` (every check: ``status`` ok / failed / skipped, ``reason``,
``seconds``, results) and ``OUT/gpu_check.md``. Without a CUDA device every GPU check is
``skipped`` with the reason, and the command still exits 0; it exits 1 when a check that ran failed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

# benchmarks/ is not installed: `python benchmarks/X.py` needs the repository root on the path.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402  (after the repository root is on sys.path)

Check = dict[str, Any]
NO_GPU = "no CUDA device (torch.cuda.is_available() is False)"
BENCH_ARGS = [
    "--cfg",
    "configs/k400_resformer_b.yaml",
    "--device",
    "cuda",
    "--batch",
    "8",
    "--warmup",
    "3",
    "--repeats",
    "10",
]
TRAIN_OPTS = [
    "NUM_GPUS",
    "1",
    "MODEL.ARCH",
    "resformer_tiny",
    "MODEL.DEPTH",
    "2",
    "MODEL.NUM_CLASSES",
    "4",
    "DATA.NUM_FRAMES",
    "4",
    "DATA.SAMPLING_RATE",
    "6",
    "DATA.TRAIN_JITTER_SCALES",
    "[64, 80]",
    "DATA.TRAIN_CROP_SIZES",
    "[64, 48]",
    "DATA.TEST_CROP_SIZE",
    "64",
    "DATA.NUM_REPEATED_SAMPLES",
    "2",
    "DATA_LOADER.NUM_WORKERS",
    "2",
    "TRAIN.BATCH_SIZE",
    "16",
    "TRAIN.MIXED_PRECISION",
    "bf16",
    "SOLVER.MAX_EPOCH",
    "3",
    "TRAIN.EVAL_PERIOD",
    "3",
    "TEST.NUM_ENSEMBLE_VIEWS",
    "1",
    "TEST.NUM_SPATIAL_CROPS",
    "1",
    "TENSORBOARD.ENABLE",
    "False",
]


def run_command(cmd: Sequence[str], timeout: float, log_path: Path) -> None:
    """Run ``cmd`` from the repository root, output to ``log_path``; raise on failure or timeout."""
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(
            list(cmd), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    if proc.returncode:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"exit {proc.returncode}: {' / '.join(tail)}")


def check_train_test(out: Path, timeout: float) -> dict[str, Any]:
    """Short bf16 training + test on generated data; the test results."""
    from resformer_video.datasets import make_synthetic_dataset

    data, run_dir = out / "synthetic", out / "train_test_bf16"
    make_synthetic_dataset(
        str(data), num_classes=4, videos_per_class=12, seed=0, size=64, duration=(2.0, 4.0), background_contrast=200.0
    )
    opts = ["DATA.PATH_TO_DATA_DIR", str(data), "DATA.PATH_PREFIX", str(data), "OUTPUT_DIR", str(run_dir)]
    run_command([sys.executable, "tools/run_net.py"] + opts + TRAIN_OPTS, timeout, out / "train_test_bf16.log")
    return {"test_results": json.loads((run_dir / "test_results.json").read_text(encoding="utf-8"))}


def benchmark_check(precision: str, extra: Sequence[str] = (), mode: Sequence[str] = ()) -> Callable:
    """A check running ``benchmarks/benchmark.py`` at ``precision``; its report's rows and targets."""

    def check(out: Path, timeout: float) -> dict[str, Any]:
        name = f"benchmark_{precision}" + ("_compiled" if extra else "")
        path = out / f"{name}.json"
        run_command(
            [sys.executable, "benchmarks/benchmark.py"]
            + BENCH_ARGS
            + ["--precision", precision, "--json", str(path)]
            + list(mode)
            + list(extra),
            timeout,
            out / f"{name}.log",
        )
        report = json.loads(path.read_text(encoding="utf-8"))
        return {key: report.get(key) for key in ("machine", "rows", "targets", "comparisons")}

    return check


def check_nvdec(out: Path, timeout: float) -> dict[str, Any]:
    """NVDEC decoding of a Kinetics-like file against CPU torchcodec."""
    from benchmarks.benchmark_data import KINETICS_LIKE, write_kinetics_like
    from resformer_video.datasets.decoders import open_video
    from resformer_video.datasets.sampling import sample_clip_indices

    path = str(out / "kinetics_like.mp4")
    write_kinetics_like(path, **KINETICS_LIKE)
    results: dict[str, Any] = {}
    frames = {}
    for backend in ("torchcodec", "torchcodec_cuda"):
        start, clips = time.perf_counter(), 0
        generator = torch.Generator().manual_seed(0)
        while time.perf_counter() - start < min(20.0, timeout / 3) or clips < 4:
            with open_video(path, backend) as reader:
                idx = sample_clip_indices(reader.num_frames, reader.fps, 8, 32, 30.0, generator=generator)
                frames[backend] = reader.get_frames(idx)
            clips += 1
        results[f"{backend}_clips_per_s"] = clips / (time.perf_counter() - start)
    with open_video(path, "torchcodec") as cpu, open_video(path, "torchcodec_cuda") as gpu:
        idx = list(range(0, 300, 37))
        diff = (cpu.get_frames(idx).float() - gpu.get_frames(idx).float()).abs().mean()
    results["mean_abs_pixel_diff_vs_cpu"] = float(diff)
    return results


CHECKS: dict[str, Callable[[Path, float], dict[str, Any]]] = {
    "train_test_bf16": check_train_test,
    "benchmark_bf16": benchmark_check("bf16", mode=["--mode", "all", "--paired-repeats", "5"]),
    "benchmark_fp32": benchmark_check("fp32", mode=["--mode", "train"]),
    "compiled_step": benchmark_check("bf16", ["TRAIN.COMPILE", "True"], ["--mode", "train", "--attn", "sdpa"]),
    "nvdec": check_nvdec,
}
# Seconds each check may take (together within 8 minutes, start-up included).
TIMEOUTS = {"train_test_bf16": 120, "benchmark_bf16": 150, "benchmark_fp32": 60, "compiled_step": 90, "nvdec": 45}


def environment() -> dict[str, Any]:
    """Versions and the device."""
    cuda = torch.cuda.is_available()
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": cuda,
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor(),
    }
    try:
        info["torchcodec"] = importlib.metadata.version("torchcodec")
    except importlib.metadata.PackageNotFoundError:
        info["torchcodec"] = "not installed"
    return info


def run_check(name: str, out: Path, skip_reason: str | None) -> Check:
    """Run one check; never raises."""
    if skip_reason:
        return {"name": name, "status": "skipped", "reason": skip_reason, "seconds": 0.0}
    start = time.perf_counter()
    try:
        result = {"name": name, "status": "ok", "reason": "", **CHECKS[name](out, TIMEOUTS[name])}
    except subprocess.TimeoutExpired:
        result = {"name": name, "status": "failed", "reason": f"timed out after {TIMEOUTS[name]} s"}
    except Exception as err:  # reported in the summary, the next check still runs
        result = {"name": name, "status": "failed", "reason": f"{type(err).__name__}: {err}"}
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def markdown(env: dict[str, Any], checks: list[Check]) -> str:
    """The summary: environment, one line per check, the benchmark rows."""
    lines = [
        "# GPU check",
        "",
        ", ".join(f"{k} {v}" for k, v in env.items()),
        "",
        "| check | status | seconds | note |",
        "| --- | --- | --- | --- |",
    ]
    for check in checks:
        note = check["reason"] or ", ".join(
            f"{k} {v:.3g}" for k, v in check.items() if isinstance(v, float) and k != "seconds"
        )
        lines.append(f"| {check['name']} | {check['status'].upper()} | {check['seconds']} | {note} |")
    for check in (c for c in checks if c.get("rows")):
        lines += [
            "",
            f"## {check['name']}",
            "",
            "| step | precision | ms | clips/s | peak MiB | MFU |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in check["rows"]:
            mfu = f"{100 * row['mfu']:.1f}%" if row.get("mfu") is not None else "-"
            lines.append(
                f"| {row['name']} | {row['precision']} | {row['median_ms']:.1f} | "
                f"{row['clips_per_s']:.3g} | {row['peak_mem_mb']:.0f} | {mfu} |"
            )
    for check in (c for c in checks if c.get("test_results")):
        lines += ["", f"## {check['name']}", "", "```", json.dumps(check["test_results"], indent=1)[:2000], "```"]
    skipped = [c["name"] for c in checks if c["status"] == "skipped"]
    if skipped:
        lines += ["", f"**Skipped**: {', '.join(skipped)} - {checks[0]['reason'] or 'see the table'}."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check", help="folder for the summary, logs and data")
    parser.add_argument("--checks", nargs="+", default=list(CHECKS), choices=list(CHECKS))
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    skip = None if env["cuda_available"] else NO_GPU
    checks = []
    for name in args.checks:
        checks.append(run_check(name, out, skip))
        print(f"{name}: {checks[-1]['status']} {checks[-1]['reason']}", flush=True)
    summary = {
        "environment": env,
        "checks": checks,
        "passed": all(c["status"] != "failed" for c in checks),
        "skipped": [c["name"] for c in checks if c["status"] == "skipped"],
    }
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    (out / "gpu_check.md").write_text(markdown(env, checks), encoding="utf-8")
    if summary["skipped"]:
        print(f"skipped (GPU checks, {skip or 'see the summary'}): {', '.join(summary['skipped'])}")
    print(f"summary: {out / 'gpu_check.md'}, {out / 'gpu_check.json'}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

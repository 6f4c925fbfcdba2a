#!/usr/bin/env python
"""Training-step and inference throughput, peak memory and FLOP utilisation of a configured model.

Example (flags first, then KEY VALUE config overrides):
    python benchmarks/benchmark.py --cfg configs/k400_resformer_b.yaml --device cpu --batch 1 \
        --repeats 3 --mode train MODEL.ARCH resformer_small

Rows: the training step (the engine's forward, loss, backward and optimiser step) at the largest
training size with SDPA and explicit softmax(QK^T)V attention and with TimeSformer's own model, the
multi-resolution step over all training sizes, and inference at every test resolution. See
docs/PERFORMANCE.md.
"""

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import torch

# benchmarks/ is not installed: `python benchmarks/X.py` needs the repository root on the path.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness import (  # noqa: E402
    MODES,
    PRECISIONS,
    STEP_VARIANTS,
    BenchmarkOptionError,
    BenchmarkOptions,
    format_report,
    run_benchmark,
)
from resformer_video.config import ConfigError, load_config  # noqa: E402
from resformer_video.utils.parser import build_parser, parse_flags_then_overrides  # noqa: E402

# The command-line flag of each BenchmarkOptions field, for error messages.
FLAGS = {
    "batch": "--batch",
    "precision": "--precision",
    "device": "--device",
    "mode": "--mode",
    "train_sizes": "--train-sizes",
    "resolutions": "--resolutions",
    "attn_impls": "--attn",
    "warmup": "--warmup",
    "repeats": "--repeats",
    "paired_repeats": "--paired-repeats",
}


def _str_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _int_list(text: str) -> list[int]:
    try:
        return [int(item) for item in _str_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=None, help="clips per step (default TRAIN.BATCH_SIZE)")
    parser.add_argument(
        "--precision",
        default=None,
        choices=PRECISIONS,
        help="default: TRAIN.MIXED_PRECISION where it runs natively on the "
        "device (bf16: a GPU with bf16, a CPU with AVX512-BF16 or AMX), else "
        "fp32; bf16 on another CPU runs emulated (slow), with a warning",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--mode", default="all", choices=MODES)
    parser.add_argument(
        "--attn",
        type=_str_list,
        default=list(STEP_VARIANTS),
        help="comma-separated variants of the single-size training rows: our "
        "model with sdpa or explicit attention, and timesformer (TimeSformer's "
        "own model, op for op) (default sdpa,explicit,timesformer)",
    )
    parser.add_argument(
        "--train-sizes",
        type=_int_list,
        default=None,
        help="comma-separated multi-resolution sizes, e.g. 224,160,128 (default "
        "DATA.TRAIN_CROP_SIZES, or S, 5/7 S, 4/7 S when it has one size)",
    )
    parser.add_argument(
        "--resolutions",
        type=_int_list,
        default=None,
        help="comma-separated inference sweep, e.g. 96,160,224 (default TEST.RESOLUTIONS or DATA.TEST_CROP_SIZE)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps (the median is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="device peak TFLOP/s for MFU (default: table by GPU name)"
    )
    parser.add_argument(
        "--paired-repeats",
        type=int,
        default=0,
        help="also time the --attn training steps alternately this many times "
        "(robust to load from other processes); the CPU target uses it",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print torch.profiler's top ops of the sdpa training step and "
        "the share of GEMMs, attention and the rest (what bounds the speed)",
    )
    parser.add_argument("--json", dest="json_path", default=None, help="also write the report here")
    return parse_flags_then_overrides(parser, argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    options = BenchmarkOptions(
        batch=args.batch,
        precision=args.precision,
        device=args.device,
        mode=args.mode,
        train_sizes=args.train_sizes,
        resolutions=args.resolutions,
        attn_impls=tuple(args.attn),
        warmup=args.warmup,
        repeats=args.repeats,
        peak_tflops=args.peak_tflops,
        profile=args.profile,
        paired_repeats=args.paired_repeats,
    )
    try:
        cfg = load_config(args.cfg_file, args.opts)
        report = run_benchmark(cfg, options)
    except BenchmarkOptionError as err:
        print(f"error: {FLAGS.get(err.option, err.option)}: {err.message}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json_path:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_path)), exist_ok=True)
        with open(args.json_path, "w", encoding="utf-8") as handle:
            json.dump(report.to_dict(), handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

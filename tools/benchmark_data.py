#!/usr/bin/env python
"""Data-pipeline throughput: decoded-and-augmented training clips per second.

For each dataset (the synthetic set, generated into a temporary folder, and ../shared/realclips
through a temporary list), each decoder backend, single- and multi-resolution crops and 0 and N
loader workers, iterate the training loader and print a Markdown table of clips/s (steady state:
the first batch, which includes worker start-up, is not timed).

Example:
    python tools/benchmark_data.py --workers 2 --clips 64
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from resformer_video.config import load_config  # noqa: E402
from resformer_video.datasets import BACKENDS, build_loader, make_synthetic_dataset  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
REALCLIPS = REPO_ROOT.parent / "shared" / "realclips"
SIZE_SETS = {"single [224]": [224], "multi [224, 160, 128]": [224, 160, 128]}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="N in the '0 and N workers' runs")
    parser.add_argument("--clips", type=int, default=64, help="timed clips per measurement")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "realclips"],
                        choices=["synthetic", "realclips"])
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--sampling-rate", type=int, default=8)
    parser.add_argument("--rand-augment", action="store_true", help="add RandAugment m9 mstd0.5")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per process")
    return parser.parse_args(argv)


def prepare_synthetic(root: str) -> Dict[str, object]:
    """4 classes x 6 videos of 96x96, 2-4 s (the demo's kind of data)."""
    make_synthetic_dataset(root, num_classes=4, videos_per_class=6, seed=0, size=96)
    return {"dir": root, "prefix": root, "classes": 4}


def prepare_realclips(root: str) -> Dict[str, object]:
    """A temporary train list of every clip in ../shared/realclips (absolute paths, a class each)."""
    clips = sorted(REALCLIPS.glob("*.mp4"))
    if not clips:
        raise FileNotFoundError(f"{REALCLIPS}: no real clips found")
    with open(os.path.join(root, "train.csv"), "w", encoding="utf-8") as handle:
        handle.writelines(f"{path} {label}\n" for label, path in enumerate(clips))
    return {"dir": root, "prefix": "", "classes": len(clips)}


def make_cfg(data: Dict[str, object], backend: str, sizes: List[int], workers: int, args):
    opts = ["DATA.PATH_TO_DATA_DIR", data["dir"], "DATA.PATH_PREFIX", data["prefix"],
            "MODEL.NUM_CLASSES", data["classes"], "DATA.DECODER", backend, "DATA.TRAIN_CROP_SIZES", sizes,
            "DATA.NUM_FRAMES", args.num_frames, "DATA.SAMPLING_RATE", args.sampling_rate,
            "AUG.RAND_AUGMENT", args.rand_augment, "DATA_LOADER.NUM_WORKERS", workers,
            "DATA_LOADER.PIN_MEMORY", False, "DATA_LOADER.PERSISTENT_WORKERS", True,
            "TRAIN.BATCH_SIZE", args.batch, "NUM_GPUS", 0]
    return load_config(None, opts)


def clips_per_second(cfg, clips: int) -> float:
    """Steady-state training clips/s of ``build_loader(cfg, "train")`` over ``clips`` clips."""
    loader = build_loader(cfg, "train")
    seen, epoch, start = 0, 0, None
    while seen < clips:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            if start is None:  # first batch: worker start-up and warm-up, not timed
                start = time.perf_counter()
                continue
            seen += batch["label"].shape[0]
            if seen >= clips:
                break
        epoch += 1
    return seen / (time.perf_counter() - start)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            root = os.path.join(tmp, name)
            os.makedirs(root)
            data = prepare_synthetic(root) if name == "synthetic" else prepare_realclips(root)
            for backend in args.backends:
                for label, sizes in SIZE_SETS.items():
                    rates = [clips_per_second(make_cfg(data, backend, sizes, w, args), args.clips)
                             for w in (0, args.workers)]
                    rows.append(f"| {name} | {backend} | {label} | {rates[0]:.1f} | {rates[1]:.1f} |")
                    print(rows[-1], flush=True)
    print(f"\n{os.cpu_count()} CPUs, torch threads {args.threads}, {args.num_frames} frames at sampling "
          f"rate {args.sampling_rate}, batch {args.batch}, RandAugment {args.rand_augment}\n")
    print(f"| data | decoder | crop sizes | clips/s, 0 workers | clips/s, {args.workers} workers |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

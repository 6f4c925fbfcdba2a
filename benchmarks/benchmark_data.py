#!/usr/bin/env python
"""Data-pipeline throughput: decoded-and-augmented training clips per second.

For each dataset (the synthetic set, generated into a temporary folder; ../shared/realclips
through a temporary list; ``kinetics`` / ``kinetics_720p``: one generated Kinetics-like file -
10 s, 340x256 / 1280x720, 30 fps H.264, a key frame every 250 frames - listed 16 times; with
``--prepared`` also that file after ``tools/prepare_kinetics.py --resize``: short side 320, never
upscaled, a key frame every 16 frames), each decoder backend, single- and
multi-resolution crops, each ``--repeats`` value (``DATA.NUM_REPEATED_SAMPLES``: samples per
decode) and 0 and N loader workers, iterate the training loader and print a Markdown table of
clips/s (steady state: the first batch, which includes worker start-up, is not timed) and, with 0
workers, **clips per core-second**: clips over the CPU time the process used (all its threads,
e.g. PyAV's), which does not depend on what else runs on the machine. A GPU backend
(``torchcodec_cuda``) is skipped, with a note, where CUDA is not available.

Examples:
    python benchmarks/benchmark_data.py --workers 2 --clips 64
    python benchmarks/benchmark_data.py --datasets kinetics --num-frames 8 --sampling-rate 32 \
        --workers 0 --repeats 1 2 4 --sizes multi --clips 32
    python benchmarks/benchmark_data.py --datasets kinetics kinetics_720p --prepared --num-frames 8 \
        --sampling-rate 32 --workers 0 --repeats 1 4 --sizes multi --backends decord --clips 32
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/ is not installed: `python benchmarks/X.py` needs the repository root on the path.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from resformer_video.config import load_config  # noqa: E402
from resformer_video.datasets import BACKENDS, build_loader, make_synthetic_dataset  # noqa: E402

REALCLIPS = REPO_ROOT.parent / "shared" / "realclips"
SIZE_SETS = {"single [224]": [224], "multi [224, 160, 128]": [224, 160, 128]}
KINETICS_LIKE = dict(seconds=10, width=340, height=256, fps=30, gop=250)
KINETICS_SIZES = {"kinetics": (340, 256), "kinetics_720p": (1280, 720)}  # dataset -> width, height


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="N in the '0 and N workers' runs")
    parser.add_argument("--clips", type=int, default=64, help="timed clips per measurement")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument(
        "--datasets", nargs="+", default=["synthetic", "realclips"], choices=["synthetic", "realclips", *KINETICS_SIZES]
    )
    parser.add_argument(
        "--prepared",
        action="store_true",
        help="Kinetics-like data also after prepare_kinetics --resize (default settings)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        nargs="+",
        default=[1],
        help="DATA.NUM_REPEATED_SAMPLES values (each must divide --batch)",
    )
    parser.add_argument("--sizes", nargs="+", default=["single", "multi"], choices=["single", "multi"])
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--sampling-rate", type=int, default=8)
    parser.add_argument("--rand-augment", action="store_true", help="add RandAugment m9 mstd0.5")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per process")
    return parser.parse_args(argv)


def prepare_synthetic(root: str) -> dict[str, object]:
    """4 classes x 6 videos of 96x96, 2-4 s (the demo's kind of data)."""
    make_synthetic_dataset(
        root, num_classes=4, videos_per_class=6, seed=0, size=96, duration=(2.0, 4.0), background_contrast=200.0
    )
    return {"dir": root, "prefix": root, "classes": 4}


def prepare_realclips(root: str) -> dict[str, object]:
    """A temporary train list of every clip in ../shared/realclips (absolute paths, a class each)."""
    clips = sorted(REALCLIPS.glob("*.mp4"))
    if not clips:
        raise FileNotFoundError(f"{REALCLIPS}: no real clips found")
    with open(os.path.join(root, "train.csv"), "w", encoding="utf-8") as handle:
        handle.writelines(f"{path} {label}\n" for label, path in enumerate(clips))
    return {"dir": root, "prefix": "", "classes": len(clips)}


def write_kinetics_like(path: str, seconds: int, width: int, height: int, fps: int, gop: int) -> None:
    """An H.264 file encoded as Kinetics' usually are: ``width x height``, ``fps``, a key frame
    every ``gop`` frames; a textured scene panning with some noise, so P-frames carry real work."""
    import numpy as np

    from resformer_video.datasets.encoding import VideoWriter, x264_options

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 4, 2 * width // 4, 3), dtype=np.uint8)
    texture = texture.repeat(4, axis=0).repeat(4, axis=1)
    with VideoWriter(
        path, fps, width, height, options=x264_options(23, gop, preset="medium", scenecut=False)
    ) as writer:
        for i in range(seconds * fps):
            shift = (3 * i) % width
            frame = texture[:, shift : shift + width].copy()
            frame[rng.integers(0, height, 64), rng.integers(0, width, 64)] = 255
            writer.write(frame)


def prepare_kinetics_like(root: str, name: str, prepared: bool = False) -> dict[str, object]:
    """A train list of one generated Kinetics-like file (``KINETICS_LIKE`` at the size of
    ``KINETICS_SIZES[name]``), 16 times; ``prepared``: that file re-encoded as
    ``tools/prepare_kinetics.py --resize`` does (its default settings)."""
    from resformer_video.datasets.prepare_kinetics import ResizeSettings, reencode_video

    width, height = KINETICS_SIZES[name]
    path = os.path.join(root, "kinetics_like.mp4")
    write_kinetics_like(path, **dict(KINETICS_LIKE, width=width, height=height))
    if prepared:
        path, original = os.path.join(root, "kinetics_like_prepared.mp4"), path
        reencode_video(original, path, ResizeSettings())
    with open(os.path.join(root, "train.csv"), "w", encoding="utf-8") as handle:
        handle.writelines(f"{path} {i % 2}\n" for i in range(16))
    return {"dir": root, "prefix": "", "classes": 2}


PREPARE = {"synthetic": prepare_synthetic, "realclips": prepare_realclips}


def make_cfg(data: dict[str, object], backend: str, sizes: list[int], workers: int, args, repeats: int = 1):
    opts = [
        "DATA.PATH_TO_DATA_DIR",
        data["dir"],
        "DATA.PATH_PREFIX",
        data["prefix"],
        "MODEL.NUM_CLASSES",
        data["classes"],
        "DATA.DECODER",
        backend,
        "DATA.TRAIN_CROP_SIZES",
        sizes,
        "DATA.NUM_FRAMES",
        args.num_frames,
        "DATA.SAMPLING_RATE",
        args.sampling_rate,
        "AUG.RAND_AUGMENT",
        args.rand_augment,
        "DATA_LOADER.NUM_WORKERS",
        workers,
        "DATA_LOADER.PIN_MEMORY",
        False,
        "DATA_LOADER.PERSISTENT_WORKERS",
        True,
        "TRAIN.BATCH_SIZE",
        args.batch,
        "NUM_GPUS",
        0,
        "DATA.NUM_REPEATED_SAMPLES",
        repeats,
        "DATA.DECODER_FALLBACK",
        "",
    ]
    return load_config(None, opts)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children, all threads."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def clips_per_second(cfg, clips: int) -> tuple[float, float]:
    """Steady-state training clips/s of ``build_loader(cfg, "train")`` over ``clips`` clips, and
    clips per CPU-second of this process (meaningful with 0 workers)."""
    loader = build_loader(cfg, "train")
    seen, epoch, start, start_cpu = 0, 0, None, 0.0
    while seen < clips:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            if start is None:  # first batch: worker start-up and warm-up, not timed
                start, start_cpu = time.perf_counter(), cpu_seconds()
                continue
            seen += batch["label"].shape[0]
            if seen >= clips:
                break
        epoch += 1
    return seen / (time.perf_counter() - start), seen / max(cpu_seconds() - start_cpu, 1e-9)


def measure_row(data: dict[str, object], backend: str, sizes: list[int], repeats: int, args) -> str:
    """One table row: clips/s with 0 and N workers and clips per core-second (0 workers)."""
    if backend.endswith("_cuda") and not torch.cuda.is_available():
        return "skipped: no CUDA device | - | - |"
    rate, per_core = clips_per_second(make_cfg(data, backend, sizes, 0, args, repeats), args.clips)
    workers = (
        f"{clips_per_second(make_cfg(data, backend, sizes, args.workers, args, repeats), args.clips)[0]:.1f}"
        if args.workers
        else "-"
    )
    return f"{rate:.1f} | {workers} | {per_core:.1f} |"


def dataset_variants(datasets: list[str], prepared: bool) -> list[tuple[str, bool]]:
    """(dataset, prepared) to measure: each dataset, and with ``prepared`` each Kinetics-like one
    after ``prepare_kinetics --resize`` as well."""
    return [
        (name, variant)
        for name in datasets
        for variant in ((False, True) if prepared and name in KINETICS_SIZES else (False,))
    ]


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, prepared in dataset_variants(args.datasets, args.prepared):
            root = os.path.join(tmp, name + "_prepared" * prepared)
            os.makedirs(root)
            data = prepare_kinetics_like(root, name, prepared) if name in KINETICS_SIZES else PREPARE[name](root)
            name = f"{name}{' prepared' if prepared else ''}"
            for backend in args.backends:
                for label, sizes in SIZE_SETS.items():
                    if label.split()[0] not in args.sizes:
                        continue
                    for repeats in args.repeats:
                        rows.append(
                            f"| {name} | {backend} | {label} | {repeats} | "
                            f"{measure_row(data, backend, sizes, repeats, args)}"
                        )
                        print(rows[-1], flush=True)
    print(
        f"\n{os.cpu_count()} CPUs, torch threads {args.threads}, {args.num_frames} frames at sampling "
        f"rate {args.sampling_rate}, batch {args.batch}, RandAugment {args.rand_augment}\n"
    )
    workers = f"{args.workers} workers" if args.workers else "N workers (not run)"
    print(
        f"| data | decoder | crop sizes | samples per decode | clips/s, 0 workers | "
        f"clips/s, {workers} | clips per core-second |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

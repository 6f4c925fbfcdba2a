#!/usr/bin/env python
"""The demo: generate a small motion dataset, train a tiny ResFormer on CPU, test it at several sizes.

    python tools/demo.py [--cfg configs/demo_synthetic.yaml] [--videos-per-class N] [KEY VALUE ...]

It writes the dataset to ``DATA.PATH_TO_DATA_DIR`` (reused when already there), trains with
multi-resolution training and the scale-consistency loss (the same ``train`` / ``test`` as
``tools/run_net.py``), and prints video-level top-1/top-5 at every ``TEST.RESOLUTIONS`` size next
to chance. Logs, checkpoints and results go to ``OUTPUT_DIR`` (default ``./output/demo``).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from yacs.config import CfgNode  # noqa: E402

from resformer_video.config import ConfigError, cfg_with, load_config  # noqa: E402
from resformer_video.datasets import make_synthetic_dataset  # noqa: E402
from resformer_video.engine import test, train  # noqa: E402
from resformer_video.utils.checkpoint import get_checkpoint_path  # noqa: E402
from resformer_video.utils.distributed import launch  # noqa: E402
from resformer_video.utils.parser import build_parser  # noqa: E402

DEFAULT_CFG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "configs", "demo_synthetic.yaml")
DATA_FILES = ("train.csv", "val.csv", "test.csv", "classnames.json")
DURATION = (1.0, 1.4)  # seconds per generated video: a training clip spans nearly all of it
# Range (0-255 levels) of the random colour texture behind the moving shape. The library default
# (200) is too cluttered for a tiny ViT to learn from scratch in a few CPU minutes (it stays at
# chance); at 40 the background is still a random noisy texture but the shape stands out.
BACKGROUND_CONTRAST = 40.0


def ensure_dataset(cfg: CfgNode, videos_per_class: int, size: int, seed: int,
                   background_contrast: float = BACKGROUND_CONTRAST) -> None:
    """Generate the motion dataset into ``DATA.PATH_TO_DATA_DIR`` unless it is already complete."""
    data_dir = cfg.DATA.PATH_TO_DATA_DIR
    if all(os.path.isfile(os.path.join(data_dir, f)) for f in DATA_FILES):
        print(f"using the dataset in {data_dir}")
        return
    start = time.time()
    print(f"generating {cfg.MODEL.NUM_CLASSES} classes x {videos_per_class} videos in {data_dir} ...")
    make_synthetic_dataset(data_dir, num_classes=cfg.MODEL.NUM_CLASSES,
                           videos_per_class=videos_per_class, seed=seed, size=size,
                           duration=DURATION, background_contrast=background_contrast)
    print(f"dataset ready in {time.time() - start:.0f} s")


def print_summary(report: dict, num_classes: int, seconds: float) -> None:
    chance = 100.0 / num_classes
    print(f"\nvideo-level accuracy on {report['results'][next(iter(report['results']))]['num_videos']}"
          f" test videos ({report['views']}), chance top-1 {chance:.1f}%:")
    print(f"{'test size':>10} {'top-1':>8} {'top-5':>8}")
    for size, metrics in report["results"].items():
        print(f"{size:>10} {metrics['top1']:>7.1f}% {metrics['top5']:>7.1f}%")
    print(f"\ntrained at {'/'.join(str(s) for s in report['train_sizes'])} px; total time "
          f"{seconds / 60:.1f} min")


def main() -> int:
    parser = build_parser("Train and test a tiny ResFormer on a generated motion dataset (CPU).")
    parser.add_argument("--videos-per-class", type=int, default=250,
                        help="videos per class in the generated dataset (60/20/20 train/val/test)")
    parser.add_argument("--video-size", type=int, default=64, help="generated frame size (pixels)")
    parser.add_argument("--background-contrast", type=float, default=BACKGROUND_CONTRAST,
                        help="range (0-255) of the generated background texture; higher is harder")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    start = time.time()
    torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.cfg_file or DEFAULT_CFG, args.opts)
        ensure_dataset(cfg, args.videos_per_class, args.video_size, cfg.RNG_SEED,
                       args.background_contrast)
        launch(cfg, train)
        final = get_checkpoint_path(cfg.OUTPUT_DIR, cfg.SOLVER.MAX_EPOCH)
        report = launch(cfg_with(cfg, "TEST.CHECKPOINT_FILE_PATH", final), test)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_summary(report, cfg.MODEL.NUM_CLASSES, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Write the synthetic motion dataset (H.264 .mp4 + Kinetics-style lists) used by the demo and tests.

Example:
    python tools/make_synthetic_dataset.py /tmp/synth --num-classes 4 --videos-per-class 12 --size 96

Defaults are the generator's (the config's SYNTHETIC node: datasets/synthetic.py GENERATOR_DEFAULTS).
"""

import argparse
import sys
import time

from resformer_video.datasets.synthetic import DEFAULT_FPS, GENERATOR_DEFAULTS, MOTIONS, make_synthetic_dataset


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="output folder (created)")
    parser.add_argument("--num-classes", type=int, default=4, help=f"1 to {len(MOTIONS)}: {', '.join(MOTIONS)}")
    parser.add_argument("--videos-per-class", type=int, default=GENERATOR_DEFAULTS["videos_per_class"])
    parser.add_argument("--seed", type=int, default=GENERATOR_DEFAULTS["seed"])
    parser.add_argument("--size", type=int, default=GENERATOR_DEFAULTS["size"], help="frame width and height in pixels")
    parser.add_argument(
        "--duration",
        type=float,
        nargs=2,
        default=GENERATOR_DEFAULTS["duration"],
        metavar=("MIN", "MAX"),
        help="video length range in seconds",
    )
    parser.add_argument("--fps", type=float, nargs="+", default=list(DEFAULT_FPS), help="frame rates to draw from")
    parser.add_argument("--frames", type=int, default=0, help="fixed frames per video (overrides --duration)")
    parser.add_argument(
        "--background-contrast",
        type=float,
        default=GENERATOR_DEFAULTS["background_contrast"],
        help="0-255 range of the background texture (lower is easier)",
    )
    parser.add_argument(
        "--sprite-scale",
        type=float,
        nargs=2,
        default=GENERATOR_DEFAULTS["sprite_scale"],
        metavar=("MIN", "MAX"),
        help="size of the moving shape as a fraction of the frame",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.time()
    try:
        splits = make_synthetic_dataset(
            args.out_dir,
            args.num_classes,
            args.videos_per_class,
            args.seed,
            args.size,
            tuple(args.duration),
            tuple(args.fps),
            args.frames,
            background_contrast=args.background_contrast,
            sprite_scale=tuple(args.sprite_scale),
        )
    except ValueError as err:
        sys.exit(f"error: {err}")
    counts = ", ".join(f"{split} {len(items)}" for split, items in splits.items())
    print(
        f"wrote {args.out_dir}: {counts} videos in {time.time() - start:.1f} s "
        f"(DATA.PATH_TO_DATA_DIR and DATA.PATH_PREFIX = {args.out_dir})"
    )


if __name__ == "__main__":
    main()

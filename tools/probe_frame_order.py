#!/usr/bin/env python
"""Does a from-scratch model start to learn frame order? A quick in-memory probe (no video files).

    python tools/probe_frame_order.py [--random-temporal-init] [--videos-per-class 100] [--epochs 10]

Renders order-only motion clips (datasets/synthetic.py: scrolling on a torus and rotation; one
frame, or the frames without their order, look alike for every class) straight into memory, trains
a small ``VideoResFormer`` (patch 8, 64 px, 4 frames) with AdamW and prints the training loss and
held-out top-1 per epoch. ``--random-temporal-init`` replaces the library's initialisation (zero
temporal table, zero ``temporal_fc`` in every block, as TimeSformer's later blocks) by a random
table (std 0.02) and TimeSformer's non-zero first ``temporal_fc``, the alternative we tried.
docs/RESULTS.md records what it printed.
"""

import argparse
import math
import os
import sys
import time
from typing import List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from resformer_video.datasets.synthetic import render_video  # noqa: E402
from resformer_video.models import VideoResFormer  # noqa: E402

CLASSES = ("scrolling_left", "scrolling_right", "scrolling_up", "scrolling_down",
           "rotating_clockwise", "rotating_counterclockwise")
SIZE, FRAMES, FPS, PATCH = 64, 4, 3.0, 8


def render_split(rng: np.random.Generator, per_class: int, contrast: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Clips ``(N, 3, T, H, W)`` normalised as the library does, and labels ``(N,)``."""
    clips: List[np.ndarray] = []
    for motion in CLASSES:
        clips += [render_video(rng, motion, SIZE, FRAMES, FPS, contrast, (0.2, 0.45)) for _ in range(per_class)]
    x = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).float().div(255).sub(0.45).div(0.225)
    return x, torch.arange(len(CLASSES)).repeat_interleave(per_class)


def random_temporal_init(model: VideoResFormer) -> None:
    """Random temporal table (truncated normal, 0.02) and a random first ``temporal_fc`` (as
    TimeSformer, which zeroes it in later blocks only)."""
    torch.nn.init.trunc_normal_(model.time_embed, std=0.02)
    torch.nn.init.trunc_normal_(model.blocks[0].temporal_fc.weight, std=0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-temporal-init", action="store_true")
    parser.add_argument("--videos-per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background-contrast", type=float, default=40.0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(1234)
    start = time.time()
    x_train, y_train = render_split(rng, args.videos_per_class, args.background_contrast)
    x_test, y_test = render_split(rng, 50, args.background_contrast)
    model = VideoResFormer(num_classes=len(CLASSES), img_size=SIZE, patch_size=PATCH, embed_dim=128,
                           depth=4, num_heads=2, num_frames=FRAMES, drop_path_rate=0.0)
    if args.random_temporal_init:
        random_temporal_init(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    batch, steps = 16, len(x_train) // 16
    total = steps * args.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / steps if s < steps else 0.5 * (1 + math.cos(math.pi * (s - steps) / max(1, total - steps))))
    order = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        perm, losses = torch.randperm(len(x_train), generator=order), []
        for i in range(steps):
            idx = perm[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            top1 = (model(x_test).argmax(1) == y_test).float().mean().item() * 100
        print(f"epoch {epoch + 1}: train loss {np.mean(losses):.3f} (chance {math.log(len(CLASSES)):.3f}), "
              f"test top-1 {top1:.1f}% (chance {100 / len(CLASSES):.1f}%), {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Does a from-scratch model learn frame order? A quick in-memory probe (no video files).

    python benchmarks/probe_frame_order.py [--temporal-init sincos|zeros] [--classes growing,shrinking]
                                      [--ramp 0.3] [--epochs 6] [--seed 0]

Renders order-only clips (datasets/synthetic.py: each class is another one played backwards, so one
frame, or the frames without their order, cannot tell them apart) straight into memory, 64 px and
4 frames, fresh clips every epoch, and trains a small ``VideoResFormer`` (patch 8, 64 wide, 4
blocks) with AdamW, printing the training loss and held-out top-1 per epoch. ``--temporal-init``
picks how the learned temporal table starts (the library's ``MODEL.TEMPORAL_EMBED_INIT``).
``--ramp A`` adds a whole-frame brightness ramp of amplitude ``A`` (normalised units) that rises
over the clip for even class indices and falls for odd ones: the simplest order-only signal there
is. docs/RESULTS.md records what it printed.
"""

import argparse
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from resformer_video.datasets.synthetic import MOTIONS, render_video
from resformer_video.models import VideoResFormer

SIZE, FRAMES, FPS, PATCH = 64, 4, 3.0, 8


def render_split(
    rng: np.random.Generator, classes: Sequence[str], per_class: int, contrast: float, ramp: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips ``(N, 3, T, H, W)`` normalised as the library does, and labels ``(N,)``."""
    clips: list[np.ndarray] = []
    for motion in classes:
        clips += [render_video(rng, motion, SIZE, FRAMES, FPS, contrast, (0.2, 0.45)) for _ in range(per_class)]
    x = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).float().div(255).sub(0.45).div(0.225)
    labels = torch.arange(len(classes)).repeat_interleave(per_class)
    sign = 1 - 2 * (labels % 2).float()
    x = x + ramp * sign.view(-1, 1, 1, 1, 1) * torch.linspace(-1, 1, FRAMES).view(1, 1, FRAMES, 1, 1)
    return x, labels


def warmup_cosine(steps_per_epoch: int, total: int):
    """One epoch of linear warm-up, then cosine to zero (a factor of the base learning rate)."""
    return lambda s: (
        (s + 1) / steps_per_epoch
        if s < steps_per_epoch
        else 0.5 * (1 + math.cos(math.pi * (s - steps_per_epoch) / max(1, total - steps_per_epoch)))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--temporal-init", choices=("sincos", "zeros"), default="sincos")
    parser.add_argument("--classes", default="growing,shrinking", help=f"from {', '.join(MOTIONS)}")
    parser.add_argument("--ramp", type=float, default=0.0, help="brightness ramp amplitude (0: none)")
    parser.add_argument("--videos-per-class", type=int, default=300, help="training clips per class per epoch")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background-contrast", type=float, default=40.0)
    args = parser.parse_args()
    classes = [name.strip() for name in args.classes.split(",") if name.strip()]
    if any(name not in MOTIONS for name in classes):
        parser.error(f"--classes: choose from {', '.join(MOTIONS)}")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(1234)
    start = time.time()
    x_train, y_train = render_split(rng, classes, args.videos_per_class, args.background_contrast, args.ramp)
    x_test, y_test = render_split(rng, classes, 50, args.background_contrast, args.ramp)
    model = VideoResFormer(
        num_classes=len(classes),
        img_size=SIZE,
        patch_size=PATCH,
        embed_dim=64,
        depth=4,
        num_heads=2,
        num_frames=FRAMES,
        drop_path_rate=0.0,
        temporal_embed_init=args.temporal_init,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    batch, steps = args.batch_size, len(x_train) // args.batch_size
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps, steps * args.epochs))
    order = torch.Generator().manual_seed(args.seed)
    chance_loss, chance_top1 = math.log(len(classes)), 100 / len(classes)
    for epoch in range(args.epochs):
        if epoch > 0:  # fresh clips every epoch: nothing to memorise
            x_train, y_train = render_split(rng, classes, args.videos_per_class, args.background_contrast, args.ramp)
        model.train()
        perm, losses = torch.randperm(len(x_train), generator=order), []
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
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
        print(
            f"epoch {epoch + 1}: train loss {np.mean(losses):.3f} (chance {chance_loss:.3f}), "
            f"test top-1 {top1:.1f}% (chance {chance_top1:.1f}%), {time.time() - start:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Data loaders: samplers for single- and multi-process runs, worker seeding and the batch collate.

``build_loader(cfg, split)`` always gives ``loader.sampler.set_epoch(epoch)``:
- ``train``: a ``DistributedSampler`` (``num_replicas`` = world size, 1 when torch.distributed is
  not initialised) that shuffles with ``cfg.RNG_SEED + epoch``, so the order is reproducible and
  resumable; the last incomplete batch is dropped.
- ``val`` / ``test``: :class:`ShardSampler`, a contiguous shard per rank in order, without the
  padding duplicates of ``DistributedSampler`` (so each view is counted once; consecutive views
  of a video stay in one worker, which lets the spatial crops of a clip share one decode).
"""

from __future__ import annotations

import random
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from resformer_video.datasets.kinetics import VideoDataset, collate_clips


def _world() -> tuple[int, int]:
    """``(rank, world_size)``, ``(0, 1)`` without an initialised process group."""
    # Imported here: utils.distributed imports the config package, which imports this package.
    from resformer_video.utils import distributed

    return distributed.get_rank(), distributed.get_world_size()


class ShardSampler(Sampler[int]):
    """Indices ``[rank * n // world, (rank + 1) * n // world)`` in order; ``set_epoch`` is a no-op."""

    def __init__(self, dataset_len: int, rank: int = 0, world_size: int = 1) -> None:
        self.start = rank * dataset_len // world_size
        self.stop = (rank + 1) * dataset_len // world_size

    def set_epoch(self, epoch: int) -> None:
        """Nothing to reshuffle (kept for a uniform loader interface)."""

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


def seed_worker(worker_id: int) -> None:
    """Seed Python and NumPy in a worker from its torch seed (itself drawn from the loader's
    generator, seeded with ``RNG_SEED + rank``)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_dataset(cfg, split: str) -> VideoDataset:
    """The :class:`VideoDataset` of ``split`` (``train``, ``val`` or ``test``)."""
    return VideoDataset(cfg, split)


def build_loader(cfg, split: str) -> DataLoader:
    """DataLoader of ``split`` with ``DATA_LOADER`` workers, pinned memory (on CUDA machines),
    persistent workers, a sampler with ``set_epoch`` and :func:`collate_clips`."""
    dataset = build_dataset(cfg, split)
    rank, world = _world()
    train = split == "train"
    if train:
        sampler: Sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                              seed=cfg.RNG_SEED, drop_last=False)
    else:
        sampler = ShardSampler(len(dataset), rank, world)
    workers = cfg.DATA_LOADER.NUM_WORKERS
    generator = torch.Generator()
    generator.manual_seed(cfg.RNG_SEED + rank)
    return DataLoader(
        dataset,
        batch_size=cfg.TRAIN.BATCH_SIZE if train else cfg.TEST.BATCH_SIZE,
        sampler=sampler,
        num_workers=workers,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.cuda.is_available(),
        persistent_workers=cfg.DATA_LOADER.PERSISTENT_WORKERS and workers > 0,
        drop_last=train and len(sampler) >= cfg.TRAIN.BATCH_SIZE,
        collate_fn=collate_clips,
        worker_init_fn=seed_worker,
        generator=generator,
    )

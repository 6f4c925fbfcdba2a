"""Data loaders: samplers for single- and multi-process runs, worker seeding and the batch collate.

``build_loader(cfg, split)`` always gives ``loader.sampler.set_epoch(epoch)``:
- ``train``: a ``DistributedSampler`` (``num_replicas`` = world size, 1 when torch.distributed is
  not initialised) that shuffles with ``cfg.RNG_SEED + epoch``, so the order is reproducible and
  resumable; the last incomplete batch is dropped. With ``DATA.NUM_REPEATED_SAMPLES R > 1``,
  :class:`RepeatedSampleSampler` instead: each item is one decode giving ``R`` samples, a batch is
  ``TRAIN.BATCH_SIZE / R`` items (``TRAIN.BATCH_SIZE`` samples), and an epoch decodes a different
  ``1 / R`` of the videos, so it still has as many samples (and iterations) as without repeats and
  every video is seen ``R`` times in every ``R`` consecutive epochs: once per epoch on average.
- ``val`` / ``test``: :class:`ShardSampler`, a contiguous shard per rank in order, without the
  padding duplicates of ``DistributedSampler`` (so each view is counted once; consecutive views
  of a video stay in one worker, which lets the spatial crops of a clip share one decode).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from resformer_video.datasets.kinetics import VideoDataset, collate_clips
from resformer_video.utils import distributed
from resformer_video.utils.stop_signal import ignore_stop_signals


def _world() -> tuple[int, int]:
    """``(rank, world_size)``, ``(0, 1)`` without an initialised process group."""
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


class RepeatedSampleSampler(Sampler[int]):
    """Video indices for repeated sampling, ``ceil(n / repeats)`` per epoch over all ranks.

    Epochs ``c * repeats`` to ``(c + 1) * repeats - 1`` share one permutation of the ``n`` videos
    (seeded with ``seed + c``) and take its ``repeats`` near-equal contiguous parts in turn, so every
    video is decoded exactly once in those epochs. An epoch's part is padded (with its own first
    indices) to a multiple of ``world_size`` and dealt out like ``DistributedSampler``:
    rank ``r`` takes positions ``r, r + world_size, ...``.
    """

    def __init__(self, num_videos: int, repeats: int, rank: int = 0, world_size: int = 1, seed: int = 0) -> None:
        self.num_videos, self.repeats = num_videos, repeats
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the part of the permutation (and the permutation) of ``epoch``."""
        self.epoch = epoch

    def epoch_videos(self) -> list[int]:
        """This epoch's videos over all ranks (before padding)."""
        cycle, part = divmod(self.epoch, self.repeats)
        generator = torch.Generator()
        generator.manual_seed(self.seed + cycle)
        order = torch.randperm(self.num_videos, generator=generator)
        return order.tensor_split(self.repeats)[part].tolist()

    def __iter__(self) -> Iterator[int]:
        videos, total = self.epoch_videos(), len(self) * self.world_size
        padded = (videos * -(-total // max(len(videos), 1)))[:total]
        return iter(padded[self.rank :: self.world_size])

    def __len__(self) -> int:
        per_epoch = -(-self.num_videos // self.repeats)  # the largest part
        return -(-per_epoch // self.world_size)


def seed_worker(worker_id: int) -> None:
    """Seed Python and NumPy in a worker from its torch seed (itself drawn from the loader's
    generator, seeded with ``RNG_SEED + rank``); leave SIGTERM and Ctrl-C to the main process."""
    ignore_stop_signals()
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_dataset(cfg, split: str) -> VideoDataset:
    """The :class:`VideoDataset` of ``split`` (``train``, ``val`` or ``test``)."""
    return VideoDataset(cfg, split)


def build_sampler(cfg, split: str, num_items: int, rank: int = 0, world_size: int = 1) -> Sampler:
    """The sampler of ``split`` over a dataset of ``num_items`` for one of ``world_size`` processes
    (see the module docstring)."""
    repeats = cfg.DATA.NUM_REPEATED_SAMPLES if split == "train" else 1
    if repeats > 1:
        return RepeatedSampleSampler(num_items, repeats, rank, world_size, cfg.RNG_SEED)
    if split == "train":
        return DistributedSampler(
            range(num_items), num_replicas=world_size, rank=rank, shuffle=True, seed=cfg.RNG_SEED, drop_last=False
        )
    return ShardSampler(num_items, rank, world_size)


def loader_batch_size(cfg, split: str) -> int:
    """Dataset items per batch: ``TRAIN.BATCH_SIZE / DATA.NUM_REPEATED_SAMPLES`` decodes in
    training (``TRAIN.BATCH_SIZE`` samples), ``TEST.BATCH_SIZE`` views otherwise."""
    return cfg.TRAIN.BATCH_SIZE // cfg.DATA.NUM_REPEATED_SAMPLES if split == "train" else cfg.TEST.BATCH_SIZE


def _drop_last(split: str, sampler_len: int, batch_size: int) -> bool:
    """Training drops the last incomplete batch, unless there is no complete one."""
    return split == "train" and sampler_len >= batch_size


def train_iterations_per_epoch(cfg, num_videos: int, world_size: int = 1) -> int:
    """``len(build_loader(cfg, "train"))`` on each of ``world_size`` processes for a list of
    ``num_videos`` videos, without building the dataset (the dry-run's count)."""
    sampler_len = len(build_sampler(cfg, "train", num_videos, 0, world_size))
    batch_size = loader_batch_size(cfg, "train")
    if _drop_last("train", sampler_len, batch_size):
        return sampler_len // batch_size
    return -(-sampler_len // batch_size)


def build_loader(cfg, split: str) -> DataLoader:
    """DataLoader of ``split`` with ``DATA_LOADER`` workers, pinned memory (on CUDA machines),
    persistent workers, a sampler with ``set_epoch`` and :func:`collate_clips`."""
    dataset = build_dataset(cfg, split)
    rank, world = _world()
    sampler = build_sampler(cfg, split, len(dataset), rank, world)
    batch_size = loader_batch_size(cfg, split)
    workers = cfg.DATA_LOADER.NUM_WORKERS
    # CUDA (NVDEC decoding) cannot be used in forked workers.
    gpu_decoding = workers > 0 and "torchcodec_cuda" in getattr(dataset, "backends", ())
    generator = torch.Generator()
    generator.manual_seed(cfg.RNG_SEED + rank)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.cuda.is_available(),
        persistent_workers=cfg.DATA_LOADER.PERSISTENT_WORKERS and workers > 0,
        drop_last=_drop_last(split, len(sampler), batch_size),
        collate_fn=collate_clips,
        worker_init_fn=seed_worker,
        generator=generator,
        multiprocessing_context="spawn" if gpu_decoding else None,
    )

"""Stopping training cleanly on SIGTERM or Ctrl-C, and continuing it mid-epoch.

While a :class:`~resformer_video.utils.stop_signal.StopOnSignal` is active, training finishes the
current optimiser step (all micro-batches of an accumulation group), writes a mid-epoch checkpoint
(model, optimiser, scaler, RNG states, epoch, iteration, meters) and raises
:class:`TrainingInterrupted`, which ``tools/run_net.py`` reports in one line and exits with
``128 + signal`` (143 for SIGTERM, 130 for Ctrl-C). A second signal stops at once
(``KeyboardInterrupt``). Under a process group the ranks agree (any rank's signal stops all of them
at the same step). ``TRAIN.AUTO_RESUME`` continues from that checkpoint: the epoch's remaining
batches in the same order (:func:`loader_after`), with the RNG states and meters restored, so with
``DATA_LOADER.NUM_WORKERS 0`` the result equals an uninterrupted run's.

Data-loader workers ignore both signals (``seed_worker`` calls
:func:`~resformer_video.utils.stop_signal.ignore_stop_signals`).
"""

from __future__ import annotations

import signal

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from resformer_video.utils import distributed
from resformer_video.utils.stop_signal import StopOnSignal


class TrainingInterrupted(Exception):
    """Training stopped on a signal after writing ``checkpoint``; ``exit_code`` is ``128 + signal``."""

    def __init__(self, signum: int, checkpoint: str, epoch: int, iteration: int) -> None:
        name = signal.Signals(signum).name
        where = f"after epoch {epoch}" if iteration == 0 else f"in epoch {epoch + 1} after iteration {iteration}"
        super().__init__(
            f"stopped by {name} {where}; wrote {checkpoint}. Run the same command again "
            "to continue from there (TRAIN.AUTO_RESUME)"
        )
        self.signum = signum
        self.exit_code = 128 + signum
        self.checkpoint = checkpoint


class EpochStopped(Exception):
    """Raised by the training loop on the stop signal ``signum``: ``iteration`` iterations of the
    epoch are done (an optimiser step boundary)."""

    def __init__(self, iteration: int, signum: int) -> None:
        super().__init__(f"stopped by signal {signum} after iteration {iteration}")
        self.iteration = iteration
        self.signum = signum


def agreed_stop(stop: StopOnSignal, device: torch.device) -> int | None:
    """The stop signal any rank received (the same answer on every rank: a collective under a
    process group), or None to go on."""
    if not distributed.is_dist():
        return stop.signum
    flag = torch.tensor([stop.signum or 0], dtype=torch.int64, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None


class _IndexSampler(Sampler[int]):
    """Fixed indices, in order."""

    def __init__(self, indices: list[int]) -> None:
        self.indices = indices

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def loader_after(loader: DataLoader, batches: int) -> DataLoader:
    """``loader``'s current epoch (its sampler's order after ``set_epoch``) without the first
    ``batches`` batches: the same dataset, batch size, collate, workers and seeding, over the
    remaining indices (for a run resumed mid-epoch)."""
    remaining = list(loader.sampler)[batches * loader.batch_size :]
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=_IndexSampler(remaining),
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        collate_fn=loader.collate_fn,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        multiprocessing_context=loader.multiprocessing_context,
    )

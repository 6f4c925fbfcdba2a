"""Multi-resolution training with the scale-consistency loss (one process, or one per GPU under torchrun).

Each iteration takes a batch whose ``clips`` hold the same clips at every ``DATA.TRAIN_CROP_SIZES``
size (largest first), runs ``forward_features`` + ``forward_head`` per size and minimises
``sum_i (CE_i + w * SC_i) / r`` (see :mod:`resformer_video.engine.losses`). Gradients are
accumulated over micro-batches up to ``TRAIN.GLOBAL_BATCH_SIZE``; DDP synchronises only on the
last backward of an optimiser step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from yacs.config import CfgNode

from resformer_video.config import check_data_dir, check_pretrained
from resformer_video.config.compare import check_resume_config
from resformer_video.datasets import build_loader
from resformer_video.datasets.decoders import failure_kind
from resformer_video.engine.evaluate import evaluate_clips
from resformer_video.engine.interrupt import EpochStopped, TrainingInterrupted, agreed_stop, loader_after
from resformer_video.engine.losses import LossParts, MultiResolutionLoss, parts_to_floats
from resformer_video.engine.optimizer import LRSchedule, accumulation_steps, build_optimizer, get_lr_at_epoch, set_lr
from resformer_video.engine.recipe import count_split_videos, recipe_lines
from resformer_video.models import LoadReport, build_model_and_report, count_parameters
from resformer_video.utils import checkpoint, distributed
from resformer_video.utils.logging import StatsWriter, setup_logging, write_run_config
from resformer_video.utils.meters import TrainMeter
from resformer_video.utils.precision import autocast, config_autocast_dtype, make_grad_scaler
from resformer_video.utils.run_lock import output_dir_lock
from resformer_video.utils.stop_signal import StopOnSignal

logger = logging.getLogger(__name__)


class FeaturesAndLogits(nn.Module):
    """Runs a model on a list of clips; returns ``[(class_token (B, D), logits (B, K)), ...]``.

    Wrapping this (not the bare model) in DDP keeps every forward inside DDP's own ``forward``,
    so gradient synchronisation sees the ``forward_features`` + ``forward_head`` calls.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.module = model

    def forward(self, clips: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
        outputs = []
        for clip in clips:
            feats = self.module.forward_features(clip)
            outputs.append((feats, self.module.forward_head(feats)))
        return outputs


@dataclasses.dataclass
class TrainState:
    """Everything one training iteration needs."""

    model: nn.Module  # the bare model (checkpoints, evaluation)
    net: nn.Module  # FeaturesAndLogits, maybe compiled, maybe in DDP
    ddp: DistributedDataParallel | None  # the DDP wrapper (for no_sync) or None
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    criterion: MultiResolutionLoss
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for float32
    accum_steps: int = 1
    backward_per_resolution: bool = False
    clip_grad_norm: float = 0.0
    failed_paths: set[str] = dataclasses.field(default_factory=set)
    num_failed: int = 0


def wrap_model(
    model: nn.Module, cfg: CfgNode, device: torch.device
) -> tuple[nn.Module, DistributedDataParallel | None]:
    """``FeaturesAndLogits(model)``, in DDP under a process group, compiled if ``TRAIN.COMPILE``."""
    net: nn.Module = FeaturesAndLogits(model)
    ddp = None
    if distributed.is_dist():
        device_ids = [device.index] if device.type == "cuda" else None
        ddp = DistributedDataParallel(net, device_ids=device_ids, output_device=device_ids and device_ids[0])
        net = ddp
    if cfg.TRAIN.COMPILE:
        net = torch.compile(net)
    return net, ddp


def _sync_context(ddp: DistributedDataParallel | None, sync: bool) -> AbstractContextManager:
    """DDP's ``no_sync`` unless this backward must all-reduce the gradients."""
    if ddp is None or sync:
        return contextlib.nullcontext()
    return ddp.no_sync()


def forward_backward(
    state: TrainState,
    clips: list[Tensor],
    labels: Tensor,
    sync: bool = True,
    group_size: int | None = None,
    sizes: Sequence[int] | None = None,
) -> LossParts:
    """Forward every resolution, backward ``loss / group_size``; return the loss parts.

    Args:
        clips: ``[(B, 3, T, H_i, W_i), ...]`` on the device, largest size first.
        labels: ``(B,)`` on the device.
        sync: whether this is the last micro-batch of an optimiser step (DDP all-reduces then).
        group_size: micro-batches in this optimiser step (default ``state.accum_steps``; fewer in
            an epoch's last, partial group, so that its gradient is still a mean).
        sizes: the crop sizes of ``clips`` (a batch's ``sizes``); default each clip's width.

    With ``backward_per_resolution`` each size's graph is freed after its backward; the detached
    target of the larger size is kept for the next, so the gradients equal the one-backward ones.
    """
    sizes = list(sizes) if sizes is not None else [int(c.shape[-1]) for c in clips]
    group = group_size or state.accum_steps
    if not state.backward_per_resolution:
        with _sync_context(state.ddp, sync):
            with autocast(state.device, state.dtype):
                outputs = state.net(clips)
            loss, parts = state.criterion(outputs, labels, sizes)
            state.scaler.scale(loss / group).backward()
        return parts
    chain = state.criterion.chain(labels, sizes)
    for i, clip in enumerate(clips):
        with _sync_context(state.ddp, sync and i == len(clips) - 1):
            with autocast(state.device, state.dtype):
                ((feats, logits),) = state.net([clip])
            state.scaler.scale(chain.add(feats, logits) / group).backward()
    return chain.parts()


def optimizer_step(state: TrainState) -> None:
    """Unscale, clip (``SOLVER.CLIP_GRAD_NORM``), step and zero the gradients."""
    if state.clip_grad_norm > 0:
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), state.clip_grad_norm)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.optimizer.zero_grad(set_to_none=True)


def _note_failures(state: TrainState, failed: list[list[str]]) -> None:
    """The one report of training decode failures (the workers' datasets only log them at debug
    level): count every replaced video, warn about each path the first time it fails."""
    for paths in failed or []:
        for path in paths:
            state.num_failed += 1
            if path not in state.failed_paths:
                state.failed_paths.add(path)
                logger.warning("training video %s and was replaced: %s", failure_kind(path), path)


def train_epoch(
    state: TrainState,
    loader: Any,
    epoch: int,
    cfg: CfgNode,
    meter: TrainMeter,
    stats: StatsWriter,
    start_iter: int = 0,
    stop: StopOnSignal | None = None,
) -> dict[str, Any]:
    """One pass over ``loader``; the learning rate is set per optimiser step (fractional epoch).

    Args:
        start_iter: iterations of this epoch already done (a run resumed mid-epoch: ``meter``
            holds their stats; the loader's first ``start_iter`` batches are skipped).
        stop: when it has caught a signal (on any rank), :class:`EpochStopped` is raised after the
            next optimiser step, unless that step ends the epoch.
    """
    state.net.train()
    if not start_iter:
        meter.reset()
    num_iters = len(loader)
    world_size = distributed.get_world_size()
    schedule = LRSchedule.from_cfg(cfg)
    lr = schedule(epoch)
    state.optimizer.zero_grad(set_to_none=True)
    batches = loader_after(loader, start_iter) if start_iter else loader
    tic = time.perf_counter()
    for cur_iter, batch in enumerate(batches, start_iter):
        micro = cur_iter % state.accum_steps
        if micro == 0:
            lr = schedule(epoch + cur_iter / num_iters)
            set_lr(state.optimizer, lr)
        last_micro = micro == state.accum_steps - 1 or cur_iter == num_iters - 1
        group_size = min(state.accum_steps, num_iters - (cur_iter - micro))
        _note_failures(state, batch.get("failed"))
        clips = [c.to(state.device, non_blocking=True) for c in batch["clips"]]
        labels = batch["label"].to(state.device, non_blocking=True)
        parts = parts_to_floats(
            forward_backward(state, clips, labels, sync=last_micro, group_size=group_size, sizes=batch["sizes"])
        )
        if not np.isfinite(parts["loss"]):
            raise FloatingPointError(f"loss is {parts['loss']} at epoch {epoch + 1} iteration {cur_iter + 1}")
        if last_micro:
            optimizer_step(state)
        meter.update(parts, time.perf_counter() - tic, labels.shape[0])
        if (cur_iter + 1) % cfg.LOG_PERIOD == 0 or cur_iter == num_iters - 1:
            _log_iteration(
                meter.iter_stats(epoch, cur_iter, lr, world_size), meter.part_names, stats, epoch * num_iters + cur_iter
            )
        signum = (
            agreed_stop(stop, state.device) if last_micro and cur_iter < num_iters - 1 and stop is not None else None
        )
        if signum:
            raise EpochStopped(cur_iter + 1, signum)
        tic = time.perf_counter()
    epoch_stats = _mean_over_ranks(meter.epoch_stats(epoch, lr), meter.part_names, state.device)
    epoch_stats["failed_videos"] = state.num_failed
    stats.write(epoch_stats, tb_prefix="train_epoch", tb_step=epoch + 1)
    return epoch_stats


def _mean_over_ranks(stats: dict[str, Any], keys: list[str], device: torch.device) -> dict[str, Any]:
    """``stats`` with the loss parts ``keys`` averaged over the processes (the log shows rank 0's)."""
    for key, value in zip(keys, distributed.all_reduce_mean([stats[k] for k in keys], device)):
        stats[key] = value
    return stats


def _log_iteration(iter_stats: dict[str, Any], part_names: list[str], stats: StatsWriter, step: int) -> None:
    """One log line (the loss parts ``part_names`` of ``iter_stats``) and the stats record."""
    parts = " ".join(f"{k} {iter_stats[k]:.4f}" for k in part_names)
    logger.info(
        "epoch %d/%d iter %d/%d | eta %s | %s | lr %.3g | %.1f clips/s | mem %.0f MB",
        iter_stats["epoch"],
        iter_stats["epochs"],
        iter_stats["iter"],
        iter_stats["iters"],
        iter_stats["eta"],
        parts,
        iter_stats["lr"],
        iter_stats["clips_per_s"],
        iter_stats["mem_mb"],
    )
    stats.write(iter_stats, tb_prefix="train", tb_step=step)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _set_loader_epoch(loader: Any, epoch: int) -> None:
    """Reshuffle a distributed sampler for ``epoch``."""
    for sampler in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)


def _resume(
    cfg: CfgNode, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler
) -> tuple[int, dict[str, Any]]:
    """Finished epochs and the mid-epoch ``progress`` (``iteration``, ``meter``, failed videos; {}
    for an epoch's checkpoint) restored from the latest valid checkpoint ((0, {}) without one).

    Raises:
        ConfigError: the checkpoint's config differs from ``cfg`` in a key that changes the result
            (:func:`~resformer_video.config.compare.check_resume_config`).
    """
    if not cfg.TRAIN.AUTO_RESUME:
        return 0, {}
    found = checkpoint.find_latest_valid_checkpoint(cfg.OUTPUT_DIR, mid_epoch=True)
    if found is None:
        return 0, {}
    path, state = found
    check_resume_config(state.get("cfg") or "", cfg, path)
    epoch = checkpoint.load_checkpoint(state, model, optimizer, scaler, rank=distributed.get_rank())
    progress = state.get("progress") or {}
    logger.info(
        "resumed from %s (%d epochs done%s)",
        path,
        epoch,
        f", {progress['iteration']} iterations of epoch {epoch + 1}" if progress else "",
    )
    return epoch, progress


def _save(
    cfg: CfgNode, state: TrainState, epoch: int, class_names: list[str], progress: dict[str, Any] | None = None
) -> str:
    """Gather every rank's RNG state, then write the checkpoint on rank 0: ``epoch``'s, or with
    ``progress`` (``iteration`` > 0 of the next epoch, meter, failures) a mid-epoch one. Either
    replaces the mid-epoch checkpoints before it. Returns its path."""
    rng_states = distributed.all_gather_objects(checkpoint.get_rng_state())
    path = (
        checkpoint.get_mid_epoch_path(cfg.OUTPUT_DIR, epoch, progress["iteration"])
        if progress
        else checkpoint.get_checkpoint_path(cfg.OUTPUT_DIR, epoch)
    )
    if distributed.is_master_proc():
        checkpoint.save_checkpoint(
            path,
            state.model,
            epoch,
            state.optimizer,
            state.scaler if state.scaler.is_enabled() else None,
            cfg.dump(),
            class_names,
            rng_states,
            schedule={"policy": cfg.SOLVER.LR_POLICY, "lr": get_lr_at_epoch(cfg, epoch)},
            extra={"progress": progress} if progress else None,
        )
        checkpoint.remove_mid_epoch_checkpoints(cfg.OUTPUT_DIR, keep=path)
        logger.info("wrote checkpoint %s", path)
    distributed.barrier()
    return path


def _progress(state: TrainState, meter: TrainMeter, iteration: int) -> dict[str, Any]:
    """What a mid-epoch checkpoint adds: the iterations done, the epoch's meter, failed videos."""
    return {
        "iteration": iteration,
        "meter": meter.state_dict(),
        "num_failed": state.num_failed,
        "failed_paths": sorted(state.failed_paths),
    }


def _restore_progress(state: TrainState, meter: TrainMeter, progress: dict[str, Any]) -> int:
    """Put a mid-epoch checkpoint's meter and failure counts back; return its iteration (0: none)."""
    if not progress:
        return 0
    meter.load_state_dict(progress["meter"])
    state.num_failed = int(progress["num_failed"])
    state.failed_paths = set(progress["failed_paths"])
    return int(progress["iteration"])


def _remove_leftovers(cfg: CfgNode) -> None:
    """Rank 0: delete the temporary files of writes a killed run left in ``OUTPUT_DIR``."""
    if distributed.is_master_proc():
        for path in checkpoint.remove_temp_files(cfg.OUTPUT_DIR):
            logger.info("removed %s, left by an interrupted write", path)


def keep_best(
    cfg: CfgNode, state: TrainState, epoch: int, class_names: list[str], val: dict[str, Any], best: float | None
) -> float | None:
    """Write ``checkpoints/best.pyth`` (rank 0, atomically) when the validation top-1 beats ``best``;
    return the best top-1 so far. Every rank has the same gathered ``val``, so all agree."""
    if not val.get("num_clips") or (best is not None and val["clip_top1"] <= best):
        return best
    if distributed.is_master_proc():
        path = checkpoint.get_best_path(cfg.OUTPUT_DIR)
        checkpoint.save_checkpoint(
            path,
            state.model,
            epoch,
            cfg_text=cfg.dump(),
            class_names=class_names,
            extra={"val": {k: float(v) for k, v in val.items()}},
        )
        logger.info("wrote %s (val top-1 %.2f after epoch %d)", path, val["clip_top1"], epoch)
    return float(val["clip_top1"])


def build_train_state(
    cfg: CfgNode,
    model: nn.Module,
    device: torch.device,
    dtype: torch.dtype | None = None,
    accum_steps: int | None = None,
) -> TrainState:
    """Optimiser, scaler, loss and wrappers for ``model`` (already on ``device``).

    Args:
        dtype: the autocast dtype (None: float32; :func:`train` passes ``TRAIN.MIXED_PRECISION``
            resolved for the device by :func:`config_autocast_dtype`).
        accum_steps: micro-batches per optimiser step (default: :func:`accumulation_steps` of
            ``TRAIN.GLOBAL_BATCH_SIZE`` over the processes).
    """
    if accum_steps is None:
        accum_steps = accumulation_steps(cfg, distributed.get_world_size())
    optimizer = build_optimizer(model, cfg)
    net, ddp = wrap_model(model, cfg, device)
    return TrainState(
        model=model,
        net=net,
        ddp=ddp,
        optimizer=optimizer,
        scaler=make_grad_scaler(device, dtype),
        criterion=MultiResolutionLoss.from_cfg(cfg),
        device=device,
        dtype=dtype,
        accum_steps=accum_steps,
        backward_per_resolution=cfg.TRAIN.BACKWARD_PER_RESOLUTION,
        clip_grad_norm=cfg.SOLVER.CLIP_GRAD_NORM,
    )


def log_recipe(cfg: CfgNode, model: nn.Module, load_report: LoadReport | None, train_videos: int) -> None:
    """The recipe block that ``tools/run_net.py --dry-run`` prints, on rank 0."""
    if distributed.is_master_proc():
        counts = {"train": train_videos, **(count_split_videos(cfg, ("test",)) if cfg.TEST.ENABLE else {})}
        logger.info("%s", "\n".join(recipe_lines(cfg, model, load_report, distributed.get_world_size(), counts)))


def train(cfg: CfgNode) -> dict[str, Any]:
    """Train for ``SOLVER.MAX_EPOCH`` epochs (resuming if possible); return the last epoch's stats.

    The run holds ``OUTPUT_DIR``'s lock (:func:`~resformer_video.utils.run_lock.output_dir_lock`).
    SIGTERM or Ctrl-C stop it after the current optimiser step with a checkpoint that resumes
    there (:mod:`~resformer_video.engine.interrupt`).

    Raises:
        TrainingInterrupted: stopped by a signal (the message names the checkpoint written).
        RunLockError: another run uses ``OUTPUT_DIR``.
        ConfigError: a bad key or value, an unusable ``OUTPUT_DIR``, or a checkpoint to resume
            from that was written with another config.
    """
    with output_dir_lock(cfg.OUTPUT_DIR), StopOnSignal() as stop:
        return _train(cfg, stop)


def _train(cfg: CfgNode, stop: StopOnSignal) -> dict[str, Any]:
    """:func:`train` inside the lock, with ``stop`` catching the signals."""
    setup_logging(cfg.OUTPUT_DIR)
    write_run_config(cfg.OUTPUT_DIR, cfg.dump())
    _remove_leftovers(cfg)
    check_data_dir(cfg)
    check_pretrained(cfg)
    device = distributed.get_device(cfg)
    dtype = config_autocast_dtype(cfg, device)
    set_seed(cfg.RNG_SEED + distributed.get_rank())
    model, load_report = build_model_and_report(cfg)
    model = model.to(device)
    logger.info("model %s: %.2fM parameters", cfg.MODEL.ARCH, count_parameters(model) / 1e6)
    train_loader = build_loader(cfg, "train")
    val_loader = build_loader(cfg, "val") if cfg.TRAIN.EVAL_PERIOD > 0 else None
    class_names = list(train_loader.dataset.class_names)
    log_recipe(cfg, model, load_report, train_loader.dataset.num_videos)
    logger.info("config:\n%s", cfg.dump())
    logger.info(
        "train: %d videos, %d iterations per epoch; val: %s videos",
        train_loader.dataset.num_videos,
        len(train_loader),
        val_loader.dataset.num_videos if val_loader is not None else "no",
    )
    state = build_train_state(cfg, model, device, dtype)
    start_epoch, progress = _resume(cfg, model, state.optimizer, state.scaler)
    logger.info(
        "%d micro-batch(es) of %d clips per optimiser step on %d process(es)",
        state.accum_steps,
        cfg.TRAIN.BATCH_SIZE,
        distributed.get_world_size(),
    )
    stats = StatsWriter(cfg.OUTPUT_DIR, tensorboard=cfg.TENSORBOARD.ENABLE)
    meter = TrainMeter(len(train_loader), cfg.SOLVER.MAX_EPOCH, window=max(cfg.LOG_PERIOD, 1))
    start_iter = _restore_progress(state, meter, progress)
    stats.drop_after(start_epoch, start_iter)
    summary: dict[str, Any] = {"start_epoch": start_epoch, "start_iter": start_iter}
    best_top1 = checkpoint.read_best_top1(cfg.OUTPUT_DIR) if start_epoch else None
    try:
        for epoch in range(start_epoch, cfg.SOLVER.MAX_EPOCH):
            _set_loader_epoch(train_loader, epoch)
            try:
                summary.update(
                    train_epoch(
                        state, train_loader, epoch, cfg, meter, stats, start_iter if epoch == start_epoch else 0, stop
                    )
                )
            except EpochStopped as stopped:
                path = _save(cfg, state, epoch, class_names, _progress(state, meter, stopped.iteration))
                raise TrainingInterrupted(stopped.signum, path, epoch, stopped.iteration) from None
            done = epoch + 1
            if val_loader is not None and (done % cfg.TRAIN.EVAL_PERIOD == 0 or done == cfg.SOLVER.MAX_EPOCH):
                summary["val"] = evaluate_clips(model, val_loader, device, state.dtype)
                logger.info(
                    "epoch %d val: clip top-1 %.2f top-5 %.2f (%d clips)",
                    done,
                    summary["val"]["clip_top1"],
                    summary["val"]["clip_top5"],
                    summary["val"]["num_clips"],
                )
                stats.write({"_type": "val", "epoch": done, **summary["val"]}, tb_prefix="val", tb_step=done)
                best_top1 = keep_best(cfg, state, done, class_names, summary["val"], best_top1)
            signum = agreed_stop(stop, device) if done < cfg.SOLVER.MAX_EPOCH else None
            if signum or done % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or done == cfg.SOLVER.MAX_EPOCH:
                path = _save(cfg, state, done, class_names)
            if signum:  # caught during the epoch's last step or its validation
                raise TrainingInterrupted(signum, path, done, 0)
    finally:
        stats.close()
    if state.num_failed:
        logger.warning(
            "%d training samples could not be read (%d distinct videos)", state.num_failed, len(state.failed_paths)
        )
    summary["failed_train_paths"] = sorted(state.failed_paths)
    summary["best_val_top1"] = best_top1
    return summary

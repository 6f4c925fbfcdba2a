"""The effective training recipe in words: what ``tools/run_net.py --dry-run`` prints, and the block
that opens every training log.

It says what a config means once launched: processes x per-process batch x accumulation = global
batch, optimiser steps per epoch and in all, the learning rate of every epoch, which parameters get
weight decay, the clip (frames x rate), training sizes and scale jitter, the test protocol and
views, the precision, the starting weights with what the converter loads from them, and the
GFLOPs of one training clip. :func:`dry_run` gets there without touching the data beyond counting
the lines of the lists (no video is opened).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from torch import nn
from yacs.config import CfgNode

from resformer_video.config import ConfigError
from resformer_video.datasets.kinetics import split_videos
from resformer_video.datasets.lists import DatasetListError
from resformer_video.datasets.loader import train_iterations_per_epoch
from resformer_video.datasets.transforms import scaled_jitter
from resformer_video.engine.optimizer import LRSchedule, accumulation_steps, param_groups_weight_decay
from resformer_video.models import build_model_and_report, count_flops
from resformer_video.models.checkpoint_filter import LoadReport, summarize_keys
from resformer_video.utils import checkpoint, distributed
from resformer_video.utils.precision import canonical_precision

logger = logging.getLogger(__name__)

# DATA keys that some versions of the data pipeline have; shown when the config has them.
OPTIONAL_DATA_KEYS = ("TRAIN_SAMPLING",)
INDENT = "  "


def recipe_lines(
    cfg: CfgNode, model: nn.Module, load_report: LoadReport | None, world_size: int, num_videos: dict[str, int | None]
) -> list[str]:
    """The recipe block, one line per item (see the module docstring).

    Args:
        model: the model as built for ``cfg`` (counted for weight decay and FLOPs; not changed).
        load_report: what :func:`~resformer_video.models.load_config_pretrained` loaded, or None.
        world_size: the number of training processes.
        num_videos: videos per split (``train``, ``test``), None where the list is unreadable.

    Raises:
        ConfigError: ``TRAIN.GLOBAL_BATCH_SIZE`` is not a multiple of the per-step batch.
    """
    accum = accumulation_steps(cfg, world_size)
    lines = [
        "recipe (python tools/run_net.py --cfg CONFIG --dry-run prints the same):",
        _batch_line(cfg, world_size, accum),
        _steps_line(cfg, world_size, accum, num_videos.get("train")),
        _lr_line(cfg),
    ]
    lines += _weight_decay_lines(cfg, model)
    lines += [_clip_line(cfg), _train_views_line(cfg)]
    lines += [f"{INDENT}DATA.{key}: {cfg.DATA[key]}" for key in OPTIONAL_DATA_KEYS if key in cfg.DATA]
    lines += [_test_line(cfg, num_videos.get("test")), _precision_line(cfg)]
    lines += _weights_lines(cfg, load_report)
    lines.append(_flops_line(cfg, model))
    return lines


def _batch_line(cfg: CfgNode, world_size: int, accum: int) -> str:
    per_step = world_size * cfg.TRAIN.BATCH_SIZE * accum
    return (
        f"{INDENT}batch: {world_size} process(es) x {cfg.TRAIN.BATCH_SIZE} clip(s) per process "
        f"(TRAIN.BATCH_SIZE) x {accum} accumulated micro-batch(es) = {per_step} clips per "
        "optimiser step (TRAIN.GLOBAL_BATCH_SIZE)"
    )


def optimiser_steps_per_epoch(iterations: int, accum: int) -> int:
    """Optimiser steps of an epoch of ``iterations`` micro-batches: a last, partial group of
    micro-batches makes a step of its own (its gradient is the mean over its micro-batches)."""
    return -(-iterations // accum)


def _steps_line(cfg: CfgNode, world_size: int, accum: int, train_videos: int | None) -> str:
    if train_videos is None:
        return f"{INDENT}optimiser steps: unknown (no readable train list)"
    iterations = train_iterations_per_epoch(cfg, train_videos, world_size)
    steps = optimiser_steps_per_epoch(iterations, accum)
    return (
        f"{INDENT}optimiser steps: {steps} per epoch ({train_videos} train videos, {iterations} "
        f"iterations per process), {steps * cfg.SOLVER.MAX_EPOCH} in {cfg.SOLVER.MAX_EPOCH} epochs"
    )


def epoch_learning_rates(cfg: CfgNode) -> list[float]:
    """The learning rate at the start of each epoch (``SOLVER``'s schedule at epoch 0, 1, ...)."""
    schedule = LRSchedule.from_cfg(cfg)
    return [schedule(float(epoch)) for epoch in range(cfg.SOLVER.MAX_EPOCH)]


def _runs(values: Sequence[float]) -> list[str]:
    """``"1-11: 0.005"``, ... for runs of equal values (1-based epochs)."""
    out, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            epochs = f"{start + 1}-{i}" if i - start > 1 else f"{start + 1}"
            out.append(f"{epochs}: {values[start]:.4g}")
            start = i
    return out


def _lr_line(cfg: CfgNode) -> str:
    solver = cfg.SOLVER
    warmup = f", linear warm-up over {solver.WARMUP_EPOCHS:g} epochs" if solver.WARMUP_EPOCHS else ""
    within = (
        ""
        if solver.LR_POLICY == "steps_with_relative_lrs" and not solver.WARMUP_EPOCHS
        else " (at each epoch's start; set every optimiser step)"
    )
    optimiser = solver.OPTIMIZING_METHOD
    if optimiser == "sgd":  # AdamW's defaults ignore SOLVER.MOMENTUM / NESTEROV: not named for it
        optimiser += f", momentum {solver.MOMENTUM:g}{', nesterov' if solver.NESTEROV else ''}"
    return f"{INDENT}lr per epoch ({solver.LR_POLICY}{warmup}, {optimiser}){within}: " + ", ".join(
        _runs(epoch_learning_rates(cfg))
    )


def _weight_decay_lines(cfg: CfgNode, model: nn.Module) -> list[str]:
    names = {id(p): name for name, p in model.named_parameters()}
    groups = param_groups_weight_decay(model, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.ZERO_WD_1D_PARAM)
    rule = (
        "norms, biases and embeddings exempt"
        if cfg.SOLVER.ZERO_WD_1D_PARAM
        else "every parameter whose name lacks 'bn', as TimeSformer"
    )
    decayed = [p for g in groups if g["weight_decay"] for p in g["params"]]
    exempt = [p for g in groups if not g["weight_decay"] for p in g["params"]]
    lines = [
        f"{INDENT}weight decay {cfg.SOLVER.WEIGHT_DECAY:g} on {len(decayed)} tensors "
        f"({sum(p.numel() for p in decayed) / 1e6:.2f}M values), none on {len(exempt)} "
        f"(SOLVER.ZERO_WD_1D_PARAM {cfg.SOLVER.ZERO_WD_1D_PARAM}: {rule})"
    ]
    if exempt:
        lines.append(f"{INDENT * 2}no decay: " + ", ".join(summarize_keys(names[id(p)] for p in exempt)))
    return lines


def _clip_line(cfg: CfgNode) -> str:
    data = cfg.DATA
    seconds = data.NUM_FRAMES * data.SAMPLING_RATE / data.TARGET_FPS
    return (
        f"{INDENT}clip: {data.NUM_FRAMES} frames x sampling rate {data.SAMPLING_RATE} at "
        f"{data.TARGET_FPS:g} fps ({seconds:.2f} s)"
    )


def _train_views_line(cfg: CfgNode) -> str:
    data, sizes = cfg.DATA, list(cfg.DATA.TRAIN_CROP_SIZES)
    if data.TRAIN_CROP_MODE == "jitter":
        ranges = [scaled_jitter(data.TRAIN_JITTER_SCALES, size, sizes[0]) for size in sizes]
        crop = "short side jitter " + ", ".join(f"{low}-{high}" for low, high in ranges) + " px"
    else:
        crop = f"random_resized_crop, area {data.TRAIN_RRC_AREA[0]:g}-{data.TRAIN_RRC_AREA[1]:g}"
    consistency = (
        f", scale consistency {cfg.SCALE_CONSISTENCY.LOSS} x {cfg.SCALE_CONSISTENCY.WEIGHT:g}"
        if len(sizes) > 1 and cfg.SCALE_CONSISTENCY.WEIGHT > 0
        else ""
    )
    return (
        f"{INDENT}train: crops {'/'.join(map(str, sizes))} ({crop}), flip "
        f"{'on' if data.RANDOM_FLIP else 'off'}, RandAugment {'on' if cfg.AUG.RAND_AUGMENT else 'off'}, "
        f"{data.NUM_REPEATED_SAMPLES} sample(s) per decode{consistency}"
    )


def _test_line(cfg: CfgNode, test_videos: int | None) -> str:
    test = cfg.TEST
    if not test.ENABLE:
        return f"{INDENT}test: off (TEST.ENABLE False)"
    combine = "logits summed" if test.PROTOCOL == "timesformer" else "softmax averaged"
    sweep = f", sweep {'/'.join(map(str, test.RESOLUTIONS))}" if test.RESOLUTIONS else ""
    videos = f"{test_videos} videos" if test_videos is not None else "unreadable list"
    return (
        f"{INDENT}test: TEST.PROTOCOL {test.PROTOCOL}, {test.NUM_ENSEMBLE_VIEWS} clip(s) x "
        f"{test.NUM_SPATIAL_CROPS} crop(s) at {cfg.DATA.TEST_CROP_SIZE}{sweep}, {combine}; "
        f"split {test.SPLIT} ({videos})"
    )


def _precision_line(cfg: CfgNode) -> str:
    name = canonical_precision(cfg.TRAIN.MIXED_PRECISION)
    fallback = (
        " (fp32 where bf16 is not native: TRAIN.PRECISION_FALLBACK)"
        if name == "bf16" and cfg.TRAIN.PRECISION_FALLBACK
        else ""
    )
    mode = "" if name == "fp32" else " autocast"
    return f"{INDENT}precision: {name}{mode}{fallback} on {'GPU' if cfg.NUM_GPUS else 'CPU'}"


def _weights_lines(cfg: CfgNode, report: LoadReport | None) -> list[str]:
    lines = []
    if report is not None:
        total = report.matched + len(report.missing_keys)
        lines.append(
            f"{INDENT}starting weights: {report.path}: {report.matched} of {total} model "
            f"tensors loaded, {len(report.missing_keys)} missing, "
            f"{len(report.unexpected_keys)} unexpected, {len(report.dropped_keys)} dropped"
        )
        lines += [f"{INDENT * 2}{note}" for note in report.notes]
        for name, keys in (
            ("missing (kept at initialisation)", report.missing_keys),
            ("unexpected (ignored)", report.unexpected_keys),
            ("dropped", report.dropped_keys),
        ):
            if keys:
                lines.append(f"{INDENT * 2}{name}: {', '.join(summarize_keys(keys))}")
    elif cfg.MODEL.PRETRAINED.strip():
        lines.append(
            f"{INDENT}starting weights: none (MODEL.PRETRAINED {cfg.MODEL.PRETRAINED}: from scratch, on purpose)"
        )
    elif cfg.TRAIN.REQUIRE_PRETRAINED and cfg.TRAIN.ENABLE:
        lines.append(
            f"{INDENT}starting weights: NOT SET - training stops at start-up (set "
            "MODEL.PRETRAINED to a weights file, or none)"
        )
    else:
        lines.append(f"{INDENT}starting weights: none (MODEL.PRETRAINED is empty: from scratch)")
    found = checkpoint.list_checkpoints(cfg.OUTPUT_DIR) if cfg.TRAIN.AUTO_RESUME else []
    if found:
        lines.append(
            f"{INDENT * 2}but {found[-1][1]} exists: training resumes from it (epoch "
            f"{found[-1][0]}) and MODEL.PRETRAINED is not used"
        )
    return lines


def _flops_line(cfg: CfgNode, model: nn.Module) -> str:
    frames, sizes = cfg.DATA.NUM_FRAMES, list(cfg.DATA.TRAIN_CROP_SIZES)
    flops = [count_flops(model, frames, size, size) / 1e9 for size in sizes]
    parts = " + ".join(f"{g:.4g} ({size})" for g, size in zip(flops, sizes))
    total = f" = {sum(flops):.4g}" if len(sizes) > 1 else ""
    return (
        f"{INDENT}GFLOPs per training clip (forward, multiply-adds): {parts}{total}; "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters"
    )


def count_split_videos(cfg: CfgNode, splits: Sequence[str] = ("train", "test")) -> dict[str, int | None]:
    """Videos listed per split (the lines of the lists; no video is opened), None where a list
    cannot be read (the reason is logged)."""
    counts: dict[str, int | None] = {}
    for split in splits:
        try:
            counts[split] = len(split_videos(cfg, split).paths)
        except (DatasetListError, FileNotFoundError, ConfigError) as err:
            logger.warning("%s list: %s", split, err)
            counts[split] = None
    return counts


def dry_run(cfg: CfgNode) -> str:
    """The recipe block of ``cfg`` for the launch it would get (:func:`launch_world_size`), with the
    model built on the CPU and ``MODEL.PRETRAINED`` run through the converter; the data is only
    counted."""
    model, report = build_model_and_report(cfg)
    counts = count_split_videos(cfg) if cfg.DATA.PATH_TO_DATA_DIR else {"train": None, "test": None}
    return "\n".join(recipe_lines(cfg, model, report, distributed.launch_world_size(cfg), counts))

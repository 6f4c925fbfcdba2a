"""Evaluation: clip-level accuracy during training and multi-view, multi-resolution testing.

:func:`test` evaluates every ``TEST.RESOLUTIONS`` size (or ``DATA.TEST_CROP_SIZE``) with
``TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS`` views per video, averages the softmax over a
video's views (``TEST.PROTOCOL timesformer``: sums the logits, as TimeSformer), and writes to ``OUTPUT_DIR``:

- ``test_results.json``: per-resolution video- and clip-level top-1/top-5, failed videos, and
  (``TEST.SAVE_PREDICTIONS``) per-video top-5 predictions;
- ``test_results.md``: the table in the layout of ResFormer's Kinetics-400 table (one row per
  model and training sizes, one column per test resolution, ``top-1 (top-5)``);
- ``test_accuracy_vs_resolution.png``: top-1 and top-5 against the test resolution;
- per test resolution ``S``: ``test_per_class_S.csv``, ``test_confusion_S.png`` and
  ``test_confused_pairs_S.md`` (:mod:`resformer_video.engine.class_report`).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import torch
from torch import nn
from yacs.config import CfgNode

from resformer_video.config import ConfigError, cfg_with, check_data_dir
from resformer_video.datasets import build_loader
from resformer_video.datasets.decoders import failure_kind
from resformer_video.engine.class_report import write_class_report
from resformer_video.models import build_model, load_trained_weights, pretrained_path
from resformer_video.models.archs import ARCHS
from resformer_video.utils import checkpoint, distributed
from resformer_video.utils.logging import setup_logging, write_run_config
from resformer_video.utils.meters import ViewPredictions
from resformer_video.utils.precision import autocast, config_autocast_dtype

logger = logging.getLogger(__name__)

RESULTS_JSON = "test_results.json"
RESULTS_TABLE = "test_results.md"
RESULTS_PLOT = "test_accuracy_vs_resolution.png"


# TEST.PROTOCOL -> how views combine: softmax averaged, or logits summed (TimeSformer's test_net).
VIEW_COMBINE = {"default": "mean", "timesformer": "sum"}


@torch.no_grad()
def collect_predictions(
    model: nn.Module,
    loader: Any,
    device: torch.device,
    dtype: torch.dtype | None = None,
    log_period: int = 0,
    combine: str = "mean",
) -> ViewPredictions:
    """Scores of every clip in ``loader`` (``clips[0]`` is ``(B, 3, T, H, W)``), all ranks: softmax
    (``combine="mean"``) or logits (``combine="sum"``)."""
    model.eval()
    preds = ViewPredictions(combine)
    for cur_iter, batch in enumerate(loader):
        clip = batch["clips"][0].to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = model(clip).float()
        preds.add_batch(logits if combine == "sum" else logits.softmax(dim=-1), batch)
        if log_period and (cur_iter + 1) % log_period == 0:
            logger.info("test iter %d/%d", cur_iter + 1, len(loader))
    return preds.gather()


def evaluate_clips(
    model: nn.Module, loader: Any, device: torch.device, dtype: torch.dtype | None = None
) -> dict[str, float]:
    """Clip-level top-1/top-5 (%) on a val loader (one centre clip per video)."""
    preds = collect_predictions(model, loader, device, dtype)
    metrics = preds.clip_metrics()
    metrics["num_failed"] = len(preds.failed)
    return metrics


def model_label(cfg: CfgNode) -> str:
    """A row name in the paper's style, e.g. ``ResFormer-B`` or ``TimeSformer-B`` (the baseline)."""
    family = "TimeSformer" if cfg.MODEL.POS_EMBED == "learned" else "ResFormer"
    name = f"{family}-{ARCHS[cfg.MODEL.ARCH].short if cfg.MODEL.ARCH in ARCHS else cfg.MODEL.ARCH}"
    if cfg.MODEL.DEPTH:
        name += f" (depth {cfg.MODEL.DEPTH})"
    return name


def results_table(cfg: CfgNode, results: dict[int, dict[str, float]]) -> str:
    """Markdown table: model, training sizes, then ``top-1 (top-5)`` per test resolution."""
    sizes = sorted(results)
    header = "| Model | Train res. | " + " | ".join(str(s) for s in sizes) + " |"
    rule = "|---|---|" + "---|" * len(sizes)
    cells = [f"{results[s]['top1']:.1f} ({results[s]['top5']:.1f})" for s in sizes]
    train_sizes = "/".join(str(s) for s in cfg.DATA.TRAIN_CROP_SIZES)
    row = f"| {model_label(cfg)} | {train_sizes} | " + " | ".join(cells) + " |"
    return "\n".join([header, rule, row])


def plot_results(cfg: CfgNode, results: dict[int, dict[str, float]], path: str) -> None:
    """Top-1 and top-5 video accuracy against test resolution, as a PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key, marker in (("top1", "o-"), ("top5", "s--")):
        ax.plot(sizes, [results[s][key] for s in sizes], marker, label=key.replace("top", "top-"))
    for size in cfg.DATA.TRAIN_CROP_SIZES:
        ax.axvline(size, color="grey", alpha=0.3, linewidth=1)
    ax.set_xlabel("test resolution (pixels)")
    ax.set_ylabel("video-level accuracy (%)")
    ax.set_title(f"{model_label(cfg)}, trained at " + "/".join(str(s) for s in cfg.DATA.TRAIN_CROP_SIZES))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_test_weights(cfg: CfgNode, model: nn.Module) -> dict[str, Any]:
    """Load ``TEST.CHECKPOINT_FILE_PATH``, else the latest valid checkpoint in ``OUTPUT_DIR``, else
    keep ``MODEL.PRETRAINED`` (loaded by ``build_model``).

    Every file goes through :func:`~resformer_video.models.load_trained_weights`: our training
    checkpoints load strictly, other layouts (TimeSformer's save layout, timm/DeiT, official
    ResFormer) through the converter. Returns ``{"path": ..., "class_names": ... or None}``.
    """
    path = cfg.TEST.CHECKPOINT_FILE_PATH
    found = (path, None) if path else checkpoint.find_latest_valid_checkpoint(cfg.OUTPUT_DIR)
    if found is not None:
        path, content = found  # content: None (not read yet) or the latest checkpoint, read once
        trained = load_trained_weights(model, path, content)
        return {"path": path, "class_names": trained.class_names}
    if pretrained_path(cfg):
        return {"path": pretrained_path(cfg), "class_names": None}
    raise ConfigError(
        "TEST.CHECKPOINT_FILE_PATH",
        f"is empty and {checkpoint.get_checkpoint_dir(cfg.OUTPUT_DIR)} holds no valid "
        "checkpoint: set it (or MODEL.PRETRAINED) to the weights to test",
    )


def _prediction_records(preds: ViewPredictions, dataset: Any, class_names: list[str]) -> list[dict[str, Any]]:
    """Per valid video: path, label and the top-5 classes with their probabilities (averaged
    softmax, or the softmax of the summed logits)."""
    videos, scores, labels, _ = preds.video_scores()
    if preds.combine == "sum":
        scores = scores.softmax(dim=-1)
    records = []
    for video, probs, label in zip(videos, scores, labels.tolist()):
        top = probs.topk(min(5, probs.numel()))
        records.append(
            {
                "video_idx": video,
                "path": dataset.paths[video] if hasattr(dataset, "paths") else None,
                "label": label,
                "label_name": class_names[label] if label < len(class_names) else str(label),
                "top5": top.indices.tolist(),
                "top5_names": [class_names[i] if i < len(class_names) else str(i) for i in top.indices.tolist()],
                "top5_prob": [round(p, 6) for p in top.values.tolist()],
            }
        )
    return records


def test_at_size(cfg: CfgNode, model: nn.Module, device: torch.device, dtype: torch.dtype | None) -> dict[str, Any]:
    """Multi-view test at ``DATA.TEST_CROP_SIZE``: metrics, failed paths, the valid videos'
    view-averaged ``scores`` ``(V, K)`` and ``labels`` ``(V,)``, class names, optional predictions."""
    loader = build_loader(cfg, "test")
    dataset = loader.dataset
    preds = collect_predictions(
        model, loader, device, dtype, log_period=cfg.LOG_PERIOD * 10, combine=VIEW_COMBINE[cfg.TEST.PROTOCOL]
    )
    metrics = preds.video_metrics(expected_views=getattr(dataset, "num_views", None))
    metrics.update(preds.clip_metrics())
    _, scores, labels, _ = preds.video_scores()
    out: dict[str, Any] = {
        "metrics": metrics,
        "failed": preds.failed_paths(),
        "scores": scores,
        "labels": labels,
        "class_names": list(dataset.class_names),
    }
    if cfg.TEST.SAVE_PREDICTIONS:
        out["predictions"] = _prediction_records(preds, dataset, list(dataset.class_names))
    if metrics.get("num_incomplete"):
        logger.warning("%d videos did not get all %d views", metrics["num_incomplete"], dataset.num_views)
    return out


def _write_results(cfg: CfgNode, report: dict[str, Any], metrics: dict[int, dict[str, float]]) -> None:
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    with open(os.path.join(cfg.OUTPUT_DIR, RESULTS_JSON), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(cfg.OUTPUT_DIR, RESULTS_TABLE), "w", encoding="utf-8") as f:
        f.write(report["table"] + "\n")
    plot_results(cfg, metrics, os.path.join(cfg.OUTPUT_DIR, RESULTS_PLOT))


def test(cfg: CfgNode) -> dict[str, Any]:
    """Multi-view test at every ``TEST.RESOLUTIONS`` size; write and return the results report.

    Returns a dict with ``results`` (``{size: {"top1", "top5", "clip_top1", "clip_top5",
    "num_videos", "num_failed", ...}}``), ``table`` (markdown), ``failed_videos`` (paths),
    ``checkpoint`` and, with ``TEST.SAVE_PREDICTIONS``, ``predictions`` per size.
    """
    setup_logging(cfg.OUTPUT_DIR)
    write_run_config(cfg.OUTPUT_DIR, cfg.dump())
    check_data_dir(cfg)
    device = distributed.get_device(cfg)
    dtype = config_autocast_dtype(cfg, device)
    model = build_model(cfg).to(device)
    weights = load_test_weights(cfg, model)
    logger.info("testing weights from %s", weights["path"])
    sizes = list(cfg.TEST.RESOLUTIONS) or [cfg.DATA.TEST_CROP_SIZE]
    views = f"{cfg.TEST.NUM_ENSEMBLE_VIEWS} clip(s) x {cfg.TEST.NUM_SPATIAL_CROPS} crop(s)"
    metrics: dict[int, dict[str, float]] = {}
    failed: list[str] = []
    predictions: dict[str, Any] = {}
    for size in sizes:
        result = test_at_size(cfg_with(cfg, "DATA.TEST_CROP_SIZE", size), model, device, dtype)
        metrics[size] = result["metrics"]
        failed.extend(p for p in result["failed"] if p not in failed)
        if "predictions" in result:
            predictions[str(size)] = result["predictions"]
        if distributed.is_master_proc():
            os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
            files = write_class_report(cfg.OUTPUT_DIR, size, result["scores"], result["labels"], result["class_names"])
            logger.info("wrote %s", ", ".join(os.path.basename(f) for f in files))
        m = result["metrics"]
        logger.info(
            "test %dpx (%s): video top-1 %.2f top-5 %.2f | clip top-1 %.2f top-5 %.2f | %d videos, %d failed",
            size,
            views,
            m["top1"],
            m["top5"],
            m["clip_top1"],
            m["clip_top5"],
            m["num_videos"],
            m["num_failed"],
        )
    report: dict[str, Any] = {
        "checkpoint": weights["path"],
        "model": model_label(cfg),
        "views": views,
        "train_sizes": list(cfg.DATA.TRAIN_CROP_SIZES),
        "split": cfg.TEST.SPLIT,
        "results": {str(s): m for s, m in metrics.items()},
        "table": results_table(cfg, metrics),
        "num_failed_videos": len(failed),
        "failed_videos": failed,
    }
    if predictions:
        report["predictions"] = predictions
    logger.info("results (video-level top-1 (top-5), %s):\n%s", views, report["table"])
    if failed:
        logger.warning(
            "%d test videos could not be read and were left out:\n  %s",
            len(failed),
            "\n  ".join(f"{path} ({failure_kind(path)})" for path in failed),
        )
    if distributed.is_master_proc():
        _write_results(cfg, report, metrics)
        logger.info("wrote %s, %s and %s in %s", RESULTS_JSON, RESULTS_TABLE, RESULTS_PLOT, cfg.OUTPUT_DIR)
    distributed.barrier()
    return report

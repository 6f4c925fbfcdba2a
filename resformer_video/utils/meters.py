"""Meters: smoothed training statistics, top-k accuracy and multi-view prediction aggregation."""

from __future__ import annotations

import datetime
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from resformer_video.utils.distributed import all_gather_objects


class SmoothedValue:
    """A number's median over a recent window and its mean over everything seen."""

    def __init__(self, window: int = 20) -> None:
        self.recent: deque = deque(maxlen=window)
        self.total = 0.0
        self.count = 0

    def update(self, value: float) -> None:
        self.recent.append(value)
        self.total += value
        self.count += 1

    @property
    def median(self) -> float:
        return float(np.median(self.recent)) if self.recent else 0.0

    @property
    def global_avg(self) -> float:
        return self.total / max(self.count, 1)

    def state_dict(self) -> dict[str, Any]:
        """Plain values (for a mid-epoch checkpoint)."""
        return {"recent": list(self.recent), "total": self.total, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent = deque(state["recent"], maxlen=self.recent.maxlen)
        self.total, self.count = float(state["total"]), int(state["count"])


def format_eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class TrainMeter:
    """Per-iteration loss parts, learning rate, clips/s and ETA of a training run."""

    def __init__(self, iters_per_epoch: int, max_epoch: int, window: int = 20) -> None:
        self.iters_per_epoch = iters_per_epoch
        self.max_epoch = max_epoch
        self.window = window
        self.values: dict[str, SmoothedValue] = {}
        self.iter_time = SmoothedValue(window)
        self.clips = 0

    def reset(self) -> None:
        self.values = {}
        self.iter_time = SmoothedValue(self.window)
        self.clips = 0

    @property
    def part_names(self) -> list[str]:
        """The names of the loss parts given to :meth:`update`, in their order."""
        return list(self.values)

    def state_dict(self) -> dict[str, Any]:
        """The epoch so far as plain values, for a mid-epoch checkpoint."""
        return {
            "values": {key: v.state_dict() for key, v in self.values.items()},
            "iter_time": self.iter_time.state_dict(),
            "clips": self.clips,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the epoch of :meth:`state_dict` (the same window)."""
        self.reset()
        for key, value in state["values"].items():
            self.values[key] = SmoothedValue(self.window)
            self.values[key].load_state_dict(value)
        self.iter_time.load_state_dict(state["iter_time"])
        self.clips = int(state["clips"])

    def update(self, parts: dict[str, float], iter_seconds: float, num_clips: int) -> None:
        for key, value in parts.items():
            self.values.setdefault(key, SmoothedValue(self.window)).update(value)
        self.iter_time.update(iter_seconds)
        self.clips += num_clips

    def eta_seconds(self, epoch: int, cur_iter: int) -> float:
        done = epoch * self.iters_per_epoch + cur_iter + 1
        return self.iter_time.median * (self.max_epoch * self.iters_per_epoch - done)

    def iter_stats(self, epoch: int, cur_iter: int, lr: float, world_size: int) -> dict:
        """The stats of the current iteration (smoothed medians), for the log and stats file."""
        stats = {
            "_type": "train_iter",
            "epoch": epoch + 1,
            "epochs": self.max_epoch,
            "iter": cur_iter + 1,
            "iters": self.iters_per_epoch,
            "eta": format_eta(self.eta_seconds(epoch, cur_iter)),
            "lr": lr,
            "time": self.iter_time.median,
        }
        stats.update({key: v.median for key, v in self.values.items()})
        clips_per_iter = self.clips / max(self.iter_time.count, 1)
        stats["clips_per_s"] = clips_per_iter * world_size / max(self.iter_time.median, 1e-9)
        stats["mem_mb"] = memory_mb()
        return stats

    def epoch_stats(self, epoch: int, lr: float) -> dict:
        """Mean of every part over the epoch."""
        stats = {"_type": "train_epoch", "epoch": epoch + 1, "lr": lr, "time": self.iter_time.total}
        stats.update({key: v.global_avg for key, v in self.values.items()})
        return stats


def memory_mb() -> float:
    """Peak GPU memory of this process (MiB) on GPU, else its peak resident host memory."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except ImportError:  # Windows
        return 0.0


def topk_correct(scores: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """Number of rows of ``scores`` ``(N, K)`` whose label ``(N,)`` is among the top-k, per k."""
    if scores.numel() == 0:
        return [0 for _ in ks]
    maxk = min(max(ks), scores.shape[1])
    top = scores.topk(maxk, dim=1).indices
    hits = top == labels.view(-1, 1)
    return [int(hits[:, : min(k, maxk)].any(dim=1).sum()) for k in ks]


# How a video's view scores combine: mean of softmax (default) or sum of logits (TimeSformer's).
VIEW_COMBINES = ("mean", "sum")


class ViewPredictions:
    """Scores of every evaluated clip, keyed by ``(video_idx, view_idx)``: softmax probabilities
    averaged per video (``combine="mean"``) or logits summed per video (``combine="sum"``).

    Rank-local during the loop; :meth:`gather` merges all ranks and drops the duplicates a
    distributed sampler pads in. Videos with a failed (invalid) view are left out of the metrics
    and listed in :attr:`failed`.
    """

    def __init__(self, combine: str = "mean") -> None:
        if combine not in VIEW_COMBINES:
            raise ValueError(f"combine must be one of {list(VIEW_COMBINES)}, got {combine!r}")
        self.combine = combine
        self.scores: dict[tuple[int, int], Tensor] = {}
        self.labels: dict[int, int] = {}
        self.failed: dict[int, list[str]] = {}

    def add_batch(self, probs: Tensor, batch: dict) -> None:
        """``probs`` ``(B, K)`` (softmax, or logits for ``combine="sum"``) for one batch with
        ``label``/``video_idx``/``view_idx``/``valid``."""
        probs = probs.detach().float().cpu()
        for i, (video, view, label, valid) in enumerate(
            zip(
                batch["video_idx"].tolist(),
                batch["view_idx"].tolist(),
                batch["label"].tolist(),
                batch["valid"].tolist(),
            )
        ):
            if not valid:
                paths = batch["failed"][i] if "failed" in batch else []
                self.failed.setdefault(video, []).extend(paths)
                continue
            # A copy: a view would keep (and pickle, when ranks gather) the whole batch.
            self.scores[(video, view)] = probs[i].clone()
            self.labels[video] = label

    def gather(self) -> ViewPredictions:
        """The union over ranks (deduplicated by key); a no-op outside a process group."""
        merged = ViewPredictions(self.combine)
        for part in all_gather_objects((self.scores, self.labels, self.failed)):
            scores, labels, failed = part
            merged.scores.update(scores)
            merged.labels.update(labels)
            for video, paths in failed.items():
                merged.failed.setdefault(video, [])
                merged.failed[video].extend(p for p in paths if p not in merged.failed[video])
        return merged

    def valid_videos(self) -> list[int]:
        return sorted(v for v in self.labels if v not in self.failed)

    def video_scores(self) -> tuple[list[int], Tensor, Tensor, dict[int, int]]:
        """Per valid video: ids, its views' scores combined ``(V, K)`` (mean or sum), labels
        ``(V,)``, view counts."""
        by_video: dict[int, list[Tensor]] = {}
        for (video, _), probs in self.scores.items():
            if video not in self.failed:
                by_video.setdefault(video, []).append(probs)
        videos = sorted(by_video)
        if not videos:
            return [], torch.zeros(0, 0), torch.zeros(0, dtype=torch.long), {}
        reduce = torch.sum if self.combine == "sum" else torch.mean
        scores = torch.stack([reduce(torch.stack(by_video[v]), dim=0) for v in videos])
        labels = torch.tensor([self.labels[v] for v in videos])
        return videos, scores, labels, {v: len(by_video[v]) for v in videos}

    def clip_metrics(self, ks: Iterable[int] = (1, 5)) -> dict[str, float]:
        """Clip-level top-k accuracy (%) over the valid videos' clips."""
        keys = [key for key in self.scores if key[0] not in self.failed]
        ks = tuple(ks)
        if not keys:
            return {f"clip_top{k}": 0.0 for k in ks} | {"num_clips": 0}
        scores = torch.stack([self.scores[k] for k in keys])
        labels = torch.tensor([self.labels[k[0]] for k in keys])
        correct = topk_correct(scores, labels, ks)
        out = {f"clip_top{k}": 100.0 * c / len(keys) for k, c in zip(ks, correct)}
        out["num_clips"] = len(keys)
        return out

    def video_metrics(self, ks: Iterable[int] = (1, 5), expected_views: int | None = None) -> dict[str, float]:
        """Video-level top-k accuracy (%) of the combined view scores, plus counts."""
        ks = tuple(ks)
        videos, scores, labels, counts = self.video_scores()
        correct = topk_correct(scores, labels, ks) if videos else [0 for _ in ks]
        out = {f"top{k}": 100.0 * c / max(len(videos), 1) for k, c in zip(ks, correct)}
        out["num_videos"] = len(videos)
        out["num_failed"] = len(self.failed)
        if expected_views is not None:
            out["num_incomplete"] = sum(1 for n in counts.values() if n != expected_views)
        return out

    def failed_paths(self) -> list[str]:
        seen: set[str] = set()
        out = []
        for video in sorted(self.failed):
            for path in self.failed[video] or [f"video_idx {video}"]:
                if path not in seen:
                    seen.add(path)
                    out.append(path)
        return out

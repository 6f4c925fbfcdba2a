"""Per-class results of a test: accuracy per class (CSV), a confusion matrix (PNG) and the most
confused class pairs (markdown), readable for 400 classes.

For test size ``S`` :func:`write_class_report` writes to ``OUTPUT_DIR``:

- ``test_per_class_S.csv``: ``class_index, class_name, videos, top1, top5`` (accuracy in %);
- ``test_confusion_S.png``: the row-normalised confusion matrix (true class down, predicted class
  across) with the classes sorted by top-1 accuracy, worst first, so the confused ones gather in
  the top-left corner; class names are drawn when there are at most 60 classes;
- ``test_confused_pairs_S.md``: the most frequent (true, predicted) mistakes with their counts
  and the share of the true class's videos.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import numpy as np
import torch

PER_CLASS_CSV = "test_per_class_{size}.csv"
CONFUSION_PNG = "test_confusion_{size}.png"
CONFUSED_PAIRS_MD = "test_confused_pairs_{size}.md"
MAX_NAMED_CLASSES = 60
NUM_PAIRS = 30


def per_class_accuracy(scores: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[dict[str, float]]:
    """Per class: videos, top-1 and top-5 accuracy (%) of video scores ``(V, K)`` with labels ``(V,)``."""
    rows = []
    top = scores.topk(min(5, scores.shape[1]), dim=1).indices if len(labels) else None
    for cls in range(num_classes):
        mask = labels == cls
        count = int(mask.sum())
        if count == 0:
            rows.append({"videos": 0, "top1": float("nan"), "top5": float("nan")})
            continue
        hits = top[mask] == cls
        rows.append(
            {
                "videos": count,
                "top1": 100.0 * float(hits[:, 0].float().mean()),
                "top5": 100.0 * float(hits.any(dim=1).float().mean()),
            }
        )
    return rows


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Counts ``(K, K)``: row = true class, column = predicted class."""
    flat = labels.long() * num_classes + predicted.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes).numpy()


def most_confused_pairs(confusion: np.ndarray, limit: int = NUM_PAIRS) -> list[dict[str, float]]:
    """The ``limit`` largest off-diagonal cells: ``true``, ``predicted``, ``count`` and ``share``
    (count / videos of the true class), largest count first (ties: lower indices first)."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:limit]
    totals = confusion.sum(axis=1)
    pairs = []
    for flat in order:
        true, pred = divmod(int(flat), confusion.shape[1])
        if off[true, pred] == 0:
            break
        pairs.append(
            {
                "true": true,
                "predicted": pred,
                "count": int(off[true, pred]),
                "share": float(off[true, pred] / totals[true]),
            }
        )
    return pairs


def write_per_class_csv(path: str, rows: Sequence[dict[str, float]], class_names: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class_index", "class_name", "videos", "top1", "top5"])
        for index, row in enumerate(rows):
            writer.writerow([index, class_names[index], row["videos"], f"{row['top1']:.2f}", f"{row['top5']:.2f}"])


def write_confused_pairs(path: str, pairs: Sequence[dict[str, float]], class_names: Sequence[str], title: str) -> None:
    lines = [
        f"# Most confused classes, {title}",
        "",
        "| true class | predicted as | videos | share of the true class |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {class_names[p['true']]} ({p['true']}) | {class_names[p['predicted']]} "
        f"({p['predicted']}) | {p['count']} | {100 * p['share']:.1f}% |"
        for p in pairs
    ]
    if not pairs:
        lines.append("| (no mistakes) | | | |")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def plot_confusion(
    path: str, confusion: np.ndarray, rows: Sequence[dict[str, float]], class_names: Sequence[str], title: str
) -> None:
    """The row-normalised matrix with classes sorted by top-1 (worst first), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num = confusion.shape[0]
    order = sorted(range(num), key=lambda c: (np.nan_to_num(rows[c]["top1"], nan=101.0), c))
    totals = np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    normed = (confusion / totals)[np.ix_(order, order)]
    side = min(4.0 + 0.045 * num, 22.0)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(normed, cmap="magma_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of the true class's videos")
    if num <= MAX_NAMED_CLASSES:
        names = [class_names[c] for c in order]
        ax.set_xticks(range(num), names, rotation=90, fontsize=7)
        ax.set_yticks(range(num), names, fontsize=7)
    ax.set_xlabel("predicted class (sorted by top-1, worst first)")
    ax.set_ylabel("true class (sorted by top-1, worst first)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_class_report(
    out_dir: str, size: int, scores: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]
) -> list[str]:
    """Write the three files of test size ``size`` (see the module docstring) for video scores
    ``(V, K)`` and labels ``(V,)``; return their paths."""
    num_classes = max(len(class_names), scores.shape[1])
    class_names = list(class_names) + [str(i) for i in range(len(class_names), num_classes)]
    rows = per_class_accuracy(scores, labels, num_classes)
    predicted = scores.argmax(dim=1) if len(labels) else labels
    confusion = confusion_matrix(predicted, labels, num_classes)
    title = f"test at {size} px, {len(labels)} videos"
    paths = [
        os.path.join(out_dir, name.format(size=size)) for name in (PER_CLASS_CSV, CONFUSION_PNG, CONFUSED_PAIRS_MD)
    ]
    write_per_class_csv(paths[0], rows, class_names)
    plot_confusion(paths[1], confusion, rows, class_names, title)
    write_confused_pairs(paths[2], most_confused_pairs(confusion), class_names, title)
    return paths

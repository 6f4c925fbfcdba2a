"""The study's outputs: ``study.json`` (mean and spread over seeds), ``study.md`` (the ResFormer
paper's table layout, with GFLOPs per clip) and ``study.png`` (top-1 against test size)."""

from __future__ import annotations

import math
import os
import statistics
from typing import Any, Dict, List, Sequence

from yacs.config import CfgNode

from resformer_video.config import cfg_with
from resformer_video.models import build_model, count_flops
from resformer_video.utils.atomic import write_json

STUDY_JSON = "study.json"
STUDY_TABLE = "study.md"
STUDY_PLOT = "study.png"


def variant_gflops(cfg: CfgNode, sizes: Sequence[int]) -> Dict[int, float]:
    """Forward GFLOPs (multiply-adds, fvcore's convention, attention included) of one
    ``(1, 3, DATA.NUM_FRAMES, size, size)`` clip of the model ``cfg`` builds, per size."""
    model = build_model(cfg_with(cfg, "MODEL.PRETRAINED", ""))
    return {int(size): count_flops(model, cfg.DATA.NUM_FRAMES, size, size) / 1e9 for size in sizes}


def _mean_std(values: List[float]) -> Dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarize(rows: List[Dict[str, Any]], train_sizes: Dict[str, List[int]],
              sizes: Sequence[int]) -> Dict[str, Any]:
    """``{"variants": {name: {"train_sizes", "test": {"<size>": {"top1", "top1_std", "top5",
    "runs"}}}}}`` over ``rows`` (one per run: ``variant`` and ``results[size]`` top1/top5, %); the
    std is the sample std over runs (0 for one run). Variants keep the order of ``train_sizes``."""
    variants: Dict[str, Any] = {}
    for name, trained in train_sizes.items():
        runs = [row for row in rows if row["variant"] == name]
        test: Dict[str, Any] = {}
        for size in sizes:
            top1 = _mean_std([row["results"][str(size)]["top1"] for row in runs])
            top5 = _mean_std([row["results"][str(size)]["top5"] for row in runs])
            test[str(size)] = {"top1": top1["mean"], "top1_std": top1["std"], "top5": top5["mean"],
                               "runs": len(runs)}
        variants[name] = {"train_sizes": list(trained), "test": test}
    return {"variants": variants}


def _three_digits(value: float) -> str:
    """``value`` with three significant digits, trailing zeros kept (0.590, 1.57, 196)."""
    if value <= 0:
        return f"{value:g}"
    return f"{value:.{max(0, 2 - math.floor(math.log10(value)))}f}"


def _cell(stats: Dict[str, Any]) -> str:
    return f"{stats['top1']:.1f} ± {stats['top1_std']:.1f}"


def study_table(study: Dict[str, Any]) -> str:
    """Markdown: the accuracy table (rows: variants with their training sizes; columns: test sizes;
    ``mean ± std`` top-1), chance, then GFLOPs per clip of each variant at each test size."""
    variants = study["variants"]
    sizes = list(next(iter(variants.values()))["test"])
    header = "| Model | Train res. | " + " | ".join(sizes) + " |"
    rule = "|---|---|" + "---|" * len(sizes)
    lines = [f"Video-level top-1 (%) on the {study['num_test_videos']} held-out test videos "
             f"({study['views']}), mean ± sample std over "
             f"seed(s) {', '.join(str(s) for s in study['seeds'])}; "
             f"chance {study['chance']:.1f} %.", "", header, rule]
    for name, entry in variants.items():
        trained = "/".join(str(s) for s in entry["train_sizes"])
        lines.append(f"| {name} | {trained} | " + " | ".join(_cell(entry["test"][s]) for s in sizes) + " |")
    lines += ["", f"GFLOPs per clip ({study['frames']} frames; multiply-adds, fvcore's convention, "
              "attention included):", "", "| Model | " + " | ".join(sizes) + " |",
              "|---|" + "---|" * len(sizes)]
    for name in variants:
        gflops = study["gflops"][name]
        lines.append(f"| {name} | " + " | ".join(_three_digits(gflops[s]) for s in sizes) + " |")
    return "\n".join(lines) + "\n"


def plot_study(study: Dict[str, Any], path: str) -> None:
    """Top-1 against test size, one line per variant with a ± std band, its training sizes starred,
    chance dashed (PNG, matplotlib Agg)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, entry in study["variants"].items():
        sizes = [int(s) for s in entry["test"]]
        mean = [entry["test"][str(s)]["top1"] for s in sizes]
        std = [entry["test"][str(s)]["top1_std"] for s in sizes]
        trained = "/".join(str(s) for s in entry["train_sizes"])
        (line,) = ax.plot(sizes, mean, "o-", label=f"{name} (train {trained})")
        ax.fill_between(sizes, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color=line.get_color(), alpha=0.15, linewidth=0)
        starred = [(s, m) for s, m in zip(sizes, mean) if s in entry["train_sizes"]]
        if starred:
            ax.plot(*zip(*starred), "*", color=line.get_color(), markersize=14, markeredgecolor="black")
    ax.axhline(study["chance"], color="grey", linestyle="--", label="chance")
    ax.plot([], [], "*", color="white", markeredgecolor="black", markersize=12, label="training size")
    ax.set_xticks(sorted({int(s) for e in study["variants"].values() for s in e["test"]}))
    ax.set_ylim(0, 100)
    ax.set_xlabel("test resolution (pixels)")
    ax.set_ylabel("video-level top-1 (%)")
    ax.set_title(f"top-1 against test size (mean ± std over {len(study['seeds'])} seed(s))")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(study: Dict[str, Any], out_dir: str) -> List[str]:
    """Write ``study.json`` (atomically), ``study.md`` and ``study.png`` to ``out_dir``; their paths."""
    paths = [os.path.join(out_dir, name) for name in (STUDY_JSON, STUDY_TABLE, STUDY_PLOT)]
    write_json(paths[0], study)
    with open(paths[1], "w", encoding="utf-8") as handle:
        handle.write(study_table(study))
    plot_study(study, paths[2])
    return paths

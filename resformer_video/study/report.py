"""The study's outputs: ``study.json`` (mean and spread over seeds), ``study.md`` (the ResFormer
paper's table layout, with GFLOPs per clip) and ``study.png`` (top-1 against test size)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from yacs.config import CfgNode

from resformer_video.config import cfg_with
from resformer_video.models import build_model, count_flops
from resformer_video.study.stats import mean_interval, mean_std, paired_differences
from resformer_video.utils.atomic import write_json

STUDY_JSON = "study.json"
STUDY_TABLE = "study.md"
STUDY_PLOT = "study.png"


def variant_gflops(cfg: CfgNode, sizes: Sequence[int]) -> dict[int, float]:
    """Forward GFLOPs (multiply-adds, fvcore's convention, attention included) of one
    ``(1, 3, DATA.NUM_FRAMES, size, size)`` clip of the model ``cfg`` builds, per size."""
    model = build_model(cfg_with(cfg, "MODEL.PRETRAINED", ""))
    return {int(size): count_flops(model, cfg.DATA.NUM_FRAMES, size, size) / 1e9 for size in sizes}


BASELINE = "timesformer"
# TimeSformer's recipe given the multi-size variants' training FLOPs: the second baseline, where
# the study has it (the lead over it is what the method gives beyond its extra compute).
MATCHED_BASELINE = "timesformer_matched"
# A run "stayed at chance" when its top-1 at its (first) training size is at most this many points
# above chance: on 240 two-class test videos, guessing gives 50 ± 3.2 %; a run that learned anything
# is far above (the study's runs that learned are at 97-100 %).
AT_CHANCE_MARGIN = 5.0


def runs_at_chance(
    rows: list[dict[str, Any]], train_sizes: dict[str, list[int]], chance: float, margin: float = AT_CHANCE_MARGIN
) -> list[dict[str, Any]]:
    """The runs among ``rows`` whose top-1 at their variant's first training size is at most
    ``chance + margin``: ``[{"variant", "data_seed", "seed", "top1"}, ...]``."""
    out = []
    for row in rows:
        top1 = row["results"][str(train_sizes[row["variant"]][0])]["top1"]
        if top1 <= chance + margin:
            out.append(
                {"variant": row["variant"], "data_seed": row.get("data_seed"), "seed": row["seed"], "top1": top1}
            )
    return out


def summarize(
    rows: list[dict[str, Any]],
    train_sizes: dict[str, list[int]],
    sizes: Sequence[int],
    chance: float | None = None,
) -> dict[str, Any]:
    """``{"variants": {name: {"train_sizes", "test": {"<size>": {"top1", "top1_std", "top1_ci95",
    "top5", "runs"}}}}, "leads": ..., "factors": ...}`` over ``rows`` (one per run: ``variant``,
    ``seed``, ``data_seed`` and ``results[size]`` top1/top5, %). Mean, sample std and 95 % t interval
    are over every run of a variant (all seeds and datasets); :func:`leads` and :func:`factors`
    below. Variants keep the order of ``train_sizes``. With ``chance`` (top-1 %), also
    ``"at_chance"`` (:func:`runs_at_chance`) and ``"leads_learned"``: the leads over the pairs
    where neither run stayed at chance (the headline ``"leads"`` keep every pair). Where the study
    has :data:`MATCHED_BASELINE`, ``"leads_over_matched"`` (and ``"leads_over_matched_learned"``)
    are the same against it."""
    variants: dict[str, Any] = {}
    for name, trained in train_sizes.items():
        runs = [row for row in rows if row["variant"] == name]
        test: dict[str, Any] = {}
        for size in sizes:
            top1 = mean_interval([row["results"][str(size)]["top1"] for row in runs])
            top5 = mean_std([row["results"][str(size)]["top5"] for row in runs])
            test[str(size)] = {
                "top1": top1["mean"],
                "top1_std": top1["std"],
                "top1_ci95": top1["ci95"],
                "top5": top5["mean"],
                "runs": len(runs),
            }
        variants[name] = {"train_sizes": list(trained), "test": test}
    names = list(train_sizes)
    summary: dict[str, Any] = {"variants": variants, "factors": factors(rows, names, sizes)}
    stuck = runs_at_chance(rows, train_sizes, chance) if chance is not None else []
    keys = {(run["variant"], run["data_seed"], run["seed"]) for run in stuck}
    learned = [row for row in rows if (row["variant"], row.get("data_seed"), row["seed"]) not in keys]
    # against the matched baseline: every variant but plain timesformer (its lead would be the negation)
    others = [name for name in names if name != BASELINE]
    for key, baseline, candidates in (("leads", BASELINE, names), ("leads_over_matched", MATCHED_BASELINE, others)):
        summary[key] = leads(rows, candidates, sizes, baseline)
        if chance is not None:  # without runs at chance, ``learned`` is ``rows``: the same leads
            summary[key + "_learned"] = leads(learned, candidates, sizes, baseline)
    if chance is not None:
        summary["at_chance"] = stuck
    return summary


def _top1_by_pair(rows: list[dict[str, Any]], variant: str, size: int) -> dict[tuple, float]:
    return {
        (row.get("data_seed"), row["seed"]): row["results"][str(size)]["top1"]
        for row in rows
        if row["variant"] == variant
    }


def leads(
    rows: list[dict[str, Any]], variants: list[str], sizes: Sequence[int], baseline: str = BASELINE
) -> dict[str, Any]:
    """Each variant's top-1 minus ``baseline``'s, paired by (dataset, seed): ``{variant: {"<size>":
    {"mean", "std", "n", "ci95"}}}`` ({} without the baseline or without pairs)."""
    if baseline not in variants:
        return {}
    out: dict[str, Any] = {}
    for name in variants:
        if name == baseline:
            continue
        per_size = {}
        for size in sizes:
            diffs = paired_differences(_top1_by_pair(rows, name, size), _top1_by_pair(rows, baseline, size))
            if diffs:
                per_size[str(size)] = mean_interval(diffs)
        if per_size:
            out[name] = per_size
    return out


def factors(rows: list[dict[str, Any]], variants: list[str], sizes: Sequence[int]) -> dict[str, Any]:
    """What moves each variant's top-1 at each size: ``{variant: {"<size>": {"by_dataset": {data_seed:
    mean over seeds}, "dataset_range": max - min of those means, "seed_std": the mean over datasets
    of the std over seeds}}}`` (datasets with one run add no seed spread; one dataset: no range, None)."""
    out: dict[str, Any] = {}
    for name in variants:
        runs = [row for row in rows if row["variant"] == name]
        data_seeds = sorted({row.get("data_seed") for row in runs}, key=lambda d: -1 if d is None else d)
        per_size = {}
        for size in sizes:
            by_data = {
                d: [row["results"][str(size)]["top1"] for row in runs if row.get("data_seed") == d] for d in data_seeds
            }
            means = {str(d): mean_std(v)["mean"] for d, v in by_data.items()}
            stds = [mean_std(v)["std"] for v in by_data.values() if len(v) > 1]
            per_size[str(size)] = {
                "by_dataset": means,
                "dataset_range": max(means.values()) - min(means.values()) if len(means) > 1 else None,
                "seed_std": sum(stds) / len(stds) if stds else 0.0,
            }
        out[name] = per_size
    return out


def _three_digits(value: float) -> str:
    """``value`` with three significant digits, trailing zeros kept (0.590, 1.57, 196)."""
    if value <= 0:
        return f"{value:g}"
    return f"{value:.{max(0, 2 - math.floor(math.log10(value)))}f}"


def _cell(stats: dict[str, Any]) -> str:
    return f"{stats['top1']:.1f} ± {stats['top1_std']:.1f}"


def _interval(stats: dict[str, Any]) -> str:
    ci = stats.get("ci95")
    spread = f"{stats['mean']:+.1f} ± {stats['std']:.1f}"
    return spread if ci is None else f"{spread} [{ci[0]:+.1f}, {ci[1]:+.1f}]"


def _runs_text(study: dict[str, Any]) -> str:
    seeds = ", ".join(str(s) for s in study["seeds"])
    data = study.get("data_seeds")
    return f"seed(s) {seeds}" + (f" x dataset(s) {', '.join(str(d) for d in data)}" if data else "")


def _lead_table(leads_by_variant: dict[str, Any], sizes: list[str], title: str) -> list[str]:
    lines = ["", title, "", "| Model | pairs | " + " | ".join(sizes) + " |", "|---|---|" + "---|" * len(sizes)]
    for name, per_size in leads_by_variant.items():
        pairs = next(iter(per_size.values()))["n"]
        lines.append(f"| {name} | {pairs} | " + " | ".join(_interval(per_size[s]) for s in sizes) + " |")
    return lines


def _lead_lines(study: dict[str, Any], sizes: list[str]) -> list[str]:
    """The lead tables over every pair (against each baseline the study has); where runs stayed at
    chance, those runs and the leads without their pairs."""
    lines: list[str] = []
    stuck = study.get("at_chance") or []
    for key, baseline in (("leads", BASELINE), ("leads_over_matched", MATCHED_BASELINE)):
        if study.get(key):
            title = f"Lead over {baseline} (top-1 points), paired by dataset and seed: mean ± sample std"
            lines += _lead_table(study[key], sizes, title + " [95 % t interval of the mean]:")
    if not stuck or not lines:
        return lines
    named = ", ".join(
        f"{run['variant']} seed {run['seed']}" + ("" if run["data_seed"] is None else f" of dataset {run['data_seed']}")
        for run in stuck
    )
    lines += ["", f"Runs that stayed at chance (top-1 at the training size <= chance + {AT_CHANCE_MARGIN:g}): {named}."]
    for key, baseline in (("leads_learned", BASELINE), ("leads_over_matched_learned", MATCHED_BASELINE)):
        if study.get(key):
            title = f"Lead over {baseline} without the pairs that include a run at chance (the tables above keep them):"
            lines += _lead_table(study[key], sizes, title)
    return lines


def _factor_lines(study: dict[str, Any], sizes: list[str]) -> list[str]:
    if not study.get("data_seeds") or len(study["data_seeds"]) < 2:
        return []
    lines = [
        "",
        "What moves top-1 (points): the range of the per-dataset means (data) and the mean "
        "std over training seeds within a dataset (seed):",
        "",
        "| Model | " + " | ".join(sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for name, per_size in study["factors"].items():
        lines.append(f"| {name} | " + " | ".join(_factor_cell(per_size[s]) for s in sizes) + " |")
    return lines


def _factor_cell(stats: dict[str, Any]) -> str:
    data = "-" if stats["dataset_range"] is None else f"{stats['dataset_range']:.1f}"
    return f"data {data} / seed {stats['seed_std']:.1f}"


def pooled_runs_text(rows: list[dict[str, Any]], variant: str) -> str:
    """The runs of ``variant`` among ``rows``, e.g. ``seeds 0,1,2 of dataset 0; seeds 0 of dataset 1``
    (``seeds 0,1,2`` for a study on the config's own dataset)."""
    by_data: dict[Any, list[int]] = {}
    for row in rows:
        if row["variant"] == variant:
            by_data.setdefault(row.get("data_seed"), []).append(row["seed"])
    parts = [
        f"seeds {','.join(map(str, sorted(seeds)))}" + ("" if data is None else f" of dataset {data}")
        for data, seeds in sorted(by_data.items(), key=lambda item: -1 if item[0] is None else item[0])
    ]
    return "; ".join(parts)


def _pooled_runs(study: dict[str, Any]) -> list[str]:
    """Per model, the runs its row pools: ``- timesformer: seeds 0,1,2 of dataset 0; seeds 0 of dataset 1``."""
    return [f"- {name}: {pooled_runs_text(study.get('runs', []), name)}" for name in study["variants"]]


def study_table(study: dict[str, Any]) -> str:
    """Markdown: the accuracy table (rows: variants with their training sizes; columns: test sizes;
    ``mean ± std`` top-1), chance, precision and CPU class; the lead over the baseline with its 95 %
    interval; what datasets and seeds move; GFLOPs per clip and training cost of each variant."""
    variants = study["variants"]
    sizes = list(next(iter(variants.values()))["test"])
    machine = study.get("machine", {})
    header = "| Model | Train res. | runs | " + " | ".join(sizes) + " |"
    rule = "|---|---|---|" + "---|" * len(sizes)
    lines = [
        f"Video-level top-1 (%) on the {study['num_test_videos']} held-out test videos "
        f"({study['views']}), mean ± sample std over each model's runs (asked: {_runs_text(study)}); "
        f"chance {study['chance']:.1f} %; {study.get('precision', 'fp32')} on a "
        f"{machine.get('cpu_class', 'unknown')} CPU ({machine.get('cpu', '?')}).",
        "",
        header,
        rule,
    ]
    for name, entry in variants.items():
        trained = "/".join(str(s) for s in entry["train_sizes"])
        runs = next(iter(entry["test"].values()))["runs"]
        lines.append(f"| {name} | {trained} | {runs} | " + " | ".join(_cell(entry["test"][s]) for s in sizes) + " |")
    lines += ["", "Runs pooled per model (training seed x generated dataset):", ""] + _pooled_runs(study)
    lines += _lead_lines(study, sizes) + _factor_lines(study, sizes)
    lines += [
        "",
        f"GFLOPs per clip ({study['frames']} frames; multiply-adds, fvcore's convention, "
        "attention included), and training cost (forward GFLOPs per clip summed over the "
        "training sizes, x epochs):",
        "",
        "| Model | " + " | ".join(sizes) + " | train GFLOPs x epochs |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for name in variants:
        gflops = study["gflops"][name]
        cost = ""
        if name in study.get("train_gflops", {}):
            cost = f"{_three_digits(study['train_gflops'][name])} x {study['epochs'][name]}"
        lines.append(f"| {name} | " + " | ".join(_three_digits(gflops[s]) for s in sizes) + f" | {cost} |")
    return "\n".join(lines) + "\n"


def plot_study(study: dict[str, Any], path: str) -> None:
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
        ax.fill_between(
            sizes,
            [m - s for m, s in zip(mean, std)],
            [m + s for m, s in zip(mean, std)],
            color=line.get_color(),
            alpha=0.15,
            linewidth=0,
        )
        starred = [(s, m) for s, m in zip(sizes, mean) if s in entry["train_sizes"]]
        if starred:
            ax.plot(*zip(*starred), "*", color=line.get_color(), markersize=14, markeredgecolor="black")
    ax.axhline(study["chance"], color="grey", linestyle="--", label="chance")
    ax.plot([], [], "*", color="white", markeredgecolor="black", markersize=12, label="training size")
    ax.set_xticks(sorted({int(s) for e in study["variants"].values() for s in e["test"]}))
    ax.set_ylim(0, 100)
    ax.set_xlabel("test resolution (pixels)")
    ax.set_ylabel("video-level top-1 (%)")
    runs = next(iter(next(iter(study["variants"].values()))["test"].values()))["runs"]
    ax.set_title(f"top-1 against test size (mean ± std over {runs} run(s) per model)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(study: dict[str, Any], out_dir: str) -> list[str]:
    """Write ``study.json`` (atomically), ``study.md`` and ``study.png`` to ``out_dir``; their paths."""
    paths = [os.path.join(out_dir, name) for name in (STUDY_JSON, STUDY_TABLE, STUDY_PLOT)]
    write_json(paths[0], study)
    with open(paths[1], "w", encoding="utf-8") as handle:
        handle.write(study_table(study))
    plot_study(study, paths[2])
    return paths

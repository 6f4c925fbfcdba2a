"""The demo (``tools/demo.py``, ``make demo``): two of the study's variants, one seed, printed side by
side with the recorded study's mean and the range a single run should fall in.

The recorded study (:data:`REFERENCE_FILE`, shipped with the package) is the evidence study of
docs/RESULTS.md reduced to what the demo prints: per variant and test size the mean, sample std and
number of runs over every training seed and generated dataset, and the machine and precision it ran
on. A single run varies a lot on this benchmark (the baseline at half its training size most), so
the demo says whether its own numbers fall inside the study's 95 % range for one run
(:func:`~resformer_video.study.stats.prediction_range`) rather than presenting one run as the result.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from yacs.config import CfgNode

from resformer_video.study.pipeline import run_study
from resformer_video.study.report import pooled_runs_text
from resformer_video.study.stats import prediction_range

VARIANTS = ("timesformer", "resformer_multi_sc")
LABELS = {"timesformer": "TimeSformer", "resformer_multi_sc": "ResFormer"}
REFERENCE_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "study_reference.json")


def reference_from_study(study: dict[str, Any]) -> dict[str, Any]:
    """What the demo needs of a finished study (its ``study.json``): per variant of :data:`VARIANTS`
    and test size ``{"mean", "std", "n"}`` of top-1, the lead's 95 % interval, and where it ran."""
    variants = {
        name: {
            size: {"mean": stats["top1"], "std": stats["top1_std"], "n": stats["runs"]}
            for size, stats in study["variants"][name]["test"].items()
        }
        for name in VARIANTS
    }
    lead = study.get("leads", {}).get(VARIANTS[1], {})
    return {
        "command": study.get("command", ""),
        "precision": study.get("precision"),
        "cpu_class": study.get("machine", {}).get("cpu_class"),
        "seeds": study["seeds"],
        "data_seeds": study.get("data_seeds"),
        "runs": pooled_runs_text(study.get("runs", []), VARIANTS[0]),
        "variants": variants,
        "lead": {size: {"mean": s["mean"], "ci95": s["ci95"]} for size, s in lead.items()},
    }


def load_reference(path: str = REFERENCE_FILE) -> dict[str, Any] | None:
    """The recorded study (None when the file is absent, e.g. a trimmed install)."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _range_cell(top1: float, stats: dict[str, Any] | None) -> tuple[str, bool | None]:
    if stats is None or stats["n"] < 2:
        return f"{'':>22}", None
    low, high = prediction_range(stats["mean"], stats["std"], stats["n"])
    inside = low <= top1 <= high
    return f"{stats['mean']:>6.1f} [{low:5.1f},{high:6.1f}]{' ' if inside else '!'}", inside


def side_by_side(study: dict[str, Any], reference: dict[str, Any] | None = None) -> str:
    """The demo's table: per test size each variant's video-level top-1, and with ``reference`` the
    study's mean and 95 % single-run range beside it (``!`` outside); then chance, what was
    trained, and whether this run falls inside the study's ranges."""
    variants = study["variants"]
    recorded = (reference or {}).get("variants", {})
    header = f"{'test size':>10}" + "".join(
        f"{LABELS[name]:>13}" + (f"{'study mean [95% range]':>24}" if recorded else "") for name in VARIANTS
    )
    lines, verdicts = [header + f"{'GFLOPs':>9}"], []
    for size in variants[VARIANTS[0]]["test"]:
        cells = ""
        for name in VARIANTS:
            top1 = variants[name]["test"][size]["top1"]
            cells += f"{top1:>12.1f}%"
            if recorded:
                text, inside = _range_cell(top1, recorded.get(name, {}).get(size))
                cells += f"  {text}"
                verdicts += [] if inside is None else [inside]
        lines.append(f"{size:>10}{cells}{study['gflops'][VARIANTS[1]][size]:>9.3f}")
    trained = ", ".join(f"{LABELS[name]} at {'/'.join(map(str, variants[name]['train_sizes']))}" for name in VARIANTS)
    lines.append(
        f"\nvideo-level top-1 on {study['num_test_videos']} test videos ({study['views']}); "
        f"chance {study['chance']:.1f}%; trained: {trained} px; {study.get('precision', 'fp32')} "
        f"on a {study.get('machine', {}).get('cpu_class', 'unknown')} CPU"
    )
    lines += _verdict_lines(reference, verdicts)
    return "\n".join(lines)


def _verdict_lines(reference: dict[str, Any] | None, verdicts: list[bool]) -> list[str]:
    if not reference or not verdicts:
        return ["(no recorded study to compare with)"]
    runs = next(iter(next(iter(reference["variants"].values())).values()))["n"]
    where = f"{reference.get('precision')}, {reference.get('cpu_class')} CPU"
    inside = sum(verdicts)
    verdict = (
        "inside the study's range everywhere"
        if inside == len(verdicts)
        else f"OUTSIDE the study's range at {len(verdicts) - inside} cell(s) (marked !)"
    )
    pooled = reference.get("runs") or (
        f"{len(reference['seeds'])} seeds x {len(reference.get('data_seeds') or [0])} generated datasets"
    )
    return [
        f"study: {runs} runs per model ({pooled}; {where}); its 95 % range is where one run should fall",
        f"this run: {inside} of {len(verdicts)} cells inside; {verdict}",
    ]


def run_demo(cfg: CfgNode, command: str = "", out_dir: str = "") -> str:
    """Train and test the two variants (seed ``RNG_SEED``; finished runs are skipped) into
    ``out_dir`` (default ``OUTPUT_DIR``) and return the printed report (table, verdict, total time)."""
    start = time.time()
    out_dir = out_dir or cfg.OUTPUT_DIR
    study = run_study(cfg, list(VARIANTS), [cfg.RNG_SEED], out_dir, command=command)
    return (
        side_by_side(study, load_reference())
        + f"\ntotal time {(time.time() - start) / 60:.1f} min; table, plot and runs in {out_dir}"
    )

"""``run_study``: plan the runs, check the out folder, make the data, run, and write the report."""

from __future__ import annotations

import time
from typing import Any

import torch
from yacs.config import CfgNode

from resformer_video.config import ConfigError
from resformer_video.datasets import ensure_synthetic_dataset
from resformer_video.study.report import summarize, variant_gflops, write_outputs
from resformer_video.study.runs import (
    Log,
    Run,
    check_stored_config,
    dataset_cfg,
    execute_runs,
    finished_results,
    plan_runs,
    read_run_record,
    tested_sizes,
)
from resformer_video.utils.machine import machine_info
from resformer_video.utils.precision import config_precision


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; anything else raises ValueError naming ``flag``."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{flag}: expected comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"{flag}: expected distinct comma-separated integers, got {text!r}")
    return seeds


def _check_protocol(base: CfgNode) -> None:
    if base.TEST.SPLIT != "test":
        raise ConfigError(
            "TEST.SPLIT", f"is {base.TEST.SPLIT!r}: the study reports the held-out test split; set it to test"
        )


def _gflops_per_variant(runs: list[Run]) -> dict[str, dict[int, float]]:
    """Forward GFLOPs per clip of each variant at its test and training sizes (counted once per
    distinct model: variants that differ only in training recipe share the count)."""
    out: dict[str, dict[int, float]] = {}
    counted: dict[str, dict[int, float]] = {}
    sizes = sorted({int(s) for run in runs for s in tested_sizes(run.cfg) + list(run.cfg.DATA.TRAIN_CROP_SIZES)})
    for run in runs:
        model_key = f"{run.cfg.MODEL.dump()}{run.cfg.DATA.NUM_FRAMES} {run.cfg.DATA.TRAIN_CROP_SIZES[0]}"
        if model_key not in counted:
            counted[model_key] = variant_gflops(run.cfg, sizes)
        out[run.variant] = counted[model_key]
    return out


def _effective_precision(cfg: CfgNode) -> str:
    """The precision the runs train and test in here (``TRAIN.MIXED_PRECISION`` after any fallback)."""
    device = torch.device("cuda" if cfg.NUM_GPUS > 0 and torch.cuda.is_available() else "cpu")
    return config_precision(cfg, device)


def _run_row(run: Run) -> dict[str, Any]:
    results = finished_results(run) or {}
    record = read_run_record(run)
    return {
        "variant": run.variant,
        "seed": run.seed,
        "data_seed": run.data_seed,
        "run_dir": run.run_dir,
        "wall_s": record.get("wall_s"),
        "start_epoch": record.get("start_epoch"),
        "results": {size: {"top1": m["top1"], "top5": m["top5"]} for size, m in results.items()},
        "num_test_videos": max((m["num_videos"] for m in results.values()), default=0),
    }


def _finished_only(runs: list[Run], out_dir: str, log: Log) -> list[Run]:
    """The finished runs of ``runs``; the others are named in the log."""
    finished = [run for run in runs if finished_results(run) is not None]
    left_out = [run.label for run in runs if finished_results(run) is None]
    if not finished:
        raise FileNotFoundError(f"{out_dir}: no finished run of this study to report")
    if left_out:
        log(f"report only: {len(left_out)} of {len(runs)} run(s) not finished, left out: {', '.join(left_out)}")
    return finished


def run_study(
    base: CfgNode,
    variants: list[str],
    seeds: list[int],
    out_dir: str,
    command: str = "",
    log: Log = print,
    data_seeds: list[int] | None = None,
    report_only: bool = False,
) -> dict[str, Any]:
    """Train and test every (variant, seed) run under ``out_dir/runs`` (finished runs are skipped,
    interrupted ones continue) and write ``study.json``, ``study.md`` and ``study.png`` to
    ``out_dir``. With ``data_seeds``, each (variant, seed) runs on each of that many generated
    datasets (``SYNTHETIC.SEED``), under ``out_dir/data<seed>/``, and the report pairs the variants
    by (dataset, seed). ``report_only``: train nothing, report the runs already finished (the others
    are named in the log and left out). Returns the study dict (the content of ``study.json``).

    Raises:
        FileNotFoundError: ``report_only`` and no run has finished.
        ConfigError: a variant cannot be made from ``base`` (e.g. scale-consistency weight 0).
        StudyConfigMismatch: a run folder in ``out_dir`` was made with another config.
    """
    start = time.time()
    _check_protocol(base)
    runs = plan_runs(base, variants, seeds, out_dir, data_seeds)
    for run in runs:
        check_stored_config(run)
    if report_only:
        runs = _finished_only(runs, out_dir, log)
    else:
        for data_seed in data_seeds or [None]:
            ensure_synthetic_dataset(dataset_cfg(base, out_dir, data_seed), log=log)
    gflops = _gflops_per_variant(runs)
    train_gflops = {
        run.variant: sum(gflops[run.variant][int(s)] for s in run.cfg.DATA.TRAIN_CROP_SIZES) for run in runs
    }
    if not report_only:
        execute_runs(runs, train_gflops, log=log)
    rows = [_run_row(run) for run in runs]
    sizes = tested_sizes(base)
    chance = 100.0 / base.MODEL.NUM_CLASSES
    trained = {run.variant: [int(s) for s in run.cfg.DATA.TRAIN_CROP_SIZES] for run in runs}
    study = summarize(rows, trained, sizes, chance)
    study.update(
        {
            "gflops": {name: {str(s): round(g[s], 6) for s in sizes} for name, g in gflops.items()},
            "train_gflops": {name: round(g, 6) for name, g in train_gflops.items()},
            "epochs": {run.variant: int(run.cfg.SOLVER.MAX_EPOCH) for run in runs},
            "chance": chance,
            "seeds": seeds,
            "data_seeds": data_seeds,
            "frames": base.DATA.NUM_FRAMES,
            "precision": _effective_precision(base),
            "views": f"{base.TEST.NUM_ENSEMBLE_VIEWS} clip(s) x {base.TEST.NUM_SPATIAL_CROPS} crop(s)",
            "num_test_videos": max(row["num_test_videos"] for row in rows),
            "runs": rows,
            "command": command,
            "machine": machine_info(),
            "wall_time_s": round(time.time() - start, 1),
        }
    )
    paths = write_outputs(study, out_dir)
    log("wrote " + ", ".join(paths))
    return study

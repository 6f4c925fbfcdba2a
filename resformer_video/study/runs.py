"""The study's runs: one per (variant, seed), each trained and then tested at every test size.

A run lives in ``OUT/runs/<variant>/seed<seed>`` (its ``OUTPUT_DIR``). It first writes its
effective config there (``study_cfg.yaml``); a later invocation with a different config for the
same folder is refused rather than mixing results. A run whose ``test_results.json`` holds every
test size is finished and skipped; an interrupted one continues from its last checkpoint
(``TRAIN.AUTO_RESUME``). After a run, ``study_run.json`` records its wall time in this invocation
and the epoch it started from (> 0 for a resumed run, whose earlier time is not counted).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

from yacs.config import CfgNode

from resformer_video.config import cfg_with
from resformer_video.config.compare import RUN_PLACE_KEYS, config_differences, summarize_differences
from resformer_video.engine import test, train
from resformer_video.engine.evaluate import RESULTS_JSON
from resformer_video.errors import StudyConfigMismatch  # noqa: F401  (re-exported)
from resformer_video.study.variants import variant_cfg
from resformer_video.utils import checkpoint
from resformer_video.utils.atomic import write_json
from resformer_video.utils.distributed import launch

STUDY_CFG = "study_cfg.yaml"
RUN_RECORD = "study_run.json"

Log = Callable[[str], None]


@dataclasses.dataclass
class Run:
    """One (variant, seed) run; ``cfg.OUTPUT_DIR`` is its folder."""

    variant: str
    seed: int
    cfg: CfgNode
    data_seed: int | None = None  # the generated dataset's SYNTHETIC.SEED, when the study has several

    @property
    def run_dir(self) -> str:
        return self.cfg.OUTPUT_DIR

    @property
    def label(self) -> str:
        data = "" if self.data_seed is None else f" on data {self.data_seed}"
        return f"{self.variant} seed {self.seed}{data}"

    @property
    def pair_key(self) -> tuple[int | None, int]:
        """What pairs this run with another variant's: the same dataset and training seed."""
        return (self.data_seed, self.seed)


def dataset_root(out_dir: str, data_seed: int | None) -> str:
    """``OUT`` for a study on the config's dataset, ``OUT/data<data_seed>`` for one of several."""
    return out_dir if data_seed is None else os.path.join(out_dir, f"data{data_seed}")


def run_dir(out_dir: str, variant: str, seed: int, data_seed: int | None = None) -> str:
    """``OUT/runs/<variant>/seed<seed>`` (``OUT/data<data_seed>/runs/...`` with several datasets)."""
    return os.path.join(dataset_root(out_dir, data_seed), "runs", variant, f"seed{seed}")


def dataset_cfg(base: CfgNode, out_dir: str, data_seed: int | None) -> CfgNode:
    """``base`` for the config's dataset; else generated with ``SYNTHETIC.SEED data_seed`` into
    ``OUT/data<data_seed>/data``."""
    if data_seed is None:
        return base
    data = os.path.join(dataset_root(out_dir, data_seed), "data")
    return cfg_with(base, "SYNTHETIC.SEED", data_seed, "DATA.PATH_TO_DATA_DIR", data, "DATA.PATH_PREFIX", data)


def plan_runs(
    base: CfgNode, variants: list[str], seeds: list[int], out_dir: str, data_seeds: list[int] | None = None
) -> list[Run]:
    """Every (dataset, variant, seed) run, dataset- then variant-major, with its validated config;
    ``data_seeds`` None: the config's own dataset."""
    runs = []
    for data_seed in data_seeds or [None]:
        data_base = dataset_cfg(base, out_dir, data_seed)
        runs += [
            Run(name, seed, variant_cfg(data_base, name, seed, run_dir(out_dir, name, seed, data_seed)), data_seed)
            for name in variants
            for seed in seeds
        ]
    return runs


def tested_sizes(cfg: CfgNode) -> list[int]:
    """The sizes ``engine.test`` evaluates: ``TEST.RESOLUTIONS`` or ``DATA.TEST_CROP_SIZE``."""
    return [int(s) for s in cfg.TEST.RESOLUTIONS] or [int(cfg.DATA.TEST_CROP_SIZE)]


def finished_results(run: Run) -> dict[str, dict[str, Any]] | None:
    """The run's ``{size: metrics}`` when its ``test_results.json`` has every test size, else None."""
    path = os.path.join(run.run_dir, RESULTS_JSON)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            results = json.load(handle).get("results", {})
    except (OSError, ValueError):
        return None
    if not all(str(size) in results for size in tested_sizes(run.cfg)):
        return None
    return {str(size): results[str(size)] for size in tested_sizes(run.cfg)}


def check_stored_config(run: Run) -> None:
    """Raise :class:`StudyConfigMismatch` when the run's folder was made with another config
    (any key but :data:`~resformer_video.config.compare.RUN_PLACE_KEYS`)."""
    path = os.path.join(run.run_dir, STUDY_CFG)
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        diffs = config_differences(handle.read(), run.cfg, RUN_PLACE_KEYS)
    if diffs:
        shown = summarize_differences(diffs)
        raise StudyConfigMismatch(
            f"{run.run_dir} holds a run made with another config ({shown}): rerun with the same "
            "config and overrides, use another --out, or delete that folder"
        )


def epochs_left(run: Run) -> int:
    """Training epochs the run still has to do (from its checkpoints)."""
    done = max((epoch for epoch, _ in checkpoint.list_checkpoints(run.run_dir)), default=0)
    return max(run.cfg.SOLVER.MAX_EPOCH - done, 0)


def train_and_test(run: Run) -> dict[str, Any]:
    """Train the run (continuing from its last checkpoint), test the final checkpoint at every test
    size; write and return its record (``wall_s``, ``start_epoch``)."""
    os.makedirs(run.run_dir, exist_ok=True)
    with open(os.path.join(run.run_dir, STUDY_CFG), "w", encoding="utf-8") as handle:
        handle.write(run.cfg.dump())
    start = time.time()
    summary = launch(run.cfg, train)
    final = checkpoint.get_checkpoint_path(run.run_dir, run.cfg.SOLVER.MAX_EPOCH)
    launch(cfg_with(run.cfg, "TEST.CHECKPOINT_FILE_PATH", final), test)
    record = {
        "variant": run.variant,
        "seed": run.seed,
        "wall_s": round(time.time() - start, 1),
        "start_epoch": int(summary.get("start_epoch", 0)),
    }
    write_json(os.path.join(run.run_dir, RUN_RECORD), record)
    return record


def read_run_record(run: Run) -> dict[str, Any]:
    """The run's ``study_run.json`` ({} when absent, e.g. a run finished by another tool)."""
    path = os.path.join(run.run_dir, RUN_RECORD)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class EtaClock:
    """Time left, from the runs trained in this invocation: seconds per unit of cost, where a run's
    cost is its epochs left times its training GFLOPs per clip (the sum over its training sizes)."""

    def __init__(self, train_gflops: dict[str, float]) -> None:
        self.train_gflops = train_gflops
        self.seconds = 0.0
        self.cost = 0.0

    def run_cost(self, variant: str, epochs: int) -> float:
        return epochs * self.train_gflops[variant]

    def add(self, variant: str, epochs: int, seconds: float) -> None:
        if epochs > 0:
            self.seconds += seconds
            self.cost += self.run_cost(variant, epochs)

    def eta_s(self, remaining: list[Run]) -> float | None:
        """Seconds for ``remaining`` (None before any run was measured)."""
        if self.cost <= 0:
            return None
        left = sum(self.run_cost(run.variant, epochs_left(run)) for run in remaining)
        return self.seconds / self.cost * left


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def execute_runs(runs: list[Run], train_gflops: dict[str, float], log: Log = print) -> None:
    """Run (or skip, when finished) every run in order, printing progress and an ETA.

    ``train_gflops[variant]`` is the variant's forward GFLOPs per clip summed over its training sizes
    (the ETA's cost measure). Check the runs' stored configs first (:func:`check_stored_config`)."""
    clock = EtaClock(train_gflops)
    for k, run in enumerate(runs, 1):
        prefix = f"run {k}/{len(runs)}: {run.label}"
        if finished_results(run) is not None:
            log(f"{prefix}: skipped, finished in {run.run_dir}")
            continue
        log(f"{prefix} -> {run.run_dir}")
        epochs = epochs_left(run)
        record = train_and_test(run)
        clock.add(run.variant, epochs, record["wall_s"])
        remaining = [r for r in runs[k:] if finished_results(r) is None]
        eta = clock.eta_s(remaining)
        eta_text = (
            "nothing left"
            if not remaining
            else f"ETA {_minutes(eta)} for {len(remaining)} run(s) left"
            if eta is not None
            else "no ETA yet"
        )
        log(f"{prefix}: done in {_minutes(record['wall_s'])}; {eta_text}")

"""Python logging (rank 0 only, to stdout and ``OUTPUT_DIR/log.txt``), the run's ``config.yaml``,
JSON-lines stats and TensorBoard."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from resformer_video.utils.atomic import atomic_write
from resformer_video.utils.distributed import is_master_proc

PACKAGE_LOGGER = "resformer_video"
LOG_FORMAT = "[%(asctime)s %(filename)s:%(lineno)d] %(message)s"
STATS_FILE = "stats.jsonl"
RUN_CONFIG = "config.yaml"


def setup_logging(output_dir: str | None = None) -> logging.Logger:
    """Configure the package logger: on rank 0 to stdout and ``output_dir/log.txt``, else silent.

    Calling it again (e.g. test after train in one run) replaces the handlers, never duplicates them.
    """
    logger = logging.getLogger(PACKAGE_LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = False
    if not is_master_proc():
        logger.setLevel(logging.ERROR)
        logger.addHandler(logging.NullHandler())
        return logger
    logger.setLevel(logging.INFO)
    formatter = logging.Formatter(LOG_FORMAT, datefmt="%m/%d %H:%M:%S")
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(formatter)
    logger.addHandler(stream)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        file_handler = logging.FileHandler(os.path.join(output_dir, "log.txt"), mode="a")
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    return logger


def write_run_config(output_dir: str, cfg_text: str) -> str | None:
    """Write the run's full config (``cfg.dump()``) to ``output_dir/config.yaml``, atomically, on
    rank 0 (where PySlowFast and detectron2 users look for it); returns the path (None elsewhere)."""
    if not is_master_proc():
        return None
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, RUN_CONFIG)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(cfg_text)

    atomic_write(path, write)
    return path


def _to_json_value(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    return value


def _before(record: dict[str, Any], epochs_done: int, iters_done: int) -> bool:
    """Whether a stats record (1-based ``epoch``, ``iter``) is from before the resume point."""
    kind, epoch = record.get("_type"), record.get("epoch", 0)
    if kind == "train_iter":
        return (epoch, record.get("iter", 0)) <= (epochs_done + 1, iters_done)
    if kind in ("train_epoch", "val"):
        return epoch <= epochs_done
    return True


class StatsWriter:
    """Writes stats dicts as JSON lines to ``output_dir/stats.jsonl`` and numbers to TensorBoard.

    Only rank 0 writes; elsewhere every call is a no-op.
    """

    def __init__(self, output_dir: str, tensorboard: bool = False) -> None:
        self.enabled = is_master_proc()
        self.path = os.path.join(output_dir, STATS_FILE)
        self.tb_writer = None
        if self.enabled:
            os.makedirs(output_dir, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.tb_writer = SummaryWriter(log_dir=os.path.join(output_dir, "tensorboard"))

    def write(self, stats: dict[str, Any], tb_prefix: str | None = None, tb_step: int | None = None) -> None:
        """Append ``stats`` as one JSON line; with ``tb_prefix``, its numbers as scalars at ``tb_step``."""
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({k: _to_json_value(v) for k, v in stats.items()}) + "\n")
        if self.tb_writer is not None and tb_prefix is not None:
            for key, value in stats.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.tb_writer.add_scalar(f"{tb_prefix}/{key}", value, tb_step)

    def drop_after(self, epochs_done: int, iters_done: int = 0) -> int:
        """Remove the training records past a resume point (``epochs_done`` finished epochs and
        ``iters_done`` iterations of the next), which a killed run wrote before its last checkpoint
        and the resumed run writes again; returns how many were removed. Other records stay."""
        if not self.enabled or not os.path.isfile(self.path):
            return 0
        with open(self.path, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        kept = [line for line in lines if _before(json.loads(line), epochs_done, iters_done)]
        if len(kept) < len(lines):

            def write(tmp: str) -> None:
                with open(tmp, "w", encoding="utf-8") as f:
                    f.writelines(kept)

            atomic_write(self.path, write)
        return len(lines) - len(kept)

    def close(self) -> None:
        if self.tb_writer is not None:
            self.tb_writer.close()
            self.tb_writer = None

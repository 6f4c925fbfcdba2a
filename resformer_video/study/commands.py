"""What ``tools/study.py`` and ``tools/demo.py`` do once their arguments are parsed: load the config,
run the study (or the demo) and return the tool's exit code: 0 done; 2 a bad config, a folder
holding runs of another config or one another run holds (one ``error: ...`` line); SIGTERM /
Ctrl-C's code (143 / 130) when training stopped after writing a checkpoint (one ``stopped:`` line).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

import torch

from resformer_video.config import ConfigError, load_config
from resformer_video.engine.interrupt import TrainingInterrupted
from resformer_video.study.demo import run_demo
from resformer_video.study.pipeline import run_study
from resformer_video.study.runs import StudyConfigMismatch
from resformer_video.utils.run_lock import RunLockError

STUDY_ERRORS = (ConfigError, FileNotFoundError, StudyConfigMismatch, RunLockError)


def exit_code_of(job: Callable[[], None]) -> int:
    """Run ``job``; its exit code, with a user error or a stopped run reported as one line."""
    try:
        job()
    except STUDY_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:  # SIGTERM / Ctrl-C: the run's checkpoint is written
        print(f"stopped: {err}", file=sys.stderr)
        return err.exit_code
    return 0


def study_command(
    args: argparse.Namespace, variants: list[str], seeds: list[int], data_seeds: list[int] | None, command: str
) -> int:
    """``tools/study.py``: :func:`~resformer_video.study.pipeline.run_study` on the config of ``args``
    into ``args.out`` (default ``OUTPUT_DIR``); ``command`` is recorded in the report."""

    def job() -> None:
        cfg = load_config(args.cfg_file, args.opts)
        run_study(
            cfg,
            variants,
            seeds,
            args.out or cfg.OUTPUT_DIR,
            command=command,
            data_seeds=data_seeds,
            report_only=args.report_only,
        )

    return exit_code_of(job)


def demo_command(args: argparse.Namespace, default_cfg: str, command: str) -> int:
    """``tools/demo.py``: :func:`~resformer_video.study.demo.run_demo` on ``args.threads`` threads with
    the config of ``args`` (``default_cfg`` without ``--cfg``), its table printed."""

    def job() -> None:
        torch.set_num_threads(args.threads)
        cfg = load_config(args.cfg_file or default_cfg, args.opts)
        print("\n" + run_demo(cfg, command, args.out or cfg.OUTPUT_DIR))

    return exit_code_of(job)

"""The job behind ``tools/run_net.py`` and ``tools/demo.py``: train and/or test as the config says."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from yacs.config import CfgNode

from resformer_video.config import ConfigError, check_pretrained, load_config
from resformer_video.config.foreign import NodeLaunch
from resformer_video.config.loader import MultiNodeError
from resformer_video.datasets import DatasetFailureError, DatasetListError, DecoderUnavailableError
from resformer_video.engine.evaluate import test
from resformer_video.engine.interrupt import TrainingInterrupted
from resformer_video.engine.recipe import dry_run
from resformer_video.engine.train import train
from resformer_video.models.checkpoint_filter import CheckpointError
from resformer_video.utils.atomic import describe_os_error
from resformer_video.utils.distributed import USER_ERROR_EXIT, SpawnedProcessError, launch
from resformer_video.utils.run_lock import RunLockError, output_dir_lock

logger = logging.getLogger(__name__)

# What a user's input (config, lists, videos, weights, an output folder in use) can raise: reported
# as one line, no traceback.
USER_ERRORS = (
    ConfigError,
    FileNotFoundError,
    DatasetListError,
    DatasetFailureError,
    DecoderUnavailableError,
    CheckpointError,
    RunLockError,
)


def run(cfg: CfgNode) -> dict[str, Any]:
    """``train(cfg)`` if ``TRAIN.ENABLE``, then ``test(cfg)`` if ``TEST.ENABLE``; both results.
    ``OUTPUT_DIR``'s lock is held from before training until after testing."""
    out: dict[str, Any] = {}
    with output_dir_lock(cfg.OUTPUT_DIR):
        if cfg.TRAIN.ENABLE:
            out["train"] = train(cfg)
        if cfg.TEST.ENABLE:
            out["test"] = test(cfg)
    return out


def error_line(err: BaseException) -> str:
    """The one line a tool prints for an error it reports instead of a traceback: an OSError as
    ``PATH: cause``, anything else as its message."""
    return describe_os_error(err) if isinstance(err, OSError) and err.filename else str(err)


def load_run_config(args: argparse.Namespace) -> CfgNode:
    """The config of ``tools/run_net.py``'s arguments; PySlowFast's launch flags, when they ask for
    several nodes, replace the config's ``NUM_SHARDS`` / ``SHARD_ID`` in the torchrun line.

    Raises:
        MultiNodeError: a multi-node launch (the torchrun line to run on this node instead).
    """
    flags = (args.num_shards, args.shard_id, args.init_method)
    try:
        cfg = load_config(args.cfg_file, args.opts)
    except MultiNodeError as err:
        raise err.with_flags(*flags) from None
    node = NodeLaunch().merged(*flags)
    if node.multi_node:
        raise MultiNodeError(node, cfg.NUM_GPUS, args.cfg_file, list(args.opts or []))
    if args.init_method:
        logger.warning("--init_method %s: one node, the processes meet on a free local port", args.init_method)
    return cfg


def run_net_command(args: argparse.Namespace) -> int:
    """``tools/run_net.py``: print the recipe (``--dry-run``), or train and/or test in the processes
    ``NUM_GPUS`` asks for. User errors (config, lists, videos, weights, a busy ``OUTPUT_DIR``) are one
    ``error:`` line and exit code 2; a failed write one ``error: PATH: cause`` line and exit code 1; a
    run stopped by SIGTERM / Ctrl-C (checkpoint written) one ``stopped:`` line and 143 / 130."""
    try:
        cfg = load_run_config(args)
        if args.dry_run:
            print(dry_run(cfg))
        check_pretrained(cfg)
        if not args.dry_run:
            launch(cfg, run, USER_ERRORS)
    except USER_ERRORS as err:  # bad config, list, weights or videos: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SpawnedProcessError as err:  # a spawned process printed its error (or traceback) above
        if err.exit_code != USER_ERROR_EXIT:
            print(f"error: {err}", file=sys.stderr)
        return 2 if err.exit_code == USER_ERROR_EXIT else 1
    except TrainingInterrupted as err:  # SIGTERM / Ctrl-C: checkpoint written, rerun continues
        print(f"stopped: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except OSError as err:  # a write failed: read-only or full disk
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 1
    return 0

"""The job behind ``tools/run_net.py`` and ``tools/demo.py``: train and/or test as the config says."""

from __future__ import annotations

from typing import Any, Dict

from yacs.config import CfgNode

from resformer_video.config import ConfigError
from resformer_video.datasets import DatasetFailureError, DatasetListError, DecoderUnavailableError
from resformer_video.engine.evaluate import test
from resformer_video.engine.train import train
from resformer_video.models.checkpoint_filter import CheckpointError
from resformer_video.utils.atomic import describe_os_error
from resformer_video.utils.run_lock import RunLockError, output_dir_lock

# What a user's input (config, lists, videos, weights, an output folder in use) can raise: reported
# as one line, no traceback.
USER_ERRORS = (ConfigError, FileNotFoundError, DatasetListError, DatasetFailureError,
               DecoderUnavailableError, CheckpointError, RunLockError)


def run(cfg: CfgNode) -> Dict[str, Any]:
    """``train(cfg)`` if ``TRAIN.ENABLE``, then ``test(cfg)`` if ``TEST.ENABLE``; both results.
    ``OUTPUT_DIR``'s lock is held from before training until after testing."""
    out: Dict[str, Any] = {}
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

"""The job behind ``tools/run_net.py`` and ``tools/demo.py``: train and/or test as the config says."""

from __future__ import annotations

from typing import Any, Dict

from yacs.config import CfgNode

from resformer_video.config import ConfigError
from resformer_video.datasets import DatasetFailureError, DatasetListError, DecoderUnavailableError
from resformer_video.engine.evaluate import test
from resformer_video.engine.train import train
from resformer_video.models.checkpoint_filter import CheckpointError

# What a user's input (config, lists, videos, weights) can raise: reported as one line, no traceback.
USER_ERRORS = (ConfigError, FileNotFoundError, DatasetListError, DatasetFailureError,
               DecoderUnavailableError, CheckpointError)


def run(cfg: CfgNode) -> Dict[str, Any]:
    """``train(cfg)`` if ``TRAIN.ENABLE``, then ``test(cfg)`` if ``TEST.ENABLE``; both results."""
    out: Dict[str, Any] = {}
    if cfg.TRAIN.ENABLE:
        out["train"] = train(cfg)
    if cfg.TEST.ENABLE:
        out["test"] = test(cfg)
    return out

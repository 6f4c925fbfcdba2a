"""Training and evaluation: the multi-resolution loss, optimiser and schedule, train and test loops."""

from resformer_video.engine.evaluate import test
from resformer_video.engine.runner import run
from resformer_video.engine.train import train

__all__ = ["run", "test", "train"]

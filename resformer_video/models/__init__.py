"""Models: the VideoResFormer, its builder, weight loading and FLOP counting."""

from resformer_video.models.build import ARCH_SPECS, build_model
from resformer_video.models.checkpoint_filter import (CheckpointError, LoadReport, TrainedWeights,
                                                      checkpoint_filter_fn, is_own_checkpoint,
                                                      load_pretrained, load_trained_weights,
                                                      read_checkpoint)
from resformer_video.models.flops import count_flops, count_parameters
from resformer_video.models.resformer import Block, VideoResFormer

__all__ = ["ARCH_SPECS", "Block", "CheckpointError", "LoadReport", "VideoResFormer", "build_model",
           "checkpoint_filter_fn", "count_flops", "count_parameters",
           "is_own_checkpoint", "load_pretrained", "load_trained_weights", "read_checkpoint",
           "TrainedWeights"]

"""Models: the VideoResFormer, its builder, weight loading and FLOP counting."""

from resformer_video.models.build import (ARCH_SPECS, build_model, build_model_and_report,
                                          load_config_pretrained, pretrained_path)
from resformer_video.models.checkpoint_filter import (CheckpointError, LoadReport, TrainedWeights,
                                                      checkpoint_filter_fn, is_own_checkpoint,
                                                      load_pretrained, load_trained_weights,
                                                      read_checkpoint)
from resformer_video.models.flops import count_flops, count_parameters
from resformer_video.models.resformer import Block, VideoResFormer

__all__ = ["ARCH_SPECS", "Block", "CheckpointError", "LoadReport", "VideoResFormer", "build_model",
           "build_model_and_report",
           "checkpoint_filter_fn", "count_flops", "count_parameters", "load_config_pretrained",
           "pretrained_path",
           "is_own_checkpoint", "load_pretrained", "load_trained_weights", "read_checkpoint",
           "TrainedWeights"]

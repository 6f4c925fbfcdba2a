"""Models: the VideoResFormer, its builder, weight conversion and loading, and FLOP counting."""

from resformer_video.errors import CheckpointError
from resformer_video.models.build import (
    ARCH_SPECS,
    build_model,
    build_model_and_report,
    load_config_pretrained,
    pretrained_path,
)
from resformer_video.models.checkpoint_filter import (
    LoadReport,
    TrainedWeights,
    checkpoint_filter_fn,
    load_pretrained,
    load_trained_weights,
)
from resformer_video.models.flops import count_flops, count_parameters
from resformer_video.models.resformer import Block, VideoResFormer
from resformer_video.utils.weights import checkpoint_kind, is_own_checkpoint, read_checkpoint

__all__ = [
    "ARCH_SPECS",
    "Block",
    "CheckpointError",
    "LoadReport",
    "VideoResFormer",
    "build_model",
    "build_model_and_report",
    "checkpoint_filter_fn",
    "checkpoint_kind",
    "count_flops",
    "count_parameters",
    "load_config_pretrained",
    "pretrained_path",
    "is_own_checkpoint",
    "load_pretrained",
    "load_trained_weights",
    "read_checkpoint",
    "TrainedWeights",
]

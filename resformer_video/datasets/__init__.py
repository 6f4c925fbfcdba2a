"""Video data pipeline: lists, decoding, temporal sampling, transforms, datasets and loaders."""

from resformer_video.datasets.decoders import (
    BACKENDS,
    DecoderUnavailableError,
    VideoDecodeError,
    VideoReader,
    open_video,
)
from resformer_video.datasets.kinetics import DatasetFailureError, VideoDataset, collate_clips
from resformer_video.datasets.lists import DatasetListError, load_split, read_class_names, read_video_list
from resformer_video.datasets.loader import ShardSampler, build_dataset, build_loader
from resformer_video.datasets.sampling import sample_clip_indices
from resformer_video.datasets.synthetic import MOTIONS, ensure_synthetic_dataset, make_synthetic_dataset
from resformer_video.datasets.transforms import (
    MultiResolutionTransform,
    TestTransform,
    TrainTransform,
    build_test_transform,
    build_train_transform,
)

__all__ = [
    "BACKENDS",
    "DatasetFailureError",
    "DatasetListError",
    "DecoderUnavailableError",
    "MOTIONS",
    "MultiResolutionTransform",
    "ShardSampler",
    "TestTransform",
    "TrainTransform",
    "VideoDataset",
    "VideoDecodeError",
    "VideoReader",
    "build_dataset",
    "build_loader",
    "build_test_transform",
    "build_train_transform",
    "collate_clips",
    "load_split",
    "ensure_synthetic_dataset",
    "make_synthetic_dataset",
    "open_video",
    "read_class_names",
    "read_video_list",
    "sample_clip_indices",
]

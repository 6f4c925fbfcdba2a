"""Video classification dataset (Kinetics lists or class folders) for train, val and test.

Each item is a dict (see docs/ARCHITECTURE.md "Data"):
``clips`` list of float ``(3, T, H_i, W_i)`` (train: one per ``DATA.TRAIN_CROP_SIZES``, largest
first; val/test: one), ``sizes`` (their crop sizes), ``label``, ``video_idx``, ``view_idx``,
``valid`` and ``failed`` (paths).

- ``train``: one random clip per video; a video that fails to decode is replaced by a random other
  one (at most ``DATA.MAX_DECODE_RETRIES`` times) and listed in ``failed``: the training loop
  counts and reports it (once, whichever worker met it); here it only feeds the failure-fraction
  stop and a debug line with the decoder's error.
  With ``DATA.NUM_REPEATED_SAMPLES R > 1`` an item is a list of ``R`` such dicts from one decode of the
  video (``R`` clips at different temporal offsets, each augmented independently; the first
  carries ``failed``); :func:`collate_clips` flattens them.
- ``val``: the centre clip and centre crop of every video at ``DATA.TEST_CROP_SIZE``.
- ``test``: the ``TEST.SPLIT`` list (``test.csv`` by default) with
  ``TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS`` views per video; item
  ``video_idx * num_views + view_idx`` with ``view_idx = temporal_idx * NUM_SPATIAL_CROPS + spatial_idx``.
  A failed val/test video gives ``valid=False``, a zero clip and ``failed=[path]``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from yacs.config import CfgNode

from resformer_video.datasets.decoders import VideoDecodeError, VideoReader, decoder_chain, import_backend, read_video
from resformer_video.datasets.lists import SPLITS, VideoList, load_split
from resformer_video.datasets.sampling import sample_clip_indices, sample_repeated_clip_indices
from resformer_video.datasets.transforms import build_test_transform, build_train_transform, spatial_crop_indices
from resformer_video.errors import DatasetFailureError  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

MIN_TRIES_BEFORE_FRACTION_CHECK = 20
PATH_CHECK_SAMPLE = 32


def split_videos(cfg: CfgNode, split: str) -> VideoList:
    """The list a ``split`` dataset reads: ``TEST.SPLIT``'s for ``test`` (multi-view testing of
    any list), the split's own otherwise, with the ``DATA.*`` layout, prefix and class names.

    Raises:
        DatasetListError: a missing or malformed list (names ``file:line``).
    """
    list_split = cfg.TEST.SPLIT if split == "test" else split
    return load_split(
        cfg.DATA.PATH_TO_DATA_DIR,
        list_split,
        cfg.DATA.LAYOUT,
        cfg.DATA.PATH_PREFIX,
        cfg.DATA.CLASS_NAMES_FILE,
        cfg.MODEL.NUM_CLASSES,
        cfg.DATA.FOLDER_SPLIT,
    )


def config_decoders(cfg: CfgNode) -> tuple[str, ...]:
    """``DATA.DECODER`` then ``DATA.DECODER_FALLBACK``: the backends every reader tries in order."""
    return decoder_chain(cfg.DATA.DECODER, cfg.DATA.DECODER_FALLBACK)


class VideoDataset(Dataset):
    """Videos of one split of ``cfg.DATA.PATH_TO_DATA_DIR`` decoded, sampled and transformed.

    Attributes:
        split: ``train``, ``val`` or ``test``.
        paths, labels: the split's video paths (with ``DATA.PATH_PREFIX``) and integer labels.
        class_names: ordered class names (from the class-names file, folder names, or ``"0"``...).
        num_videos: ``len(paths)``.
        num_views: views per video (1 for train and val; ``NUM_ENSEMBLE_VIEWS * NUM_SPATIAL_CROPS``
            for test); ``len(dataset) == num_videos * num_views``.
    """

    def __init__(self, cfg, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        videos = split_videos(cfg, split)
        self.split = split
        self.paths, self.labels, self.class_names = videos.paths, videos.labels, videos.class_names
        self.num_videos = len(self.paths)
        self.backends = config_decoders(cfg)
        for backend in self.backends:  # a missing decoder package fails here, not mid-epoch
            import_backend(backend)
        self.num_frames = cfg.DATA.NUM_FRAMES
        self.sampling_rate = cfg.DATA.SAMPLING_RATE
        self.target_fps = cfg.DATA.TARGET_FPS
        self.max_retries = cfg.DATA.MAX_DECODE_RETRIES
        self.max_failure_fraction = cfg.DATA.MAX_FAILURE_FRACTION
        self.num_temporal = cfg.TEST.NUM_ENSEMBLE_VIEWS if split == "test" else 1
        self.num_spatial = cfg.TEST.NUM_SPATIAL_CROPS if split == "test" else 1
        self.num_views = self.num_temporal * self.num_spatial
        self.num_repeats = cfg.DATA.NUM_REPEATED_SAMPLES if split == "train" else 1
        # Clip placement rule (datasets/sampling.py): DATA.TRAIN_SAMPLING for training clips,
        # TEST.PROTOCOL for val/test clips.
        self.protocol = cfg.TEST.PROTOCOL if split != "train" else cfg.DATA.TRAIN_SAMPLING
        self._cfg = cfg
        self.train_transform = build_train_transform(cfg) if split == "train" else None
        self.test_transform = build_test_transform(cfg) if split != "train" else None
        self._tried = 0
        self._failures = 0
        self._failed_paths: set = set()
        self._cache: tuple[Any, torch.Tensor | None] = (None, None)
        self._check_paths_exist()

    # ------------------------------------------------------------------ bookkeeping
    def __len__(self) -> int:
        return self.num_videos * self.num_views

    def _check_paths_exist(self) -> None:
        """Fail at start-up when most of a sample of the listed files does not exist."""
        rng = np.random.default_rng(0)
        sample = rng.choice(self.num_videos, min(self.num_videos, PATH_CHECK_SAMPLE), replace=False)
        missing = [self.paths[i] for i in sample if not os.path.isfile(self.paths[i])]
        if len(missing) > self.max_failure_fraction * len(sample):
            raise DatasetFailureError(
                f"{self.split}: {len(missing)} of {len(sample)} sampled videos do not exist, e.g. "
                f"{missing[0]}; check DATA.PATH_PREFIX ({self._cfg.DATA.PATH_PREFIX!r}) and "
                f"DATA.PATH_TO_DATA_DIR ({self._cfg.DATA.PATH_TO_DATA_DIR!r})"
            )

    def _log_once(self, path: str, err: Exception, level: int = logging.WARNING) -> None:
        """Log a failing video the first time it fails in this process."""
        if path not in self._failed_paths:
            self._failed_paths.add(path)
            logger.log(level, "%s: unreadable video skipped: %s", self.split, err)

    def _record_failure(self, path: str, err: Exception) -> None:
        """Count a failed training attempt for the failure-fraction stop, and stop when failures
        dominate the attempts. The report (warning, counts) is the training loop's."""
        self._failures += 1
        self._log_once(path, err, logging.DEBUG)
        if self._tried >= MIN_TRIES_BEFORE_FRACTION_CHECK and self._failures > self.max_failure_fraction * self._tried:
            raise DatasetFailureError(
                f"{self.split}: {self._failures} of the {self._tried} videos tried failed to decode "
                f"(> DATA.MAX_FAILURE_FRACTION={self.max_failure_fraction}), last: {err}"
            )

    # ------------------------------------------------------------------ decoding
    def _decode(self, path: str, clip_idx: int, num_clips: int) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)`` of one clip. ``clip_idx=-1``: random position (training).
        The last deterministic clip is cached so the spatial crops of one test clip decode once."""
        key = (path, clip_idx, num_clips)
        if clip_idx >= 0 and self._cache[0] == key:
            return self._cache[1]

        def read_clip(reader: VideoReader) -> torch.Tensor:
            indices = sample_clip_indices(
                reader.num_frames,
                reader.fps,
                self.num_frames,
                self.sampling_rate,
                self.target_fps,
                clip_idx,
                num_clips,
                protocol=self.protocol,
                timing=reader.stream_timing,
            )
            return reader.get_frames(indices)

        frames = read_video(path, self.backends, read_clip)
        if clip_idx >= 0:
            self._cache = (key, frames)
        return frames

    def _decode_repeated(self, path: str) -> list[torch.Tensor]:
        """``num_repeats`` random training clips, uint8 ``(T, H, W, 3)`` each, from one decode call
        (the union of their frames, in order)."""

        def read_clips(reader: VideoReader) -> list[torch.Tensor]:
            indices = sample_repeated_clip_indices(
                reader.num_frames,
                reader.fps,
                self.num_frames,
                self.sampling_rate,
                self.target_fps,
                self.num_repeats,
                protocol=self.protocol,
                timing=reader.stream_timing,
            )
            unique, inverse = np.unique(indices, return_inverse=True)
            frames = reader.get_frames(unique)
            return [frames[torch.from_numpy(row)] for row in inverse.reshape(indices.shape)]

        return read_video(path, self.backends, read_clips)

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> dict[str, Any] | list[dict[str, Any]]:
        if self.split == "train":
            return self._train_item(index)
        return self._test_item(index)

    def _train_item(self, index: int) -> dict[str, Any] | list[dict[str, Any]]:
        failed: list[str] = []
        video_idx = index
        for _ in range(self.max_retries + 1):
            path = self.paths[video_idx]
            self._tried += 1
            try:
                if self.num_repeats == 1:
                    return self._item(self.train_transform(self._decode(path, -1, 1)), video_idx, 0, True, failed)
                clips = self._decode_repeated(path)
            except VideoDecodeError as err:
                failed.append(path)
                self._record_failure(path, err)
                video_idx = int(torch.randint(self.num_videos, ()).item())
                continue
            return [
                self._item(self.train_transform(clip), video_idx, 0, True, failed if i == 0 else [])
                for i, clip in enumerate(clips)
            ]
        raise DatasetFailureError(
            f"train: video {index} and {self.max_retries} random replacements all failed to decode "
            f"(DATA.MAX_DECODE_RETRIES={self.max_retries}); failed: {', '.join(failed[:3])}"
        )

    def _test_item(self, index: int) -> dict[str, Any]:
        video_idx, view_idx = divmod(index, self.num_views)
        temporal_idx, spatial_idx = divmod(view_idx, self.num_spatial)
        spatial = spatial_crop_indices(self.num_spatial)[spatial_idx]
        path = self.paths[video_idx]
        self._tried += 1
        try:
            frames = self._decode(path, temporal_idx, self.num_temporal)
        except VideoDecodeError as err:
            self._log_once(path, err)
            size = self.test_transform.size
            zero = torch.zeros(3, self.num_frames, size, size)
            return self._item([zero], video_idx, view_idx, False, [path])
        return self._item([self.test_transform(frames, spatial)], video_idx, view_idx, True, [])

    def _item(
        self, clips: list[torch.Tensor], video_idx: int, view_idx: int, valid: bool, failed: list[str]
    ) -> dict[str, Any]:
        sizes = self.train_transform.sizes if self.split == "train" else [self.test_transform.size]
        return {
            "clips": clips,
            "sizes": sizes,
            "label": self.labels[video_idx],
            "video_idx": video_idx,
            "view_idx": view_idx,
            "valid": valid,
            "failed": failed,
        }


def collate_clips(samples: list[dict[str, Any] | list[dict[str, Any]]]) -> dict[str, Any]:
    """Stack items into a batch: ``clips`` a list (largest first) of ``(B, 3, T, H_i, W_i)``;
    ``sizes`` their crop sizes (ints, the same for every item); ``label``, ``video_idx``,
    ``view_idx`` ``(B,)`` long; ``valid`` ``(B,)`` bool; ``failed`` a list of B lists of paths.
    Items that are lists (repeated samples) are flattened first."""
    samples = [s for item in samples for s in (item if isinstance(item, list) else [item])]
    num_res = len(samples[0]["clips"])
    clips = [torch.stack([s["clips"][r] for s in samples]) for r in range(num_res)]
    batch: dict[str, Any] = {"clips": clips, "sizes": list(samples[0]["sizes"])}
    for key in ("label", "video_idx", "view_idx"):
        batch[key] = torch.tensor([s[key] for s in samples], dtype=torch.long)
    batch["valid"] = torch.tensor([s["valid"] for s in samples], dtype=torch.bool)
    batch["failed"] = [list(s["failed"]) for s in samples]
    return batch

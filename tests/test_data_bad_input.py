"""Missing, empty, truncated and undecodable videos: skipped and counted in training, reported in
testing, and a dataset of only bad files fails fast with a clear message."""

import os
import shutil

import numpy as np
import pytest
import torch

from resformer_video.datasets import DatasetFailureError, build_dataset, build_loader

from conftest import make_cfg

BAD = ("empty.mp4", "truncated.mp4", "noise.mp4", "missing.mp4")


def _write_bad_files(folder, good_video):
    (folder / "empty.mp4").write_bytes(b"")
    data = good_video.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 30000, dtype=np.uint8).tobytes())


@pytest.fixture
def mixed_dir(tmp_path, synthetic_data_dir):
    """The synthetic train/test lists plus the four kinds of bad file (label 0)."""
    shutil.copytree(synthetic_data_dir, tmp_path, dirs_exist_ok=True)
    _write_bad_files(tmp_path, synthetic_data_dir / "videos" / "moving_left" / "moving_left_000.mp4")
    for split in ("train", "test"):
        with open(tmp_path / f"{split}.csv", "a") as handle:
            handle.writelines(f"{name} 0\n" for name in BAD)
    return tmp_path


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_training_replaces_and_counts_bad_videos(mixed_dir, backend):
    torch.manual_seed(0)
    cfg = make_cfg(mixed_dir, DATA__DECODER=backend)
    dataset = build_dataset(cfg, "train")
    bad_paths = {os.path.join(str(mixed_dir), name) for name in BAD}
    for index, path in enumerate(dataset.paths):
        item = dataset[index]
        if path in bad_paths:
            assert item["failed"][0] == path
            assert set(item["failed"]) <= bad_paths
            assert dataset.paths[item["video_idx"]] not in bad_paths  # a good replacement
        else:
            assert item["failed"] == [] and item["video_idx"] == index
        assert item["valid"] and torch.isfinite(item["clips"][0]).all()
    assert bad_paths <= dataset._failed_paths


def test_training_loader_with_workers_never_crashes(mixed_dir):
    cfg = make_cfg(mixed_dir, DATA_LOADER__NUM_WORKERS=2, TRAIN__BATCH_SIZE=5)
    loader = build_loader(cfg, "train")
    loader.sampler.set_epoch(1)
    failed, seen = [], 0
    for batch in loader:
        assert len(batch["failed"]) == batch["label"].shape[0] == batch["clips"][1].shape[0]
        failed += [p for paths in batch["failed"] for p in paths]
        seen += batch["label"].shape[0]
    assert seen == 20  # 16 good + 4 bad, full batches of 5
    assert {os.path.basename(p) for p in failed} == set(BAD)


def test_testing_reports_bad_videos(mixed_dir):
    cfg = make_cfg(mixed_dir, TEST__NUM_SPATIAL_CROPS=3)
    loader = build_loader(cfg, "test")
    invalid = {}
    for batch in loader:
        for k in range(batch["label"].shape[0]):
            clip = batch["clips"][0][k]
            if batch["valid"][k]:
                assert batch["failed"][k] == [] and clip.abs().sum() > 0
            else:
                assert clip.shape == (3, 4, 64, 64) and clip.abs().sum() == 0
                invalid.setdefault(os.path.basename(batch["failed"][k][0]), set()).add(int(batch["view_idx"][k]))
    assert invalid == {name: {0, 1, 2} for name in BAD}


def test_only_bad_files_fail_fast_with_a_clear_message(tmp_path, synthetic_data_dir):
    _write_bad_files(tmp_path, synthetic_data_dir / "videos" / "moving_left" / "moving_left_000.mp4")
    (tmp_path / "train.csv").write_text("".join(f"{n} {i}\n" for i, n in enumerate(BAD[:3])))
    dataset = build_dataset(make_cfg(tmp_path, DATA__MAX_DECODE_RETRIES=3), "train")
    with pytest.raises(DatasetFailureError, match="DATA.MAX_DECODE_RETRIES=3"):
        dataset[0]


def test_wrong_path_prefix_fails_at_construction(synthetic_data_dir):
    cfg = make_cfg(synthetic_data_dir, DATA__PATH_PREFIX="/nonexistent/prefix")
    with pytest.raises(DatasetFailureError, match="16 of 16 sampled videos do not exist.*DATA.PATH_PREFIX"):
        build_dataset(cfg, "train")


def test_mostly_bad_dataset_stops_at_the_failure_fraction(tmp_path, synthetic_data_dir):
    """70% undecodable (but existing) files: training stops after 20 tries instead of looping."""
    _write_bad_files(tmp_path, synthetic_data_dir / "videos" / "moving_left" / "moving_left_000.mp4")
    good = synthetic_data_dir / "videos" / "moving_up" / "moving_up_000.mp4"
    lines = [f"{good} 0\n"] * 6 + [f"{BAD[k % 3]} 0\n" for k in range(14)]
    (tmp_path / "train.csv").write_text("".join(lines))
    torch.manual_seed(0)
    dataset = build_dataset(make_cfg(tmp_path, DATA__MAX_DECODE_RETRIES=50), "train")
    with pytest.raises(DatasetFailureError, match="MAX_FAILURE_FRACTION"):
        for index in range(len(dataset)):
            dataset[index]

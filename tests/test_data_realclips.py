"""Real H.264 clips (176x144 to 640x480, 12 to 30 fps) through the full train and test pipeline."""

import pytest
import torch

from resformer_video.datasets import build_loader, open_video

from conftest import LOADABLE_BACKENDS, make_cfg


@pytest.fixture
def realclips_list(realclips_dir, tmp_path):
    """A temporary list of every real clip (absolute paths), one class per clip."""
    clips = sorted(realclips_dir.glob("*.mp4"))
    lines = "".join(f"{path} {label}\n" for label, path in enumerate(clips))
    for split in ("train", "test"):
        (tmp_path / f"{split}.csv").write_text(lines)
    return tmp_path, len(clips)


def test_realclips_train_pipeline(realclips_list):
    data_dir, count = realclips_list
    torch.manual_seed(0)
    cfg = make_cfg(
        data_dir,
        DATA__PATH_PREFIX="",
        MODEL__NUM_CLASSES=count,
        DATA__NUM_FRAMES=8,
        DATA__SAMPLING_RATE=8,
        DATA__TRAIN_CROP_SIZES=[112, 80, 64],
        DATA__TRAIN_JITTER_SCALES=[128, 160],
        AUG__RAND_AUGMENT=True,
        TRAIN__BATCH_SIZE=count,
    )
    batch = next(iter(build_loader(cfg, "train")))
    assert [tuple(c.shape) for c in batch["clips"]] == [(count, 3, 8, s, s) for s in (112, 80, 64)]
    assert batch["failed"] == [[] for _ in range(count)] and bool(batch["valid"].all())
    for clip in batch["clips"]:
        assert torch.isfinite(clip).all() and clip.std() > 0.1


def test_realclips_test_pipeline(realclips_list):
    data_dir, count = realclips_list
    cfg = make_cfg(
        data_dir,
        DATA__PATH_PREFIX="",
        MODEL__NUM_CLASSES=count,
        DATA__NUM_FRAMES=8,
        DATA__SAMPLING_RATE=8,
        DATA__TEST_CROP_SIZE=96,
        TEST__NUM_ENSEMBLE_VIEWS=2,
        TEST__NUM_SPATIAL_CROPS=3,
        TEST__BATCH_SIZE=6,
    )
    loader = build_loader(cfg, "test")
    seen = []
    for batch in loader:
        assert batch["clips"][0].shape[1:] == (3, 8, 96, 96)
        assert bool(batch["valid"].all()) and torch.isfinite(batch["clips"][0]).all()
        seen += list(zip(batch["video_idx"].tolist(), batch["view_idx"].tolist()))
        assert (batch["label"] == batch["video_idx"]).all()
    assert seen == [(v, k) for v in range(count) for k in range(6)]


def test_realclips_frames_and_metadata_agree_across_backends(realclips_dir):
    for path in sorted(realclips_dir.glob("*.mp4")):
        meta, frames = [], []
        for backend in LOADABLE_BACKENDS:
            with open_video(str(path), backend) as reader:
                frames.append(reader.get_frames([3, reader.num_frames // 2, 0]).float())
                meta.append((reader.num_frames, round(reader.fps, 1), tuple(frames[-1].shape)))
        assert len({m[2] for m in meta}) == 1, (path.name, meta)
        for other in frames[1:]:  # same frames whatever the backend (colour-conversion tolerance)
            assert (other - frames[0]).abs().mean() < 3.0, path.name
        assert max(m[0] for m in meta) - min(m[0] for m in meta) <= 1, (path.name, meta)
        assert max(m[1] for m in meta) - min(m[1] for m in meta) <= 0.5, (path.name, meta)

"""build_loader: samplers with set_epoch, sharding per rank, deterministic batches, collate."""

import pytest
import torch

from resformer_video.datasets import ShardSampler, build_loader, collate_clips
from resformer_video.datasets import loader as loader_module


def _order(loader):
    return [i for batch in loader for i in batch["video_idx"].tolist()]


@pytest.mark.slow
def test_train_order_is_seeded_and_changes_with_epoch(data_cfg):
    loader = build_loader(data_cfg, "train")
    assert len(loader) == 4  # 16 videos, batches of 4
    loader.sampler.set_epoch(0)
    epoch0 = _order(loader)
    assert sorted(epoch0) == list(range(16))
    loader.sampler.set_epoch(1)
    epoch1 = _order(loader)
    assert epoch1 != epoch0 and sorted(epoch1) == list(range(16))
    again = build_loader(data_cfg, "train")
    again.sampler.set_epoch(1)
    assert _order(again) == epoch1


def test_same_seed_gives_the_same_clips(data_cfg):
    batches = []
    for _ in range(2):
        torch.manual_seed(data_cfg.RNG_SEED)
        loader = build_loader(data_cfg, "train")
        loader.sampler.set_epoch(0)
        batches.append(next(iter(loader)))
    for a, b in zip(batches[0]["clips"], batches[1]["clips"]):
        torch.testing.assert_close(a, b)


def test_val_is_one_centre_view_per_video(data_cfg):
    loader = build_loader(data_cfg, "val")
    dataset = loader.dataset
    assert dataset.num_views == 1 and len(dataset) == dataset.num_videos == 4
    batch = next(iter(loader))
    assert len(batch["clips"]) == 1 and batch["clips"][0].shape == (4, 3, 4, 64, 64)
    assert batch["view_idx"].tolist() == [0, 0, 0, 0] and batch["video_idx"].tolist() == [0, 1, 2, 3]
    assert batch["valid"].dtype == torch.bool and batch["label"].dtype == torch.long


def test_test_views_enumerate_crops_times_clips(cfg_factory):
    cfg = cfg_factory(TEST__NUM_ENSEMBLE_VIEWS=2, TEST__NUM_SPATIAL_CROPS=3, TEST__BATCH_SIZE=6)
    dataset = build_loader(cfg, "test").dataset
    assert dataset.num_views == 6 and len(dataset) == 24
    items = [dataset[i] for i in range(6, 12)]  # the second video
    assert [it["video_idx"] for it in items] == [1] * 6 and [it["view_idx"] for it in items] == list(range(6))
    clips = [it["clips"][0] for it in items]
    # synthetic frames are square: the 3 crops coincide; the 2 temporal clips differ
    torch.testing.assert_close(clips[0], clips[2])
    assert not torch.allclose(clips[0], clips[3])
    for k in (1, 2):
        torch.testing.assert_close(clips[3], clips[3 + k])


def test_test_split_key_picks_the_list(cfg_factory):
    dataset = build_loader(cfg_factory(TEST__SPLIT="train"), "test").dataset
    assert dataset.num_videos == 16 and dataset.split == "test"


def test_ranks_get_disjoint_shards(data_cfg, monkeypatch):
    orders = []
    for rank in (0, 1):
        monkeypatch.setattr(loader_module, "_world", lambda rank=rank: (rank, 2))
        train = build_loader(data_cfg, "train")
        train.sampler.set_epoch(3)
        test = build_loader(data_cfg, "test")
        orders.append((list(iter(train.sampler)), list(iter(test.sampler))))
    assert sorted(orders[0][0] + orders[1][0]) == list(range(16))
    assert orders[0][1] == [0, 1] and orders[1][1] == [2, 3]


@pytest.mark.parametrize("length,world", [(10, 3), (2, 4), (7, 1)])
def test_shard_sampler_covers_every_index_once(length, world):
    shards = [list(ShardSampler(length, r, world)) for r in range(world)]
    assert sum(shards, []) == list(range(length))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_collate_keeps_the_resolution_list():
    samples = [
        {
            "clips": [torch.full((3, 2, 8, 8), float(i)), torch.zeros(3, 2, 4, 4)],
            "sizes": [8, 4],
            "label": i,
            "video_idx": i,
            "view_idx": 0,
            "valid": True,
            "failed": [f"bad{i}.mp4"] if i else [],
        }
        for i in range(3)
    ]
    batch = collate_clips(samples)
    assert [tuple(c.shape) for c in batch["clips"]] == [(3, 3, 2, 8, 8), (3, 3, 2, 4, 4)]
    assert batch["sizes"] == [8, 4]
    assert batch["clips"][0][:, 0, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert batch["failed"] == [[], ["bad1.mp4"], ["bad2.mp4"]]

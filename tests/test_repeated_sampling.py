"""Repeated sampling (DATA.NUM_REPEATED_SAMPLES) and the GPU decoder option (torchcodec_cuda)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resformer_video.config import ConfigError
from resformer_video.datasets import build_loader, decoders, kinetics
from resformer_video.datasets.decoders import DecoderUnavailableError, decoder_chain, read_video
from resformer_video.datasets.loader import RepeatedSampleSampler
from resformer_video.datasets.sampling import clip_frame_count, sample_repeated_clip_indices

from conftest import LOADABLE_BACKENDS


def count_decodes(monkeypatch) -> list:
    """Patch the dataset's decode entry point; the returned list grows by one per decode call."""
    calls = []

    def counting(path, backends, read):
        calls.append(path)
        return read_video(path, backends, read)

    monkeypatch.setattr(kinetics, "read_video", counting)
    return calls


def test_one_decode_gives_several_different_samples(cfg_factory, monkeypatch):
    calls = count_decodes(monkeypatch)
    cfg = cfg_factory(DATA__NUM_REPEATED_SAMPLES=3, TRAIN__BATCH_SIZE=6, DATA__SAMPLING_RATE=2)
    torch.manual_seed(0)
    loader = build_loader(cfg, "train")
    batch = next(iter(loader))
    assert len(calls) == 2  # 6 samples from 2 decodes
    assert batch["clips"][0].shape[0] == 6 and batch["label"].shape == (6,)
    assert batch["video_idx"].tolist()[:3] == [batch["video_idx"][0].item()] * 3
    clips = batch["clips"][0]
    for i in range(3):  # independent offsets and augmentation: no two samples of a decode agree
        for j in range(i + 1, 3):
            assert not torch.equal(clips[i], clips[j])
    assert sum(len(f) for f in batch["failed"]) == 0


def test_one_repeat_is_todays_loader_bit_for_bit(cfg_factory):
    def first_batch(cfg):
        torch.manual_seed(0)
        loader = build_loader(cfg, "train")
        loader.sampler.set_epoch(0)
        return next(iter(loader))

    default, explicit = first_batch(cfg_factory()), first_batch(cfg_factory(DATA__NUM_REPEATED_SAMPLES=1))
    assert isinstance(build_loader(cfg_factory(), "train").sampler, torch.utils.data.DistributedSampler)
    assert torch.equal(default["video_idx"], explicit["video_idx"])
    for a, b in zip(default["clips"], explicit["clips"]):
        assert torch.equal(a, b)


def test_repeated_clips_start_at_different_offsets_within_two_spans():
    generator = torch.Generator().manual_seed(0)
    idx = sample_repeated_clip_indices(3000, 30.0, 8, 8, 30.0, 4, generator)
    assert idx.shape == (4, 8)
    assert len({row[0] for row in idx.tolist()}) == 4
    span = clip_frame_count(30.0, 8, 8, 30.0)
    assert idx.max() - idx.min() < 2 * span
    assert (np.diff(idx, axis=1) == 9).all()  # TimeSformer: linspace(start, start + 63, 8)
    short = sample_repeated_clip_indices(40, 30.0, 8, 8, 30.0, 3, generator)  # shorter than a span
    assert short.min() >= 0 and short.max() == 39


@pytest.mark.parametrize("num_videos,repeats,world", [(24, 3, 1), (24, 3, 2), (25, 4, 3), (7, 2, 2)])
def test_repeated_sampler_epochs_cover_every_video_once_per_cycle(num_videos, repeats, world):
    seen = []
    for epoch in range(repeats):
        shards = []
        for rank in range(world):
            sampler = RepeatedSampleSampler(num_videos, repeats, rank, world, seed=5)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
            assert len(shards[-1]) == len(sampler) == -(-(-(-num_videos // repeats)) // world)
        part = RepeatedSampleSampler(num_videos, repeats, 0, 1, seed=5)
        part.set_epoch(epoch)
        videos = part.epoch_videos()
        flat = [i for shard in shards for i in shard]
        assert set(flat) == set(videos)  # the ranks share out this epoch's videos...
        assert len(set(flat)) == len(videos)  # ...disjointly: the only repeats are the padding,
        assert len(flat) - len(videos) <= world  # equal shards from parts one video apart
        seen += videos
    assert sorted(seen) == list(range(num_videos))  # each video decoded once in `repeats` epochs
    later = RepeatedSampleSampler(num_videos, repeats, 0, 1, seed=5)
    later.set_epoch(repeats)
    assert later.epoch_videos() != RepeatedSampleSampler(num_videos, repeats, 0, 1, seed=5).epoch_videos()


def test_epoch_keeps_its_samples_and_iterations(cfg_factory):
    plain = build_loader(cfg_factory(TRAIN__BATCH_SIZE=4), "train")
    repeated = build_loader(cfg_factory(TRAIN__BATCH_SIZE=4, DATA__NUM_REPEATED_SAMPLES=2), "train")
    assert repeated.batch_size == 2 and len(repeated.sampler) == len(plain.sampler) // 2
    assert len(repeated) == len(plain)


def test_repeats_must_divide_the_batch(cfg_factory):
    with pytest.raises(ConfigError, match="DATA.NUM_REPEATED_SAMPLES"):
        cfg_factory(TRAIN__BATCH_SIZE=4, DATA__NUM_REPEATED_SAMPLES=3)
    with pytest.raises(ConfigError, match="DATA.NUM_REPEATED_SAMPLES"):
        cfg_factory(DATA__NUM_REPEATED_SAMPLES=0)


# ---------------------------------------------------------------------------- torchcodec_cuda
def test_gpu_decoder_is_validated_and_chained_to_cpu_decoding(cfg_factory, monkeypatch):
    assert decoder_chain("torchcodec_cuda", "pyav") == ("torchcodec_cuda", "torchcodec", "pyav")
    assert decoder_chain("decord", "pyav") == ("decord", "pyav")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DecoderUnavailableError, match="DATA.DECODER=torchcodec_cuda.*CUDA"):
        decoders.import_backend("torchcodec_cuda")
    with pytest.raises(DecoderUnavailableError, match="torchcodec_cuda"):
        kinetics.VideoDataset(cfg_factory(DATA__DECODER="torchcodec_cuda"), "train")
    with pytest.raises(ConfigError, match="DATA.DECODER"):
        cfg_factory(DATA__DECODER="nvdec")


class FailingNvdecReader(decoders.TorchCodecReader):
    """A GPU reader whose every file fails, as NVDEC does on a codec it lacks."""

    backend = "torchcodec_cuda"
    opened: list = []

    def __init__(self, path: str) -> None:
        FailingNvdecReader.opened.append(path)
        raise RuntimeError("NVDEC: unsupported codec")


@pytest.mark.skipif(
    "torchcodec" not in LOADABLE_BACKENDS, reason="torchcodec cannot be loaded here (it needs a system FFmpeg)"
)
def test_files_nvdec_cannot_read_are_decoded_on_the_cpu(cfg_factory, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(decoders._READERS, "torchcodec_cuda", FailingNvdecReader)
    FailingNvdecReader.opened = []
    cfg = cfg_factory(DATA__DECODER="torchcodec_cuda", DATA__DECODER_FALLBACK="")
    dataset = kinetics.VideoDataset(cfg, "val")
    item = dataset[0]
    assert item["valid"] and item["failed"] == []
    assert FailingNvdecReader.opened == [dataset.paths[0]]  # tried on the GPU first, per file
    cpu = kinetics.VideoDataset(cfg_factory(DATA__DECODER="torchcodec", DATA__DECODER_FALLBACK=""), "val")
    torch.testing.assert_close(item["clips"][0], cpu[0]["clips"][0])

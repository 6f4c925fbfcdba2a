"""Loading weights from disk: timm/DeiT, official ResFormer, our own checkpoints, and bad files."""

from __future__ import annotations

import functools
import os

import pytest
import timm
import torch

from resformer_video.models import CheckpointError, VideoResFormer, checkpoint_filter_fn, load_pretrained

import conftest

tiny = functools.partial(conftest.tiny_model, img_size=64)
randomize = functools.partial(conftest.randomize, std=0.05, norm_weights=None)


@pytest.fixture(scope="module")
def timm_vit_tiny():
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()


@pytest.mark.slow
def test_timm_vit_gives_timm_logits(tmp_path, timm_vit_tiny):
    """POS_EMBED learned, T = 1: our model equals timm's ViT on the same weights."""
    path = tmp_path / "deit.pth"
    torch.save({"model": {"module." + k: v for k, v in timm_vit_tiny.state_dict().items()}}, path)
    model = VideoResFormer(
        num_classes=1000, embed_dim=192, depth=12, num_heads=3, pos_embed="learned", drop_path_rate=0.1
    ).eval()
    report = load_pretrained(model, str(path))
    assert report.missing_keys == [] and report.unexpected_keys == [] and report.dropped_keys == []
    assert any("temporal attention of 12 blocks" in note for note in report.notes)
    block = model.blocks[3]
    torch.testing.assert_close(block.temporal_attn.qkv.weight, block.attn.qkv.weight)
    torch.testing.assert_close(block.temporal_norm1.bias, block.norm1.bias)
    assert not block.temporal_fc.weight.any() and not block.temporal_fc.bias.any()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(images.unsqueeze(2)), timm_vit_tiny(images), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_timm_vit_into_resformer_model_reports_keys(tmp_path, timm_vit_tiny):
    """Another class count and the GPE: head and pos_embed not used, GPE/LPE kept at init."""
    path = tmp_path / "vit.pth"
    torch.save(timm_vit_tiny.state_dict(), path)
    model = VideoResFormer(num_classes=7, embed_dim=192, depth=12, num_heads=3, img_size=96)
    report = load_pretrained(model, str(path))
    assert report.dropped_keys == ["head.weight", "head.bias"]
    assert set(report.unexpected_keys) == {"pos_embed"}
    lpe = {f"blocks.{i}.attn.lpe.{p}" for i in range(12) for p in ("weight", "bias")}
    assert set(report.missing_keys) == {"head.weight", "head.bias", "gpe.proj.weight", "gpe.proj.bias"} | lpe
    assert "blocks.*.attn.lpe.weight (x12)" in str(report)
    torch.testing.assert_close(model.blocks[0].mlp.fc1.weight, timm_vit_tiny.blocks[0].mlp.fc1.weight)


def test_learned_pos_embed_resized_to_the_model_grid(timm_vit_tiny):
    model = VideoResFormer(
        num_classes=1000, embed_dim=192, depth=12, num_heads=3, pos_embed="learned", img_size=(96, 128)
    )
    source = timm_vit_tiny.state_dict()
    notes = []
    converted = checkpoint_filter_fn(source, model, notes)
    assert converted["pos_embed"].shape == (1, 1 + 6 * 8, 192)
    torch.testing.assert_close(converted["pos_embed"][:, 0], source["pos_embed"][:, 0])
    assert "resized pos_embed from 14x14 to 6x8 patches" in notes


def to_official_resformer(state_dict):
    """Our image-model keys -> the official ResFormer repository's key names."""
    out = {}
    for key, value in state_dict.items():
        if "temporal" in key:
            continue
        key = key.replace("gpe.proj.", "pos_embed.embed_layer.").replace(".attn.lpe.", ".attn.get_v.")
        out[key] = value
    return out


def test_official_resformer_checkpoint_keys_are_converted(tmp_path):
    torch.manual_seed(0)
    source = tiny()
    randomize(source)
    with torch.no_grad():
        for block in source.blocks:
            block.temporal_fc.weight.zero_()
            block.temporal_fc.bias.zero_()
    official = to_official_resformer(source.state_dict())
    assert "pos_embed.embed_layer.weight" in official and "blocks.0.attn.get_v.weight" in official
    path = tmp_path / "resformer_tiny.pth"
    torch.save({"model": official, "epoch": 300}, path)
    model = tiny()
    report = load_pretrained(model, str(path))
    assert report.missing_keys == [] and report.unexpected_keys == []
    torch.testing.assert_close(model.gpe.proj.weight, official["pos_embed.embed_layer.weight"])
    torch.testing.assert_close(model.blocks[1].attn.lpe.weight, official["blocks.1.attn.get_v.weight"])
    frame = torch.randn(2, 3, 1, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(frame), source(frame))


def test_own_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    source = tiny(temporal_embed="learned", num_frames=4)
    randomize(source)
    path = tmp_path / "checkpoint_epoch_00001.pyth"
    # As DDP and then torch.compile would name the keys.
    state = {"module._orig_mod." + k: v for k, v in source.state_dict().items()}
    torch.save({"model": state, "optimizer": {"state": {}}, "epoch": 1}, path)
    model = tiny(temporal_embed="learned", num_frames=4)
    report = load_pretrained(model, str(path))
    assert report.missing_keys == [] and report.unexpected_keys == [] and report.notes == []
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, msg=key)
    clip = torch.randn(1, 3, 4, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), source(clip))


def test_missing_file_raises_naming_it(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match=f"^{path}: checkpoint file not found"):
        load_pretrained(tiny(), str(path))


def test_garbage_and_truncated_files_raise_naming_them(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match=f"^{garbage}: cannot read checkpoint"):
        load_pretrained(tiny(), str(garbage))
    good = tmp_path / "good.pth"
    torch.save(tiny().state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=f"^{truncated}: cannot read checkpoint"):
        load_pretrained(tiny(), str(truncated))


def test_wrong_shapes_raise_naming_file_and_first_key(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save({"model": tiny(embed_dim=64).state_dict()}, path)
    with pytest.raises(
        CheckpointError,
        match=rf"^{path}: cls_token: checkpoint shape \(1, 1, 64\) "
        r"does not match the model's \(1, 1, 32\)",
    ):
        load_pretrained(tiny(), str(path))
    state = tiny().state_dict()
    state["blocks.1.mlp.fc2.weight"] = torch.zeros(32, 64)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=rf"^{path}: blocks.1.mlp.fc2.weight: checkpoint shape"):
        load_pretrained(tiny(), str(path))


def test_non_state_dict_content_raises(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match=f"^{path}: no state dict found"):
        load_pretrained(tiny(), str(path))
    torch.save({"epoch": 3, "acc": 0.5}, path)
    with pytest.raises(CheckpointError, match=f"^{path}: epoch: not a tensor"):
        load_pretrained(tiny(), str(path))


class _WritesAFile:
    """Unpickling this calls ``open(path, "w")``: a stand-in for code a checkpoint should not run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_foreign_objects_in_a_checkpoint_are_not_executed(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "foreign.pth"
    torch.save({"model_state": tiny().state_dict(), "hook": _WritesAFile(str(marker))}, path)
    report = load_pretrained(tiny(), str(path))
    assert report.missing_keys == [] and not marker.exists()


@pytest.mark.slow
def test_safetensors_file(tmp_path, timm_vit_tiny):
    from safetensors.torch import save_file

    path = tmp_path / "vit.safetensors"
    save_file(timm_vit_tiny.state_dict(), str(path))
    model = VideoResFormer(num_classes=1000, embed_dim=192, depth=12, num_heads=3, pos_embed="learned")
    assert load_pretrained(model, str(path)).missing_keys == []
    torch.testing.assert_close(model.patch_embed.proj.weight, timm_vit_tiny.patch_embed.proj.weight)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=f"^{path}: cannot read checkpoint"):
        load_pretrained(model, str(path))

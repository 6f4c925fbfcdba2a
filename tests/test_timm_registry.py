"""timm registry and torch.hub: the architectures are listed, built and loaded from local files."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import timm
import torch

import resformer_video  # noqa: F401  (registers the architectures)
from resformer_video.models.timesformer_reference import TimeSformerReference
from resformer_video.utils.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = dict(depth=1, img_size=64, num_frames=4, num_classes=5, drop_path_rate=0.0)


def _randomize(module: torch.nn.Module) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0.0, 0.1)


def test_list_models_finds_every_architecture():
    assert timm.list_models("*resformer*") == [
        "resformer_video_base_patch16_224", "resformer_video_small_patch16_224",
        "resformer_video_timesformer_base_patch16_224", "resformer_video_tiny_patch16_224"]
    cfg = timm.create_model("resformer_video_tiny_patch16_224", **TINY).pretrained_cfg
    assert cfg["architecture"] == "resformer_video_tiny_patch16_224" and cfg["num_classes"] == 400


def test_create_model_loads_our_checkpoint_from_a_local_file(tmp_path):
    source = timm.create_model("resformer_video_tiny_patch16_224", **TINY).eval()
    _randomize(source)
    path = tmp_path / "checkpoint_epoch_00003.pyth"
    save_checkpoint(str(path), source, epoch=3, cfg_text="", class_names=list("abcde"))
    model = timm.create_model("resformer_video_tiny_patch16_224", pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(path)), **TINY).eval()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, msg=key)
    fresh = timm.create_model("resformer_video_tiny_patch16_224", **TINY)
    assert not torch.equal(fresh.head.weight, model.head.weight)
    with pytest.raises(RuntimeError, match="No pretrained weights exist"):
        timm.create_model("resformer_video_tiny_patch16_224", pretrained=True, **TINY)


def test_create_model_converts_a_timesformer_checkpoint(tmp_path):
    reference = TimeSformerReference(num_classes=5, img_size=64, patch_size=16, embed_dim=768, depth=1,
                                     num_heads=12, num_frames=4).eval()
    _randomize(reference)
    path = tmp_path / "timesformer.pyth"
    torch.save({"epoch": 15, "model_state": {"model." + k: v for k, v in reference.state_dict().items()},
                "optimizer_state": None, "cfg": "TRAIN:\n  ENABLE: true\n"}, path)
    model = timm.create_model("resformer_video_timesformer_base_patch16_224", pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(path)), **TINY).eval()
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference(clip), atol=1e-5, rtol=1e-5)


def test_torch_hub_loads_from_the_local_clone(tmp_path):
    source = timm.create_model("resformer_video_tiny_patch16_224", **TINY).eval()
    _randomize(source)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    model = torch.hub.load(str(REPO), "resformer_video_tiny_patch16_224", source="local", pretrained=True,
                           pretrained_cfg_overlay=dict(file=str(path)), **TINY).eval()
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), source(clip))
    hub_names = {name for name in runpy.run_path(str(REPO / "hubconf.py")) if name.startswith("resformer")}
    assert hub_names == set(timm.list_models("*resformer*"))

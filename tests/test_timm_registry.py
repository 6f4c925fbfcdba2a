"""timm registry and torch.hub: the architectures are listed, built and loaded from local files."""

from __future__ import annotations

import runpy
from pathlib import Path

import einops
import pytest
import timm
import torch

import resformer_video  # noqa: F401  (registers the architectures)
from benchmarks.harness.timesformer_reference import TimeSformerReference
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
        "resformer_video_base_patch16_224",
        "resformer_video_small_patch16_224",
        "resformer_video_timesformer_base_patch16_224",
        "resformer_video_tiny_patch16_224",
    ]
    cfg = timm.create_model("resformer_video_tiny_patch16_224", **TINY).pretrained_cfg
    assert cfg["architecture"] == "resformer_video_tiny_patch16_224" and cfg["num_classes"] == 400


def test_create_model_loads_our_checkpoint_from_a_local_file(tmp_path):
    source = timm.create_model("resformer_video_tiny_patch16_224", **TINY).eval()
    _randomize(source)
    path = tmp_path / "checkpoint_epoch_00003.pyth"
    save_checkpoint(str(path), source, epoch=3, cfg_text="", class_names=list("abcde"))
    model = timm.create_model(
        "resformer_video_tiny_patch16_224", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **TINY
    ).eval()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, msg=key)
    fresh = timm.create_model("resformer_video_tiny_patch16_224", **TINY)
    assert not torch.equal(fresh.head.weight, model.head.weight)
    with pytest.raises(RuntimeError, match="No pretrained weights exist"):
        timm.create_model("resformer_video_tiny_patch16_224", pretrained=True, **TINY)


def test_create_model_converts_a_timesformer_checkpoint(tmp_path):
    reference = TimeSformerReference(
        num_classes=5, img_size=64, patch_size=16, embed_dim=768, depth=1, num_heads=12, num_frames=4
    ).eval()
    _randomize(reference)
    path = tmp_path / "timesformer.pyth"
    torch.save(
        {
            "epoch": 15,
            "model_state": {"model." + k: v for k, v in reference.state_dict().items()},
            "optimizer_state": None,
            "cfg": "TRAIN:\n  ENABLE: true\n",
        },
        path,
    )
    model = timm.create_model(
        "resformer_video_timesformer_base_patch16_224",
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(path)),
        **TINY,
    ).eval()
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference(clip), atol=1e-5, rtol=1e-5)


def test_torch_hub_loads_from_the_local_clone(tmp_path):
    source = timm.create_model("resformer_video_tiny_patch16_224", **TINY).eval()
    _randomize(source)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    model = torch.hub.load(
        str(REPO),
        "resformer_video_tiny_patch16_224",
        source="local",
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(path)),
        **TINY,
    ).eval()
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), source(clip))
    hub_names = {name for name in runpy.run_path(str(REPO / "hubconf.py")) if name.startswith("resformer")}
    assert hub_names == set(timm.list_models("*resformer*"))


# ------------------------------------------------------------------------------------------------
# timm's model API: classifier, head, intermediates and features_only
# ------------------------------------------------------------------------------------------------
NARROW = dict(TINY, embed_dim=32, num_heads=2)  # a narrower trunk for the API tests
TWO_BLOCKS = dict(NARROW, depth=2)


def _block_outputs(model: torch.nn.Module, clip: torch.Tensor) -> list:
    """Every block's raw output ``(B, 1 + h * w * T, D)``, caught by forward hooks."""
    outputs = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for block in model.blocks]
    with torch.no_grad():
        model(clip)
    for hook in hooks:
        hook.remove()
    return outputs


def test_classifier_api_through_create_model():
    model = timm.create_model("resformer_video_tiny_patch16_224", **NARROW).eval()
    _randomize(model)
    assert model.get_classifier() is model.head and model.head.out_features == 5
    clip = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(clip)
        pre = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(pre, feats)  # eval: the head dropout is the identity
        torch.testing.assert_close(model.forward_head(feats), pre @ model.head.weight.T + model.head.bias)
    model.train()
    model.reset_classifier(3)
    head = model.get_classifier()
    assert head is model.head and (head.in_features, head.out_features) == (32, 3) and head.training
    assert model.num_classes == 3 and not head.bias.any() and 0.005 < head.weight.std() < 0.03
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(clip), feats @ head.weight.T)  # the trunk is unchanged
        model.reset_classifier(0)
        assert isinstance(model.get_classifier(), torch.nn.Identity)
        torch.testing.assert_close(model(clip), feats)
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(3, global_pool="avg")


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only"])
def test_forward_intermediates_against_block_outputs(attention_type):
    model = timm.create_model("resformer_video_tiny_patch16_224", attention_type=attention_type, **TWO_BLOCKS).eval()
    _randomize(model)
    clip = torch.randn(2, 3, 4, 64, 96)
    raw = _block_outputs(model, clip)
    order = "(b t) (h w) m" if attention_type == "space_only" else "b (h w t) m"
    expected = [einops.rearrange(out[:, 1:], f"{order} -> b m t h w", t=4, h=4, w=6) for out in raw]
    with torch.no_grad():
        final, maps = model.forward_intermediates(clip)
        torch.testing.assert_close(final, model.forward_features(clip))
        torch.testing.assert_close(model.forward_head(final), model(clip))
        for got, want in zip(maps, expected):
            torch.testing.assert_close(got, want)
        last = model.forward_intermediates(clip, indices=1, output_fmt="NLC", intermediates_only=True)
        torch.testing.assert_close(last[0], einops.rearrange(expected[1], "b m t h w -> b (t h w) m"))
        ((normed, cls),) = model.forward_intermediates(
            clip, indices=[-1], norm=True, return_prefix_tokens=True, intermediates_only=True
        )
        torch.testing.assert_close(cls[:, 0], final)
        torch.testing.assert_close(normed, model.norm(expected[1].movedim(1, -1)).movedim(-1, 1))
    with pytest.raises(ValueError, match="block indices"):
        model.forward_intermediates(clip, indices=[2])
    with pytest.raises(ValueError, match="output_fmt"):
        model.forward_intermediates(clip, output_fmt="NHWC")


def test_features_only_gives_the_block_maps(tmp_path):
    full = timm.create_model("resformer_video_tiny_patch16_224", **TWO_BLOCKS).eval()
    _randomize(full)
    torch.save(full.state_dict(), tmp_path / "weights.pth")
    features = timm.create_model(
        "resformer_video_tiny_patch16_224",
        features_only=True,
        out_indices=(0,),
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(tmp_path / "weights.pth")),
        **TWO_BLOCKS,
    ).eval()
    assert len(features.model.blocks) == 1  # the blocks after the last one asked for are dropped
    info = features.feature_info
    assert (info.channels(), info.reduction(), info.module_name()) == ([32], [16], ["blocks.0"])
    clip = torch.randn(1, 3, 4, 64, 96)
    raw = _block_outputs(full, clip)
    with torch.no_grad():
        maps = features(clip)
    assert [m.shape for m in maps] == [(1, 32, 4, 4, 6)]
    torch.testing.assert_close(maps[0], einops.rearrange(raw[0][:, 1:], "b (h w t) m -> b m t h w", t=4, h=4))
    default = timm.create_model("resformer_video_tiny_patch16_224", features_only=True, **dict(NARROW, depth=4))
    assert default.feature_info.module_name() == ["blocks.1", "blocks.2", "blocks.3"]  # timm's ViT: last 3

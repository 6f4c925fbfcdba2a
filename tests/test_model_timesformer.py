"""Our model loaded from a TimeSformer checkpoint gives exactly TimeSformer's outputs.

The reference is :class:`TimeSformerReference`, an op-for-op re-implementation of the forward pass
of TimeSformer's ``VisionTransformer`` (facebookresearch/TimeSformer, timesformer/models/vit.py):
explicit softmax(QK^T)V attention, ``Block.forward`` with its token orders, class-token handling and
``temporal_fc`` placement, nearest-neighbour resizing of ``pos_embed`` / ``time_embed`` and the
final ``norm(x)[:, 0]``. It shares no code with the model it is compared with.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.harness.timesformer_reference import TimeSformerReference
from resformer_video.models import VideoResFormer, load_pretrained

from conftest import randomize

DIM, HEADS, DEPTH, IMG, PATCH, FRAMES, CLASSES = 48, 3, 2, 64, 16, 8, 5


class FakeSlowFastCfg:
    """Stands for the config object some TimeSformer checkpoints pickle next to the weights."""

    def __init__(self) -> None:
        self.TIMESFORMER = {"ATTENTION_TYPE": "divided_space_time"}


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time", "space_only"])
def test_timesformer_checkpoint_gives_timesformer_outputs(tmp_path, attention_type):
    torch.manual_seed(0)
    reference = TimeSformerReference(
        num_classes=CLASSES,
        img_size=IMG,
        patch_size=PATCH,
        embed_dim=DIM,
        depth=DEPTH,
        num_heads=HEADS,
        num_frames=FRAMES,
        attention_type=attention_type,
    ).eval()
    randomize(reference, bias_std=0.05)  # every parameter, LayerNorm weights around 1
    path = tmp_path / "timesformer.pyth"
    state = {"model." + k: v for k, v in reference.state_dict().items()}
    torch.save({"epoch": 15, "model_state": state, "cfg": FakeSlowFastCfg()}, path)

    temporal = "none" if attention_type == "space_only" else "learned"
    model = VideoResFormer(
        num_classes=CLASSES,
        img_size=IMG,
        patch_size=PATCH,
        embed_dim=DIM,
        depth=DEPTH,
        num_heads=HEADS,
        num_frames=FRAMES,
        attention_type=attention_type,
        pos_embed="learned",
        temporal_embed=temporal,
        drop_path_rate=0.1,
    ).eval()
    report = load_pretrained(model, str(path))
    assert report.missing_keys == [] and report.unexpected_keys == []

    with torch.no_grad():
        clip = torch.randn(2, 3, FRAMES, IMG, IMG)  # native grid and frame count
        torch.testing.assert_close(model(clip), reference(clip), atol=1e-5, rtol=1e-5)
        clip = torch.randn(2, 3, 4, 96, 80)  # both embeddings resized (nearest), non-square grid
        torch.testing.assert_close(model(clip), reference(clip), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attn_impl", ["sdpa", "explicit"])
def test_training_step_matches_timesformer_gradients(attn_impl):
    """The benchmark's TimeSformer baseline does the same work as our model in TimeSformer's
    layout: in training mode (stochastic depth off) every parameter gets the same gradient."""
    torch.manual_seed(0)
    reference = TimeSformerReference(
        num_classes=CLASSES,
        img_size=IMG,
        patch_size=PATCH,
        embed_dim=DIM,
        depth=DEPTH,
        num_heads=HEADS,
        num_frames=FRAMES,
        drop_path_rate=0.0,
    )
    randomize(reference, bias_std=0.05)  # every parameter, LayerNorm weights around 1
    model = VideoResFormer(
        num_classes=CLASSES,
        img_size=IMG,
        patch_size=PATCH,
        embed_dim=DIM,
        depth=DEPTH,
        num_heads=HEADS,
        num_frames=FRAMES,
        pos_embed="learned",
        temporal_embed="learned",
        drop_path_rate=0.0,
        attn_impl=attn_impl,
    )
    model.load_state_dict(reference.state_dict())
    clip, labels = torch.randn(2, 3, FRAMES, IMG, IMG), torch.tensor([1, 3])
    for net in (model.train(), reference.train()):
        nn.functional.cross_entropy(net(clip), labels).backward()
    ours = dict(model.named_parameters())
    for name, param in reference.named_parameters():
        torch.testing.assert_close(ours[name].grad, param.grad, atol=1e-5, rtol=1e-4, msg=name)

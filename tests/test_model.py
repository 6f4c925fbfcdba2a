"""VideoResFormer: shapes, positional embeddings, block behaviour, gradients, config building."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resformer_video.models import VideoResFormer, build_model
from resformer_video.models.pos_embed import sincos_1d_embed, sincos_2d_embed

from conftest import make_cfg, randomize
from conftest import tiny_model as tiny

ATTENTION_TYPES = ("divided_space_time", "joint_space_time", "space_only")


# temporal_fc and the LPE convs (zero at initialisation) get random weights.
randomize_zero_init = functools.partial(randomize, std=0.05, norm_weights=None, only=("temporal_fc", ".lpe."))


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_output_shapes_for_frames_and_resolutions(attention_type):
    torch.manual_seed(0)
    model = tiny(attention_type=attention_type, depth=1)
    sizes = [(s, s) for s in (96, 128, 160, 224, 288)] + [(96, 160)]
    with torch.no_grad():
        for frames in (1, 4, 8):
            for height, width in sizes:
                clip = torch.randn(1, 3, frames, height, width)
                assert model(clip).shape == (1, 7), (frames, height, width)
        clip = torch.randn(2, 3, 4, 64, 96)
        assert model.forward_features(clip).shape == (2, 32)
        maps = model.forward_intermediates(clip, indices=(0, -1), intermediates_only=True)
    assert [m.shape for m in maps] == [(2, 32, 4, 4, 6)] * 2
    torch.testing.assert_close(maps[0], maps[1])  # one block: first and last are the same


def test_bad_input_sizes_raise():
    model = tiny()
    with pytest.raises(ValueError, match="not divisible by the patch size 16"):
        model(torch.randn(1, 3, 2, 64, 72))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="block indices"):
        model.forward_intermediates(torch.randn(1, 3, 1, 32, 32), indices=(5,))


def paper_gpe(height: int, width: int, dim: int) -> np.ndarray:
    """ResFormer's GPE table written out element by element, ``(dim, height, width)``."""
    half = dim // 2
    table = np.zeros((dim, height, width))
    for j in range(half):
        freq = 10000.0 ** (2 * (j // 2) / half)
        fn = math.sin if j % 2 == 0 else math.cos
        for r in range(height):
            for c in range(width):
                table[j, r, c] = fn(2 * math.pi * (r + 1) / (height + 1e-6) / freq)
                table[half + j, r, c] = fn(2 * math.pi * (c + 1) / (width + 1e-6) / freq)
    return table


@pytest.mark.parametrize("grid", [(4, 4), (3, 5)])
def test_global_pos_embed_matches_paper_formula(grid):
    model = tiny(embed_dim=16)
    table = model.gpe.table(*grid, torch.device("cpu"), torch.float32)
    np.testing.assert_allclose(table[0].numpy(), paper_gpe(*grid, 16), atol=1e-5)
    # The embedding is the depthwise conv of the table; the class token gets none.
    conv = model.gpe.proj
    expected = F.conv2d(
        torch.from_numpy(paper_gpe(*grid, 16)).float()[None], conv.weight, conv.bias, padding=1, groups=16
    )
    cls_pos, patch_pos = model.position_embeddings(*grid)
    assert cls_pos is None
    torch.testing.assert_close(patch_pos, expected.flatten(2).transpose(1, 2), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d_embed(2, 2, 18)


def test_gpe_cache_is_per_instance_and_respects_dtype():
    first, second = tiny(embed_dim=16), tiny(embed_dim=16)
    table32 = first.gpe.table(2, 3, torch.device("cpu"), torch.float32)
    table64 = first.gpe.table(2, 3, torch.device("cpu"), torch.float64)
    assert table64.dtype == torch.float64 and table32.dtype == torch.float32
    assert len(first.gpe._tables) == 2 and len(second.gpe._tables) == 0
    assert "gpe._tables" not in first.state_dict()
    second.double()
    assert second(torch.randn(1, 3, 1, 32, 48, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only"])
def test_identical_frames_give_single_frame_logits(attention_type):
    """Without a temporal embedding, T equal frames give the logits of one frame (temporal attention
    over equal tokens returns their value; the per-frame class tokens average to the same one).
    Joint attention has no such identity: one class token faces T copies of every patch."""
    torch.manual_seed(0)
    model = tiny(attention_type=attention_type, temporal_embed="none")
    randomize_zero_init(model)
    frame = torch.randn(2, 3, 1, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(frame.expand(-1, -1, 5, -1, -1)), model(frame), atol=1e-5, rtol=1e-5)


def test_training_after_inference_mode_evaluation():
    """The GPE table cached during an inference-mode evaluation is reusable for training."""
    model = tiny()
    clip = torch.randn(1, 3, 2, 32, 48)
    with torch.inference_mode():
        model(clip)
    model.train()
    model(clip).sum().backward()
    assert model.gpe.proj.weight.grad is not None


def test_reversed_clip_changes_the_logits_only_with_a_temporal_embedding():
    """Without a temporal embedding divided attention is blind to frame order (a reversed clip gives
    the same logits); with the default learned table, once it is not zero, order matters."""
    torch.manual_seed(0)
    clip = torch.randn(2, 3, 4, 32, 32)
    reverse = clip.flip(2)
    blind, seeing = tiny(temporal_embed="none"), tiny()
    randomize_zero_init(blind)
    randomize_zero_init(seeing)
    with torch.no_grad():
        seeing.time_embed.normal_(0.0, 0.5)
        torch.testing.assert_close(blind(clip), blind(reverse), atol=1e-5, rtol=1e-5)
        assert (seeing(clip) - seeing(reverse)).abs().max() > 1e-4


def test_fresh_model_sees_frame_order_only_with_the_sincos_temporal_start():
    """A freshly built model (no weights changed) tells a clip from its reversal with the default
    sine-cosine temporal table; with TimeSformer's zero table it starts blind to order."""
    torch.manual_seed(0)
    clip = torch.randn(2, 3, 4, 32, 32)
    default, zeros = tiny(), tiny(temporal_embed_init="zeros")
    torch.testing.assert_close(default.time_embed[0], sincos_1d_embed(default.num_frames, default.embed_dim))
    assert default.time_embed.abs().mean() > 0.4 and zeros.time_embed.abs().max() == 0
    with torch.no_grad():
        torch.testing.assert_close(zeros(clip), zeros(clip.flip(2)), atol=1e-5, rtol=1e-5)
        assert (default(clip) - default(clip.flip(2))).abs().max() > 1e-3
    with pytest.raises(ValueError, match="temporal_embed_init"):
        tiny(temporal_embed_init="random")


def test_identical_frames_differ_with_a_temporal_embedding():
    torch.manual_seed(0)
    model = tiny(temporal_embed="learned", num_frames=5)
    randomize_zero_init(model)
    frame = torch.randn(2, 3, 1, 48, 64)
    with torch.no_grad():
        model.time_embed.normal_(0.0, 1.0)
        assert not torch.allclose(model(frame.expand(-1, -1, 5, -1, -1)), model(frame), atol=1e-4)


def test_local_pos_embed_breaks_translation_symmetry_only_when_nonzero():
    """The LPE is added in spatial attention: zero-initialised it does nothing, non-zero it acts."""
    torch.manual_seed(0)
    model = tiny(pos_embed="global_local")
    plain = tiny(pos_embed="global")
    plain.load_state_dict(model.state_dict(), strict=False)
    clip = torch.randn(1, 3, 2, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), plain(clip))
        randomize_zero_init(model)
        assert not torch.allclose(model(clip), plain(clip), atol=1e-4)


@pytest.mark.parametrize("pos_embed,temporal_embed", [("global_local", "none"), ("learned", "learned")])
def test_every_parameter_receives_a_gradient(pos_embed, temporal_embed):
    torch.manual_seed(0)
    model = tiny(pos_embed=pos_embed, temporal_embed=temporal_embed, num_frames=2).train()
    randomize_zero_init(model)
    with torch.no_grad():
        if temporal_embed == "learned":
            model.time_embed.normal_(0.0, 0.02)
    clip = torch.randn(2, 3, 2, 32, 32)
    model(clip).logsumexp(dim=1).sum().backward()
    # The last block's LPE only changes patch tokens, which the class token never sees again.
    last_lpe = {n for n in dict(model.named_parameters()) if n.startswith("blocks.1.attn.lpe.")}
    for name, param in model.named_parameters():
        got = param.grad is not None and param.grad.abs().sum() > 0
        assert got != (name in last_lpe), name
    model.forward_intermediates(clip, indices=(-1,), intermediates_only=True)[0].square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_grad_checkpointing_gives_same_outputs_and_gradients():
    torch.manual_seed(0)
    model = tiny().train()
    randomize_zero_init(model)
    clip = torch.randn(2, 3, 2, 32, 32)

    def run():
        model.zero_grad()
        out = model(clip)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    out_plain, grads_plain = run()
    model.set_grad_checkpointing(True)
    out_ckpt, grads_ckpt = run()
    torch.testing.assert_close(out_ckpt, out_plain)
    for a, b in zip(grads_ckpt, grads_plain):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_explicit_attention_equals_sdpa(attention_type):
    torch.manual_seed(0)
    sdpa = tiny(attention_type=attention_type)
    randomize_zero_init(sdpa)
    explicit = tiny(attention_type=attention_type, attn_impl="explicit")
    explicit.load_state_dict(sdpa.state_dict())
    clip = torch.randn(2, 3, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(explicit(clip), sdpa(clip), atol=1e-5, rtol=1e-5)


def test_space_only_treats_frames_independently():
    """space_only = the mean of the per-frame class tokens, so (without a temporal embedding)
    frame order does not matter."""
    torch.manual_seed(0)
    model = tiny(attention_type="space_only", temporal_embed="none")
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(clip.flip(2)), model(clip), atol=1e-5, rtol=1e-5)
        divided = tiny(attention_type="divided_space_time", temporal_embed="learned", num_frames=4)
        divided.time_embed.normal_(0.0, 1.0)
        assert not torch.allclose(divided(clip.flip(2)), divided(clip), atol=1e-4)


def test_no_weight_decay_names_embeddings():
    model = tiny(pos_embed="global_local", temporal_embed="learned")
    names = model.no_weight_decay()
    assert {"cls_token", "time_embed", "gpe.proj.weight", "blocks.0.attn.lpe.weight"} <= names
    assert not any("qkv" in n or "mlp" in n or n.startswith("head") for n in names)
    assert "pos_embed" in tiny(pos_embed="learned").no_weight_decay()


def test_build_model_reads_config():
    cfg = make_cfg(
        opts=[
            "MODEL.ARCH",
            "resformer_small",
            "MODEL.DEPTH",
            3,
            "MODEL.NUM_CLASSES",
            11,
            "MODEL.POS_EMBED",
            "learned",
            "MODEL.TEMPORAL_EMBED",
            "learned",
            "DATA.TRAIN_CROP_SIZES",
            [96],
            "DATA.NUM_FRAMES",
            4,
            "MODEL.GRAD_CHECKPOINT",
            True,
        ]
    )
    model = build_model(cfg)
    assert model.embed_dim == 384 and len(model.blocks) == 3
    assert model.blocks[0].attn.num_heads == 6 and model.blocks[0].mlp.fc1.out_features == 4 * 384
    assert model.pos_embed.shape == (1, 1 + 6 * 6, 384) and model.time_embed.shape == (1, 4, 384)
    assert model.grad_checkpointing and model.head.out_features == 11
    assert abs(model.blocks[-1].drop_path.drop_prob - 0.1) < 1e-6
    with pytest.raises(ValueError, match="attention_type"):
        VideoResFormer(attention_type="full")


def official_lpe_attention(attn, x: torch.Tensor) -> torch.Tensor:
    """ResFormer's image attention with ``get_v`` (official repository), written out for one frame
    with a square grid: ``(B, 1 + N, C)`` -> ``(B, 1 + N, C)``."""
    batch, length, channels = x.shape
    heads = attn.num_heads
    qkv = attn.qkv(x).reshape(batch, length, 3, heads, channels // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    weights = ((q @ k.transpose(-2, -1)) * attn.scale).softmax(dim=-1)
    side = int(math.sqrt(length - 1))
    grid_v = v[:, :, 1:].transpose(-2, -1).reshape(batch * heads, -1, side, side)
    local = attn.lpe(grid_v).reshape(batch, heads, channels // heads, length - 1).transpose(-2, -1)
    local = torch.cat((torch.zeros(batch, heads, 1, channels // heads), local), dim=2)
    return attn.proj((weights @ v + local).transpose(1, 2).reshape(batch, length, channels))


def test_local_pos_embed_matches_official_resformer_attention():
    torch.manual_seed(0)
    model = tiny()
    randomize_zero_init(model, std=0.3)
    attn = model.blocks[0].attn
    tokens = torch.randn(2, 1 + 5 * 5, 32)
    with torch.no_grad():
        torch.testing.assert_close(attn(tokens, (1, 5, 5)), official_lpe_attention(attn, tokens), atol=1e-5, rtol=1e-5)


def analytic_macs(frames: int, height: int, width: int, dim: int, depth: int, classes: int, patch: int = 16) -> int:
    """Multiply-adds of a divided space-time model without positional embeddings, counted by hand
    (fvcore's conventions: linear/conv/attention products, 5 per LayerNorm element)."""
    n, t = (height // patch) * (width // patch), frames
    macs = t * n * dim * 3 * patch * patch  # patch embedding
    temporal = 5 * t * n * dim + t * n * 3 * dim * dim + n * t * t * 2 * dim + 2 * t * n * dim * dim
    spatial = 5 * t * (n + 1) * dim + t * (n + 1) * 4 * dim * dim + t * (n + 1) ** 2 * 2 * dim
    mlp = 5 * (1 + t * n) * dim + (1 + t * n) * 8 * dim * dim
    return macs + depth * (temporal + spatial + mlp) + 5 * dim + dim * classes


def test_count_flops_matches_analytic_count():
    from resformer_video.models import count_flops

    model = tiny(pos_embed="none", depth=2)
    assert count_flops(model, 3, 48, 64) == analytic_macs(3, 48, 64, dim=32, depth=2, classes=7)


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time", "space_only"])
def test_count_flops_counts_sdpa_as_the_explicit_attention(attention_type):
    """fvcore counts the explicit path's matmuls itself but SDPA only through our handle: the two
    must agree for every attention layout (without the handle SDPA would count as 0)."""
    from resformer_video.models import count_flops

    counts = [
        count_flops(tiny(attention_type=attention_type, attn_impl=impl, depth=1), 2, 48, 48)
        for impl in ("sdpa", "explicit")
    ]
    assert counts[0] == counts[1]


def test_model_info_tool_prints_one_line_per_resolution(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "model_info.py"
    spec = importlib.util.spec_from_file_location("model_info", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (
        module.main(
            ["--resolutions", "64", "96", "MODEL.ARCH", "resformer_tiny", "MODEL.DEPTH", "1", "DATA.NUM_FRAMES", "2"]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].startswith("parameters: ") and len(lines) == 4
    assert lines[2].startswith("2x64x64: ") and lines[3].startswith("2x96x96: ")
    small, large = (float(line.split(": ")[1].split()[0]) for line in lines[2:])
    assert 0 < small < large

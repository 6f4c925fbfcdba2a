"""EMSA (ResT efficient multi-head self-attention) as the spatial attention."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F

from resformer_video.models import load_pretrained
from resformer_video.models.attention import EfficientAttention

from conftest import randomize, tiny_model

tiny = functools.partial(tiny_model, num_classes=5, num_heads=4)


def reference_emsa(attn: EfficientAttention, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """IN(Softmax(Conv(Q K^T / sqrt(d)))) V for one frame ``(B, 1 + h * w, C)``, written out."""
    batch, length, channels = x.shape
    heads, head_dim = attn.num_heads, channels // attn.num_heads
    w_q, w_k, w_v = attn.qkv.weight.chunk(3)
    b_q, b_k, b_v = attn.qkv.bias.chunk(3)
    grid = x[:, 1:].transpose(1, 2).reshape(batch, channels, height, width)
    s = attn.sr_ratio
    reduced = F.conv2d(grid, attn.sr.weight, attn.sr.bias, stride=s, padding=s // 2, groups=channels)
    reduced = F.layer_norm(
        reduced.flatten(2).transpose(1, 2), (channels,), attn.sr_norm.weight, attn.sr_norm.bias, eps=1e-6
    )
    kv_tokens = torch.cat((x[:, :1], reduced), dim=1)

    def heads_of(t):
        return t.reshape(batch, t.shape[1], heads, head_dim).permute(0, 2, 1, 3)

    q = heads_of(x @ w_q.t() + b_q)
    k, v = heads_of(kv_tokens @ w_k.t() + b_k), heads_of(kv_tokens @ w_v.t() + b_v)
    logits = torch.einsum("bhqd,bhkd->bhqk", q, k) / head_dim**0.5
    mix = attn.head_conv.weight.view(heads, heads)
    logits = torch.einsum("gh,bhqk->bgqk", mix, logits) + attn.head_conv.bias.view(1, heads, 1, 1)
    probs = logits.softmax(dim=-1)
    mean = probs.mean(dim=(2, 3), keepdim=True)
    var = probs.var(dim=(2, 3), keepdim=True, unbiased=False)
    probs = (probs - mean) / torch.sqrt(var + 1e-5)
    out = probs @ v
    full_v = heads_of(x @ w_v.t() + b_v)[:, :, 1:]
    maps = full_v.transpose(2, 3).reshape(batch * heads, head_dim, height, width)
    local = attn.lpe(maps).reshape(batch, heads, head_dim, -1).transpose(2, 3)
    out = out + F.pad(local, (0, 0, 1, 0))
    return attn.proj(out.transpose(1, 2).reshape(batch, length, channels))


def test_emsa_matches_written_out_formula_with_class_token():
    """EMSA equals the formula written out here. The tolerance comes from the computation, not from
    one CPU: against the exact (float64) result, the module may be off by at most a few times what
    the written-out formula itself is off by in fp32 (the instance norm divides by the small spread
    of the attention weights, which magnifies fp32 rounding to ~1e-5 here; AVX-512 and AVX2 kernels
    round differently), plus a floor of a few fp32 ulps of the output."""
    torch.manual_seed(0)
    model = tiny(spatial_attention="emsa", emsa_sr_ratio=2)
    randomize(model)
    attn = model.blocks[0].attn
    tokens = torch.randn(2, 1 + 7 * 9, 32)
    with torch.no_grad():
        got = attn(tokens, (1, 7, 9)).double()
        formula_fp32 = reference_emsa(attn, tokens, 7, 9).double()
        exact = reference_emsa(copy.deepcopy(attn).double(), tokens.double(), 7, 9)
    formula_error = (formula_fp32 - exact).abs().max().item()
    floor = 8 * torch.finfo(torch.float32).eps * exact.abs().max().item()
    assert (got - exact).abs().max().item() <= 4 * formula_error + floor
    assert formula_error < 1e-4  # the formula in fp32 is itself close: the bound is not vacuous


@pytest.mark.parametrize("head_conv", [True, False])
@pytest.mark.slow
def test_emsa_without_reduction_equals_msa(head_conv):
    """s = 1, identity head conv (its initialisation) and no instance norm: exactly MSA."""
    torch.manual_seed(0)
    msa = tiny()
    randomize(msa)
    emsa = tiny(spatial_attention="emsa", emsa_sr_ratio=1, emsa_head_conv=head_conv, emsa_instance_norm=False)
    report = emsa.load_state_dict(msa.state_dict(), strict=False)
    assert report.unexpected_keys == []
    assert set(report.missing_keys) == (
        {f"blocks.{i}.attn.head_conv.{p}" for i in (0, 1) for p in ("weight", "bias")} if head_conv else set()
    )
    clip = torch.randn(2, 3, 3, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(emsa(clip), msa(clip), atol=1e-5, rtol=1e-5)
        emsa_in = tiny(spatial_attention="emsa", emsa_sr_ratio=1, emsa_instance_norm=True)
        emsa_in.load_state_dict(msa.state_dict(), strict=False)
        assert not torch.allclose(emsa_in(clip), msa(clip), atol=1e-3)


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time", "space_only"])
@pytest.mark.slow
def test_emsa_shapes_at_several_resolutions_and_odd_grids(attention_type):
    torch.manual_seed(0)
    model = tiny(spatial_attention="emsa", emsa_sr_ratio=2, attention_type=attention_type)
    with torch.no_grad():
        for height, width in [(112, 144), (96, 96), (160, 160), (48, 80)]:  # 7x9 patches first
            assert model(torch.randn(1, 3, 2, height, width)).shape == (1, 5)
        model3 = tiny(spatial_attention="emsa", emsa_sr_ratio=3, attention_type=attention_type)
        assert model3(torch.randn(1, 3, 2, 112, 144)).shape == (1, 5)


def test_reduction_starts_as_a_token_subsampling():
    torch.manual_seed(0)
    attn = tiny(spatial_attention="emsa", emsa_sr_ratio=2).blocks[0].attn
    tokens = torch.randn(2, 1 + 7 * 9, 32)
    reduced = attn.reduce(tokens, (1, 7, 9))
    picked = tokens[:, 1:].reshape(2, 7, 9, 32)[:, ::2, ::2].reshape(2, -1, 32)
    torch.testing.assert_close(reduced[:, 0], tokens[:, 0])
    torch.testing.assert_close(reduced[:, 1:], F.layer_norm(picked, (32,), eps=1e-6))


def test_gradients_reach_the_reduction_and_head_convs():
    torch.manual_seed(0)
    model = tiny(spatial_attention="emsa", emsa_sr_ratio=2).train()
    randomize(model)
    model(torch.randn(2, 3, 2, 64, 80)).logsumexp(dim=1).sum().backward()
    for name in ("attn.sr.weight", "attn.sr.bias", "attn.sr_norm.weight", "attn.head_conv.weight", "attn.qkv.weight"):
        grad = model.get_parameter(f"blocks.0.{name}").grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.slow
def test_msa_checkpoint_loads_into_emsa_model(tmp_path):
    torch.manual_seed(0)
    msa = tiny()
    randomize(msa)
    path = tmp_path / "msa.pyth"
    torch.save({"model": msa.state_dict()}, path)
    emsa = tiny(spatial_attention="emsa", emsa_sr_ratio=2)
    report = load_pretrained(emsa, str(path))
    assert report.unexpected_keys == []
    assert {k.split("attn.")[1] for k in report.missing_keys} == {
        "sr.weight",
        "sr.bias",
        "sr_norm.weight",
        "sr_norm.bias",
        "head_conv.weight",
        "head_conv.bias",
    }
    torch.testing.assert_close(emsa.blocks[1].attn.qkv.weight, msa.blocks[1].attn.qkv.weight)
    torch.testing.assert_close(emsa.blocks[1].attn.head_conv.weight.flatten(1), torch.eye(4))
    with torch.no_grad():
        assert torch.isfinite(emsa(torch.randn(1, 3, 2, 64, 64))).all()


def fused_pair(**kwargs):
    """EMSA models without head conv / instance norm: sdpa and explicit kernels, same weights."""
    args = dict(spatial_attention="emsa", emsa_sr_ratio=2, emsa_head_conv=False, emsa_instance_norm=False)
    args.update(kwargs)
    sdpa, explicit = tiny(attn_impl="sdpa", **args), tiny(attn_impl="explicit", **args)
    randomize(sdpa)
    explicit.load_state_dict(sdpa.state_dict())
    return sdpa, explicit


@pytest.mark.parametrize("pos_embed", ["global_local", "global"])
def test_fused_emsa_sdpa_matches_explicit_path(pos_embed, monkeypatch):
    """Spatial-reduction attention (no head conv, no IN) through SDPA == explicit softmax(QK'^T)V'."""
    torch.manual_seed(0)
    sdpa, explicit = fused_pair(pos_embed=pos_embed)
    assert sdpa.blocks[0].attn.fused and sdpa.blocks[0].attn.attn_impl == "sdpa"
    clip = torch.randn(2, 3, 3, 112, 144)  # 7x9 patches: odd grid, reduced to 4x5
    with torch.no_grad():
        torch.testing.assert_close(sdpa(clip), explicit(clip), atol=1e-5, rtol=1e-5)
    calls = []
    kernel = F.scaled_dot_product_attention
    monkeypatch.setattr(
        F, "scaled_dot_product_attention", lambda q, k, v, **kw: calls.append(k.shape) or kernel(q, k, v, **kw)
    )
    with torch.no_grad():
        sdpa.blocks[0].attn(torch.randn(2, 1 + 7 * 9, 32), (1, 7, 9))
    assert calls == [torch.Size([2, 4, 1 + 4 * 5, 8])]  # keys: class token + reduced 4x5 grid


def test_fused_emsa_gradients_match_explicit_path():
    torch.manual_seed(0)
    sdpa, explicit = fused_pair()
    clip = torch.randn(2, 3, 2, 64, 80)
    for model in (sdpa, explicit):
        model.train()
        model(clip).logsumexp(dim=1).sum().backward()
    for (name, a), (_, b) in zip(sdpa.named_parameters(), explicit.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_emsa_with_head_conv_or_instance_norm_ignores_sdpa():
    """The maps must exist for the head conv / IN: the same output whatever attn_impl says."""
    torch.manual_seed(0)
    sdpa = tiny(spatial_attention="emsa", attn_impl="sdpa", emsa_head_conv=True, emsa_instance_norm=False)
    randomize(sdpa)
    explicit = tiny(spatial_attention="emsa", attn_impl="explicit", emsa_head_conv=True, emsa_instance_norm=False)
    explicit.load_state_dict(sdpa.state_dict())
    assert not sdpa.blocks[0].attn.fused
    clip = torch.randn(1, 3, 2, 64, 80)
    with torch.no_grad():
        torch.testing.assert_close(sdpa(clip), explicit(clip))

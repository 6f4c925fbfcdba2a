"""Our model loaded from a TimeSformer checkpoint gives exactly TimeSformer's outputs.

The reference below is a minimal re-implementation of the forward pass of TimeSformer's
``VisionTransformer`` (facebookresearch/TimeSformer, timesformer/models/vit.py) in eval mode:
explicit softmax(QK^T)V attention, ``Block.forward`` with its token orders, class-token handling and
``temporal_fc`` placement, nearest-neighbour resizing of ``pos_embed`` / ``time_embed`` and the
final ``norm(x)[:, 0]``. It shares no code with ``resformer_video``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from resformer_video.models import VideoResFormer, load_pretrained

DIM, HEADS, DEPTH, IMG, PATCH, FRAMES, CLASSES = 48, 3, 2, 64, 16, 8, 5


class RefAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class RefMlp(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class RefBlock(nn.Module):
    def __init__(self, dim: int, heads: int, attention_type: str) -> None:
        super().__init__()
        self.attention_type = attention_type
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), RefAttention(dim, heads)
        if attention_type == "divided_space_time":
            self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.temporal_attn = RefAttention(dim, heads)
            self.temporal_fc = nn.Linear(dim, dim)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), RefMlp(dim)

    def forward(self, x, B, T, W):
        H = ((x.size(1) - 1) // T) // W
        if self.attention_type in ("space_only", "joint_space_time"):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        xt = rearrange(x[:, 1:, :], "b (h w t) m -> (b h w) t m", b=B, h=H, w=W, t=T)
        res_temporal = self.temporal_attn(self.temporal_norm1(xt))
        res_temporal = rearrange(res_temporal, "(b h w) t m -> b (h w t) m", b=B, h=H, w=W, t=T)
        res_temporal = self.temporal_fc(res_temporal)
        xt = x[:, 1:, :] + res_temporal
        init_cls_token = x[:, 0, :].unsqueeze(1)
        cls_token = rearrange(init_cls_token.repeat(1, T, 1), "b t m -> (b t) m", b=B, t=T).unsqueeze(1)
        xs = rearrange(xt, "b (h w t) m -> (b t) (h w) m", b=B, h=H, w=W, t=T)
        res_spatial = self.attn(self.norm1(torch.cat((cls_token, xs), 1)))
        cls_token = torch.mean(rearrange(res_spatial[:, 0, :], "(b t) m -> b t m", b=B, t=T), 1, True)
        res = rearrange(res_spatial[:, 1:, :], "(b t) (h w) m -> b (h w t) m", b=B, h=H, w=W, t=T)
        x = torch.cat((init_cls_token, xt), 1) + torch.cat((cls_token, res), 1)
        return x + self.mlp(self.norm2(x))


class RefPatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH, stride=PATCH)

    def forward(self, x):
        T = x.shape[2]
        x = self.proj(rearrange(x, "b c t h w -> (b t) c h w"))
        W = x.size(-1)
        return x.flatten(2).transpose(1, 2), T, W


class RefTimeSformer(nn.Module):
    def __init__(self, attention_type: str = "divided_space_time") -> None:
        super().__init__()
        self.attention_type = attention_type
        self.patch_embed = RefPatchEmbed(DIM)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embed = nn.Parameter(torch.zeros(1, (IMG // PATCH) ** 2 + 1, DIM))
        if attention_type != "space_only":
            self.time_embed = nn.Parameter(torch.zeros(1, FRAMES, DIM))
        self.blocks = nn.ModuleList([RefBlock(DIM, HEADS, attention_type) for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(DIM, eps=1e-6)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, x):
        B = x.shape[0]
        x, T, W = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.size(0), -1, -1), x), dim=1)
        if x.size(1) != self.pos_embed.size(1):
            cls_pos_embed = self.pos_embed[0, 0, :].unsqueeze(0).unsqueeze(1)
            other_pos_embed = self.pos_embed[0, 1:, :].unsqueeze(0).transpose(1, 2)
            P = int(other_pos_embed.size(2) ** 0.5)
            H = x.size(1) // W
            other_pos_embed = other_pos_embed.reshape(1, x.size(2), P, P)
            new_pos_embed = F.interpolate(other_pos_embed, size=(H, W), mode="nearest")
            new_pos_embed = new_pos_embed.flatten(2).transpose(1, 2)
            x = x + torch.cat((cls_pos_embed, new_pos_embed), 1)
        else:
            x = x + self.pos_embed
        if self.attention_type != "space_only":
            cls_tokens = x[:B, 0, :].unsqueeze(1)
            x = rearrange(x[:, 1:], "(b t) n m -> (b n) t m", b=B, t=T)
            if T != self.time_embed.size(1):
                time_embed = F.interpolate(self.time_embed.transpose(1, 2), size=(T), mode="nearest")
                x = x + time_embed.transpose(1, 2)
            else:
                x = x + self.time_embed
            x = rearrange(x, "(b n) t m -> b (n t) m", b=B, t=T)
            x = torch.cat((cls_tokens, x), dim=1)
        for blk in self.blocks:
            x = blk(x, B, T, W)
        if self.attention_type == "space_only":
            x = torch.mean(rearrange(x, "(b t) n m -> b t n m", b=B, t=T), 1)
        return self.head(self.norm(x)[:, 0])


def randomize(module: nn.Module) -> None:
    """Every parameter random (LayerNorm weights around 1), temporal_fc included."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                param.uniform_(0.5, 1.5)
            else:
                param.normal_(0.0, 0.1 if param.ndim > 1 else 0.05)


class FakeSlowFastCfg:
    """Stands for the config object some TimeSformer checkpoints pickle next to the weights."""

    def __init__(self) -> None:
        self.TIMESFORMER = {"ATTENTION_TYPE": "divided_space_time"}


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time", "space_only"])
def test_timesformer_checkpoint_gives_timesformer_outputs(tmp_path, attention_type):
    torch.manual_seed(0)
    reference = RefTimeSformer(attention_type).eval()
    randomize(reference)
    path = tmp_path / "timesformer.pyth"
    state = {"model." + k: v for k, v in reference.state_dict().items()}
    torch.save({"epoch": 15, "model_state": state, "cfg": FakeSlowFastCfg()}, path)

    temporal = "none" if attention_type == "space_only" else "learned"
    model = VideoResFormer(num_classes=CLASSES, img_size=IMG, patch_size=PATCH, embed_dim=DIM,
                           depth=DEPTH, num_heads=HEADS, num_frames=FRAMES,
                           attention_type=attention_type, pos_embed="learned",
                           temporal_embed=temporal, drop_path_rate=0.1).eval()
    report = load_pretrained(model, str(path))
    assert report.missing_keys == [] and report.unexpected_keys == []

    with torch.no_grad():
        clip = torch.randn(2, 3, FRAMES, IMG, IMG)  # native grid and frame count
        torch.testing.assert_close(model(clip), reference(clip), atol=1e-5, rtol=1e-5)
        clip = torch.randn(2, 3, 4, 96, 80)  # both embeddings resized (nearest), non-square grid
        torch.testing.assert_close(model(clip), reference(clip), atol=1e-5, rtol=1e-5)

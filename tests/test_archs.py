"""The architecture table is the one source of MODEL.ARCH's choices, timm's names, result-table
names and the docs' list."""

from pathlib import Path

import timm

from resformer_video.config import ConfigError, load_config
from resformer_video.engine.evaluate import model_label
from resformer_video.models import build_model
from resformer_video.models.archs import ARCHS, arch_table

from conftest import make_cfg

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_arch_is_a_config_choice_and_builds_with_its_width():
    for name, spec in ARCHS.items():
        model = build_model(make_cfg(opts=["MODEL.ARCH", name, "MODEL.DEPTH", 1]))
        assert model.embed_dim == spec.width and model.blocks[0].attn.num_heads == spec.heads
        assert model_label(make_cfg(opts=["MODEL.ARCH", name, "MODEL.DEPTH", 0])).endswith(f"-{spec.short}")
    try:
        load_config(None, ["MODEL.ARCH", "resformer_huge"])
    except ConfigError as err:
        assert "MODEL.ARCH" in str(err)
    else:
        raise AssertionError("an unknown MODEL.ARCH was accepted")


def test_timm_names_come_from_the_table():
    names = set(timm.list_models("resformer_video_*"))
    for size in ("tiny", "small", "base"):
        assert f"resformer_video_{size}_patch16_224" in names
    base = timm.create_model("resformer_video_base_patch16_224", depth=1, num_classes=2)
    assert base.embed_dim == ARCHS["resformer_base"].width


def test_the_docs_show_the_table():
    text = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    shown = text.split("<!-- arch-table -->\n", 1)[1].split("\n<!-- /arch-table -->", 1)[0]
    assert shown == arch_table(), "docs/ARCHITECTURE.md's table differs from models/archs.py: paste arch_table()"

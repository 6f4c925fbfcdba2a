"""The architecture table: the one list of model sizes. ``MODEL.ARCH``'s choices, timm's registered
names, the row names of result tables and the docs' list all come from :data:`ARCHS`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchSpec:
    """One architecture: token width, attention heads, blocks, the paper-style short name
    (``ResFormer-B``) and what it is for."""

    width: int
    heads: int
    depth: int
    short: str
    note: str = ""


ARCHS: dict[str, ArchSpec] = {
    "resformer_nano": ArchSpec(64, 2, 12, "N", "CPU studies and demos trained from scratch"),
    "resformer_micro": ArchSpec(128, 2, 12, "Mi", "CPU tests and small experiments"),
    "resformer_tiny": ArchSpec(192, 3, 12, "Ti"),
    "resformer_small": ArchSpec(384, 6, 12, "S"),
    "resformer_base": ArchSpec(768, 12, 12, "B", "the paper's Kinetics-400 model"),
}
# The sizes timm registers (``resformer_video_<size>_patch16_224``), ViT's usual three.
TIMM_SIZES = ("tiny", "small", "base")


def arch_table() -> str:
    """The table as Markdown (for the docs): name, width, heads, blocks, short name, note."""
    rows = ["| MODEL.ARCH | width | heads | blocks | name | for |", "|---|---|---|---|---|---|"]
    rows += [f"| {name} | {s.width} | {s.heads} | {s.depth} | {s.short} | {s.note} |" for name, s in ARCHS.items()]
    return "\n".join(rows)

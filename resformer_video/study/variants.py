"""The study's variants: each is the base config plus a few overrides (the ResFormer paper's Table 4).

Everything that is not overridden here (data, epochs, optimiser, schedule, batch, test protocol)
is the same for every variant, so that the variants differ only in what the study compares.
"""

from __future__ import annotations

from typing import Any, Callable

from yacs.config import CfgNode

from resformer_video.config import ConfigError, validate_config
from resformer_video.study.report import variant_gflops

Overrides = list[Any]  # [KEY, VALUE, KEY, VALUE, ...] as for yacs merge_from_list


def _first_size(cfg: CfgNode) -> list[int]:
    return [int(cfg.DATA.TRAIN_CROP_SIZES[0])]


def _all_sizes(cfg: CfgNode, variant: str) -> list[int]:
    sizes = [int(s) for s in cfg.DATA.TRAIN_CROP_SIZES]
    if len(sizes) < 2:
        raise ConfigError(
            "DATA.TRAIN_CROP_SIZES",
            f"variant {variant} trains at several sizes but the "
            f"config has one ({sizes}): give at least two, largest first",
        )
    return sizes


def _sc_weight(cfg: CfgNode, variant: str) -> float:
    weight = float(cfg.SCALE_CONSISTENCY.WEIGHT)
    if weight <= 0:
        raise ConfigError(
            "SCALE_CONSISTENCY.WEIGHT",
            f"is {weight} but variant {variant} is the full "
            "method with the scale-consistency loss: set a weight > 0 in the config",
        )
    return weight


def training_flops_ratio(cfg: CfgNode) -> float:
    """Training FLOPs per clip at every ``DATA.TRAIN_CROP_SIZES`` size over those at the first size
    alone (fvcore forward counts of the model ``cfg`` builds; a backward pass scales both alike)."""
    sizes = [int(s) for s in cfg.DATA.TRAIN_CROP_SIZES]
    gflops = variant_gflops(cfg, sizes)
    return sum(gflops.values()) / gflops[sizes[0]]


def _compute_matched(cfg: CfgNode) -> Overrides:
    """A single-size run as long as a multi-size one in training FLOPs: ``SOLVER.MAX_EPOCH`` times
    :func:`training_flops_ratio` (rounded), warm-up and step epochs scaled alike (same schedule shape)."""
    _all_sizes(cfg, "timesformer_matched")
    epochs = max(1, round(cfg.SOLVER.MAX_EPOCH * training_flops_ratio(cfg)))
    scale = epochs / cfg.SOLVER.MAX_EPOCH
    overrides = ["SOLVER.MAX_EPOCH", epochs, "SOLVER.WARMUP_EPOCHS", float(cfg.SOLVER.WARMUP_EPOCHS) * scale]
    if cfg.SOLVER.LR_POLICY.startswith("steps"):
        overrides += ["SOLVER.STEPS", [round(float(step) * scale) for step in cfg.SOLVER.STEPS]]
    return overrides


VARIANTS: dict[str, Callable[[CfgNode], Overrides]] = {
    # TimeSformer's recipe: a learned position table (resized with nearest at other test sizes, as
    # TimeSformer does at run time), a learned time embedding, one training size, no consistency loss.
    "timesformer": lambda cfg: [
        "MODEL.POS_EMBED",
        "learned",
        "MODEL.TEMPORAL_EMBED",
        "learned",
        "DATA.TRAIN_CROP_SIZES",
        _first_size(cfg),
        "SCALE_CONSISTENCY.WEIGHT",
        0.0,
    ],
    # TimeSformer's recipe trained for the multi-size variants' training FLOPs (more epochs of the
    # same schedule): what the extra compute of multi-size training would buy the baseline.
    "timesformer_matched": lambda cfg: VARIANTS["timesformer"](cfg) + _compute_matched(cfg),
    # ResFormer's positional embeddings (GPE + LPE) alone: one training size, no consistency loss.
    "resformer_single": lambda cfg: [
        "MODEL.POS_EMBED",
        "global_local",
        "MODEL.TEMPORAL_EMBED",
        "learned",
        "DATA.TRAIN_CROP_SIZES",
        _first_size(cfg),
        "SCALE_CONSISTENCY.WEIGHT",
        0.0,
    ],
    # GPE + LPE with replicated multi-size clips (every DATA.TRAIN_CROP_SIZES size), no consistency loss.
    "resformer_multi": lambda cfg: [
        "MODEL.POS_EMBED",
        "global_local",
        "MODEL.TEMPORAL_EMBED",
        "learned",
        "DATA.TRAIN_CROP_SIZES",
        _all_sizes(cfg, "resformer_multi"),
        "SCALE_CONSISTENCY.WEIGHT",
        0.0,
    ],
    # The full method: GPE + LPE, every training size, the config's scale-consistency weight (> 0).
    "resformer_multi_sc": lambda cfg: [
        "MODEL.POS_EMBED",
        "global_local",
        "MODEL.TEMPORAL_EMBED",
        "learned",
        "DATA.TRAIN_CROP_SIZES",
        _all_sizes(cfg, "resformer_multi_sc"),
        "SCALE_CONSISTENCY.WEIGHT",
        _sc_weight(cfg, "resformer_multi_sc"),
    ],
    # The full method with space-only attention: what temporal modelling buys. As in TimeSformer's
    # space_only model, there is no temporal embedding: each frame is seen alone and the frames'
    # class tokens are averaged, so the model cannot tell the order of frames.
    "space_only": lambda cfg: [
        "MODEL.POS_EMBED",
        "global_local",
        "MODEL.TEMPORAL_EMBED",
        "none",
        "DATA.TRAIN_CROP_SIZES",
        _all_sizes(cfg, "space_only"),
        "SCALE_CONSISTENCY.WEIGHT",
        _sc_weight(cfg, "space_only"),
        "MODEL.ATTENTION_TYPE",
        "space_only",
    ],
}


def parse_variants(names: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (all of :data:`VARIANTS` for ``""``); unknown names raise ValueError."""
    chosen = [name.strip() for name in names.split(",") if name.strip()] or list(VARIANTS)
    unknown = [name for name in chosen if name not in VARIANTS]
    if unknown:
        raise ValueError(f"--variants: unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"--variants: has duplicates: {chosen}")
    return chosen


def variant_cfg(base: CfgNode, name: str, seed: int, output_dir: str) -> CfgNode:
    """The frozen, validated config of one run: ``base`` + the variant's overrides, ``RNG_SEED``
    ``seed``, ``OUTPUT_DIR`` ``output_dir`` and ``TRAIN.AUTO_RESUME`` on (an interrupted run continues)."""
    cfg = base.clone()
    cfg.defrost()
    cfg.merge_from_list(VARIANTS[name](base) + ["RNG_SEED", seed, "OUTPUT_DIR", output_dir, "TRAIN.AUTO_RESUME", True])
    validate_config(cfg)
    cfg.freeze()
    return cfg

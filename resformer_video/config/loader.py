"""Load a config from a YAML file and ``KEY VALUE`` overrides, and reject bad keys and values.

Every error is a :class:`ConfigError` whose message starts with the offending key, e.g.
``DATA.TRAIN_CROP_SIZES: sizes must be in strictly descending order, got [160, 224]``; an unknown
key gets the closest known one as a suggestion (``did you mean DATA.NUM_FRAMES?``).

A YAML file may start from another with ``_BASE_: other.yaml`` (a path relative to the file, as
in detectron2/fvcore): the base is loaded first (recursively), then the file's keys override it.
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Iterable, Sequence
from typing import Any, Callable

import yaml
from yacs.config import CfgNode

from resformer_video.config.defaults import get_cfg_defaults
from resformer_video.config.foreign import (
    NodeLaunch,
    decode_opts,
    flatten,
    log_notes,
    torchrun_line,
    translate,
    unflatten,
)
from resformer_video.datasets.decoders import BACKENDS as DECODERS
from resformer_video.datasets.sampling import TEST_PROTOCOLS, TRAIN_SAMPLINGS
from resformer_video.datasets.synthetic import MOTIONS
from resformer_video.errors import ConfigError  # noqa: F401  (re-exported)
from resformer_video.models.attention import ATTN_IMPLS
from resformer_video.models.build import ARCH_SPECS, pretrained_path
from resformer_video.models.resformer import (
    ATTENTION_TYPES,
    POS_EMBEDS,
    SPATIAL_ATTENTIONS,
    TEMPORAL_EMBED_INITS,
    TEMPORAL_EMBEDS,
)
from resformer_video.utils.precision import CONFIG_PRECISIONS

ARCHS = tuple(ARCH_SPECS)
LAYOUTS = ("csv", "folders")
CROP_MODES = ("jitter", "random_resized_crop")
SC_TARGETS = ("cls_token", "logits")
SC_LOSSES = ("l2", "smooth_l1", "kl")
OPTIMIZERS = ("sgd", "adamw")
LR_POLICIES = ("steps_with_relative_lrs", "cosine")
DIST_BACKENDS = ("", "nccl", "gloo")
TEST_SPLITS = ("test", "val", "train")
MAX_TEST_SIZE = 1024
BASE_KEY = "_BASE_"


class MultiNodeError(ConfigError):
    """A multi-node launch (PySlowFast's ``NUM_SHARDS`` / ``SHARD_ID`` keys or ``--num_shards`` /
    ``--shard_id`` / ``--init_method`` flags) asked of a plain run: torchrun starts the processes of
    each node here, and the message is the torchrun line for this node."""

    def __init__(self, launch: NodeLaunch, nproc: int, cfg_file: str | None, opts: Sequence[Any]) -> None:
        self.launch, self.nproc, self.cfg_file, self.opts = launch, nproc, cfg_file, list(opts)
        super().__init__(
            "NUM_SHARDS",
            f"{launch.num_shards} nodes (this one {launch.shard_id}): nodes "
            "are started by torchrun here (docs/TRAINING.md, Several machines); on this "
            f"node run: {torchrun_line(launch, nproc, cfg_file, opts)} (on the others the "
            "same with their --node_rank)",
        )

    def with_flags(self, num_shards: int | None, shard_id: int | None, init_method: str | None) -> MultiNodeError:
        """The same error with PySlowFast's launch flags (those given) replacing the config's keys."""
        return MultiNodeError(
            self.launch.merged(num_shards, shard_id, init_method), self.nproc, self.cfg_file, self.opts
        )


def load_config(cfg_file: str | None = None, opts: Sequence[str] | None = None, validate: bool = True) -> CfgNode:
    """Defaults, then ``cfg_file`` (YAML), then ``opts`` (``[KEY, VALUE, KEY, VALUE, ...]``).

    TimeSformer / PySlowFast keys with an equivalent are mapped onto ours, one warning line each
    (:mod:`resformer_video.config.foreign`).

    Raises:
        ConfigError: unknown keys (all of a file's, or of the command line's, in one error), wrong
            type, odd override list or an invalid value (named).
        MultiNodeError: ``NUM_SHARDS`` > 1 or ``SHARD_ID`` > 0 (the torchrun line to use instead).
        FileNotFoundError: ``cfg_file`` (or a ``_BASE_`` it names) does not exist.
    """
    cfg = get_cfg_defaults()
    launch: dict[str, Any] = {}
    if cfg_file:
        values = _translated(cfg, flatten(read_yaml_with_bases(cfg_file)), cfg_file, launch)
        merged = CfgNode(_ints_as_floats(cfg, unflatten(values)))
        _merge(cfg, cfg.merge_from_other_cfg, merged, source=cfg_file)
    if opts:
        if len(opts) % 2:
            raise ConfigError(str(opts[-1]), "override given without a value (use KEY VALUE pairs)")
        values = _translated(cfg, decode_opts(opts), "command line", launch)
        _merge(
            cfg,
            cfg.merge_from_list,
            _override_ints_as_floats(cfg, [item for pair in values.items() for item in pair]),
            source="command line",
        )
    node = NodeLaunch(int(launch.get("NUM_SHARDS", 1)), int(launch.get("SHARD_ID", 0)))
    if node.multi_node and "WORLD_SIZE" not in os.environ:  # under torchrun the nodes are launched
        raise MultiNodeError(node, cfg.NUM_GPUS, cfg_file, list(opts or []))
    if validate:
        validate_config(cfg)
    cfg.freeze()
    return cfg


def _translated(cfg: CfgNode, flat: dict[str, Any], source: str, launch: dict[str, Any]) -> dict[str, Any]:
    """``flat`` with TimeSformer / PySlowFast keys mapped (logged); launch keys added to ``launch``.

    Raises:
        ConfigError: every key without an equivalent, in one message.
    """
    known = all_keys(cfg)
    result = translate(flat, known)
    if len(result.unknown) == 1 and not result.unsupported:
        key = result.unknown[0]
        hint = suggest_key(key, known)
        raise ConfigError(
            key,
            f"unknown config key (from {source}); "
            f"{f'did you mean {hint}? ' if hint else ''}every key is listed "
            "in resformer_video/config/defaults.py",
        )
    if result.unknown or result.unsupported:
        listed = [_unknown_key_text(key, known) for key in result.unknown]
        listed += [f"{item} (no equivalent for that value)" for item in result.unsupported]
        first = (result.unknown or result.unsupported)[0].split(" ")[0]
        raise ConfigError(
            first,
            f"{len(listed)} config keys without an equivalent here (from "
            f"{source}): {'; '.join(listed)}. Every key is listed in "
            "resformer_video/config/defaults.py; TimeSformer / PySlowFast keys "
            "with one are mapped (docs/TRAINING.md)",
        )
    log_notes(result.notes, source)
    launch.update(result.launch)
    return result.values


def _unknown_key_text(key: str, known: Sequence[str]) -> str:
    """``KEY`` or ``KEY (did you mean X?)``."""
    hint = suggest_key(key, known)
    return f"{key} (did you mean {hint}?)" if hint else key


def read_yaml_with_bases(path: str, _chain: Sequence[str] = ()) -> dict[str, Any]:
    """The YAML mapping of ``path`` on top of its ``_BASE_`` file(s), resolved recursively.

    Raises:
        FileNotFoundError: ``path`` or a base does not exist.
        ConfigError: a file that is not a YAML mapping, or ``_BASE_`` files that include each other.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file not found: {path}" + (f" (the _BASE_ of {_chain[-1]})" if _chain else ""))
    real = os.path.realpath(path)
    if real in _chain:
        raise ConfigError(BASE_KEY, f"{path} includes itself: {' -> '.join(list(_chain) + [real])}")
    with open(path, encoding="utf-8") as handle:
        try:
            data = yaml.safe_load(handle) or {}
        except yaml.YAMLError as err:
            raise ConfigError("config", f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    base_path = os.path.join(os.path.dirname(path), str(base))
    return _deep_update(read_yaml_with_bases(base_path, list(_chain) + [real]), data)


def _deep_update(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in, sub-mappings merged key by key."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def _int_as_float(default: Any, value: Any) -> Any:
    """``value`` as a float where the key's default is a float and ``value`` an int (``1`` for
    ``1.0``, ``-1`` for ``-1.0``), so that yacs checks the range, not the type; else unchanged."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _ints_as_floats(cfg: CfgNode, data: dict[str, Any]) -> dict[str, Any]:
    """A YAML mapping with :func:`_int_as_float` applied against ``cfg``'s defaults, recursively."""
    out = {}
    for key, value in data.items():
        default = cfg.get(key) if isinstance(cfg, dict) else None
        out[key] = _ints_as_floats(default, value) if isinstance(value, dict) else _int_as_float(default, value)
    return out


def _override_ints_as_floats(cfg: CfgNode, opts: list[Any]) -> list[Any]:
    """``KEY VALUE`` overrides with an integer VALUE of a float key written as a float."""
    out = list(opts)
    for i in range(0, len(out) - 1, 2):
        try:
            default, value = _get(cfg, str(out[i])), out[i + 1]
        except (KeyError, TypeError):
            continue  # unknown key: reported by the merge
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                continue
        if _int_as_float(default, value) is not value:
            out[i + 1] = float(value)
    return out


def covers(names: Sequence[str], key: str) -> bool:
    """Whether the dotted ``key`` is one of ``names`` or inside a section among them."""
    return any(key == name or key.startswith(name + ".") for name in names)


def all_keys(cfg: CfgNode, prefix: str = "") -> list[str]:
    """Every leaf key of ``cfg`` as a dotted name (``DATA.NUM_FRAMES``)."""
    keys = []
    for name, value in cfg.items():
        full = f"{prefix}{name}"
        keys += all_keys(value, full + ".") if isinstance(value, CfgNode) else [full]
    return keys


def suggest_key(key: str, known: Sequence[str]) -> str | None:
    """The known key closest to the unknown ``key`` (by the whole name, else by its last part), or None."""
    upper = key.upper()
    close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
    if close:
        return close[0]
    leaf = upper.rsplit(".", 1)[-1]
    by_leaf = {k.rsplit(".", 1)[-1]: k for k in known}
    close = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.75)
    return by_leaf[close[0]] if close else None


def _merge(cfg: CfgNode, merge: Callable[[Any], None], arg: Any, source: str) -> None:
    """Run a yacs merge into ``cfg`` and turn its KeyError/ValueError/AssertionError into a
    ConfigError (an unknown key with a did-you-mean suggestion)."""
    try:
        merge(arg)
    except (KeyError, ValueError, AssertionError) as err:
        msg = str(err.args[0]) if err.args else str(err)
        if "Non-existent" in msg:  # yacs: "Non-existent config key: A.B" / "Non-existent key: A.B"
            key = msg.rsplit(":", 1)[-1].strip()
            hint = suggest_key(key, all_keys(cfg))
            hint_text = f"did you mean {hint}? " if hint else ""
            raise ConfigError(
                key,
                f"unknown config key (from {source}); {hint_text}every key is "
                "listed in resformer_video/config/defaults.py",
            ) from None
        # yacs: "Type mismatch (...) with values (...) for config key: A.B"
        key = msg.rsplit("config key:", 1)[-1].strip() if "config key:" in msg else "config"
        raise ConfigError(key, f"{msg} (from {source})") from None


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def _choice(cfg: CfgNode, key: str, choices: Iterable[str]) -> None:
    value = _get(cfg, key)
    _require(value in choices, key, f"must be one of {list(choices)}, got {value!r}")


def _at_least(cfg: CfgNode, key: str, low: float) -> None:
    value = _get(cfg, key)
    _require(value >= low, key, f"must be >= {low}, got {value!r}")


def _get(cfg: CfgNode, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def validate_config(cfg: CfgNode) -> None:
    """Check every value's allowed set or range; raise :class:`ConfigError` naming the first bad key."""
    _validate_run(cfg)
    _validate_model(cfg)
    _validate_data(cfg)
    _validate_train(cfg)
    _validate_solver(cfg)
    _validate_test(cfg)
    _validate_synthetic(cfg)


def _validate_run(cfg: CfgNode) -> None:
    _at_least(cfg, "NUM_GPUS", 0)
    _choice(cfg, "DIST_BACKEND", DIST_BACKENDS)
    _at_least(cfg, "DIST_TIMEOUT_MIN", 1)
    if cfg.NUM_GPUS == 0 and cfg.DIST_BACKEND == "nccl":
        raise ConfigError("DIST_BACKEND", "nccl needs GPUs but NUM_GPUS is 0 (use gloo or leave it empty)")
    _at_least(cfg, "LOG_PERIOD", 1)


def _validate_model(cfg: CfgNode) -> None:
    _choice(cfg, "MODEL.ARCH", ARCHS)
    _choice(cfg, "MODEL.ATTENTION_TYPE", ATTENTION_TYPES)
    _choice(cfg, "MODEL.POS_EMBED", POS_EMBEDS)
    _choice(cfg, "MODEL.TEMPORAL_EMBED", TEMPORAL_EMBEDS)
    _choice(cfg, "MODEL.TEMPORAL_EMBED_INIT", TEMPORAL_EMBED_INITS)
    _choice(cfg, "MODEL.ATTN_IMPL", ATTN_IMPLS)
    _choice(cfg, "MODEL.SPATIAL_ATTENTION", SPATIAL_ATTENTIONS)
    _at_least(cfg, "MODEL.NUM_CLASSES", 1)
    _at_least(cfg, "MODEL.DEPTH", 0)
    _at_least(cfg, "MODEL.PATCH_SIZE", 1)
    _at_least(cfg, "MODEL.EMSA.SR_RATIO", 1)
    for key in ("MODEL.DROP_PATH_RATE", "MODEL.DROPOUT"):
        value = _get(cfg, key)
        _require(0.0 <= value < 1.0, key, f"must be in [0, 1), got {value!r}")
    if pretrained_path(cfg):
        _require(
            os.path.isfile(cfg.MODEL.PRETRAINED),
            "MODEL.PRETRAINED",
            f"file not found: {cfg.MODEL.PRETRAINED} (or 'none' to train from scratch)",
        )


def _check_size(key: str, size: int, patch: int) -> None:
    _require(size % patch == 0, key, f"size {size} is not divisible by MODEL.PATCH_SIZE {patch}")


def _validate_data(cfg: CfgNode) -> None:
    patch = cfg.MODEL.PATCH_SIZE
    _choice(cfg, "DATA.DECODER", DECODERS)
    _choice(cfg, "DATA.DECODER_FALLBACK", ("",) + tuple(DECODERS))
    _choice(cfg, "DATA.LAYOUT", LAYOUTS)
    fractions = list(cfg.DATA.FOLDER_SPLIT)
    _require(
        len(fractions) == 3 and all(f >= 0 for f in fractions) and fractions[0] > 0 and abs(sum(fractions) - 1) < 1e-6,
        "DATA.FOLDER_SPLIT",
        f"must be 3 fractions (train > 0, val, test >= 0) summing to 1, got {fractions}",
    )
    _choice(cfg, "DATA.TRAIN_CROP_MODE", CROP_MODES)
    _choice(cfg, "DATA.TRAIN_SAMPLING", TRAIN_SAMPLINGS)
    _at_least(cfg, "DATA.NUM_FRAMES", 1)
    _at_least(cfg, "DATA.SAMPLING_RATE", 1)
    _require(cfg.DATA.TARGET_FPS > 0, "DATA.TARGET_FPS", f"must be > 0, got {cfg.DATA.TARGET_FPS}")
    scales = cfg.DATA.TRAIN_JITTER_SCALES
    _require(
        len(scales) == 2 and 0 < scales[0] <= scales[1],
        "DATA.TRAIN_JITTER_SCALES",
        f"must be [min, max] with 0 < min <= max, got {scales}",
    )
    area = cfg.DATA.TRAIN_RRC_AREA
    _require(
        len(area) == 2 and 0 < area[0] <= area[1] <= 1,
        "DATA.TRAIN_RRC_AREA",
        f"must be [min, max] with 0 < min <= max <= 1, got {area}",
    )
    sizes = list(cfg.DATA.TRAIN_CROP_SIZES)
    _require(len(sizes) >= 1, "DATA.TRAIN_CROP_SIZES", "needs at least one size")
    _require(
        all(a > b for a, b in zip(sizes, sizes[1:])),
        "DATA.TRAIN_CROP_SIZES",
        f"sizes must be in strictly descending order (largest first), got {sizes}",
    )
    for size in sizes:
        _check_size("DATA.TRAIN_CROP_SIZES", size, patch)
    if cfg.DATA.TRAIN_SAMPLING == "timesformer":
        _validate_timesformer_sampling(cfg)
    _check_test_size("DATA.TEST_CROP_SIZE", cfg.DATA.TEST_CROP_SIZE, patch)
    for key in ("DATA.MEAN", "DATA.STD"):
        _require(len(_get(cfg, key)) == 3, key, f"needs 3 values, got {_get(cfg, key)}")
    _require(all(s > 0 for s in cfg.DATA.STD), "DATA.STD", f"must be > 0, got {cfg.DATA.STD}")
    _at_least(cfg, "DATA.MAX_DECODE_RETRIES", 0)
    frac = cfg.DATA.MAX_FAILURE_FRACTION
    _require(0 < frac <= 1, "DATA.MAX_FAILURE_FRACTION", f"must be in (0, 1], got {frac}")
    _at_least(cfg, "DATA_LOADER.NUM_WORKERS", 0)
    _at_least(cfg, "AUG.RA_NUM_OPS", 0)
    _require(0 <= cfg.AUG.RA_MAGNITUDE <= 10, "AUG.RA_MAGNITUDE", f"must be in [0, 10], got {cfg.AUG.RA_MAGNITUDE}")


def _validate_timesformer_sampling(cfg: CfgNode) -> None:
    """PySlowFast's training crop has no random-resized crop, no RandAugment and no padding."""
    why = "DATA.TRAIN_SAMPLING timesformer"
    _require(
        cfg.DATA.TRAIN_CROP_MODE == "jitter",
        "DATA.TRAIN_CROP_MODE",
        f"must be jitter with {why} (PySlowFast's scale jitter), got {cfg.DATA.TRAIN_CROP_MODE!r}",
    )
    _require(
        not cfg.AUG.RAND_AUGMENT,
        "AUG.RAND_AUGMENT",
        f"must be False with {why} (PySlowFast's training crop has no RandAugment)",
    )
    low, largest = cfg.DATA.TRAIN_JITTER_SCALES[0], cfg.DATA.TRAIN_CROP_SIZES[0]
    _require(
        low >= largest,
        "DATA.TRAIN_JITTER_SCALES",
        f"the minimum {low} must be >= DATA.TRAIN_CROP_SIZES[0] {largest} with {why} (its random crop does not pad)",
    )


def _check_test_size(key: str, size: int, patch: int) -> None:
    _require(patch <= size <= MAX_TEST_SIZE, key, f"must be in [MODEL.PATCH_SIZE {patch}, {MAX_TEST_SIZE}], got {size}")
    _check_size(key, size, patch)


def _validate_train(cfg: CfgNode) -> None:
    _at_least(cfg, "TRAIN.BATCH_SIZE", 1)
    _at_least(cfg, "TRAIN.GLOBAL_BATCH_SIZE", 0)
    _at_least(cfg, "DATA.NUM_REPEATED_SAMPLES", 1)
    repeats = cfg.DATA.NUM_REPEATED_SAMPLES
    _require(
        cfg.TRAIN.BATCH_SIZE % repeats == 0,
        "DATA.NUM_REPEATED_SAMPLES",
        f"{repeats} does not divide TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} (a batch is whole decodes)",
    )
    global_bs = cfg.TRAIN.GLOBAL_BATCH_SIZE
    _require(
        global_bs == 0 or global_bs % cfg.TRAIN.BATCH_SIZE == 0,
        "TRAIN.GLOBAL_BATCH_SIZE",
        f"must be a multiple of TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE}, got {global_bs}",
    )
    _at_least(cfg, "TRAIN.EVAL_PERIOD", 0)
    _at_least(cfg, "TRAIN.CHECKPOINT_PERIOD", 1)
    _require(
        0.0 <= cfg.TRAIN.LABEL_SMOOTHING < 1.0,
        "TRAIN.LABEL_SMOOTHING",
        f"must be in [0, 1), got {cfg.TRAIN.LABEL_SMOOTHING}",
    )
    _choice(cfg, "TRAIN.MIXED_PRECISION", CONFIG_PRECISIONS)
    keys = all_keys(cfg)
    unknown = [name for name in cfg.TRAIN.RESUME_ALLOWED_CHANGES if not any(covers([name], key) for key in keys)]
    _require(
        not unknown,
        "TRAIN.RESUME_ALLOWED_CHANGES",
        f"names no config key or section: {unknown} (keys: resformer_video/config/defaults.py)",
    )
    _at_least(cfg, "SCALE_CONSISTENCY.WEIGHT", 0.0)
    _choice(cfg, "SCALE_CONSISTENCY.TARGET", SC_TARGETS)
    _choice(cfg, "SCALE_CONSISTENCY.LOSS", SC_LOSSES)


def _validate_solver(cfg: CfgNode) -> None:
    _choice(cfg, "SOLVER.OPTIMIZING_METHOD", OPTIMIZERS)
    _choice(cfg, "SOLVER.LR_POLICY", LR_POLICIES)
    _require(cfg.SOLVER.BASE_LR > 0, "SOLVER.BASE_LR", f"must be > 0, got {cfg.SOLVER.BASE_LR}")
    _at_least(cfg, "SOLVER.MAX_EPOCH", 1)
    steps, lrs = list(cfg.SOLVER.STEPS), list(cfg.SOLVER.LRS)
    _require(len(steps) >= 1 and steps[0] == 0, "SOLVER.STEPS", f"must start at 0, got {steps}")
    _require(all(a < b for a, b in zip(steps, steps[1:])), "SOLVER.STEPS", f"must be strictly increasing, got {steps}")
    _require(
        len(lrs) == len(steps), "SOLVER.LRS", f"needs one value per SOLVER.STEPS entry ({len(steps)}), got {len(lrs)}"
    )
    for key in (
        "SOLVER.MOMENTUM",
        "SOLVER.WEIGHT_DECAY",
        "SOLVER.WARMUP_EPOCHS",
        "SOLVER.WARMUP_START_LR",
        "SOLVER.CLIP_GRAD_NORM",
    ):
        _at_least(cfg, key, 0.0)


def _validate_test(cfg: CfgNode) -> None:
    _choice(cfg, "TEST.SPLIT", TEST_SPLITS)
    _at_least(cfg, "TEST.BATCH_SIZE", 1)
    _at_least(cfg, "TEST.NUM_ENSEMBLE_VIEWS", 1)
    _choice(cfg, "TEST.NUM_SPATIAL_CROPS", (1, 3))
    _choice(cfg, "TEST.PROTOCOL", TEST_PROTOCOLS)
    for size in cfg.TEST.RESOLUTIONS:
        _check_test_size("TEST.RESOLUTIONS", size, cfg.MODEL.PATCH_SIZE)
    if cfg.TEST.CHECKPOINT_FILE_PATH:
        _require(
            os.path.isfile(cfg.TEST.CHECKPOINT_FILE_PATH),
            "TEST.CHECKPOINT_FILE_PATH",
            f"file not found: {cfg.TEST.CHECKPOINT_FILE_PATH}",
        )


def _validate_synthetic(cfg: CfgNode) -> None:

    classes = list(cfg.SYNTHETIC.CLASSES)
    unknown = [name for name in classes if name not in MOTIONS]
    _require(not unknown, "SYNTHETIC.CLASSES", f"unknown motion(s) {unknown}; choose from {list(MOTIONS)}")
    _require(len(set(classes)) == len(classes), "SYNTHETIC.CLASSES", f"has duplicates: {classes}")
    _require(
        not classes or len(classes) == cfg.MODEL.NUM_CLASSES,
        "SYNTHETIC.CLASSES",
        f"has {len(classes)} classes but MODEL.NUM_CLASSES is {cfg.MODEL.NUM_CLASSES}",
    )
    _at_least(cfg, "SYNTHETIC.VIDEOS_PER_CLASS", 3)
    size = cfg.SYNTHETIC.VIDEO_SIZE
    _require(size >= 16 and size % 2 == 0, "SYNTHETIC.VIDEO_SIZE", f"must be an even number >= 16, got {size}")
    for key, high in (("SYNTHETIC.DURATION", float("inf")), ("SYNTHETIC.SPRITE_SCALE", 1.0)):
        low_high = list(_get(cfg, key))
        _require(
            len(low_high) == 2 and 0 < low_high[0] <= low_high[1] <= high,
            key,
            f"must be [min, max] with 0 < min <= max{' <= 1' if high == 1.0 else ''}, got {low_high}",
        )
    contrast = cfg.SYNTHETIC.BACKGROUND_CONTRAST
    _require(0 <= contrast <= 255, "SYNTHETIC.BACKGROUND_CONTRAST", f"must be in [0, 255], got {contrast}")


def check_data_dir(cfg: CfgNode) -> None:
    """Raise :class:`ConfigError` naming ``DATA.PATH_TO_DATA_DIR`` when it is unset or missing."""
    path = cfg.DATA.PATH_TO_DATA_DIR
    _require(bool(path), "DATA.PATH_TO_DATA_DIR", "is not set")
    _require(os.path.isdir(path), "DATA.PATH_TO_DATA_DIR", f"directory not found: {path}")


def check_pretrained(cfg: CfgNode) -> None:
    """Raise :class:`ConfigError` naming ``MODEL.PRETRAINED`` when this config trains
    (``TRAIN.ENABLE``), asks for starting weights (``TRAIN.REQUIRE_PRETRAINED``) and has none set;
    ``MODEL.PRETRAINED none`` is an explicit choice to train from scratch."""
    _require(
        not (cfg.TRAIN.ENABLE and cfg.TRAIN.REQUIRE_PRETRAINED and not cfg.MODEL.PRETRAINED.strip()),
        "MODEL.PRETRAINED",
        "is not set, and this config fine-tunes from image weights "
        "(TRAIN.REQUIRE_PRETRAINED): set MODEL.PRETRAINED /path/to/weights.pth (e.g. timm's "
        "vit_base_patch16_224; README, Weights), or MODEL.PRETRAINED none to train from scratch",
    )

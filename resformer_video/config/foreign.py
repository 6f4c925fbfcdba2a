"""TimeSformer / PySlowFast config keys: the ones with an equivalent here are mapped, the rest
rejected together, and their multi-node launch keys answered with the torchrun line to use.

A TimeSformer or PySlowFast YAML file (or ``KEY VALUE`` override) is read as such a user means it:
every key of :data:`FOREIGN_KEYS` whose value has an equivalent becomes our key(s), with one log line
each (``TIMESFORMER.ATTENTION_TYPE -> MODEL.ATTENTION_TYPE``); keys that only restate what this
project does anyway (``TRAIN.DATASET kinetics``) are accepted with a line saying so; every key
without an equivalent is listed in one :class:`ConfigError`. ``NUM_SHARDS`` / ``SHARD_ID`` (and
PySlowFast's ``--num_shards`` / ``--shard_id`` / ``--init_method`` flags) describe a multi-node
launch, which torchrun does here: :class:`MultiNodeError` gives the exact torchrun line per node.

``TRAIN.BATCH_SIZE`` keeps our meaning (per process; TimeSformer's is per node and split over its
GPUs): the dry-run shows what it makes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
from collections.abc import Sequence
from typing import Any, Callable

from yacs.config import CfgNode

logger = logging.getLogger(__name__)

# TimeSformer's model names (MODEL.MODEL_NAME) -> our architecture; its ViT has a learned position
# table and a temporal table started at zeros.
TIMESFORMER_MODELS = {"vit_base_patch16_224": "resformer_base", "TimeSformer": "resformer_base"}
TIMESFORMER_MODEL_KEYS = ("MODEL.ARCH", "MODEL.POS_EMBED", "MODEL.TEMPORAL_EMBED_INIT")
LAUNCH_KEYS = ("NUM_SHARDS", "SHARD_ID")
RUN_NET = "tools/run_net.py"
DEFAULT_MASTER = ("NODE0_ADDRESS", 29500)


@dataclasses.dataclass(frozen=True)
class ForeignKey:
    """What a TimeSformer / PySlowFast key becomes here.

    ``ours``: our keys it sets (empty: none, the value restates our behaviour); ``convert``: its
    value -> one value per key of ``ours``; ``accepts``: whether a value has an equivalent;
    ``note``: why, for keys that set nothing.
    """

    ours: tuple[str, ...] = ()
    convert: Callable[[Any], tuple[Any, ...]] = lambda value: (value,)
    accepts: Callable[[Any], bool] = lambda value: True
    note: str = ""


def _renamed(key: str, accepts: Callable[[Any], bool] = lambda value: True) -> ForeignKey:
    return ForeignKey((key,), accepts=accepts)


def _restates(note: str, *values: Any) -> ForeignKey:
    """A key that sets nothing here: ``values`` (any value when none are given) are what we do."""
    return ForeignKey((), accepts=(lambda value: value in values) if values else (lambda value: True), note=note)


# Applied in this order (TRAIN.CHECKPOINT_FILE_PATH after TIMESFORMER.PRETRAINED_MODEL: TimeSformer
# loads the image weights at build time, then the checkpoint over them).
FOREIGN_KEYS: dict[str, ForeignKey] = {
    "TIMESFORMER.ATTENTION_TYPE": _renamed("MODEL.ATTENTION_TYPE"),
    "TIMESFORMER.PRETRAINED_MODEL": _renamed("MODEL.PRETRAINED"),
    "TRAIN.CHECKPOINT_FILE_PATH": _renamed("MODEL.PRETRAINED"),
    "GLOBAL_BATCH_SIZE": _renamed("TRAIN.GLOBAL_BATCH_SIZE"),
    "DATA.TRAIN_CROP_SIZE": ForeignKey(("DATA.TRAIN_CROP_SIZES",), convert=lambda size: ([size],)),
    "MODEL.MODEL_NAME": ForeignKey(
        TIMESFORMER_MODEL_KEYS,
        convert=lambda name: (TIMESFORMER_MODELS[name], "learned", "zeros"),
        accepts=lambda name: name in TIMESFORMER_MODELS,
    ),
    "DATA.DECODING_BACKEND": _renamed("DATA.DECODER", accepts=lambda name: name == "pyav"),
    "TRAIN.DATASET": _restates("the csv lists are Kinetics-style", "kinetics"),
    "TEST.DATASET": _restates("the csv lists are Kinetics-style", "kinetics"),
    "DATA.INPUT_CHANNEL_NUM": _restates("RGB input", [3]),
    "DATA.PATH_LABEL_SEPARATOR": _restates("lists may use a space or a comma", " ", ","),
    "MODEL.LOSS_FUNC": _restates("cross-entropy", "cross_entropy"),
    "MODEL.DROPOUT_RATE": _restates("TimeSformer's ViT does not read it; ours is MODEL.DROPOUT"),
    "SOLVER.DAMPENING": _restates("SGD without dampening", 0, 0.0),
    "BN.WEIGHT_DECAY": _restates("parameters named 'bn' get no decay", 0, 0.0),
    "TRAIN.FINETUNE": _restates("MODEL.PRETRAINED always starts a new run at epoch 0"),
    "TRAIN.CHECKPOINT_TYPE": _restates("PyTorch checkpoints", "pytorch"),
    "TEST.CHECKPOINT_TYPE": _restates("PyTorch checkpoints", "pytorch"),
    "MIXUP.ENABLED": _restates("no mixup", False),
    "LOG_MODEL_INFO": _restates("the log always has the parameters and GFLOPs"),
    "NUM_SHARDS": _restates("one node", 1),
    "SHARD_ID": _restates("one node", 0),
}
# Our keys whose value means a TimeSformer model there: dropped (MODEL.MODEL_NAME sets the model).
FOREIGN_VALUES: dict[str, tuple[Any, ...]] = {"MODEL.ARCH": ("vit",)}


@dataclasses.dataclass
class Translation:
    """A config source with its foreign keys mapped: ``values`` (our dotted keys -> values),
    ``notes`` (one line per foreign key), ``launch`` (``NUM_SHARDS`` / ``SHARD_ID`` found),
    ``unknown`` (keys that are neither ours nor mapped) and ``unsupported`` (foreign keys whose value
    has no equivalent, as ``KEY 'value'``)."""

    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    launch: dict[str, Any] = dataclasses.field(default_factory=dict)
    unknown: list[str] = dataclasses.field(default_factory=list)
    unsupported: list[str] = dataclasses.field(default_factory=list)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"A": {"B": 1}}`` -> ``{"A.B": 1}`` (an empty mapping sets nothing)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, full + "."))
        else:
            flat[full] = value
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"A.B": 1}`` -> ``{"A": {"B": 1}}``."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def translate(flat: dict[str, Any], known: Sequence[str]) -> Translation:
    """Map the foreign keys of ``flat`` (dotted keys -> decoded values) onto ours (``known``).

    Our own keys are kept (and win over a mapped value for the same key); a foreign key whose value
    has an equivalent is mapped, ``NUM_SHARDS`` / ``SHARD_ID`` are also recorded in ``launch``;
    other values of foreign keys go to ``unsupported``, keys of neither kind to ``unknown``.
    """
    known_set = set(known)
    out = Translation()
    for key, rule in FOREIGN_KEYS.items():
        if key not in flat:
            continue
        value = flat[key]
        if key in LAUNCH_KEYS:
            out.launch[key] = value
        if not rule.accepts(value):
            if key not in LAUNCH_KEYS:
                out.unsupported.append(f"{key} {value!r}")
            continue
        if not rule.ours:
            out.notes.append(f"{key} {value!r} -> nothing to set: {rule.note}")
        elif value == "" and rule.ours == ("MODEL.PRETRAINED",):
            out.notes.append(f"{key} '' -> nothing to set")
        else:
            out.values.update(zip(rule.ours, rule.convert(value)))
            out.notes.append(f"{key} -> {', '.join(rule.ours)}")
    for key, value in flat.items():
        if key in FOREIGN_KEYS:
            continue
        if key in FOREIGN_VALUES and value in FOREIGN_VALUES[key]:
            out.notes.append(f"{key} {value!r} -> nothing to set: TimeSformer's ViT, MODEL.MODEL_NAME sets ours")
        elif key in known_set:
            out.values[key] = value
        else:
            out.unknown.append(key)
    return out


def log_notes(notes: Sequence[str], source: str) -> None:
    """One warning line per mapped key (on rank 0 only: every torchrun process loads the config)."""
    if int(os.environ.get("RANK", 0)) != 0:
        return
    for note in notes:
        logger.warning("%s (%s)", note, source)


def decode_opts(opts: Sequence[Any]) -> dict[str, Any]:
    """``[KEY, VALUE, ...]`` (command-line strings) -> ``{KEY: value}`` decoded as yacs does."""
    return {str(k): CfgNode._decode_cfg_value(v) for k, v in zip(opts[::2], opts[1::2])}


# ----------------------------------------------------------------------------------------------
# Multi-node launches: torchrun's job here
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NodeLaunch:
    """A PySlowFast multi-node launch: ``NUM_SHARDS`` nodes, this one ``SHARD_ID``, meeting at
    ``init_method`` (``tcp://HOST:PORT``; ``""`` when not given)."""

    num_shards: int = 1
    shard_id: int = 0
    init_method: str = ""

    @property
    def multi_node(self) -> bool:
        return self.num_shards > 1 or self.shard_id > 0

    def master(self) -> tuple[str, int]:
        """``(host, port)`` of ``init_method``, or placeholders for node 0's address."""
        if self.init_method.startswith("tcp://"):
            host, _, port = self.init_method[len("tcp://") :].rpartition(":")
            if host and port.isdigit():
                return host, int(port)
        return DEFAULT_MASTER

    def merged(
        self, num_shards: int | None = None, shard_id: int | None = None, init_method: str | None = None
    ) -> NodeLaunch:
        """This launch with the given values (PySlowFast's flags) replacing its own."""
        return NodeLaunch(
            self.num_shards if num_shards is None else num_shards,
            self.shard_id if shard_id is None else shard_id,
            self.init_method if init_method is None else init_method,
        )


def torchrun_line(launch: NodeLaunch, nproc: int, cfg_file: str | None, opts: Sequence[Any]) -> str:
    """The torchrun command that runs ``launch``'s node: ``nproc`` processes, static rendezvous at
    node 0 (``--master_addr`` / ``--master_port``), then ``tools/run_net.py`` with the same config
    and overrides (without ``NUM_SHARDS`` / ``SHARD_ID``)."""
    host, port = launch.master()
    kept = [str(item) for pair in zip(opts[::2], opts[1::2]) if str(pair[0]) not in LAUNCH_KEYS for item in pair]
    args = (
        [
            "torchrun",
            "--nnodes",
            str(launch.num_shards),
            "--node_rank",
            str(launch.shard_id),
            "--nproc_per_node",
            str(max(nproc, 1)),
            "--master_addr",
            host,
            "--master_port",
            str(port),
            RUN_NET,
        ]
        + (["--cfg", cfg_file] if cfg_file else [])
        + kept
    )
    return " ".join(shlex.quote(arg) for arg in args)

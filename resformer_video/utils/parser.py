"""Command-line parsing shared by the tools, one convention for all: flags for paths and modes
(``--cfg FILE``, ``--checkpoint``, ``--out`` ...), then the inputs of a tool that takes some, then
trailing ``KEY VALUE`` config overrides, read by :func:`parse_flags_then_overrides`."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Callable

# A config key as written on the command line: upper-case dotted, e.g. DATA.TEST_CROP_SIZE.
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)+$")

CFG_HELP = "YAML config file (keys: resformer_video/config/defaults.py)"
OVERRIDES_HELP = (
    "config overrides as KEY VALUE pairs, e.g. DATA.NUM_FRAMES 4 (keys: resformer_video/config/defaults.py)"
)
DEPRECATED_SET = "--set"  # the old override flag of export and predict, kept for one release
CONFIG_HELP = (
    "Every config key, with its default and a one-line comment: "
    "resformer_video/config/defaults.py. A YAML config may start from another with "
    "'_BASE_: other.yaml' (relative to the file)."
)


def build_parser(
    description: str, inputs: tuple[str, str] | None = None, cfg_help: str = CFG_HELP, deprecated_set: bool = False
) -> argparse.ArgumentParser:
    """A parser with ``--cfg`` and the trailing ``KEY VALUE`` overrides; tools add their own flags
    to it and read it with :func:`parse_flags_then_overrides`. ``inputs`` (``(metavar, help)``): the
    tool also takes positional inputs (videos, folders, ...), before the overrides;
    ``deprecated_set``: ``--set KEY VALUE`` is still accepted (with a warning) for one release."""
    parser = argparse.ArgumentParser(description=description, epilog=CONFIG_HELP)
    parser.add_argument("--cfg", dest="cfg_file", default=None, help=cfg_help)
    if inputs is None:
        parser.add_argument("opts", nargs=argparse.REMAINDER, default=None, help=OVERRIDES_HELP)
    else:
        parser.add_argument("inputs", nargs="+", metavar=inputs[0], help=f"{inputs[1]}; then {OVERRIDES_HELP}")
    if deprecated_set:
        parser.add_argument(
            DEPRECATED_SET,
            dest="set_opts",
            nargs=2,
            action="append",
            default=[],
            metavar=("KEY", "VALUE"),
            help="deprecated: put KEY VALUE at the end",
        )
    return parser


def parse_flags_then_overrides(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """The tools' one reading of a command line (a :func:`build_parser` parser): flags for paths and
    modes, the inputs of a tool that takes some, then ``KEY VALUE`` config overrides, which end up
    in ``args.opts`` (after those of a deprecated ``--set KEY VALUE``, which prints one warning
    line). A ``--flag`` after the first override is a usage error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    arity = {
        option: action.nargs
        for action in parser._actions
        for option in action.option_strings
        if isinstance(action.nargs, int)
    }
    head, overrides = split_overrides(argv, arity)
    flags = [item for item in overrides if item.startswith("--")]
    if flags:
        parser.error(f"flags must come before the KEY VALUE overrides, found {flags[0]} after them")
    takes_inputs = any(action.dest == "inputs" for action in parser._actions)
    args = parser.parse_intermixed_args(head) if takes_inputs else parser.parse_args(head)
    set_opts = [item for pair in getattr(args, "set_opts", []) for item in pair]
    if set_opts:
        print(
            f"warning: {DEPRECATED_SET} KEY VALUE is deprecated; put KEY VALUE at the end of the command",
            file=sys.stderr,
        )
    args.opts = set_opts + list(getattr(args, "opts", None) or []) + overrides
    return args


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``--cfg FILE [KEY VALUE ...]``."""
    return parse_flags_then_overrides(build_parser(description), argv)


def parse_run_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``tools/run_net.py``'s arguments: ``--cfg FILE [--dry-run] [KEY VALUE ...]``, plus PySlowFast's
    launch flags ``--init_method``, ``--num_shards``, ``--shard_id`` (multi-node launches are
    torchrun's here: they get the torchrun line to use)."""
    parser = build_parser(description)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the effective recipe (batch, steps, lr, weight decay, views, "
        "weights, GFLOPs) and exit; the data lists are only counted",
    )
    parser.add_argument(
        "--init_method",
        default=None,
        help="PySlowFast's rendezvous (tcp://HOST:PORT); with --num_shards > 1 the "
        "error gives the equivalent torchrun line",
    )
    parser.add_argument("--num_shards", type=int, default=None, help="PySlowFast's number of nodes (see --init_method)")
    parser.add_argument(
        "--shard_id", type=int, default=None, help="PySlowFast's index of this node (see --init_method)"
    )
    return parse_flags_then_overrides(parser, argv)


def split_overrides(items: Sequence[str], arity: dict[str, int] | None = None) -> tuple[list[str], list[str]]:
    """Split ``items`` into what comes before the trailing ``KEY VALUE`` overrides and the overrides:
    they start at the first item that looks like a config key (``SECTION.KEY``) and is not a file.
    ``arity`` (option -> number of values, e.g. ``{"--set": 2}``): values of those options are
    never taken for the start of the overrides."""
    arity, skip = arity or {}, 0
    for i, item in enumerate(items):
        if skip:
            skip -= 1
        elif item in arity:
            skip = arity[item]
        elif CONFIG_KEY.match(item) and not os.path.exists(item):
            return list(items[:i]), list(items[i:])
    return list(items), []


def comma_choices(choices: Sequence[str], what: str) -> Callable[[str], list[str]]:
    """An argparse ``type``: a comma-separated list of at least one of ``choices`` (``what`` names
    them in the error, e.g. ``splits``)."""

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items or any(item not in choices for item in items):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} from {list(choices)}, got {text!r}")
        return items

    return parse


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value

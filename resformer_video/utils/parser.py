"""Command-line parsing shared by the tools: ``--cfg FILE`` and trailing ``KEY VALUE`` overrides."""

from __future__ import annotations

import argparse
import os
import re
from typing import Callable, List, Optional, Sequence, Tuple

# A config key as written on the command line: upper-case dotted, e.g. DATA.TEST_CROP_SIZE.
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)+$")

CONFIG_HELP = ("Every config key, with its default and a one-line comment: "
               "resformer_video/config/defaults.py. A YAML config may start from another with "
               "'_BASE_: other.yaml' (relative to the file).")


def build_parser(description: str) -> argparse.ArgumentParser:
    """A parser with ``--cfg`` and the trailing ``opts``; tools add their own flags to it."""
    parser = argparse.ArgumentParser(description=description, epilog=CONFIG_HELP)
    parser.add_argument("--cfg", dest="cfg_file", default=None,
                        help="YAML config file (keys: resformer_video/config/defaults.py)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=None,
                        help="config overrides as KEY VALUE pairs, e.g. DATA.NUM_FRAMES 4 "
                             "(keys: resformer_video/config/defaults.py)")
    return parser


def parse_flags_then_overrides(parser: argparse.ArgumentParser,
                               argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """``parser.parse_args(argv)`` for a :func:`build_parser` parser; a ``--flag`` after the first
    ``KEY VALUE`` override (which argparse would take as an override) is a usage error."""
    args = parser.parse_args(argv)
    flags = [opt for opt in args.opts if opt.startswith("--")]
    if flags:
        parser.error(f"flags must come before the KEY VALUE overrides, found {flags[0]} after them")
    return args


def parse_args(description: str, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``--cfg FILE [KEY VALUE ...]``."""
    return build_parser(description).parse_args(argv)


def parse_run_args(description: str, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """``tools/run_net.py``'s arguments: ``--cfg FILE [--dry-run] [KEY VALUE ...]``, plus PySlowFast's
    launch flags ``--init_method``, ``--num_shards``, ``--shard_id`` (multi-node launches are
    torchrun's here: they get the torchrun line to use)."""
    parser = build_parser(description)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the effective recipe (batch, steps, lr, weight decay, views, "
                             "weights, GFLOPs) and exit; the data lists are only counted")
    parser.add_argument("--init_method", default=None,
                        help="PySlowFast's rendezvous (tcp://HOST:PORT); with --num_shards > 1 the "
                             "error gives the equivalent torchrun line")
    parser.add_argument("--num_shards", type=int, default=None,
                        help="PySlowFast's number of nodes (see --init_method)")
    parser.add_argument("--shard_id", type=int, default=None,
                        help="PySlowFast's index of this node (see --init_method)")
    return parse_flags_then_overrides(parser, argv)


def split_overrides(items: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Split positional ``items`` into inputs and trailing ``KEY VALUE`` overrides: the overrides
    start at the first item that looks like a config key (``SECTION.KEY``) and is not a file."""
    for i, item in enumerate(items):
        if CONFIG_KEY.match(item) and not os.path.exists(item):
            return list(items[:i]), list(items[i:])
    return list(items), []


def comma_choices(choices: Sequence[str], what: str) -> Callable[[str], List[str]]:
    """An argparse ``type``: a comma-separated list of at least one of ``choices`` (``what`` names
    them in the error, e.g. ``splits``)."""
    def parse(text: str) -> List[str]:
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

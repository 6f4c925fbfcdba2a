"""Command-line parsing shared by the tools: ``--cfg FILE`` and trailing ``KEY VALUE`` overrides."""

from __future__ import annotations

import argparse
from typing import Optional, Sequence


def build_parser(description: str) -> argparse.ArgumentParser:
    """A parser with ``--cfg`` and the trailing ``opts``; tools add their own flags to it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cfg", dest="cfg_file", default=None, help="YAML config file")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=None,
                        help="config overrides as KEY VALUE pairs, e.g. DATA.NUM_FRAMES 4")
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

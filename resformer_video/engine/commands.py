"""What ``tools/check_videos.py`` and ``tools/model_info.py`` do once their arguments are parsed: load
the config, report on its dataset or model (no training), and return the tool's exit code; a bad
config, list or decoder is one ``error: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

import torch

from resformer_video.config import ConfigError, load_config
from resformer_video.datasets.check import check_dataset
from resformer_video.datasets.decoders import DecoderUnavailableError
from resformer_video.datasets.lists import DatasetListError
from resformer_video.models.build import model_info_lines


def check_videos_command(args: argparse.Namespace) -> int:
    """``tools/check_videos.py``: :func:`~resformer_video.datasets.check.check_dataset` on the config
    of ``args`` (``--splits``, ``--workers``, ``--report``). Exit code 0 all decode, 1 some failed,
    2 a bad config, list or decoder or a report that cannot be written."""
    try:
        return check_dataset(load_config(args.cfg_file, args.opts), args.splits, args.workers, args.report)
    except (ConfigError, DatasetListError, DecoderUnavailableError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def model_info_command(args: argparse.Namespace) -> int:
    """``tools/model_info.py``: print the configured model's parameters and its GFLOPs at each of
    ``args.resolutions`` (default ``DATA.TEST_CROP_SIZE``). Exit code 0, or 2 on a bad config."""
    try:
        cfg = load_config(args.cfg_file, args.opts)
        torch.set_num_threads(min(2, torch.get_num_threads()))
        lines = model_info_lines(cfg, args.resolutions or [cfg.DATA.TEST_CROP_SIZE])
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0

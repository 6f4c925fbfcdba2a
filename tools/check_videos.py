#!/usr/bin/env python
"""Check that every video of a dataset's splits decodes, before a long training run.

Example (flags first, then KEY VALUE config overrides):
    python tools/check_videos.py --cfg configs/k400_resformer_b.yaml --workers 8 \
        DATA.PATH_TO_DATA_DIR /data/k400

Each video is read as training reads it (DATA.DECODER, then DATA.DECODER_FALLBACK) and its first,
middle and last frames are decoded; the report says which decoder read it. Prints
a summary per split and the failures, writes a JSON report (every video's frames, fps, size or
error; by default ``video_check.json`` next to the lists, in DATA.PATH_TO_DATA_DIR, else
``--report PATH``) and exits with 1 when a video failed, 2 on a bad config or list. Training would
skip and count such videos; this finds them up front.
"""

import argparse
import os
import sys
import time
from typing import List, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from resformer_video.config import ConfigError, load_config  # noqa: E402
from resformer_video.datasets.check import (VideoCheck, check_videos, default_report_path,  # noqa: E402
                                            report_folder_problem, summarize, write_report)
from resformer_video.datasets.kinetics import config_decoders, split_videos  # noqa: E402
from resformer_video.datasets.decoders import DecoderUnavailableError  # noqa: E402
from resformer_video.datasets.lists import SPLITS, DatasetListError  # noqa: E402
from resformer_video.utils.parser import build_parser, parse_flags_then_overrides  # noqa: E402

SHOWN_FAILURES = 20


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = build_parser(__doc__.splitlines()[0])
    parser.add_argument("--splits", type=_splits, default=list(SPLITS),
                        help="comma-separated splits to check (default train,val,test)")
    parser.add_argument("--workers", type=int, default=0, help="decoding processes (0: this one)")
    parser.add_argument("--report", default=None,
                        help="JSON report path (default: video_check.json in DATA.PATH_TO_DATA_DIR, "
                             "next to the lists)")
    return parse_flags_then_overrides(parser, argv)


def _splits(text: str) -> List[str]:
    splits = [item.strip() for item in text.split(",") if item.strip()]
    bad = [split for split in splits if split not in SPLITS]
    if bad or not splits:
        raise argparse.ArgumentTypeError(f"expected comma-separated splits from {list(SPLITS)}, got {text!r}")
    return splits


def check_split(paths: List[str], backends: Sequence[str], workers: int, split: str) -> List[VideoCheck]:
    """Check ``paths``, printing progress to stderr about every 5%."""
    results: List[VideoCheck] = []
    step, start = max(1, len(paths) // 20), time.perf_counter()
    for result in check_videos(paths, backends, workers):
        results.append(result)
        if len(results) % step == 0 or len(results) == len(paths):
            failed = sum(not r.ok for r in results)
            print(f"{split}: {len(results)}/{len(paths)} checked, {failed} failed, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.cfg_file, args.opts)
        report = args.report or default_report_path(cfg.DATA.PATH_TO_DATA_DIR)
        problem = report_folder_problem(report)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        lists = {split: split_videos(cfg, split).paths for split in args.splits}
        checked = {split: check_split(paths, config_decoders(cfg), args.workers, split)
                   for split, paths in lists.items()}
    except (ConfigError, DatasetListError, DecoderUnavailableError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summaries = [summarize(results, split) for split, results in checked.items()]
    for summary in summaries:
        print(f"{summary['split']}: {summary['ok']} of {summary['videos']} videos decode, "
              f"{len(summary['failed'])} failed")
        for failure in summary["failed"][:SHOWN_FAILURES]:
            print(f"  {failure['error']}")
        if len(summary["failed"]) > SHOWN_FAILURES:
            print(f"  ... and {len(summary['failed']) - SHOWN_FAILURES} more (see the report)")
    write_report(report, config_decoders(cfg), checked, summaries)
    print(f"report: {report}")
    return 1 if any(summary["failed"] for summary in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())

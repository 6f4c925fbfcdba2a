"""Check that every video of a dataset decodes, before a long training run finds out.

:func:`check_video` opens one file with the configured backend and decodes its first, middle and
last frames (grid indices, as training reads them); :func:`check_videos` does that for many files
in worker processes, yielding each result as it is ready. ``tools/check_videos.py`` runs it over
the splits of a config and writes a report.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from yacs.config import CfgNode

from resformer_video.datasets.decoders import VideoDecodeError, import_backend, open_video
from resformer_video.datasets.lists import load_split


@dataclass
class VideoCheck:
    """What one file gave: its metadata when it decodes, else the one-line error."""

    path: str
    ok: bool
    error: str = ""
    num_frames: int = 0
    fps: float = 0.0
    duration_s: float = 0.0
    height: int = 0
    width: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def check_video(path: str, backend: str = "decord") -> VideoCheck:
    """Open ``path`` with ``backend`` and decode its first, middle and last frames."""
    try:
        with open_video(path, backend) as reader:
            last = reader.num_frames - 1
            frames = reader.get_frames([0, last // 2, last])
            return VideoCheck(path, True, "", reader.num_frames, reader.fps, reader.duration,
                              int(frames.shape[1]), int(frames.shape[2]))
    except VideoDecodeError as err:
        return VideoCheck(path, False, str(err))


def _check_one(job: Tuple[str, str]) -> VideoCheck:
    return check_video(*job)


def check_videos(paths: Iterable[str], backend: str = "decord",
                 workers: int = 0) -> Iterator[VideoCheck]:
    """:func:`check_video` of every path, in input order, with ``workers`` processes (0: here).

    Raises:
        DecoderUnavailableError: the backend's package cannot be imported (before any file is read).
    """
    jobs = [(path, backend) for path in paths]
    if jobs:  # fail once, clearly, if the backend itself is missing
        import_backend(backend)
    if workers <= 0:
        yield from map(_check_one, jobs)
        return
    context = multiprocessing.get_context("spawn")  # decoders are not fork-safe
    with context.Pool(workers) as pool:
        yield from pool.imap(_check_one, jobs, chunksize=4)


def split_paths(cfg: CfgNode, split: str) -> List[str]:
    """The video paths of ``split``'s list as the dataset reads it (``DATA.*`` keys).

    Raises:
        DatasetListError: a missing or malformed list (names ``file:line``).
    """
    return load_split(cfg.DATA.PATH_TO_DATA_DIR, split, cfg.DATA.LAYOUT, cfg.DATA.PATH_PREFIX,
                      cfg.DATA.CLASS_NAMES_FILE, cfg.MODEL.NUM_CLASSES).paths


def summarize(results: Iterable[VideoCheck], split: Optional[str] = None) -> Dict[str, Any]:
    """Counts and the failures of ``results``: ``{"split", "videos", "ok", "failed": [...]}``."""
    results = list(results)
    failed = [{"path": r.path, "error": r.error} for r in results if not r.ok]
    return {"split": split, "videos": len(results), "ok": len(results) - len(failed), "failed": failed}

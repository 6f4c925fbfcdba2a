"""Check that every video of a dataset decodes, before a long training run finds out.

:func:`check_video` reads one file as training does - ``DATA.DECODER``, then
``DATA.DECODER_FALLBACK`` - and decodes its first, middle and last frames; :func:`check_videos`
does that for many files in worker processes, yielding each result in input order.
``tools/check_videos.py`` runs it over the lists the datasets of a config read
(:func:`~resformer_video.datasets.kinetics.split_videos`) and writes a report, by default
``video_check.json`` next to the lists it checked (:func:`default_report_path`).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Callable, TypeVar

from resformer_video.datasets.decoders import VideoDecodeError, VideoReader, import_backend, read_video
from resformer_video.datasets.kinetics import config_decoders, split_videos
from resformer_video.utils.atomic import write_json

REPORT_NAME = "video_check.json"
SHOWN_FAILURES = 20  # failures printed per split (the report has them all)

J = TypeVar("J")
R = TypeVar("R")


@dataclass
class VideoCheck:
    """What one file gave: the backend that read it and its metadata, else the one-line error."""

    path: str
    ok: bool
    error: str = ""
    backend: str = ""
    num_frames: int = 0
    fps: float = 0.0
    duration_s: float = 0.0
    height: int = 0
    width: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_video(path: str, backends: Sequence[str] = ("decord",)) -> VideoCheck:
    """Read ``path`` with the first of ``backends`` that can, decoding its first, middle and last
    frames."""

    def probe(reader: VideoReader) -> VideoCheck:
        last = reader.num_frames - 1
        frames = reader.get_frames([0, last // 2, last])
        return VideoCheck(
            path,
            True,
            "",
            reader.backend,
            reader.num_frames,
            reader.fps,
            reader.duration,
            int(frames.shape[1]),
            int(frames.shape[2]),
        )

    try:
        return read_video(path, backends, probe)
    except VideoDecodeError as err:
        return VideoCheck(path, False, str(err))


def _check_one(job: tuple[str, tuple[str, ...]]) -> VideoCheck:
    return check_video(*job)


def check_videos(paths: Iterable[str], backends: Sequence[str] = ("decord",), workers: int = 0) -> Iterator[VideoCheck]:
    """:func:`check_video` of every path, in input order, with ``workers`` processes (0: here).

    Raises:
        DecoderUnavailableError: a backend's package cannot be imported (before any file is read).
    """
    jobs = [(path, tuple(backends)) for path in paths]
    for backend in backends if jobs else ():  # fail once, clearly, if a backend is missing
        import_backend(backend)
    yield from map_in_workers(_check_one, jobs, workers)


def map_in_workers(func: Callable[[J], R], jobs: Sequence[J], workers: int, chunksize: int = 4) -> Iterator[R]:
    """``func(job)`` of every job, in input order, in ``workers`` processes (0: in this one).
    Processes are spawned, not forked (decoders are not fork-safe), so ``func`` and the jobs must
    be picklable (a module-level function)."""
    if workers <= 0:
        yield from map(func, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        yield from pool.imap(func, jobs, chunksize=chunksize)


def summarize(results: Iterable[VideoCheck], split: str | None = None) -> dict[str, Any]:
    """Counts and the failures of ``results``: ``{"split", "videos", "ok", "failed": [...]}``."""
    results = list(results)
    failed = [{"path": r.path, "error": r.error} for r in results if not r.ok]
    return {"split": split, "videos": len(results), "ok": len(results) - len(failed), "failed": failed}


def default_report_path(data_dir: str) -> str:
    """Where the report of the lists in ``data_dir`` goes by default: ``data_dir/video_check.json``
    (next to what was checked, not the config's ``OUTPUT_DIR``)."""
    return os.path.join(data_dir or ".", REPORT_NAME)


def report_folder_problem(path: str) -> str | None:
    """Why the report cannot be written to ``path`` (its folder exists but is not writable), else
    None; checked before the videos so that a long check is not lost at the end."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(folder) and not os.access(folder, os.W_OK):
        return f"cannot write the report {path}: {folder} is not writable (pass --report PATH)"
    return None


def write_report(
    path: str, backends: Sequence[str], checked: dict[str, list[VideoCheck]], summaries: list[dict[str, Any]]
) -> None:
    """The JSON report (atomically): the decoders, the split summaries and every video's result."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    videos = {split: [r.to_dict() for r in results] for split, results in checked.items()}
    write_json(path, {"decoders": list(backends), "summaries": summaries, "videos": videos})


def check_split(paths: list[str], backends: Sequence[str], workers: int, split: str) -> list[VideoCheck]:
    """Check ``paths``, printing progress to stderr about every 5%."""
    results: list[VideoCheck] = []
    step, start = max(1, len(paths) // 20), time.perf_counter()
    for result in check_videos(paths, backends, workers):
        results.append(result)
        if len(results) % step == 0 or len(results) == len(paths):
            failed = sum(not r.ok for r in results)
            print(
                f"{split}: {len(results)}/{len(paths)} checked, {failed} failed, {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    return results


def print_summary(summary: dict[str, Any]) -> None:
    """One split's counts and its first :data:`SHOWN_FAILURES` failures, on stdout."""
    print(f"{summary['split']}: {summary['ok']} of {summary['videos']} videos decode, {len(summary['failed'])} failed")
    for failure in summary["failed"][:SHOWN_FAILURES]:
        print(f"  {failure['error']}")
    if len(summary["failed"]) > SHOWN_FAILURES:
        print(f"  ... and {len(summary['failed']) - SHOWN_FAILURES} more (see the report)")


def check_dataset(cfg: Any, splits: Sequence[str], workers: int = 0, report: str | None = None) -> int:
    """``tools/check_videos.py`` on a loaded config: decode every video of the ``splits`` lists of
    ``cfg``'s dataset with its decoders, print a summary per split and write the report (``report``,
    default :func:`default_report_path`). Returns the exit code: 0 all decode, 1 some failed, 2 the
    report cannot be written (one ``error:`` line, before any video is checked).

    Raises:
        DatasetListError, DecoderUnavailableError, FileNotFoundError: a bad list or decoder.
    """
    report = report or default_report_path(cfg.DATA.PATH_TO_DATA_DIR)
    problem = report_folder_problem(report)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    lists = {split: split_videos(cfg, split).paths for split in splits}
    checked = {split: check_split(paths, config_decoders(cfg), workers, split) for split, paths in lists.items()}
    summaries = [summarize(results, split) for split, results in checked.items()]
    for summary in summaries:
        print_summary(summary)
    write_report(report, config_decoders(cfg), checked, summaries)
    print(f"report: {report}")
    return 1 if any(summary["failed"] for summary in summaries) else 0

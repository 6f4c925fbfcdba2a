"""From the official Kinetics-400 download to our lists: ``tools/prepare_kinetics.py``.

The release is a folder per split of clips named ``{youtube_id}_{start:06d}_{end:06d}.mp4`` (some
copies: ``{youtube_id}.mp4``; flat or in class sub-folders) and annotation CSVs with the columns
``label,youtube_id,time_start,time_end,split`` (some releases' test CSV has no ``label``)::

    ROOT/train/ ROOT/val/ ROOT/test/                  # the videos (val also as validate/validation)
    ROOT/annotations/train.csv val.csv test.csv       # or kinetics[-400|400]_{split}.csv, --annotations

:func:`prepare_kinetics` maps each annotation's class exactly to its label in the standard order
(the shipped ``kinetics400_classnames.txt``; an unknown class is an error naming it), finds each
annotated video, checks that it decodes (as training reads it) and writes into ``OUT``:

    OUT/train.csv val.csv test.csv     # "path label" lines of the readable videos only
    OUT/test_videos.txt                # instead of test.csv when the test CSV has no labels
    OUT/prepare_report.csv             # every missing and unreadable video, per split, with why

With ``resize`` each found video is re-encoded once (never in place: ``OUT/videos/{split}/``) with
:class:`~resformer_video.datasets.encoding.VideoWriter`: short side ``short_side`` (never
upscaled, even sizes for yuv420p), a key frame exactly every ``gop`` frames (so a clip decodes
from a near key frame, not from one up to 250 frames back), x264's ``fastdecode`` tuning (cheaper
to decode), each frame's timestamp kept (frame rate and length kept), no audio. Each output is
written under a temporary name and renamed when complete, so a run killed half-way is resumed by
running it again: finished outputs are skipped.
A video that cannot be read is reported and left out; it never stops the run.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

from resformer_video.datasets.check import check_videos, map_in_workers
from resformer_video.datasets.decoders import (
    DEFAULT_DECODERS,
    DecoderUnavailableError,
    VideoDecodeError,
    decoder_chain,
    open_video,
)
from resformer_video.datasets.encoding import VideoWriter, x264_options
from resformer_video.datasets.lists import SPLITS, VIDEO_EXTENSIONS, kinetics400_class_names
from resformer_video.utils.atomic import atomic_write, temporary_files_of
from resformer_video.utils.logging import setup_logging

logger = logging.getLogger(__name__)

# Annotation CSV names tried in the annotations folder, and split folder names tried in the root.
ANNOTATION_NAMES = ("{split}.csv", "kinetics_{split}.csv", "kinetics-400_{split}.csv", "kinetics400_{split}.csv")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validate", "validation"), "test": ("test",)}
REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end")
REPORT_FILE = "prepare_report.csv"
REPORT_COLUMNS = ("split", "youtube_id", "time_start", "time_end", "label", "status", "path", "error")
UNLABELLED_LIST = "{split}_videos.txt"  # one path per line (tools/extract_features.py reads it)
RESIZED_FOLDER = "videos"
DEFAULT_SHORT_SIDE, DEFAULT_GOP, DEFAULT_CRF, DEFAULT_PRESET = 320, 16, 23, "veryfast"
# x264 --tune fastdecode: decoding a 340x256 file costs about 0.6x (decord) / 0.5x (torchcodec) the
# CPU time, for about 1.36x the bytes (docs/PERFORMANCE.md); "" for x264's default.
DEFAULT_TUNE = "fastdecode"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
X264_TUNES = ("fastdecode", "film", "animation", "grain", "stillimage", "none")  # none: x264's default
RESIZE_DECODER = "pyav"  # reads every frame with its timestamp (PyAVReader.iter_frames)
TRAIN_CONFIG = "configs/k400_resformer_b.yaml"
PROGRESS_EVERY_S = 30.0


class PrepareError(ValueError):
    """A user error in the download's layout or annotations (missing folder or CSV, bad row,
    unknown class); the message names the file."""


@dataclass(frozen=True)
class Annotation:
    """One annotated clip: its YouTube id, start and end second, label (None: unlabelled) and class."""

    youtube_id: str
    time_start: int
    time_end: int
    label: int | None
    class_name: str = ""

    @property
    def clip_name(self) -> str:
        """The release's file name without extension: ``{youtube_id}_{start:06d}_{end:06d}``."""
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}"


@dataclass(frozen=True)
class ResizeSettings:
    """How ``--resize`` re-encodes: short side in pixels (never upscaled), frames between key
    frames, x264 constant quality, preset and tune ("": none)."""

    short_side: int = DEFAULT_SHORT_SIDE
    gop: int = DEFAULT_GOP
    crf: int = DEFAULT_CRF
    preset: str = DEFAULT_PRESET
    tune: str = DEFAULT_TUNE


@dataclass
class SplitReport:
    """What one split gave: annotated videos, found / missing / unreadable, re-encoded in this run
    and reused from an earlier one, and the list written (readable videos only)."""

    split: str
    annotated: int = 0
    found: int = 0
    missing: int = 0
    unreadable: int = 0
    reencoded: int = 0
    reused: int = 0
    listed: int = 0
    labelled: bool = True
    list_path: str = ""
    problems: list[dict[str, str]] = field(default_factory=list)


def annotation_csv(annotations_dir: str, split: str) -> str:
    """The annotation CSV of ``split`` in ``annotations_dir`` (the first of :data:`ANNOTATION_NAMES`)."""
    names = [pattern.format(split=split) for pattern in ANNOTATION_NAMES]
    for name in names:
        if os.path.isfile(os.path.join(annotations_dir, name)):
            return os.path.join(annotations_dir, name)
    raise PrepareError(
        f"{annotations_dir}: no annotation CSV for the {split} split (looked for "
        f"{', '.join(names)}); set --annotations, or leave the split out with --splits"
    )


def split_folder(root: str, split: str) -> str:
    """The folder of ``split``'s videos in ``root`` (the first of :data:`SPLIT_FOLDERS`)."""
    for name in SPLIT_FOLDERS[split]:
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    raise PrepareError(f"{root}: no {split} video folder (looked for {', '.join(SPLIT_FOLDERS[split])})")


def _seconds(text: str, where: str, column: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise PrepareError(f"{where}: {column} {text!r} is not a number of seconds") from None
    if value != int(value) or value < 0:
        raise PrepareError(f"{where}: {column} {text!r} is not a whole number of seconds")
    return int(value)


def read_annotations(path: str, class_index: dict[str, int]) -> tuple[list[Annotation], bool]:
    """The clips of one annotation CSV and whether it has labels (a test CSV may have none).

    Class names (quoted or not) are mapped exactly, after stripping surrounding spaces, to
    ``class_index``. Raises :class:`PrepareError` naming the file for missing columns, a bad row,
    or classes not in ``class_index`` (all of them, each with its first line)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise PrepareError(
                f"{path}: expected the columns label,youtube_id,time_start,time_end,split "
                f"(label optional); missing {', '.join(missing)} (found {columns})"
            )
        reader.fieldnames = columns
        rows = [(reader.line_num, row) for row in reader]
    labelled = "label" in columns and any((row.get("label") or "").strip() for _, row in rows)
    clips, unknown = [], {}
    for line, row in rows:
        where = f"{path}:{line}"
        name = (row.get("label") or "").strip() if labelled else ""
        if labelled and name not in class_index:
            unknown.setdefault(name, line)
            continue
        clips.append(
            Annotation(
                row["youtube_id"].strip(),
                _seconds(row["time_start"], where, "time_start"),
                _seconds(row["time_end"], where, "time_end"),
                class_index[name] if labelled else None,
                name,
            )
        )
    if unknown:
        listed = ", ".join(f"{name!r} (line {line})" for name, line in unknown.items())
        raise PrepareError(
            f"{path}: {len(unknown)} unknown class(es), not among the "
            f"{len(class_index)} Kinetics-400 class names: {listed}"
        )
    return clips, labelled


def index_videos(folder: str) -> dict[str, str]:
    """Video files under ``folder`` (recursively: flat or class sub-folders) by name without
    extension, as paths relative to ``folder`` (the first in sorted order when a name repeats)."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                found.setdefault(stem, os.path.relpath(os.path.join(dirpath, name), folder))
    return found


def find_video(clip: Annotation, videos: dict[str, str]) -> str | None:
    """The file of ``clip``: ``{youtube_id}_{start:06d}_{end:06d}``, else ``{youtube_id}``, else None."""
    return videos.get(clip.clip_name) or videos.get(clip.youtube_id)


def output_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(height, width)`` scaled so that the short side is ``short_side`` (never upscaled), each
    rounded to an even number (yuv420p)."""
    scale = min(1.0, short_side / min(height, width))
    return tuple(max(2, int(round(size * scale / 2)) * 2) for size in (height, width))


def _remove_leftovers(path: str) -> None:
    """Delete temporary files a killed run left for ``path`` (``utils.atomic``'s ``.NAME.tmp.PID.mp4``)."""
    for leftover in temporary_files_of(path):
        os.remove(leftover)


def reencode_video(src: str, dst: str, settings: ResizeSettings = ResizeSettings()) -> int:
    """Re-encode ``src`` into the H.264 mp4 ``dst`` (written under a temporary name, then renamed):
    every frame, upright, with its timestamp, short side ``settings.short_side`` (never upscaled),
    a key frame exactly every ``settings.gop`` frames, no audio. Returns the frames written.

    Raises:
        VideoDecodeError: ``src`` is missing, not a video, or fails to decode (nothing is left at ``dst``).
    """

    def scale(height: int, width: int) -> tuple[int, int]:
        return output_size(height, width, settings.short_side)

    def write(tmp: str) -> None:
        nonlocal frames
        with open_video(src, RESIZE_DECODER) as reader:
            writer, last = None, Fraction(-1)
            try:
                for rgb, seconds in reader.iter_frames(scale):
                    if writer is None:
                        options = x264_options(
                            settings.crf, settings.gop, settings.preset, scenecut=False, tune=settings.tune
                        )
                        writer = VideoWriter(
                            tmp,
                            reader.fps,
                            rgb.shape[1],
                            rgb.shape[0],
                            options=options,
                            time_base=reader.time_base,
                            container_format="mp4",
                        )
                    last = max(seconds, last + reader.time_base)  # strictly increasing for the encoder
                    writer.write(rgb, last)
                    frames += 1
            finally:
                if writer is not None:
                    writer.close()
        if not frames:
            raise VideoDecodeError(f"{src}: no frames decoded")

    frames = 0
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    _remove_leftovers(dst)
    atomic_write(dst, write)
    return frames


def _reencode_job(job: tuple[str, str, ResizeSettings]) -> tuple[str, str]:
    """(``"reencoded"`` | ``"reused"`` | ``"unreadable"``, error) of one video; never raises for a
    bad video, so one never stops the run."""
    src, dst, settings = job
    if os.path.isfile(dst):
        _remove_leftovers(dst)
        return "reused", ""
    try:
        reencode_video(src, dst, settings)
    except VideoDecodeError as err:
        return "unreadable", str(err)
    except Exception as err:  # an encoder or file-system failure on one video is reported, too
        return "unreadable", f"{src}: re-encoding failed ({type(err).__name__}: {err})"
    return "reencoded", ""


def _progress(
    results: Iterator[tuple[str, str]], total: int, description: str, show: bool
) -> Iterator[tuple[str, str]]:
    """``results`` ((status, error) pairs), printing a progress line to stderr when ``show``: about
    every 5 % and at least every :data:`PROGRESS_EVERY_S` seconds, with failures, rate and time left."""
    start = last = time.perf_counter()
    failed = 0
    for done, result in enumerate(results, start=1):
        failed += result[0] == "unreadable"
        now = time.perf_counter()
        if show and (done % max(1, total // 20) == 0 or done == total or now - last >= PROGRESS_EVERY_S):
            last, rate = now, done / max(now - start, 1e-9)
            print(
                f"{description}: {done}/{total} ({100 * done // total}%), {failed} unreadable, "
                f"{now - start:.0f} s, {rate:.1f} videos/s, about {(total - done) / rate:.0f} s left",
                file=sys.stderr,
                flush=True,
            )
        yield result


def _problem(split: str, clip: Annotation, status: str, path: str, error: str) -> dict[str, str]:
    return {
        "split": split,
        "youtube_id": clip.youtube_id,
        "time_start": str(clip.time_start),
        "time_end": str(clip.time_end),
        "label": clip.class_name,
        "status": status,
        "path": path,
        "error": error,
    }


def _outcomes(
    found: list[tuple[Annotation, str]],
    root_folder: str,
    out: str,
    split: str,
    resize: ResizeSettings | None,
    decoders: Sequence[str],
    workers: int,
    progress: bool,
) -> Iterator[tuple[Annotation, str, str, str]]:
    """(clip, list path relative to the prefix, status, error) of every found video: re-encoded
    into ``out/videos/split`` with ``resize``, else checked with ``decoders``."""
    sources = [os.path.join(root_folder, rel) for _, rel in found]
    if resize is not None:
        rels = [os.path.join(RESIZED_FOLDER, split, f"{clip.clip_name}.mp4") for clip, _ in found]
        jobs = [(src, os.path.join(out, rel), resize) for src, rel in zip(sources, rels)]
        results = map_in_workers(_reencode_job, jobs, workers, chunksize=1)
        description = f"{split}: re-encode"
    else:
        rels = [os.path.relpath(src, os.path.dirname(root_folder)) for src in sources]
        results = (
            (("ok" if check.ok else "unreadable"), check.error) for check in check_videos(sources, decoders, workers)
        )
        description = f"{split}: check"
    for (clip, _), rel, (status, error) in zip(found, rels, _progress(results, len(found), description, progress)):
        yield clip, rel, status, error


def write_list(path: str, entries: Sequence[tuple[str, int | None]]) -> None:
    """``path label`` lines (or bare paths for unlabelled entries), atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(f"{rel} {label}\n" if label is not None else f"{rel}\n" for rel, label in entries)

    atomic_write(path, write)


def write_report(path: str, problems: Sequence[dict[str, str]]) -> None:
    """The missing and unreadable videos as a CSV (:data:`REPORT_COLUMNS`), atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(problems)

    atomic_write(path, write)


def prepare_split(
    split: str,
    clips: list[Annotation],
    labelled: bool,
    root_folder: str,
    out: str,
    resize: ResizeSettings | None,
    decoders: Sequence[str],
    workers: int,
    progress: bool,
) -> SplitReport:
    """Find, check (or re-encode) and list the videos of one split; see :func:`prepare_kinetics`."""
    report = SplitReport(split, annotated=len(clips), labelled=labelled)
    videos = index_videos(root_folder)
    found = []
    for clip in clips:
        rel = find_video(clip, videos)
        if rel is None:
            report.problems.append(
                _problem(
                    split,
                    clip,
                    "missing",
                    "",
                    f"no file named {clip.clip_name}.* or {clip.youtube_id}.* in {root_folder}",
                )
            )
        else:
            found.append((clip, rel))
    report.found, report.missing = len(found), len(clips) - len(found)
    entries = []
    for clip, rel, status, error in _outcomes(found, root_folder, out, split, resize, decoders, workers, progress):
        if status == "unreadable":
            report.unreadable += 1
            report.problems.append(_problem(split, clip, status, rel, error))
            continue
        report.reencoded += status == "reencoded"
        report.reused += status == "reused"
        entries.append((rel, clip.label))
    report.listed = len(entries)
    name = f"{split}.csv" if labelled else UNLABELLED_LIST.format(split=split)
    report.list_path = os.path.join(out, name)
    write_list(report.list_path, entries)
    logger.info(
        "%s: %d annotated, %d found, %d missing, %d unreadable%s; %d listed in %s",
        split,
        report.annotated,
        report.found,
        report.missing,
        report.unreadable,
        f", {report.reencoded} re-encoded, {report.reused} from an earlier run" if resize else "",
        report.listed,
        report.list_path,
    )
    return report


def prepare_kinetics(
    root: str,
    out: str,
    annotations_dir: str = "",
    splits: Sequence[str] = SPLITS,
    resize: ResizeSettings | None = None,
    workers: int = 0,
    decoders: Sequence[str] = (),
    progress: bool = True,
) -> list[SplitReport]:
    """Lists (and with ``resize`` re-encoded videos) of a Kinetics-400 download in ``out``.

    Args:
        root: the download: ``root/{split}/`` video folders (see the module docstring).
        out: output folder (created); ``root`` is only read.
        annotations_dir: folder of the annotation CSVs (default ``root/annotations``, else ``root``).
        splits: which of train / val / test to prepare.
        resize: re-encode into ``out/videos`` (the lists then point there), else list the originals.
        workers: processes that check or re-encode (0: this one).
        decoders: the decoders training uses, to check the originals (default ``DATA.DECODER``,
            then ``DATA.DECODER_FALLBACK``).
        progress: print progress lines (stderr) while checking or re-encoding.

    Every annotation CSV is read (and every class checked) before any video is touched. Writes
    ``out/{split}.csv`` (labels in the standard order; ``{split}_videos.txt`` for a CSV without
    labels) and ``out/prepare_report.csv``. Raises :class:`PrepareError` for a layout or CSV error.
    """
    if not os.path.isdir(root):
        raise PrepareError(f"{root}: Kinetics download folder not found")
    if os.path.abspath(out) == os.path.abspath(root):
        raise PrepareError(f"{out}: choose an output folder other than the download (it is only read)")
    if not annotations_dir:
        default = os.path.join(root, "annotations")
        annotations_dir = default if os.path.isdir(default) else root
    class_index = {name: label for label, name in enumerate(kinetics400_class_names())}
    annotated = {split: read_annotations(annotation_csv(annotations_dir, split), class_index) for split in splits}
    folders = {split: split_folder(root, split) for split in splits}
    decoders = tuple(decoders) or decoder_chain(*DEFAULT_DECODERS)
    os.makedirs(out, exist_ok=True)
    reports = [
        prepare_split(split, clips, labelled, folders[split], out, resize, decoders, workers, progress)
        for split, (clips, labelled) in annotated.items()
    ]
    write_report(os.path.join(out, REPORT_FILE), [row for report in reports for row in report.problems])
    return reports


# What the printed training command asks the user to fill in: the image checkpoint to fine-tune from.
IMAGE_WEIGHTS_PLACEHOLDER = "/path/to/imagenet_vit_b16.pth"


def train_command(out: str, prefix: str, reports: Sequence[SplitReport]) -> str:
    """The command that trains (and tests) on the prepared lists."""
    command = (
        f"python tools/run_net.py --cfg {TRAIN_CONFIG} DATA.PATH_TO_DATA_DIR {out} "
        f"DATA.PATH_PREFIX {prefix} MODEL.PRETRAINED {IMAGE_WEIGHTS_PLACEHOLDER}"
    )
    tested = {report.split for report in reports if report.labelled}
    if "test" not in tested and "val" in tested:
        command += " TEST.SPLIT val"
    return command


def format_summary(reports: Sequence[SplitReport], out: str, prefix: str, resized: bool, seconds: float) -> str:
    """The closing lines: videos per split found / missing / unreadable / re-encoded, the lists'
    paths, the report and the training command."""
    header = "| split | annotated | found | missing | unreadable | " + (
        "re-encoded (this run + earlier) | listed |" if resized else "listed |"
    )
    lines = [header, "| " + " | ".join(["---"] * (header.count("|") - 1)) + " |"]
    for r in reports:
        cells = [r.split, r.annotated, r.found, r.missing, r.unreadable]
        cells += [f"{r.reencoded + r.reused} ({r.reencoded} + {r.reused})"] if resized else []
        lines.append("| " + " | ".join(str(cell) for cell in cells + [r.listed]) + " |")
    lines.append("")
    for r in reports:
        note = "" if r.labelled else " (its annotation CSV has no labels: paths only, for predict / extract_features)"
        lines.append(f"{r.split} list: {r.list_path}{note}")
    lines.append(f"missing and unreadable videos: {os.path.join(out, REPORT_FILE)}")
    lines.append(f"done in {seconds:.0f} s; train on them with:")
    lines.append(f"  {train_command(out, prefix, reports)}")
    return "\n".join(lines)


def run_prepare(root: str, out: str, log: Callable[[str], None] = print, **kwargs) -> list[SplitReport]:
    """:func:`prepare_kinetics` and its summary (``log``): what ``tools/prepare_kinetics.py`` runs."""
    start = time.time()
    reports = prepare_kinetics(root, out, **kwargs)
    resized = kwargs.get("resize") is not None
    prefix = out if resized else root
    log(format_summary(reports, out, prefix, resized, time.time() - start))
    return reports


def prepare_kinetics_command(args: argparse.Namespace) -> int:
    """``tools/prepare_kinetics.py``: :func:`run_prepare` with the tool's flags (``--resize`` and its
    x264 settings, ``--decoders`` comma-separated). Exit code 0, or 2 on a bad layout, CSV, class
    name or decoder (one ``error:`` line)."""
    setup_logging()
    tune = "" if args.tune == "none" else args.tune
    resize = ResizeSettings(args.short_side, args.gop, args.crf, args.preset, tune) if args.resize else None
    decoders = [name.strip() for name in args.decoders.split(",") if name.strip()]
    try:
        run_prepare(
            args.root,
            args.out,
            annotations_dir=args.annotations,
            splits=args.splits,
            resize=resize,
            workers=args.workers,
            decoders=decoders,
            progress=not args.no_progress,
        )
    except (PrepareError, DecoderUnavailableError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0

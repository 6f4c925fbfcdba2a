"""Dataset lists: Kinetics-style ``path label`` files, class folders and class-name files.

The list format is the one TimeSformer, PySlowFast and mmaction2 read: one video per line, a path
(relative to ``DATA.PATH_PREFIX``) and an integer label separated by a space or a comma. Errors
name ``file:line`` so a broken list is fixed in one look. Lines of other list formats are rejected
when the list is read, not at decode time: mmaction2's raw-frame lists (``frame_dir num_frames
label``) and multi-label lists (``path label1 label2 ...``), i.e. a line whose last two fields
are both integers.

Class folders (``DATA.LAYOUT folders``) are ``root/<split>/<class>/<video>``; a root without any
``train``/``val``/``test`` folder (``root/<class>/<video>``) is split per class with a fixed seed
(:func:`split_class_videos`, fractions ``DATA.FOLDER_SPLIT``) and the split is logged, so a test
never runs on training videos.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from resformer_video.errors import DatasetListError  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
CLASS_NAME_FILES = ("classnames.json", "classes.txt")
KINETICS400_NAMES = "kinetics400_classnames.txt"  # shipped in resformer_video/data, label order
SPLITS = ("train", "val", "test")
FOLDER_SPLIT_SEED = 0  # fixed, so every run (and every RNG_SEED) splits a folder the same way
DEFAULT_FOLDER_SPLIT = (0.8, 0.1, 0.1)
# Lists and class-name files are UTF-8; "-sig" drops the byte-order mark that spreadsheet programs
# and some editors put first, which would otherwise stick to the first path or name.
LIST_ENCODING = "utf-8-sig"


@dataclass(frozen=True)
class VideoList:
    """Absolute video paths, their integer labels and the ordered class names of one split."""

    paths: list[str]
    labels: list[int]
    class_names: list[str]


def is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _split_line(line: str) -> tuple[str, str]:
    """``"a/b.mp4 3"`` or ``"a/b.mp4,3"`` -> ``("a/b.mp4", "3")`` (the label is the last field)."""
    sep = "," if "," in line else None
    parts = line.rsplit(sep, 1)
    if len(parts) != 2 or not parts[0].strip():
        raise ValueError(line)
    return parts[0].strip(), parts[1].strip()


def other_format(line: str) -> str | None:
    """What another list format a line looks like (its last two fields are integers), or None.

    ``"clips/a 300 5"`` (no video extension) is an mmaction2 raw-frame line, ``"a.mp4 3 7"`` a
    multi-label line; ``"my clip 2.mp4 3"`` is a path with spaces and is fine.
    """
    fields = line.split(",") if "," in line else line.split()
    if len(fields) < 3 or not (is_int(fields[-1].strip()) and is_int(fields[-2].strip())):
        return None
    first = fields[0].strip()
    if len(fields) == 3 and not first.lower().endswith(VIDEO_EXTENSIONS):
        return "an mmaction2 raw-frame list line ('frame_dir num_frames label')"
    return f"a multi-label line ('path label1 label2 ...', {len(fields) - 1} labels)"


def read_video_list(
    list_file: str, path_prefix: str = "", num_classes: int | None = None
) -> tuple[list[str], list[int]]:
    """Parse a ``path label`` list into (paths joined to ``path_prefix``, labels).

    Blank lines are skipped; a UTF-8 byte-order mark (spreadsheet programs write one) is dropped.
    Raises :class:`DatasetListError` naming ``file:line`` for a missing file, a malformed line, a
    non-integer label or a label outside ``[0, num_classes)``.
    """
    if not os.path.isfile(list_file):
        raise DatasetListError(f"{list_file}: dataset list not found")
    paths, labels = [], []
    with open(list_file, encoding=LIST_ENCODING) as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                continue
            looks_like = other_format(line)
            if looks_like:
                raise DatasetListError(
                    f"{list_file}:{lineno}: expected 'path label' (one video file "
                    f"and one integer label), got {line!r}, which looks like "
                    f"{looks_like}; convert the list to 'path label' lines"
                )
            try:
                path, label_text = _split_line(line)
                label = int(label_text)
            except ValueError:
                raise DatasetListError(
                    f"{list_file}:{lineno}: expected 'path label' with an integer "
                    f"label (space or comma separated), got {line!r}"
                ) from None
            if label < 0 or (num_classes is not None and label >= num_classes):
                raise DatasetListError(
                    f"{list_file}:{lineno}: label {label} is outside [0, MODEL.NUM_CLASSES={num_classes})"
                )
            paths.append(os.path.join(path_prefix, path))
            labels.append(label)
    if not paths:
        raise DatasetListError(f"{list_file}: dataset list is empty")
    return paths, labels


def read_class_names(path: str, num_classes: int | None = None) -> list[str]:
    """Read class names ordered by id: JSON ``{"name": id}`` (PySlowFast) or one name per line.

    Raises :class:`DatasetListError` naming the file for bad JSON, ids that are not ``0..K-1`` or a
    count different from ``num_classes``.
    """
    if not os.path.isfile(path):
        raise DatasetListError(f"{path}: class-names file not found")
    with open(path, encoding=LIST_ENCODING) as handle:
        text = handle.read()
    if path.endswith(".json"):
        try:
            mapping = json.loads(text)
            by_id = {int(idx): str(name) for name, idx in mapping.items()}
        except (ValueError, AttributeError, TypeError) as err:
            raise DatasetListError(f'{path}: expected a JSON object {{"name": id}} ({err})') from None
        if sorted(by_id) != list(range(len(by_id))):
            raise DatasetListError(f"{path}: class ids must be 0..{len(by_id) - 1} without gaps")
        names = [by_id[i] for i in range(len(by_id))]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if num_classes is not None and len(names) != num_classes:
        raise DatasetListError(f"{path}: has {len(names)} classes but MODEL.NUM_CLASSES is {num_classes}")
    return names


def find_class_names(data_dir: str, class_names_file: str = "", num_classes: int | None = None) -> list[str] | None:
    """``class_names_file`` if set, else ``classnames.json`` / ``classes.txt`` in ``data_dir``, else None."""
    if class_names_file:
        return read_class_names(class_names_file, num_classes)
    for name in CLASS_NAME_FILES:
        candidate = os.path.join(data_dir, name)
        if os.path.isfile(candidate):
            return read_class_names(candidate, num_classes)
    return None


def kinetics400_class_names() -> list[str]:
    """The 400 Kinetics-400 class names in the standard (alphabetical) label order."""
    text = resources.files("resformer_video.data").joinpath(KINETICS400_NAMES).read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def default_class_names(labels: Sequence[int], num_classes: int | None) -> list[str]:
    """Names when no class-names file exists: Kinetics-400's for 400 classes, else ``"0"``, ``"1"``, ..."""
    count = num_classes if num_classes is not None else max(labels) + 1
    if count == 400:
        return kinetics400_class_names()
    return [str(i) for i in range(count)]


def video_files(folder: str) -> list[str]:
    """The video files directly in ``folder`` (by extension), sorted, as paths."""
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(VIDEO_EXTENSIONS))
    return [os.path.join(folder, name) for name in names]


def scan_class_folders(base: str) -> VideoList:
    """Every video of ``base/<class>/<video>``: classes are the sorted folder names (split names
    excluded), videos sorted by path within a class."""
    if not os.path.isdir(base):
        raise DatasetListError(f"{base}: dataset folder not found")
    classes = sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)) and d not in SPLITS)
    paths, labels = [], []
    for label, name in enumerate(classes):
        videos = video_files(os.path.join(base, name))
        paths.extend(videos)
        labels.extend([label] * len(videos))
    if not paths:
        raise DatasetListError(f"{base}: no videos found in class folders ({', '.join(VIDEO_EXTENSIONS)})")
    return VideoList(paths, labels, classes)


def split_counts(count: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Train, val and test sizes of a class of ``count`` videos: ``round(count * fraction)`` for val
    and test, at least one each (when their fraction is > 0) while train keeps one; train the rest."""
    sizes = []
    for fraction in fractions[1:]:
        size = int(round(count * fraction))
        sizes.append(max(size, 1) if fraction > 0 and count >= 3 else size)
    n_val, n_test = sizes
    return count - n_val - n_test, n_val, n_test


def split_class_videos(
    videos: VideoList, split: str, fractions: Sequence[float] = DEFAULT_FOLDER_SPLIT
) -> tuple[VideoList, dict[str, int]]:
    """The ``split`` part of ``videos``: each class's videos shuffled with a fixed seed
    (``FOLDER_SPLIT_SEED`` and the class index) and cut into train/val/test by ``fractions``.
    Disjoint across splits, the same on every run. Also returns every split's size."""
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(videos.labels):
        by_class.setdefault(label, []).append(index)
    chosen: list[int] = []
    sizes = dict.fromkeys(SPLITS, 0)
    for label, indices in by_class.items():
        order = np.random.default_rng([FOLDER_SPLIT_SEED, label]).permutation(indices).tolist()
        n_train, n_val, n_test = split_counts(len(order), fractions)
        parts = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
        chosen += sorted(parts[split])
        for name, part in parts.items():
            sizes[name] += len(part)
    part = VideoList([videos.paths[i] for i in chosen], [videos.labels[i] for i in chosen], videos.class_names)
    return part, sizes


def load_class_folders(root: str, split: str, fractions: Sequence[float] = DEFAULT_FOLDER_SPLIT) -> VideoList:
    """``root/<split>/<class>/<video>``; when ``root`` has no split folder at all, ``root/<class>/<video>``
    split by :func:`split_class_videos` (logged). A root with some split folders but not ``split``
    is an error."""
    present = [name for name in SPLITS if os.path.isdir(os.path.join(root, name))]
    if present:
        if split not in present:
            raise DatasetListError(
                f"{os.path.join(root, split)}: split folder not found (the root "
                f"has {', '.join(present)}; DATA.LAYOUT folders needs "
                f"root/<split>/<class>/<video> for every split, or none)"
            )
        return scan_class_folders(os.path.join(root, split))
    part, sizes = split_class_videos(scan_class_folders(root), split, fractions)
    logger.warning(
        "DATA.LAYOUT folders: %s has no train/val/test folders; each class's videos are "
        "split with the fixed seed %d by DATA.FOLDER_SPLIT %s into train %d / val %d / "
        "test %d videos (disjoint); %s uses its %d",
        root,
        FOLDER_SPLIT_SEED,
        list(fractions),
        sizes["train"],
        sizes["val"],
        sizes["test"],
        split,
        len(part.paths),
    )
    if not part.paths:
        raise DatasetListError(
            f"{root}: the {split} split of the class folders is empty (classes "
            f"with fewer than 3 videos go to train; DATA.FOLDER_SPLIT "
            f"{list(fractions)})"
        )
    return part


def load_split(
    data_dir: str,
    split: str,
    layout: str = "csv",
    path_prefix: str = "",
    class_names_file: str = "",
    num_classes: int | None = None,
    folder_split: Sequence[float] = DEFAULT_FOLDER_SPLIT,
) -> VideoList:
    """The paths, labels and class names of ``split`` for either layout (``csv`` or ``folders``;
    ``folder_split``: train/val/test fractions for class folders without split folders)."""
    if layout == "folders":
        videos = load_class_folders(data_dir, split, folder_split)
        if num_classes is not None and len(videos.class_names) != num_classes:
            raise DatasetListError(
                f"{data_dir}: has {len(videos.class_names)} class folders but MODEL.NUM_CLASSES is {num_classes}"
            )
        return videos
    list_file = os.path.join(data_dir, f"{split}.csv")
    if not os.path.isfile(list_file):
        raise DatasetListError(
            f"{list_file}: dataset list not found (DATA.LAYOUT csv reads "
            f"{split}.csv in DATA.PATH_TO_DATA_DIR; DATA.LAYOUT folders reads "
            "class folders)"
        )
    paths, labels = read_video_list(list_file, path_prefix, num_classes)
    names = find_class_names(data_dir, class_names_file, num_classes)
    return VideoList(paths, labels, names or default_class_names(labels, num_classes))

"""Dataset lists: Kinetics-style ``path label`` files, class folders and class-name files.

The list format is the one TimeSformer, PySlowFast and mmaction2 read: one video per line, a path
(relative to ``DATA.PATH_PREFIX``) and an integer label separated by a space or a comma. Errors
name ``file:line`` so a broken list is fixed in one look.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import List, Optional, Sequence, Tuple

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
CLASS_NAME_FILES = ("classnames.json", "classes.txt")
KINETICS400_NAMES = "kinetics400_classnames.txt"  # shipped in resformer_video/data, label order
SPLITS = ("train", "val", "test")


class DatasetListError(ValueError):
    """A missing or malformed dataset list or class-names file; the message starts with the file."""


@dataclass(frozen=True)
class VideoList:
    """Absolute video paths, their integer labels and the ordered class names of one split."""

    paths: List[str]
    labels: List[int]
    class_names: List[str]


def _split_line(line: str) -> Tuple[str, str]:
    """``"a/b.mp4 3"`` or ``"a/b.mp4,3"`` -> ``("a/b.mp4", "3")`` (the label is the last field)."""
    sep = "," if "," in line else None
    parts = line.rsplit(sep, 1)
    if len(parts) != 2 or not parts[0].strip():
        raise ValueError(line)
    return parts[0].strip(), parts[1].strip()


def read_video_list(list_file: str, path_prefix: str = "",
                    num_classes: Optional[int] = None) -> Tuple[List[str], List[int]]:
    """Parse a ``path label`` list into (paths joined to ``path_prefix``, labels).

    Blank lines are skipped. Raises :class:`DatasetListError` naming ``file:line`` for a missing
    file, a malformed line, a non-integer label or a label outside ``[0, num_classes)``.
    """
    if not os.path.isfile(list_file):
        raise DatasetListError(f"{list_file}: dataset list not found")
    paths, labels = [], []
    with open(list_file, encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                path, label_text = _split_line(line)
                label = int(label_text)
            except ValueError:
                raise DatasetListError(f"{list_file}:{lineno}: expected 'path label' with an integer "
                                       f"label (space or comma separated), got {line!r}") from None
            if label < 0 or (num_classes is not None and label >= num_classes):
                raise DatasetListError(
                    f"{list_file}:{lineno}: label {label} is outside [0, MODEL.NUM_CLASSES={num_classes})")
            paths.append(os.path.join(path_prefix, path))
            labels.append(label)
    if not paths:
        raise DatasetListError(f"{list_file}: dataset list is empty")
    return paths, labels


def read_class_names(path: str, num_classes: Optional[int] = None) -> List[str]:
    """Read class names ordered by id: JSON ``{"name": id}`` (PySlowFast) or one name per line.

    Raises :class:`DatasetListError` naming the file for bad JSON, ids that are not ``0..K-1`` or a
    count different from ``num_classes``.
    """
    if not os.path.isfile(path):
        raise DatasetListError(f"{path}: class-names file not found")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith(".json"):
        try:
            mapping = json.loads(text)
            by_id = {int(idx): str(name) for name, idx in mapping.items()}
        except (ValueError, AttributeError, TypeError) as err:
            raise DatasetListError(f"{path}: expected a JSON object {{\"name\": id}} ({err})") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise DatasetListError(f"{path}: class ids must be 0..{len(by_id) - 1} without gaps")
        names = [by_id[i] for i in range(len(by_id))]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if num_classes is not None and len(names) != num_classes:
        raise DatasetListError(f"{path}: has {len(names)} classes but MODEL.NUM_CLASSES is {num_classes}")
    return names


def find_class_names(data_dir: str, class_names_file: str = "",
                     num_classes: Optional[int] = None) -> Optional[List[str]]:
    """``class_names_file`` if set, else ``classnames.json`` / ``classes.txt`` in ``data_dir``, else None."""
    if class_names_file:
        return read_class_names(class_names_file, num_classes)
    for name in CLASS_NAME_FILES:
        candidate = os.path.join(data_dir, name)
        if os.path.isfile(candidate):
            return read_class_names(candidate, num_classes)
    return None


def kinetics400_class_names() -> List[str]:
    """The 400 Kinetics-400 class names in the standard (alphabetical) label order."""
    text = resources.files("resformer_video.data").joinpath(KINETICS400_NAMES).read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def default_class_names(labels: Sequence[int], num_classes: Optional[int]) -> List[str]:
    """Names when no class-names file exists: Kinetics-400's for 400 classes, else ``"0"``, ``"1"``, ..."""
    count = num_classes if num_classes is not None else max(labels) + 1
    if count == 400:
        return kinetics400_class_names()
    return [str(i) for i in range(count)]


def scan_class_folders(root: str, split: str) -> VideoList:
    """Folder-per-class layout: ``root/<split>/<class>/<video>`` if ``root/<split>`` exists, else
    ``root/<class>/<video>``. Classes are the sorted folder names; videos are sorted by path."""
    base = os.path.join(root, split) if os.path.isdir(os.path.join(root, split)) else root
    if not os.path.isdir(base):
        raise DatasetListError(f"{base}: dataset folder not found")
    classes = sorted(d for d in os.listdir(base)
                     if os.path.isdir(os.path.join(base, d)) and d not in SPLITS)
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(base, name)
        videos = sorted(f for f in os.listdir(folder) if f.lower().endswith(VIDEO_EXTENSIONS))
        paths.extend(os.path.join(folder, f) for f in videos)
        labels.extend([label] * len(videos))
    if not paths:
        raise DatasetListError(f"{base}: no videos found in class folders ({', '.join(VIDEO_EXTENSIONS)})")
    return VideoList(paths, labels, classes)


def load_split(data_dir: str, split: str, layout: str = "csv", path_prefix: str = "",
               class_names_file: str = "", num_classes: Optional[int] = None) -> VideoList:
    """The paths, labels and class names of ``split`` for either layout (``csv`` or ``folders``)."""
    if layout == "folders":
        videos = scan_class_folders(data_dir, split)
        if num_classes is not None and len(videos.class_names) != num_classes:
            raise DatasetListError(f"{data_dir}: has {len(videos.class_names)} class folders but "
                                   f"MODEL.NUM_CLASSES is {num_classes}")
        return videos
    paths, labels = read_video_list(os.path.join(data_dir, f"{split}.csv"), path_prefix, num_classes)
    names = find_class_names(data_dir, class_names_file, num_classes)
    return VideoList(paths, labels, names or default_class_names(labels, num_classes))

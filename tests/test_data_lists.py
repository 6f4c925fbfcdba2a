"""Dataset lists, class names and the folder layout; start-up errors name file:line."""

import json
import shutil

import pytest

from resformer_video.config import ConfigError
from resformer_video.datasets import DatasetListError, build_dataset, load_split, read_class_names, read_video_list
from resformer_video.datasets.lists import SPLITS, split_counts

from conftest import make_cfg


def test_space_and_comma_separated_lines(tmp_path):
    lst = tmp_path / "train.csv"
    lst.write_text("a/x.mp4 3\n\nb/y.mp4,0\n  c/z.mp4   1  \n")
    paths, labels = read_video_list(str(lst), "/data", num_classes=4)
    assert paths == ["/data/a/x.mp4", "/data/b/y.mp4", "/data/c/z.mp4"]
    assert labels == [3, 0, 1]


@pytest.mark.parametrize(
    "content,line,fragment",
    [
        ("a.mp4 0\nb.mp4\n", 2, "expected 'path label'"),
        ("a.mp4 0\nb.mp4 zero\n", 2, "integer"),
        ("a.mp4 0\nb.mp4 1\nc.mp4 4\n", 3, "label 4 is outside [0, MODEL.NUM_CLASSES=4)"),
        ("a.mp4 -1\n", 1, "outside"),
    ],
)
def test_list_errors_name_file_and_line(tmp_path, content, line, fragment):
    lst = tmp_path / "train.csv"
    lst.write_text(content)
    with pytest.raises(DatasetListError) as info:
        read_video_list(str(lst), "", num_classes=4)
    assert str(info.value).startswith(f"{lst}:{line}:")
    assert fragment in str(info.value)


def test_missing_list_is_named(tmp_path):
    cfg = make_cfg(tmp_path)
    with pytest.raises(DatasetListError, match=f"{tmp_path / 'train.csv'}: dataset list not found"):
        build_dataset(cfg, "train")


def test_class_names_json_and_text(tmp_path):
    js = tmp_path / "classnames.json"
    js.write_text(json.dumps({"b": 1, "a": 0, "c": 2}))
    assert read_class_names(str(js), 3) == ["a", "b", "c"]
    txt = tmp_path / "classes.txt"
    txt.write_text("walk\nrun\n\n")
    assert read_class_names(str(txt)) == ["walk", "run"]
    with pytest.raises(DatasetListError, match="has 2 classes but MODEL.NUM_CLASSES is 3"):
        read_class_names(str(txt), 3)
    js.write_text(json.dumps({"a": 0, "b": 2}))
    with pytest.raises(DatasetListError, match="without gaps"):
        read_class_names(str(js))


def test_synthetic_split_uses_class_names_file(data_cfg):
    dataset = build_dataset(data_cfg, "train")
    assert dataset.class_names == ["moving_left", "moving_right", "moving_up", "moving_down"]
    assert dataset.num_videos == 16 and dataset.num_views == 1 and len(dataset) == 16
    assert sorted(set(dataset.labels)) == [0, 1, 2, 3]


def _class_folders(root, counts, source):
    """``root/<class>/<k>.mp4`` copies of ``source``: ``counts`` maps class name -> videos."""
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for k in range(count):
            shutil.copy(source, root / name / f"{k}.mp4")


def test_folder_layout_with_split_folders(tmp_path, synthetic_data_dir):
    video = synthetic_data_dir / "videos" / "moving_up" / "moving_up_000.mp4"
    for split in ("train", "val", "test"):
        _class_folders(tmp_path / split, {"walk": 2, "run": 2 if split == "train" else 1}, video)
    (tmp_path / "train" / "run" / "notes.txt").write_text("not a video")
    split = load_split(str(tmp_path), "train", layout="folders", num_classes=2)
    assert split.class_names == ["run", "walk"]
    assert split.labels == [0, 0, 1, 1] and split.paths[0].endswith("train/run/0.mp4")
    cfg = make_cfg(tmp_path, DATA__LAYOUT="folders", MODEL__NUM_CLASSES=2)
    val = build_dataset(cfg, "val")
    assert val.num_videos == 3 and all("/val/" in p for p in val.paths)
    with pytest.raises(DatasetListError, match="2 class folders but MODEL.NUM_CLASSES is 3"):
        load_split(str(tmp_path), "train", layout="folders", num_classes=3)
    shutil.rmtree(tmp_path / "test")
    with pytest.raises(DatasetListError, match="test: split folder not found"):
        load_split(str(tmp_path), "test", layout="folders")


def test_folders_without_splits_are_split_disjointly_and_logged(tmp_path, synthetic_data_dir, caplog):
    """The bug: root/<class>/<video> used to give the same videos to train, val and test."""
    video = synthetic_data_dir / "videos" / "moving_up" / "moving_up_000.mp4"
    _class_folders(tmp_path, {"walk": 10, "run": 6, "jump": 2}, video)
    with caplog.at_level("WARNING"):
        parts = {s: load_split(str(tmp_path), s, layout="folders", num_classes=3) for s in SPLITS}
    assert "has no train/val/test folders" in caplog.text and "fixed seed" in caplog.text
    assert "train 14 / val 2 / test 2" in caplog.text
    sets = {s: set(v.paths) for s, v in parts.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"]
    assert not sets["val"] & sets["test"]
    assert set.union(*sets.values()) == {str(p) for p in tmp_path.rglob("*.mp4")}
    assert [len(sets[s]) for s in SPLITS] == [14, 2, 2]
    # walk (10): 8/1/1, run (6): 4/1/1, jump (2, too few): 2/0/0; the class names stay complete.
    assert sorted(parts["val"].labels) == [1, 2] and parts["val"].class_names == ["jump", "run", "walk"]
    again = load_split(str(tmp_path), "test", layout="folders")
    assert again.paths == parts["test"].paths  # fixed seed: the same split on every run
    cfg = make_cfg(tmp_path, DATA__LAYOUT="folders", MODEL__NUM_CLASSES=3, TEST__SPLIT="test")
    assert set(build_dataset(cfg, "test").paths) == sets["test"]
    with pytest.raises(ConfigError, match="DATA.FOLDER_SPLIT"):
        make_cfg(tmp_path, DATA__FOLDER_SPLIT=[0.5, 0.1, 0.1])


def test_split_counts():
    assert split_counts(10, (0.8, 0.1, 0.1)) == (8, 1, 1)
    assert split_counts(3, (0.8, 0.1, 0.1)) == (1, 1, 1)
    assert split_counts(2, (0.8, 0.1, 0.1)) == (2, 0, 0)
    assert split_counts(100, (0.7, 0.3, 0.0)) == (70, 30, 0)


@pytest.mark.parametrize(
    "line,fragment",
    [
        ("abseiling/clip_0001 300 0", "mmaction2 raw-frame list line ('frame_dir num_frames label')"),
        ("a/clip.mp4 1 3", "multi-label line ('path label1 label2 ...', 2 labels)"),
        ("a/clip.mp4,1,3,2", "multi-label line ('path label1 label2 ...', 3 labels)"),
    ],
)
def test_other_list_formats_are_rejected_at_load(tmp_path, line, fragment):
    lst = tmp_path / "train.csv"
    lst.write_text(f"ok/first.mp4 0\n{line}\n")
    with pytest.raises(DatasetListError) as info:
        read_video_list(str(lst), "", num_classes=4)
    message = str(info.value)
    assert message.startswith(f"{lst}:2: expected 'path label'") and fragment in message


def test_paths_with_spaces_and_digits_still_read(tmp_path):
    lst = tmp_path / "train.csv"
    lst.write_text("my clip 2.mp4 3\nholiday 2019/a.mp4 1\n")
    assert read_video_list(str(lst), "", num_classes=4) == (["my clip 2.mp4", "holiday 2019/a.mp4"], [3, 1])


def test_byte_order_mark_is_not_glued_to_the_first_path(tmp_path):
    """Spreadsheet programs write a UTF-8 byte-order mark first; it must not become part of a path
    (or of the first class name)."""
    (tmp_path / "train.csv").write_bytes("\ufeffa.mp4 0\nb.mp4 1\n".encode("utf-8"))
    paths, labels = read_video_list(str(tmp_path / "train.csv"), str(tmp_path))
    assert paths == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")] and labels == [0, 1]
    (tmp_path / "classes.txt").write_bytes("\ufeffcat\ndog\n".encode("utf-8"))
    assert read_class_names(str(tmp_path / "classes.txt")) == ["cat", "dog"]


def test_feature_input_list_with_byte_order_mark(tmp_path):
    from resformer_video.inference.features import expand_inputs

    (tmp_path / "videos.txt").write_bytes("\ufeffa.mp4\nb.mp4 3\n".encode("utf-8"))
    assert expand_inputs([str(tmp_path / "videos.txt")], "/data") == ["/data/a.mp4", "/data/b.mp4"]

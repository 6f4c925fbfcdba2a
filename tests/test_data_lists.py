"""Dataset lists, class names and the folder layout; start-up errors name file:line."""

import json
import shutil

import pytest

from conftest import make_cfg
from resformer_video.datasets import DatasetListError, build_dataset, load_split, read_class_names, read_video_list


def test_space_and_comma_separated_lines(tmp_path):
    lst = tmp_path / "train.csv"
    lst.write_text("a/x.mp4 3\n\nb/y.mp4,0\n  c/z.mp4   1  \n")
    paths, labels = read_video_list(str(lst), "/data", num_classes=4)
    assert paths == ["/data/a/x.mp4", "/data/b/y.mp4", "/data/c/z.mp4"]
    assert labels == [3, 0, 1]


@pytest.mark.parametrize("content,line,fragment", [
    ("a.mp4 0\nb.mp4\n", 2, "expected 'path label'"),
    ("a.mp4 0\nb.mp4 zero\n", 2, "integer"),
    ("a.mp4 0\nb.mp4 1\nc.mp4 4\n", 3, "label 4 is outside [0, MODEL.NUM_CLASSES=4)"),
    ("a.mp4 -1\n", 1, "outside"),
])
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


def test_folder_layout(tmp_path, synthetic_data_dir):
    for name in ("walk", "run"):
        (tmp_path / name).mkdir()
        for k in range(2):
            shutil.copy(synthetic_data_dir / "videos" / "moving_up" / "moving_up_000.mp4",
                        tmp_path / name / f"{k}.mp4")
    (tmp_path / "run" / "notes.txt").write_text("not a video")
    split = load_split(str(tmp_path), "train", layout="folders", num_classes=2)
    assert split.class_names == ["run", "walk"]
    assert split.labels == [0, 0, 1, 1] and split.paths[0].endswith("run/0.mp4")
    cfg = make_cfg(tmp_path, DATA__LAYOUT="folders", MODEL__NUM_CLASSES=2)
    assert build_dataset(cfg, "val").num_videos == 4
    with pytest.raises(DatasetListError, match="2 class folders but MODEL.NUM_CLASSES is 3"):
        load_split(str(tmp_path), "train", layout="folders", num_classes=3)

"""The Kinetics-400 path of docs/KINETICS.md, rehearsed on real clips laid out as a tiny release:
annotation CSVs + split folders -> tools/prepare_kinetics.py --resize -> run_net --dry-run -> one
training iteration of configs/k400_resformer_b.yaml (a small architecture on CPU) -> test at two
sizes; every artifact of each step is checked."""

from __future__ import annotations

import csv
import json
import runpy
import shutil
from pathlib import Path

import pytest
import torch

from resformer_video.datasets import open_video
from resformer_video.datasets.lists import kinetics400_class_names
from resformer_video.models import build_model

from conftest import REPO_ROOT, make_cfg

PREPARE_MAIN = runpy.run_path(str(REPO_ROOT / "tools" / "prepare_kinetics.py"))["main"]
RUN_NET_MAIN = runpy.run_path(str(REPO_ROOT / "tools" / "run_net.py"))["main"]
K400_CFG = str(REPO_ROOT / "configs" / "k400_resformer_b.yaml")
QUOTED = "passing American football (in game)"
# (split, class, youtube id, real clip or None for a missing file / "corrupt")
RELEASE = [
    ("train", "abseiling", "abs0000001", "bikes.mp4"),
    ("train", "abseiling", "abs0000002", "cup.mp4"),
    ("train", QUOTED, "paf0000001", "obama_speech.mp4"),
    ("train", QUOTED, "paf0000002", None),
    ("val", "abseiling", "abs0000003", "carphone_pristine.mp4"),
    ("test", QUOTED, "paf0000003", "carphone_distorted.mp4"),
    ("test", "abseiling", "abs0000004", "corrupt"),
]


def lay_out_release(root: Path, clips: Path) -> None:
    """Clips named ``{youtube_id}_{start:06d}_{end:06d}.mp4`` in split folders, annotation CSVs with
    every class name quoted (as the official CSVs quote them)."""
    (root / "annotations").mkdir(parents=True)
    for split in ("train", "val", "test"):
        (root / split).mkdir()
        with open(root / "annotations" / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)
            writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            for where, label, youtube_id, clip in RELEASE:
                if where == split:
                    writer.writerow([label, youtube_id, 10, 20, split])
    for split, _, youtube_id, clip in RELEASE:
        target = root / split / f"{youtube_id}_000010_000020.mp4"
        if clip == "corrupt":
            target.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2048)
        elif clip:
            shutil.copy(clips / clip, target)


def _lines(path: Path) -> list:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.slow
def test_kinetics_path_from_the_download_to_the_resolution_table(realclips_dir, tmp_path, capsys):
    root, lists, run = tmp_path / "kinetics400", tmp_path / "k400_320", tmp_path / "run"
    lay_out_release(root, realclips_dir)
    names = kinetics400_class_names()

    # 1. prepare: lists in the standard label order, a report, re-encoded copies (short side <= 320)
    assert PREPARE_MAIN(["--root", str(root), "--out", str(lists), "--resize", "--no-progress"]) == 0
    summary = capsys.readouterr().out
    train = [line.rsplit(" ", 1) for line in _lines(lists / "train.csv")]
    assert sorted(int(label) for _, label in train) == sorted([names.index("abseiling")] * 2 + [names.index(QUOTED)])
    assert len(_lines(lists / "val.csv")) == 1 and len(_lines(lists / "test.csv")) == 1
    with open(lists / "prepare_report.csv", encoding="utf-8", newline="") as handle:
        problems = {(row["youtube_id"], row["status"]) for row in csv.DictReader(handle)}
    assert problems == {("paf0000002", "missing"), ("abs0000004", "unreadable")}
    for path, _ in train:
        full = Path(path) if Path(path).is_absolute() else lists / path
        with open_video(str(full), "pyav") as reader:
            height, width = reader.get_frames([0]).shape[1:3]
        assert min(height, width) <= 320 and full.is_relative_to(lists / "videos")
    assert "tools/run_net.py --cfg configs/k400_resformer_b.yaml" in summary

    # 2. starting weights on disk (a tiny model's) and the overrides of a CPU rehearsal
    weights = tmp_path / "image_weights.pth"
    small = ["MODEL.ARCH", "resformer_nano", "MODEL.DEPTH", "1"]
    torch.save(build_model(make_cfg(opts=small + ["MODEL.NUM_CLASSES", 400])).state_dict(), weights)
    opts = small + [
        "DATA.PATH_TO_DATA_DIR",
        str(lists),
        "DATA.PATH_PREFIX",
        str(lists),
        "MODEL.PRETRAINED",
        str(weights),
        "NUM_GPUS",
        "0",
        "OUTPUT_DIR",
        str(run),
        "TRAIN.BATCH_SIZE",
        "3",
        "TRAIN.GLOBAL_BATCH_SIZE",
        "3",
        "SOLVER.MAX_EPOCH",
        "1",
        "TRAIN.MIXED_PRECISION",
        "fp32",
        "DATA_LOADER.NUM_WORKERS",
        "0",
        "TEST.BATCH_SIZE",
        "2",
        "TEST.RESOLUTIONS",
        "[160, 224]",
        "TENSORBOARD.ENABLE",
        "False",
    ]

    # 3. dry-run: the recipe, no video opened
    assert RUN_NET_MAIN(["--cfg", K400_CFG, "--dry-run"] + opts) == 0
    recipe = capsys.readouterr().out
    assert "= 3 clips per optimiser step" in recipe and "1 per epoch (3 train videos" in recipe
    assert "TEST.PROTOCOL timesformer" in recipe and str(weights) in recipe
    assert not run.exists()

    # 4. one training iteration, then the test at both sizes
    assert RUN_NET_MAIN(["--cfg", K400_CFG] + opts) == 0
    capsys.readouterr()
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "checkpoint_epoch_00001.pyth").is_file()
    assert "clips per optimiser step" in (run / "log.txt").read_text(encoding="utf-8")
    stats = [json.loads(line) for line in _lines(run / "stats.jsonl")]
    assert [record["epoch"] for record in stats if "epoch" in record][-1] == 1
    results = json.loads((run / "test_results.json").read_text(encoding="utf-8"))["results"]
    assert set(results) == {"160", "224"}
    assert all(entry["num_videos"] == 1 and 0 <= entry["top1"] <= 100 for entry in results.values())

"""Per-class accuracy, the confusion matrix and best.pyth: unit checks against hand-computed values
and a tiny training run through the same job as tools/run_net.py."""

import csv
import json
import types

import matplotlib.image
import numpy as np
import torch

from resformer_video.engine.class_report import (
    confusion_matrix,
    most_confused_pairs,
    per_class_accuracy,
    write_class_report,
)
from resformer_video.engine.runner import run
from resformer_video.engine.train import keep_best
from resformer_video.models import build_model
from resformer_video.utils import checkpoint

from conftest import SYNTH_CLASSES, make_cfg


def test_per_class_accuracy_and_confusion_by_hand():
    # 3 classes; class 0: 2 videos (one right, one predicted 2 with 0 second), class 1: 1 wrong
    # (predicted 0, label 1 third), class 2: none.
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.3, 0.1, 0.6], [0.5, 0.2, 0.3]])
    labels = torch.tensor([0, 0, 1])
    rows = per_class_accuracy(scores, labels, 3)
    assert rows[0] == {"videos": 2, "top1": 50.0, "top5": 100.0}
    assert rows[1] == {"videos": 1, "top1": 0.0, "top5": 100.0}
    assert rows[2]["videos"] == 0 and np.isnan(rows[2]["top1"])
    conf = confusion_matrix(scores.argmax(1), labels, 3)
    assert conf.tolist() == [[1, 0, 1], [1, 0, 0], [0, 0, 0]]
    assert most_confused_pairs(conf) == [
        {"true": 0, "predicted": 2, "count": 1, "share": 0.5},
        {"true": 1, "predicted": 0, "count": 1, "share": 1.0},
    ]


def test_report_for_400_classes(tmp_path):
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(400).repeat(3)
    scores = torch.rand(1200, 400, generator=gen)
    scores[torch.arange(1200), labels] += 0.9  # mostly right
    scores[labels == 7, 9] += 2.0  # class 7 always taken for class 9
    names = [f"class {i}" for i in range(400)]
    csv_path, png_path, md_path = write_class_report(str(tmp_path), 224, scores, labels, names)
    with open(csv_path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 400 and list(rows[0]) == ["class_index", "class_name", "videos", "top1", "top5"]
    assert rows[7] == {"class_index": "7", "class_name": "class 7", "videos": "3", "top1": "0.00", "top5": "100.00"}
    image = matplotlib.image.imread(png_path)
    assert min(image.shape[:2]) >= 1500  # about 5 px per class
    table = open(md_path, encoding="utf-8").read().splitlines()
    assert table[4] == "| class 7 (7) | class 9 (9) | 3 | 100.0% |"


def test_tiny_run_writes_per_class_results_and_best_checkpoint(synthetic_data_dir, tmp_path):
    out_dir = tmp_path / "run"
    cfg = make_cfg(
        synthetic_data_dir,
        [
            "OUTPUT_DIR",
            str(out_dir),
            "MODEL.DEPTH",
            1,
            "DATA.NUM_FRAMES",
            2,
            "DATA.TRAIN_CROP_SIZES",
            [32],
            "DATA.TRAIN_JITTER_SCALES",
            [32, 40],
            "DATA.TEST_CROP_SIZE",
            64,
            "TEST.RESOLUTIONS",
            [64, 96],
            "TRAIN.BATCH_SIZE",
            8,
            "SOLVER.OPTIMIZING_METHOD",
            "adamw",
            "SOLVER.BASE_LR",
            3e-3,
            "SOLVER.STEPS",
            [0],
            "SOLVER.LRS",
            [1.0],
            "SOLVER.MAX_EPOCH",
            2,
            "TRAIN.EVAL_PERIOD",
            1,
            "TRAIN.CHECKPOINT_PERIOD",
            2,
            "LOG_PERIOD",
            1,
        ],
    )
    results = run(cfg)
    # best.pyth: the first epoch with the highest val top-1, atomic like the others, loadable.
    records = [json.loads(line) for line in (out_dir / "stats.jsonl").read_text().splitlines()]
    val = [r for r in records if r["_type"] == "val"]
    assert [r["epoch"] for r in val] == [1, 2]
    best_epoch = max(val, key=lambda r: (r["clip_top1"], -r["epoch"]))["epoch"]
    best = checkpoint.load_checkpoint_file(checkpoint.get_best_path(str(out_dir)))
    assert best["epoch"] == best_epoch and best["optimizer_state"] is None
    assert best["val"]["clip_top1"] == max(r["clip_top1"] for r in val)
    assert results["train"]["best_val_top1"] == best["val"]["clip_top1"]
    assert best["class_names"] == ["moving_left", "moving_right", "moving_up", "moving_down"]
    assert [e for e, _ in checkpoint.list_checkpoints(str(out_dir))] == [2]  # best.pyth is no resume point
    assert not [p for p in (out_dir / "checkpoints").iterdir() if ".tmp" in p.name]
    # Per test resolution: per-class CSV consistent with the overall top-1, confusion PNG, pairs.
    for size in (64, 96):
        metrics = results["test"]["results"][str(size)]
        with open(out_dir / f"test_per_class_{size}.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["class_name"] for r in rows] == best["class_names"]
        videos = [int(r["videos"]) for r in rows]
        assert sum(videos) == metrics["num_videos"] == SYNTH_CLASSES
        overall = sum(n * float(r["top1"]) for n, r in zip(videos, rows)) / sum(videos)
        assert abs(overall - metrics["top1"]) < 0.01
        assert matplotlib.image.imread(out_dir / f"test_confusion_{size}.png").shape[0] > 300
        assert (
            (out_dir / f"test_confused_pairs_{size}.md")
            .read_text()
            .startswith(f"# Most confused classes, test at {size} px, 4 videos")
        )


def test_best_is_replaced_only_by_a_better_top1_and_survives_a_resume(tmp_path):
    cfg = make_cfg(None, OUTPUT_DIR=str(tmp_path), MODEL__DEPTH=1)
    state = types.SimpleNamespace(model=build_model(cfg))
    assert checkpoint.read_best_top1(str(tmp_path)) is None
    best = keep_best(cfg, state, 1, ["a"], {"clip_top1": 50.0, "num_clips": 4}, None)
    assert best == 50.0 and checkpoint.read_best_top1(str(tmp_path)) == 50.0
    assert keep_best(cfg, state, 2, ["a"], {"clip_top1": 50.0, "num_clips": 4}, best) == 50.0
    assert keep_best(cfg, state, 3, ["a"], {"clip_top1": 25.0, "num_clips": 4}, best) == 50.0
    assert checkpoint.load_checkpoint_file(checkpoint.get_best_path(str(tmp_path)))["epoch"] == 1
    assert keep_best(cfg, state, 4, ["a"], {"clip_top1": 0.0, "num_clips": 0}, None) is None
    assert keep_best(cfg, state, 5, ["a"], {"clip_top1": 75.0, "num_clips": 4}, 50.0) == 75.0
    assert checkpoint.load_checkpoint_file(checkpoint.get_best_path(str(tmp_path)))["epoch"] == 5

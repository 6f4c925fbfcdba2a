"""Released checkpoints: TimeSformer's own save layout (YAML-text config) through test and predict,
with the shipped Kinetics-400 class names."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch

from benchmarks.harness.timesformer_reference import build_timesformer_reference
from resformer_video.datasets.lists import kinetics400_class_names
from resformer_video.engine.evaluate import test as run_test
from resformer_video.models import VideoResFormer, build_model, is_own_checkpoint, load_trained_weights, read_checkpoint
from resformer_video.utils.checkpoint import save_checkpoint

from conftest import make_cfg

REPO = Path(__file__).resolve().parents[1]
PREDICT_MAIN = runpy.run_path(str(REPO / "tools" / "predict.py"))["main"]
# What TimeSformer's checkpoint.save_checkpoint stores as "cfg": cfg.dump(), YAML text of its config.
TIMESFORMER_CFG_TEXT = """DATA:
  NUM_FRAMES: 4
  SAMPLING_RATE: 6
MODEL:
  ARCH: vit
  MODEL_NAME: vit_base_patch16_224
  NUM_CLASSES: 400
TIMESFORMER:
  ATTENTION_TYPE: divided_space_time
  PRETRAINED_MODEL: ''
"""
# The config a user writes for such a file: TimeSformer's model (learned tables) at tiny size.
MODEL_CFG = {
    "MODEL.NUM_CLASSES": 400,
    "MODEL.DEPTH": 1,
    "MODEL.POS_EMBED": "learned",
    "MODEL.TEMPORAL_EMBED": "learned",
    "DATA.TRAIN_CROP_SIZES": [64],
    "DATA.DECODER": "pyav",
}


def _randomize(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0.0, 0.1)


def _timesformer_file(path: Path, cfg) -> torch.nn.Module:
    """Save TimeSformer's model for ``cfg`` in TimeSformer's own save layout; return the model."""
    torch.manual_seed(0)
    reference = build_timesformer_reference(cfg).eval()
    _randomize(reference)
    state = {"model." + key: value for key, value in reference.state_dict().items()}
    torch.save(
        {
            "epoch": 15,
            "model_state": state,
            "optimizer_state": {"state": {}, "param_groups": []},
            "cfg": TIMESFORMER_CFG_TEXT,
        },
        path,
    )
    return reference


@pytest.fixture
def k400_setup(synthetic_data_dir, tmp_path):
    """A TimeSformer-layout file, a YAML config for it and a test list with K400 labels 5 and 399."""
    videos = sorted(synthetic_data_dir.rglob("*.mp4"))[:2]
    (tmp_path / "test.csv").write_text(f"{videos[0]} 5\n{videos[1]} 399\n")
    cfg = make_cfg(
        tmp_path,
        DATA__PATH_PREFIX="",
        OUTPUT_DIR=str(tmp_path / "out"),
        opts=[item for pair in MODEL_CFG.items() for item in pair],
    )
    cfg_file = tmp_path / "k400_tiny.yaml"
    cfg_file.write_text(cfg.dump())
    ckpt = tmp_path / "TimeSformer_tiny_K400.pyth"
    reference = _timesformer_file(ckpt, cfg)
    return cfg, cfg_file, ckpt, reference, [str(v) for v in videos]


def test_timesformer_save_layout_is_converted_not_strict_loaded(k400_setup):
    cfg, _, ckpt, reference, _ = k400_setup
    content = read_checkpoint(str(ckpt))
    assert content["cfg"] == TIMESFORMER_CFG_TEXT and not is_own_checkpoint(content)
    model = build_model(cfg).eval()
    weights = load_trained_weights(model, str(ckpt))
    assert not weights.own and weights.report.missing_keys == [] and weights.report.unexpected_keys == []
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference(clip), atol=1e-5, rtol=1e-5)


def test_own_checkpoint_still_loads_strictly(tmp_path):
    model = VideoResFormer(num_classes=3, embed_dim=32, depth=1, num_heads=2, img_size=32)
    path = tmp_path / "own.pyth"
    save_checkpoint(str(path), model, epoch=2, cfg_text="MODEL:\n  NUM_CLASSES: 3\n", class_names=["a", "b", "c"])
    weights = load_trained_weights(
        VideoResFormer(num_classes=3, embed_dim=32, depth=1, num_heads=2, img_size=32), str(path)
    )
    assert weights.own and weights.class_names == ["a", "b", "c"] and weights.cfg_text.startswith("MODEL:")
    with pytest.raises(ValueError, match=f"^{path}: weights do not match the model"):
        load_trained_weights(VideoResFormer(num_classes=3, embed_dim=32, depth=2, num_heads=2, img_size=32), str(path))


@pytest.mark.parametrize("protocol", ["default", "timesformer"])
def test_timesformer_file_through_test_gives_kinetics_names(k400_setup, protocol):
    cfg, _, ckpt, _, videos = k400_setup
    names = kinetics400_class_names()
    cfg = make_cfg(
        Path(cfg.DATA.PATH_TO_DATA_DIR),
        DATA__PATH_PREFIX="",
        OUTPUT_DIR=cfg.OUTPUT_DIR,
        TEST__CHECKPOINT_FILE_PATH=str(ckpt),
        TEST__SAVE_PREDICTIONS=True,
        TEST__PROTOCOL=protocol,
        TEST__NUM_ENSEMBLE_VIEWS=2,
        opts=[item for pair in MODEL_CFG.items() for item in pair],
    )
    report = run_test(cfg)
    records = report["predictions"]["64"]
    assert [r["path"] for r in records] == videos and report["results"]["64"]["num_videos"] == 2
    assert [r["label_name"] for r in records] == [names[5], names[399]] == ["archery", "zumba"]
    for record in records:
        assert record["top5_names"] == [names[i] for i in record["top5"]]
        assert sorted(record["top5_prob"], reverse=True) == record["top5_prob"] and record["top5_prob"][0] <= 1


def test_timesformer_file_through_predict_prints_kinetics_names(k400_setup, capsys):
    _, cfg_file, ckpt, _, videos = k400_setup
    names = set(kinetics400_class_names())
    code = PREDICT_MAIN(["--cfg", str(cfg_file), "--checkpoint", str(ckpt), videos[0], "--json", "--device", "cpu"])
    (result,) = json.loads(capsys.readouterr().out)
    assert code == 0 and len(result["top"]) == 5 and all(s["class"] in names for s in result["top"])
    code = PREDICT_MAIN(
        [
            "--cfg",
            str(cfg_file),
            "--checkpoint",
            str(ckpt),
            videos[0],
            "--json",
            "--device",
            "cpu",
            "TEST.PROTOCOL",
            "timesformer",
            "TEST.NUM_SPATIAL_CROPS",
            "3",
        ]
    )
    (other,) = json.loads(capsys.readouterr().out)
    assert code == 0 and other["views_per_window"] == 3 and other["top"] != result["top"]
    code = PREDICT_MAIN(["--checkpoint", str(ckpt), videos[0], "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert str(ckpt) in err[0] and "not a resformer-video training checkpoint" in err[0] and "--cfg" in err[0]


def test_kinetics_names_ship_with_the_package():
    names = kinetics400_class_names()
    assert len(names) == len(set(names)) == 400 and names == sorted(names)
    assert names[:2] == ["abseiling", "air drumming"] and names[-1] == "zumba"

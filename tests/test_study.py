"""tools/study.py end to end on a tiny generated dataset (2 classes x 4 videos of 32 px, a 1-block
model, 1 epoch): study.json / study.md / study.png, skipping finished runs, refusing a changed
config; and the study's aggregation and ETA arithmetic."""

import importlib.util
import json
from pathlib import Path

import pytest

from resformer_video.config import load_config
from resformer_video.study import runs as study_runs
from resformer_video.study.report import summarize

REPO_ROOT = Path(__file__).resolve().parents[1]
STUDY_CFG = str(REPO_ROOT / "configs" / "study_synthetic.yaml")
VARIANTS = "timesformer,resformer_multi_sc"


def _load_tool():
    spec = importlib.util.spec_from_file_location("study_tool", REPO_ROOT / "tools" / "study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_opts(root: Path) -> list:
    data = str(root / "data")
    return ["OUTPUT_DIR", str(root / "study"), "DATA.PATH_TO_DATA_DIR", data, "DATA.PATH_PREFIX", data,
            "MODEL.NUM_CLASSES", "2", "SYNTHETIC.CLASSES", "['scrolling_left', 'rotating_clockwise']",
            "MODEL.DEPTH", "1", "MODEL.PATCH_SIZE", "8",
            "SYNTHETIC.VIDEOS_PER_CLASS", "4", "SYNTHETIC.VIDEO_SIZE", "32",
            "DATA.TRAIN_JITTER_SCALES", "[32, 36]", "DATA.TRAIN_CROP_SIZES", "[32, 16]",
            "DATA.TEST_CROP_SIZE", "32", "TEST.RESOLUTIONS", "[16, 32]", "SOLVER.MAX_EPOCH", "1",
            "SOLVER.WARMUP_EPOCHS", "0.0", "TRAIN.EVAL_PERIOD", "0", "TRAIN.BATCH_SIZE", "4",
            "TEST.BATCH_SIZE", "4", "DATA_LOADER.NUM_WORKERS", "0",
            "DATA_LOADER.PERSISTENT_WORKERS", "False", "LOG_PERIOD", "100"]


@pytest.fixture(scope="module")
def tool():
    return _load_tool()


@pytest.fixture(scope="module")
def finished_study(tool, tmp_path_factory):
    """One study of two variants x seed 0, run once for the tests of this module (read-only)."""
    root = tmp_path_factory.mktemp("study")
    argv = ["--cfg", STUDY_CFG, "--variants", VARIANTS, "--seeds", "0"] + tiny_opts(root)
    return root, argv, tool.main(argv)


def test_study_writes_json_table_and_plot(finished_study, capsys):
    root, _, rc = finished_study
    assert rc == 0
    out = root / "study"
    study = json.loads((out / "study.json").read_text())
    assert list(study["variants"]) == ["timesformer", "resformer_multi_sc"]
    assert study["variants"]["timesformer"]["train_sizes"] == [32]
    assert study["variants"]["resformer_multi_sc"]["train_sizes"] == [32, 16]
    for name, entry in study["variants"].items():
        assert set(entry) == {"train_sizes", "test"}
        assert list(entry["test"]) == ["16", "32"]
        run_results = json.loads((out / "runs" / name / "seed0" / "test_results.json").read_text())
        for size, stats in entry["test"].items():
            assert set(stats) == {"top1", "top1_std", "top5", "runs"}
            assert stats["runs"] == 1 and stats["top1_std"] == 0.0
            assert stats["top1"] == run_results["results"][size]["top1"]
            assert stats["top5"] == 100.0  # 2 classes
        gflops = study["gflops"][name]
        assert 0 < gflops["16"] < gflops["32"]
    assert study["chance"] == 50.0 and study["num_test_videos"] == 2 and study["seeds"] == [0]
    assert [(r["variant"], r["seed"]) for r in study["runs"]] == [("timesformer", 0), ("resformer_multi_sc", 0)]
    assert all(r["wall_s"] > 0 for r in study["runs"])
    table = (out / "study.md").read_text()
    assert "| Model | Train res. | 16 | 32 |" in table
    assert "| timesformer | 32 | " in table and "| resformer_multi_sc | 32/16 | " in table
    assert " ± 0.0 |" in table and "chance 50.0 %" in table and "GFLOPs per clip" in table
    assert (out / "study.png").read_bytes()[:4] == b"\x89PNG"
    # Learned table for timesformer; its config is stored beside its results.
    stored = load_config(str(out / "runs" / "timesformer" / "seed0" / "study_cfg.yaml"))
    assert stored.MODEL.POS_EMBED == "learned" and stored.TRAIN.AUTO_RESUME and stored.RNG_SEED == 0


def test_rerun_skips_finished_runs(finished_study, tool, monkeypatch, capsys):
    root, argv, _ = finished_study
    before = json.loads((root / "study" / "study.json").read_text())

    def must_not_run(cfg):
        raise AssertionError("a finished run was trained or tested again")

    monkeypatch.setattr(study_runs, "train", must_not_run)
    monkeypatch.setattr(study_runs, "test", must_not_run)
    capsys.readouterr()
    assert tool.main(argv) == 0
    out = capsys.readouterr().out
    assert "run 1/2: timesformer seed 0: skipped" in out
    assert "run 2/2: resformer_multi_sc seed 0: skipped" in out
    after = json.loads((root / "study" / "study.json").read_text())
    assert after["variants"] == before["variants"] and after["runs"] == before["runs"]


def test_changed_config_for_existing_out_dir_is_refused(finished_study, tool, capsys):
    root, argv, _ = finished_study
    capsys.readouterr()
    assert tool.main(argv + ["SOLVER.BASE_LR", "0.01"]) == 2
    err = capsys.readouterr().err
    assert str(root / "study" / "runs" / "timesformer" / "seed0") in err
    assert "SOLVER.BASE_LR: 0.001 -> 0.01" in err


def test_full_method_without_consistency_weight_is_a_config_error(tool, tmp_path, capsys):
    argv = ["--cfg", STUDY_CFG, "--variants", "resformer_multi_sc"] + tiny_opts(tmp_path) + [
        "SCALE_CONSISTENCY.WEIGHT", "0.0"]
    assert tool.main(argv) == 2
    assert "SCALE_CONSISTENCY.WEIGHT: is 0.0 but variant resformer_multi_sc" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before generating anything


def test_summary_is_mean_and_sample_std_over_seeds():
    rows = [{"variant": "a", "results": {"8": {"top1": top1, "top5": 100.0}}} for top1 in (50.0, 70.0, 60.0)]
    study = summarize(rows, {"a": [8]}, [8])
    stats = study["variants"]["a"]["test"]["8"]
    assert stats == {"top1": 60.0, "top1_std": pytest.approx(10.0), "top5": 100.0, "runs": 3}


def test_eta_scales_the_measured_time_by_each_run_s_cost(tmp_path):
    base = load_config(STUDY_CFG, ["SOLVER.MAX_EPOCH", "10"])
    runs = study_runs.plan_runs(base, ["timesformer", "resformer_multi"], [0], str(tmp_path))
    clock = study_runs.EtaClock({"timesformer": 1.0, "resformer_multi": 3.0})
    assert clock.eta_s(runs) is None  # nothing measured yet
    clock.add("timesformer", 10, 20.0)  # 2 s per GFLOP-epoch
    assert clock.eta_s(runs[1:]) == pytest.approx(2.0 * 10 * 3.0)


def test_variants_differ_only_in_what_the_study_compares():
    """Every variant is the base config plus its own overrides: the data, model size, optimiser,
    schedule, batch and test protocol are the same; space_only (as TimeSformer's) has no temporal
    embedding."""
    from resformer_video.study.variants import VARIANTS as ALL, variant_cfg
    base = load_config(STUDY_CFG, [])
    compared = {"MODEL.POS_EMBED", "MODEL.TEMPORAL_EMBED", "MODEL.ATTENTION_TYPE",
                "DATA.TRAIN_CROP_SIZES", "SCALE_CONSISTENCY.WEIGHT", "OUTPUT_DIR"}

    def flat(node, prefix=""):
        out = {}
        for key, value in node.items():
            name = prefix + key
            out.update(flat(value, name + ".") if hasattr(value, "items") else {name: value})
        return out

    cfgs = {name: flat(variant_cfg(base, name, 0, f"/tmp/{name}")) for name in ALL}
    shared = [{k: v for k, v in cfg.items() if k not in compared} for cfg in cfgs.values()]
    assert all(other == shared[0] for other in shared[1:])
    assert cfgs["space_only"]["MODEL.TEMPORAL_EMBED"] == "none"
    assert cfgs["timesformer"]["MODEL.POS_EMBED"] == "learned"
    assert cfgs["resformer_multi_sc"]["SCALE_CONSISTENCY.WEIGHT"] > 0 == cfgs["resformer_multi"]["SCALE_CONSISTENCY.WEIGHT"]
    assert len(cfgs["timesformer"]["DATA.TRAIN_CROP_SIZES"]) == 1 < len(cfgs["resformer_multi"]["DATA.TRAIN_CROP_SIZES"])


def test_demo_refuses_a_folder_of_another_config_naming_its_out_flag(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("demo_tool", REPO_ROOT / "tools" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    run_dir = tmp_path / "demo" / "runs" / "timesformer" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / study_runs.STUDY_CFG).write_text("SOLVER:\n  BASE_LR: 123.0\n")
    data = str(tmp_path / "data")
    code = demo.main(["--out", str(tmp_path / "demo"), "--threads", "1",
                      "DATA.PATH_TO_DATA_DIR", data, "DATA.PATH_PREFIX", data])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{run_dir} holds a run made with another config" in err and "use another --out" in err
    assert not (tmp_path / "data").exists()  # refused before generating anything

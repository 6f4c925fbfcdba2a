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
    return [
        "OUTPUT_DIR",
        str(root / "study"),
        "DATA.PATH_TO_DATA_DIR",
        data,
        "DATA.PATH_PREFIX",
        data,
        "MODEL.NUM_CLASSES",
        "2",
        "SYNTHETIC.CLASSES",
        "['scrolling_left', 'rotating_clockwise']",
        "MODEL.DEPTH",
        "1",
        "MODEL.PATCH_SIZE",
        "8",
        "SYNTHETIC.VIDEOS_PER_CLASS",
        "4",
        "SYNTHETIC.VIDEO_SIZE",
        "32",
        "DATA.TRAIN_JITTER_SCALES",
        "[32, 36]",
        "DATA.TRAIN_CROP_SIZES",
        "[32, 16]",
        "DATA.TEST_CROP_SIZE",
        "32",
        "TEST.RESOLUTIONS",
        "[16, 32]",
        "SOLVER.MAX_EPOCH",
        "1",
        "SOLVER.WARMUP_EPOCHS",
        "0.0",
        "TRAIN.EVAL_PERIOD",
        "0",
        "TRAIN.BATCH_SIZE",
        "4",
        "TEST.BATCH_SIZE",
        "4",
        "DATA_LOADER.NUM_WORKERS",
        "0",
        "DATA_LOADER.PERSISTENT_WORKERS",
        "False",
        "LOG_PERIOD",
        "100",
    ]


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
            assert set(stats) == {"top1", "top1_std", "top1_ci95", "top5", "runs"}
            assert stats["top1_ci95"] is None  # one run: no interval
            assert stats["runs"] == 1 and stats["top1_std"] == 0.0
            assert stats["top1"] == run_results["results"][size]["top1"]
            assert stats["top5"] == 100.0  # 2 classes
        gflops = study["gflops"][name]
        assert 0 < gflops["16"] < gflops["32"]
    assert study["chance"] == 50.0 and study["num_test_videos"] == 2 and study["seeds"] == [0]
    assert [(r["variant"], r["seed"]) for r in study["runs"]] == [("timesformer", 0), ("resformer_multi_sc", 0)]
    assert all(r["wall_s"] > 0 for r in study["runs"])
    table = (out / "study.md").read_text()
    assert "| Model | Train res. | runs | 16 | 32 |" in table
    assert "| timesformer | 32 | 1 | " in table and "| resformer_multi_sc | 32/16 | 1 | " in table
    assert "Lead over timesformer" in table and "fp32 on a" in table
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
    argv = (
        ["--cfg", STUDY_CFG, "--variants", "resformer_multi_sc"]
        + tiny_opts(tmp_path)
        + ["SCALE_CONSISTENCY.WEIGHT", "0.0"]
    )
    assert tool.main(argv) == 2
    assert "SCALE_CONSISTENCY.WEIGHT: is 0.0 but variant resformer_multi_sc" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before generating anything


def test_summary_is_mean_and_sample_std_over_seeds():
    rows = [
        {"variant": "a", "seed": seed, "results": {"8": {"top1": top1, "top5": 100.0}}}
        for seed, top1 in enumerate((50.0, 70.0, 60.0))
    ]
    study = summarize(rows, {"a": [8]}, [8])
    stats = study["variants"]["a"]["test"]["8"]
    half = 4.303 * 10.0 / 3**0.5  # t(0.975, 2) * std / sqrt(n)
    assert stats == {
        "top1": 60.0,
        "top1_std": pytest.approx(10.0),
        "top5": 100.0,
        "runs": 3,
        "top1_ci95": [pytest.approx(60.0 - half), pytest.approx(60.0 + half)],
    }


def test_lead_is_paired_by_dataset_and_seed():
    """The lead is the mean of per-(dataset, seed) differences, with a t interval over the pairs;
    a run without its partner is left out; datasets and seeds are separated in the factors."""
    top1 = {
        ("timesformer", 0, 0): 80.0,
        ("timesformer", 0, 1): 90.0,
        ("timesformer", 1, 0): 70.0,
        ("full", 0, 0): 90.0,
        ("full", 0, 1): 94.0,
        ("full", 1, 0): 86.0,
        ("full", 1, 1): 99.0,
    }
    rows = [
        {"variant": v, "data_seed": d, "seed": s, "results": {"8": {"top1": t, "top5": 100.0}}}
        for (v, d, s), t in top1.items()
    ]
    study = summarize(rows, {"timesformer": [8], "full": [8, 4]}, [8])
    lead = study["leads"]["full"]["8"]
    diffs = [10.0, 4.0, 16.0]  # (0,0), (0,1), (1,0); (1,1) has no baseline run
    std = (sum((d - 10.0) ** 2 for d in diffs) / 2) ** 0.5
    assert lead["n"] == 3 and lead["mean"] == pytest.approx(10.0) and lead["std"] == pytest.approx(std)
    assert lead["ci95"] == [pytest.approx(10.0 - 4.303 * std / 3**0.5), pytest.approx(10.0 + 4.303 * std / 3**0.5)]
    factors = study["factors"]["timesformer"]["8"]
    assert factors["by_dataset"] == {"0": 85.0, "1": 70.0} and factors["dataset_range"] == 15.0
    assert factors["seed_std"] == pytest.approx(50**0.5)  # only dataset 0 has two seeds


def test_prediction_range_and_t_quantiles():
    from resformer_video.study.stats import prediction_range, t975

    assert t975(4) == 2.776 and t975(100) == 1.96
    with pytest.raises(ValueError, match="at least 2"):
        t975(0)
    low, high = prediction_range(90.0, 2.0, 5)
    assert high - 90.0 == pytest.approx(2.776 * 2.0 * (1.2**0.5)) and low < 90.0
    assert prediction_range(99.0, 2.0, 5)[1] == 100.0  # clipped


def test_several_datasets_have_their_own_folders_and_seeds(tmp_path):
    base = load_config(STUDY_CFG, [])
    runs = study_runs.plan_runs(base, ["timesformer"], [0, 1], str(tmp_path), data_seeds=[3, 4])
    assert [(r.data_seed, r.seed) for r in runs] == [(3, 0), (3, 1), (4, 0), (4, 1)]
    assert runs[2].run_dir == str(tmp_path / "data4" / "runs" / "timesformer" / "seed0")
    assert runs[2].cfg.SYNTHETIC.SEED == 4 and runs[2].cfg.DATA.PATH_TO_DATA_DIR == str(tmp_path / "data4" / "data")
    assert runs[0].cfg.DATA.PATH_PREFIX == str(tmp_path / "data3" / "data")


def test_compute_matched_baseline_trains_for_the_multi_size_flops():
    """timesformer_matched: TimeSformer's recipe for round(epochs x FLOPs ratio) epochs, the warm-up
    scaled alike; the ratio is fvcore's (64+48+40 px against 64 px: close to the pixel ratio)."""
    from resformer_video.study.variants import training_flops_ratio, variant_cfg

    base = load_config(STUDY_CFG, [])
    ratio = training_flops_ratio(base)
    pixels = sum(s * s for s in base.DATA.TRAIN_CROP_SIZES) / base.DATA.TRAIN_CROP_SIZES[0] ** 2
    assert 0.9 * pixels < ratio < 1.1 * pixels
    matched = variant_cfg(base, "timesformer_matched", 0, "/tmp/m")
    plain = variant_cfg(base, "timesformer", 0, "/tmp/p")
    assert matched.SOLVER.MAX_EPOCH == round(base.SOLVER.MAX_EPOCH * ratio) > plain.SOLVER.MAX_EPOCH
    scale = matched.SOLVER.MAX_EPOCH / plain.SOLVER.MAX_EPOCH
    assert matched.SOLVER.WARMUP_EPOCHS == pytest.approx(plain.SOLVER.WARMUP_EPOCHS * scale)
    assert list(matched.DATA.TRAIN_CROP_SIZES) == list(plain.DATA.TRAIN_CROP_SIZES)
    assert matched.MODEL.dump() == plain.MODEL.dump()


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
    from resformer_video.study.variants import VARIANTS as ALL
    from resformer_video.study.variants import variant_cfg

    base = load_config(STUDY_CFG, [])
    compared = {
        "MODEL.POS_EMBED",
        "MODEL.TEMPORAL_EMBED",
        "MODEL.ATTENTION_TYPE",
        "DATA.TRAIN_CROP_SIZES",
        "SCALE_CONSISTENCY.WEIGHT",
        "OUTPUT_DIR",
        "SOLVER.MAX_EPOCH",
        "SOLVER.WARMUP_EPOCHS",
    }  # the compute-matched baseline trains longer

    def flat(node, prefix=""):
        out = {}
        for key, value in node.items():
            name = prefix + key
            out.update(flat(value, name + ".") if hasattr(value, "items") else {name: value})
        return out

    cfgs = {name: flat(variant_cfg(base, name, 0, f"/tmp/{name}")) for name in ALL}
    shared = [{k: v for k, v in cfg.items() if k not in compared} for cfg in cfgs.values()]
    assert all(other == shared[0] for other in shared[1:])
    assert {c["SOLVER.MAX_EPOCH"] for n, c in cfgs.items() if n != "timesformer_matched"} == {base.SOLVER.MAX_EPOCH}
    assert cfgs["space_only"]["MODEL.TEMPORAL_EMBED"] == "none"
    assert cfgs["timesformer"]["MODEL.POS_EMBED"] == "learned"
    assert (
        cfgs["resformer_multi_sc"]["SCALE_CONSISTENCY.WEIGHT"]
        > 0
        == cfgs["resformer_multi"]["SCALE_CONSISTENCY.WEIGHT"]
    )
    assert (
        len(cfgs["timesformer"]["DATA.TRAIN_CROP_SIZES"]) == 1 < len(cfgs["resformer_multi"]["DATA.TRAIN_CROP_SIZES"])
    )


def _demo_study(top1s):
    test = lambda t: {"32": {"top1": t[0]}, "64": {"top1": t[1]}}
    return {
        "variants": {
            "timesformer": {"train_sizes": [64], "test": test(top1s[0])},
            "resformer_multi_sc": {"train_sizes": [64, 48], "test": test(top1s[1])},
        },
        "gflops": {"resformer_multi_sc": {"32": 0.02, "64": 0.086}},
        "num_test_videos": 240,
        "views": "1 clip(s) x 1 crop(s)",
        "chance": 50.0,
        "precision": "fp32",
        "machine": {"cpu_class": "AVX2"},
        "seeds": [0],
        "runs": [],
    }


def test_demo_prints_the_study_range_and_whether_the_run_falls_inside():
    """The demo's table carries the recorded study's mean and 95 % single-run range and a verdict;
    the recorded numbers are made from a study's JSON by reference_from_study."""
    from resformer_video.study.demo import reference_from_study, side_by_side

    recorded = {
        "variants": {
            name: {
                "train_sizes": [64],
                "test": {
                    size: {"top1": mean, "top1_std": 2.0, "runs": 10} for size, mean in (("32", 90.0), ("64", 99.0))
                },
            }
            for name in ("timesformer", "resformer_multi_sc")
        },
        "seeds": [0, 1, 2, 3, 4],
        "data_seeds": [0, 1],
        "precision": "fp32",
        "machine": {"cpu_class": "AVX2"},
        "leads": {},
    }
    reference = reference_from_study(recorded)
    assert reference["variants"]["timesformer"]["32"] == {"mean": 90.0, "std": 2.0, "n": 10}
    inside = side_by_side(_demo_study([(91.0, 99.5), (88.0, 100.0)]), reference)
    assert "this run: 4 of 4 cells inside" in inside and "10 runs per model (5 seeds x 2 generated" in inside
    recorded["runs"] = [{"variant": "timesformer", "seed": s, "data_seed": d} for d, s in ((0, 0), (0, 1), (1, 0))]
    assert reference_from_study(recorded)["runs"] == "seeds 0,1 of dataset 0; seeds 0 of dataset 1"
    assert "90.0 [ 85.3" in inside  # 90 - 2.262 * 2 * sqrt(1.1) = 85.26
    outside = side_by_side(_demo_study([(70.0, 99.5), (88.0, 100.0)]), reference)
    assert "this run: 3 of 4 cells inside; OUTSIDE the study's range at 1 cell(s)" in outside
    assert "!" in outside.splitlines()[1] and "(no recorded study" in side_by_side(_demo_study([(1, 2), (3, 4)]))


def test_demo_refuses_a_folder_of_another_config_naming_its_out_flag(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("demo_tool", REPO_ROOT / "tools" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    run_dir = tmp_path / "demo" / "runs" / "timesformer" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / study_runs.STUDY_CFG).write_text("SOLVER:\n  BASE_LR: 123.0\n")
    data = str(tmp_path / "data")
    code = demo.main(
        ["--out", str(tmp_path / "demo"), "--threads", "1", "DATA.PATH_TO_DATA_DIR", data, "DATA.PATH_PREFIX", data]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{run_dir} holds a run made with another config" in err and "use another --out" in err
    assert not (tmp_path / "data").exists()  # refused before generating anything


def test_a_key_added_since_a_run_is_no_difference_while_at_its_default():
    """A run folder made before a config key existed is still this config's run while the new key
    holds its default (the behaviour the run had); another value is a difference."""
    cfg = load_config(STUDY_CFG, [])
    stored = cfg.clone()
    stored.defrost()
    del stored.SOLVER["ZERO_WD_1D_PARAM"]
    assert study_runs.config_differences(stored.dump(), cfg) == []
    changed = load_config(STUDY_CFG, ["SOLVER.ZERO_WD_1D_PARAM", "False"])
    assert study_runs.config_differences(stored.dump(), changed) == ["SOLVER.ZERO_WD_1D_PARAM: True -> False"]


def test_report_only_reports_the_finished_runs_and_trains_nothing(finished_study, tool, capsys, monkeypatch):
    """--report-only over a study with one finished seed and one never run: the finished runs are
    reported, the missing ones named, nothing is trained."""
    root, argv, _ = finished_study
    monkeypatch.setattr(study_runs, "train_and_test", lambda run: pytest.fail(f"trained {run.label}"))
    out = root / "report"
    import shutil

    shutil.copytree(root / "study" / "runs", out / "runs")
    code = tool.main(argv[:4] + ["--seeds", "0,1", "--report-only", "--out", str(out)] + argv[6:])
    log = capsys.readouterr().out
    assert code == 0 and "2 of 4 run(s) not finished, left out: timesformer seed 1, resformer_multi_sc seed 1" in log
    study = json.loads((out / "study.json").read_text())
    assert [(r["variant"], r["seed"]) for r in study["runs"]] == [("timesformer", 0), ("resformer_multi_sc", 0)]
    empty = tool.main(argv[:4] + ["--seeds", "5", "--report-only", "--out", str(root / "nothing")] + argv[6:])
    assert empty == 2 and "no finished run" in capsys.readouterr().err


def test_runs_at_chance_are_named_and_left_out_of_the_second_lead():
    """A run whose top-1 at its training size is within the margin of chance is listed; the headline
    lead keeps its pair, the second lead drops it; the table names the run."""
    from resformer_video.study.report import study_table

    top1 = {("timesformer", 0, 0): 90.0, ("timesformer", 0, 1): 80.0, ("timesformer", 0, 2): 70.0}
    top1 |= {("full", 0, 0): 50.0, ("full", 0, 1): 96.0, ("full", 0, 2): 90.0}
    rows = [
        {"variant": v, "data_seed": d, "seed": s, "results": {"8": {"top1": t, "top5": 100.0}}}
        for (v, d, s), t in top1.items()
    ]
    study = summarize(rows, {"timesformer": [8], "full": [8, 4]}, [8], chance=50.0)
    assert study["at_chance"] == [{"variant": "full", "data_seed": 0, "seed": 0, "top1": 50.0}]
    assert study["leads"]["full"]["8"]["n"] == 3 and study["leads"]["full"]["8"]["mean"] == pytest.approx(-4 / 3)
    learned = study["leads_learned"]["full"]["8"]
    assert learned["n"] == 2 and learned["mean"] == pytest.approx(18.0)
    study |= {"num_test_videos": 10, "views": "1 clip(s) x 1 crop(s)", "chance": 50.0, "seeds": [0, 1, 2]}
    study |= {"data_seeds": [0], "frames": 2, "gflops": {"timesformer": {"8": 0.1}, "full": {"8": 0.1}}}
    table = study_table(study)
    assert "stayed at chance (top-1 at the training size <= chance + 5): full seed 0 of dataset 0." in table
    assert "| full | 2 | +18.0 ± 2.8" in table
    assert study["leads_over_matched"] == {}  # no timesformer_matched runs in this study
    matched = [dict(row, variant="timesformer_matched") for row in rows if row["variant"] == "timesformer"]
    both = summarize(rows + matched, {"timesformer": [8], "full": [8, 4], "timesformer_matched": [8]}, [8], 50.0)
    assert list(both["leads_over_matched"]) == ["full"]  # not timesformer: that is the negation
    assert both["leads_over_matched_learned"]["full"]["8"]["mean"] == pytest.approx(18.0)
    report = {k: study[k] for k in study if k not in both} | both
    report["gflops"] = dict(study["gflops"], timesformer_matched={"8": 0.1})
    assert "Lead over timesformer_matched without the pairs" in study_table(report)
    nobody = summarize([r for r in rows if r["variant"] == "timesformer"], {"timesformer": [8]}, [8], chance=50.0)
    assert nobody["at_chance"] == []  # 70 % is 20 points above chance

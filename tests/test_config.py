"""Every shipped config loads; invalid configs fail at start-up with the key named."""

import pytest

from resformer_video.config import ConfigError, cfg_with, check_data_dir, load_config

from conftest import REPO_ROOT, make_cfg

CONFIGS = sorted((REPO_ROOT / "configs").glob("*.yaml"))


def test_configs_folder_has_the_documented_configs():
    names = {p.name for p in CONFIGS}
    assert {"k400_resformer_b.yaml", "k400_resformer_s.yaml", "k400_timesformer_b.yaml", "demo_synthetic.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads(path):
    cfg = load_config(str(path))
    assert cfg.is_frozen()
    assert list(cfg.DATA.TRAIN_CROP_SIZES) == sorted(cfg.DATA.TRAIN_CROP_SIZES, reverse=True)


def test_paper_recipe_in_resformer_b_config():
    cfg = load_config(str(REPO_ROOT / "configs" / "k400_resformer_b.yaml"))
    assert cfg.MODEL.ARCH == "resformer_base" and cfg.MODEL.ATTENTION_TYPE == "divided_space_time"
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE) == (8, 32)
    assert list(cfg.DATA.TRAIN_CROP_SIZES) == [224, 160, 128]
    assert (cfg.SCALE_CONSISTENCY.WEIGHT, cfg.SCALE_CONSISTENCY.LOSS) == (1.0, "l2")
    assert (cfg.SOLVER.BASE_LR, list(cfg.SOLVER.STEPS), cfg.SOLVER.MAX_EPOCH) == (0.005, [0, 11, 14], 15)
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS, cfg.DATA.TEST_CROP_SIZE) == (1, 3, 224)
    baseline = load_config(str(REPO_ROOT / "configs" / "k400_timesformer_b.yaml"))
    assert list(baseline.DATA.TRAIN_CROP_SIZES) == [224] and baseline.SCALE_CONSISTENCY.WEIGHT == 0
    assert (baseline.MODEL.POS_EMBED, baseline.MODEL.TEMPORAL_EMBED) == ("learned", "learned")


@pytest.mark.parametrize(
    "opts, key",
    [
        (["MODEL.NOT_A_KEY", "1"], "MODEL.NOT_A_KEY"),
        (["DATA.TRAIN_CROP_SIZES", "[160, 224]"], "DATA.TRAIN_CROP_SIZES"),
        (["DATA.TRAIN_CROP_SIZES", "[224, 100]"], "DATA.TRAIN_CROP_SIZES"),
        (["DATA.TEST_CROP_SIZE", "200"], "DATA.TEST_CROP_SIZE"),
        (["TEST.RESOLUTIONS", "[96, 100]"], "TEST.RESOLUTIONS"),
        (["DATA.NUM_FRAMES", "0"], "DATA.NUM_FRAMES"),
        (["SCALE_CONSISTENCY.LOSS", "l1"], "SCALE_CONSISTENCY.LOSS"),
        (["SOLVER.LRS", "[1.0, 0.1]"], "SOLVER.LRS"),
        (["TRAIN.GLOBAL_BATCH_SIZE", "12"], "TRAIN.GLOBAL_BATCH_SIZE"),
        (["DIST_TIMEOUT_MIN", "0"], "DIST_TIMEOUT_MIN"),
        (["DATA.DECODER_FALLBACK", "opencv"], "DATA.DECODER_FALLBACK"),
        (["NUM_GPUS", "0", "DIST_BACKEND", "nccl"], "DIST_BACKEND"),
    ],
)
def test_invalid_values_name_the_key(opts, key):
    with pytest.raises(ConfigError) as info:
        load_config(str(REPO_ROOT / "configs" / "k400_resformer_b.yaml"), opts + ["TRAIN.BATCH_SIZE", "8"])
    assert info.value.key == key and str(info.value).startswith(key)


def test_missing_data_dir_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^DATA.PATH_TO_DATA_DIR: is not set"):
        check_data_dir(make_cfg())
    with pytest.raises(ConfigError, match=r"^DATA.PATH_TO_DATA_DIR: directory not found"):
        check_data_dir(make_cfg(tmp_path / "absent"))


def test_cfg_with_changes_a_frozen_copy():
    cfg = make_cfg()
    derived = cfg_with(cfg, "DATA.TEST_CROP_SIZE", 96, "TRAIN.COMPILE", True)
    assert derived.is_frozen() and (derived.DATA.TEST_CROP_SIZE, derived.TRAIN.COMPILE) == (96, True)
    assert (cfg.DATA.TEST_CROP_SIZE, cfg.TRAIN.COMPILE) == (64, False)


def test_run_config_file_loads_back_to_the_same_config(tmp_path):
    """The engine's ``OUTPUT_DIR/config.yaml`` is the whole config: ``--cfg`` on it repeats the run."""
    from resformer_video.utils.logging import write_run_config

    cfg = make_cfg(tmp_path, ["SOLVER.BASE_LR", 0.0123, "DATA.TRAIN_CROP_SIZES", [48, 32]])
    path = write_run_config(str(tmp_path / "run"), cfg.dump())
    assert path == str(tmp_path / "run" / "config.yaml")
    assert load_config(path) == cfg
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["config.yaml"]  # no temporary file left


def test_an_integer_for_a_float_key_is_range_checked_not_a_type_error(tmp_path):
    """``SOLVER.BASE_LR -1`` is a bad value (a range error naming the key), not a type mismatch;
    ``1`` for a float key, on the command line or in YAML, is 1.0."""
    with pytest.raises(ConfigError, match=r"^SOLVER.BASE_LR: must be > 0, got -1.0$"):
        load_config(None, ["SOLVER.BASE_LR", "-1"])
    cfg = load_config(None, ["SOLVER.BASE_LR", "1", "SOLVER.MOMENTUM", 0])
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MOMENTUM) == (1.0, 0.0) and isinstance(cfg.SOLVER.BASE_LR, float)
    (tmp_path / "c.yaml").write_text("SOLVER:\n  BASE_LR: 2\n  MAX_EPOCH: 3\n")
    cfg = load_config(str(tmp_path / "c.yaml"))
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCH) == (2.0, 3)
    with pytest.raises(ConfigError, match="^SOLVER.MAX_EPOCH: Type mismatch"):  # not the other way
        load_config(None, ["SOLVER.MAX_EPOCH", "2.5"])

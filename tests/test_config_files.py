"""Config files and run_net's start-up errors: ``_BASE_`` inheritance, did-you-mean for unknown
keys, ``--help`` naming defaults.py, and one clear line (no traceback) for a missing list or
weights of another architecture."""

import importlib.util

import pytest
import torch

from resformer_video.config import ConfigError, load_config
from resformer_video.models import build_model

from conftest import REPO_ROOT, make_cfg

RUN_NET = str(REPO_ROOT / "tools" / "run_net.py")
_SPEC = importlib.util.spec_from_file_location("run_net_tool", RUN_NET)
run_net = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(run_net)
K400 = ["k400_resformer_b.yaml", "k400_resformer_s.yaml", "k400_timesformer_b.yaml"]


def test_base_is_loaded_first_and_overridden(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "root.yaml").write_text(
        "DATA:\n  NUM_FRAMES: 4\n  SAMPLING_RATE: 2\nSOLVER:\n  MAX_EPOCH: 7\n"
    )
    (tmp_path / "shared" / "mid.yaml").write_text("_BASE_: root.yaml\nDATA:\n  SAMPLING_RATE: 3\n")
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: shared/mid.yaml\nDATA:\n  NUM_FRAMES: 6\n")
    cfg = load_config(str(child), ["SOLVER.MAX_EPOCH", "9"])
    # child > mid > root > defaults, command line last; sub-mappings merge key by key.
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.SOLVER.MAX_EPOCH) == (6, 3, 9)
    assert cfg.DATA.TARGET_FPS == load_config().DATA.TARGET_FPS


def test_base_errors_are_named(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: missing.yaml\n")
    with pytest.raises(FileNotFoundError, match=r"missing.yaml \(the _BASE_ of .*child.yaml\)"):
        load_config(str(child))
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="_BASE_: .*includes itself"):
        load_config(str(tmp_path / "a.yaml"))
    (tmp_path / "ok.yaml").write_text("DATA:\n  NUM_FRAMES: 4\n")
    (tmp_path / "bad.yaml").write_text("_BASE_: ok.yaml\nDATA:\n  NUM_FRAME: 4\n")
    with pytest.raises(ConfigError, match="did you mean DATA.NUM_FRAMES"):
        load_config(str(tmp_path / "bad.yaml"))


@pytest.mark.parametrize("name", K400)
def test_k400_configs_share_one_base(name):
    text = (REPO_ROOT / "configs" / name).read_text()
    assert "_BASE_: k400_base.yaml" in text and "SOLVER:\n  OPTIMIZING_METHOD" not in text
    cfg = load_config(str(REPO_ROOT / "configs" / name))
    assert (cfg.MODEL.NUM_CLASSES, cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE) == (400, 8, 32)
    assert list(cfg.SOLVER.STEPS) == [0, 11, 14] and cfg.OUTPUT_DIR.endswith(name[:-5])


def test_timesformer_config_overrides_the_base():
    cfg = load_config(str(REPO_ROOT / "configs" / "k400_timesformer_b.yaml"))
    assert cfg.MODEL.POS_EMBED == "learned" and list(cfg.DATA.TRAIN_CROP_SIZES) == [224]
    assert cfg.SCALE_CONSISTENCY.WEIGHT == 0.0


@pytest.mark.parametrize(
    "key,suggestion",
    [
        ("DATA.NUM_FRAME", "DATA.NUM_FRAMES"),
        ("SOLVER.NUM_FRAMES", "DATA.NUM_FRAMES"),  # right name, wrong section
        ("train.eval_period", "TRAIN.EVAL_PERIOD"),
    ],
)
def test_unknown_key_suggests_the_closest(key, suggestion):
    with pytest.raises(ConfigError) as info:
        load_config(None, [key, "1"])
    assert str(info.value).startswith(f"{key}: unknown config key (from command line); did you mean {suggestion}?")
    assert "resformer_video/config/defaults.py" in str(info.value)


def test_unknown_key_without_close_match_has_no_suggestion():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["QQQ.ZZZ", "1"])
    assert "did you mean" not in str(info.value)


def _run_net(capsys, *args):
    """``tools/run_net.py ARGS`` in this process: (exit code, stdout, stderr); an exception would
    propagate (i.e. a traceback)."""
    code = run_net.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_points_to_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        run_net.main(["--help"])
    assert info.value.code == 0
    assert "resformer_video/config/defaults.py" in capsys.readouterr().out


def _assert_one_clear_line(result, *fragments):
    code, _, err = result
    assert code == 2, err[-2000:]
    error_lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, err[-2000:]
    for fragment in fragments:
        assert fragment in error_lines[0]


SMALL = [
    "NUM_GPUS",
    0,
    "MODEL.ARCH",
    "resformer_tiny",
    "MODEL.DEPTH",
    1,
    "MODEL.NUM_CLASSES",
    4,
    "DATA.NUM_FRAMES",
    2,
    "DATA.TRAIN_CROP_SIZES",
    "[64]",
    "DATA.TEST_CROP_SIZE",
    64,
    "DATA_LOADER.NUM_WORKERS",
    0,
    "TENSORBOARD.ENABLE",
    False,
]


def test_run_net_missing_train_list_is_one_line(tmp_path, capsys):
    proc = _run_net(capsys, "DATA.PATH_TO_DATA_DIR", tmp_path, "OUTPUT_DIR", tmp_path / "out", *SMALL)
    _assert_one_clear_line(proc, f"{tmp_path / 'train.csv'}: dataset list not found")


def test_run_net_pretrained_of_another_architecture_is_one_line(tmp_path, synthetic_data_dir, capsys):
    weights = tmp_path / "small.pth"
    torch.save(build_model(make_cfg(None, MODEL__ARCH="resformer_small", MODEL__DEPTH=1)).state_dict(), weights)
    proc = _run_net(
        capsys,
        "DATA.PATH_TO_DATA_DIR",
        synthetic_data_dir,
        "DATA.PATH_PREFIX",
        synthetic_data_dir,
        "OUTPUT_DIR",
        tmp_path / "out",
        "MODEL.PRETRAINED",
        weights,
        *SMALL,
    )
    _assert_one_clear_line(proc, "MODEL.PRETRAINED:", str(weights), "does not match", "another architecture")


def test_run_net_unknown_key_suggests(tmp_path, capsys):
    proc = _run_net(capsys, "OUTPUT_DIR", tmp_path, "TRAIN.EVAL_PERIODS", 2)
    _assert_one_clear_line(proc, "TRAIN.EVAL_PERIODS: unknown config key", "did you mean TRAIN.EVAL_PERIOD?")

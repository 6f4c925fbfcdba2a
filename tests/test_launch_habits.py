"""What TimeSformer / PySlowFast users do: ``NUM_GPUS N`` with plain python starts N processes,
their multi-node flags and keys get the torchrun line, and their config files load with every key
that has an equivalent mapped (and the others listed in one error)."""

import importlib.util
import logging
import shlex

import pytest
import torch.distributed as dist

from resformer_video.config import ConfigError, load_config
from resformer_video.config.loader import MultiNodeError
from resformer_video.utils import distributed

from conftest import REPO_ROOT, make_cfg

_SPEC = importlib.util.spec_from_file_location("run_net_tool", REPO_ROOT / "tools" / "run_net.py")
run_net = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(run_net)

# The keys and values of TimeSformer's configs/Kinetics/TimeSformer_divST_8x32_224.yaml (its
# TRAIN.BATCH_SIZE 8 is per node there; here it stays per process).
TIMESFORMER_DIVST_8X32_224 = """
TRAIN: {ENABLE: True, DATASET: kinetics, BATCH_SIZE: 8, EVAL_PERIOD: 5, CHECKPOINT_PERIOD: 5, AUTO_RESUME: False}
DATA:
  PATH_TO_DATA_DIR: /path/to/kinetics/
  NUM_FRAMES: 8
  SAMPLING_RATE: 32
  TRAIN_JITTER_SCALES: [256, 320]
  TRAIN_CROP_SIZE: 224
  TEST_CROP_SIZE: 224
  INPUT_CHANNEL_NUM: [3]
TIMESFORMER: {ATTENTION_TYPE: 'divided_space_time'}
SOLVER:
  BASE_LR: 0.005
  LR_POLICY: steps_with_relative_lrs
  STEPS: [0, 11, 14]
  LRS: [1, 0.1, 0.01]
  MAX_EPOCH: 15
  MOMENTUM: 0.9
  WEIGHT_DECAY: 1e-4
  OPTIMIZING_METHOD: sgd
MODEL: {MODEL_NAME: vit_base_patch16_224, NUM_CLASSES: 400, ARCH: vit, LOSS_FUNC: cross_entropy, DROPOUT_RATE: 0.5}
TEST: {ENABLE: False, DATASET: kinetics, BATCH_SIZE: 8, NUM_ENSEMBLE_VIEWS: 1, NUM_SPATIAL_CROPS: 3}
DATA_LOADER: {NUM_WORKERS: 8, PIN_MEMORY: False}
NUM_GPUS: 8
NUM_SHARDS: 1
RNG_SEED: 0
OUTPUT_DIR: .
"""
MAPPED = [
    "TIMESFORMER.ATTENTION_TYPE -> MODEL.ATTENTION_TYPE",
    "DATA.TRAIN_CROP_SIZE -> DATA.TRAIN_CROP_SIZES",
    "MODEL.MODEL_NAME -> MODEL.ARCH, MODEL.POS_EMBED, MODEL.TEMPORAL_EMBED_INIT",
    "TRAIN.DATASET 'kinetics' -> nothing to set",
    "TEST.DATASET 'kinetics' -> nothing to set",
    "DATA.INPUT_CHANNEL_NUM [3] -> nothing to set",
    "MODEL.LOSS_FUNC 'cross_entropy' -> nothing",
    "MODEL.DROPOUT_RATE 0.5 -> nothing to set",
    "NUM_SHARDS 1 -> nothing to set",
    "MODEL.ARCH 'vit' -> nothing to set",
]


@pytest.fixture
def timesformer_yaml(tmp_path):
    path = tmp_path / "TimeSformer_divST_8x32_224.yaml"
    path.write_text(TIMESFORMER_DIVST_8X32_224)
    return path


def test_timesformer_config_loads_with_every_key_mapped(timesformer_yaml, caplog):
    with caplog.at_level(logging.WARNING, logger="resformer_video.config.foreign"):
        cfg = load_config(str(timesformer_yaml), ["TRAIN.CHECKPOINT_FILE_PATH", "none"])
    notes = [r.getMessage() for r in caplog.records]
    for line in MAPPED + ["TRAIN.CHECKPOINT_FILE_PATH -> MODEL.PRETRAINED"]:
        assert sum(note.startswith(line) for note in notes) == 1, (line, notes)
    assert len(notes) == len(MAPPED) + 1  # one line per foreign key, nothing else
    model = (cfg.MODEL.ARCH, cfg.MODEL.POS_EMBED, cfg.MODEL.TEMPORAL_EMBED_INIT)
    assert model == ("resformer_base", "learned", "zeros")
    assert cfg.MODEL.ATTENTION_TYPE == "divided_space_time" and list(cfg.DATA.TRAIN_CROP_SIZES) == [224]
    assert cfg.MODEL.PRETRAINED == "none" and cfg.MODEL.DROPOUT == 0.0
    recipe = (cfg.SOLVER.WEIGHT_DECAY, list(cfg.SOLVER.LRS), cfg.TRAIN.BATCH_SIZE, cfg.NUM_GPUS)
    assert recipe == (1e-4, [1, 0.1, 0.01], 8, 8)


def test_checkpoint_file_path_is_the_fine_tuning_start(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    cfg = load_config(None, ["TRAIN.CHECKPOINT_FILE_PATH", str(weights)])
    assert cfg.MODEL.PRETRAINED == str(weights) and cfg.TEST.CHECKPOINT_FILE_PATH == ""


def test_keys_without_an_equivalent_are_listed_in_one_error(timesformer_yaml):
    text = TIMESFORMER_DIVST_8X32_224 + "MIXUP: {ENABLED: True}\nEMA: {ENABLED: False}\nTRAIN_X: 1\n"
    timesformer_yaml.write_text(text.replace("DATASET: kinetics, BATCH", "DATASET: ssv2, BATCH", 1))
    with pytest.raises(ConfigError) as info:
        load_config(str(timesformer_yaml))
    message = str(info.value)
    assert message.startswith("EMA.ENABLED: 4 config keys without an equivalent here")
    for item in ("EMA.ENABLED", "TRAIN_X", "TRAIN.DATASET 'ssv2'", "MIXUP.ENABLED True"):
        assert item in message


def test_one_unknown_key_keeps_its_suggestion():
    with pytest.raises(
        ConfigError,
        match=r"^TEST\.CHECKPOINT_FILE: unknown config key .*did you mean "
        r"TEST\.CHECKPOINT_FILE_PATH\?",
    ):
        load_config(None, ["TEST.CHECKPOINT_FILE", "x"])


def _run_net(capsys, *args):
    code = run_net.main([str(a) for a in args])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1, err
    return errors[0]


def _torchrun_args(error):
    return shlex.split(error.split("on this node run: ", 1)[1].split(" (on the others", 1)[0])


def test_pyslowfast_flags_get_the_torchrun_line(timesformer_yaml, capsys):
    error = _run_net(
        capsys,
        "--cfg",
        timesformer_yaml,
        "--init_method",
        "tcp://10.1.2.3:9999",
        "--num_shards",
        2,
        "--shard_id",
        1,
        "OUTPUT_DIR",
        "/shared/out",
    )
    assert _torchrun_args(error) == [
        "torchrun",
        "--nnodes",
        "2",
        "--node_rank",
        "1",
        "--nproc_per_node",
        "8",
        "--master_addr",
        "10.1.2.3",
        "--master_port",
        "9999",
        "tools/run_net.py",
        "--cfg",
        str(timesformer_yaml),
        "OUTPUT_DIR",
        "/shared/out",
    ]


def test_num_shards_keys_get_the_torchrun_line(capsys):
    error = _run_net(capsys, "NUM_GPUS", 4, "NUM_SHARDS", 3, "SHARD_ID", 2)
    assert error.startswith("error: NUM_SHARDS: 3 nodes (this one 2)")
    assert _torchrun_args(error) == [
        "torchrun",
        "--nnodes",
        "3",
        "--node_rank",
        "2",
        "--nproc_per_node",
        "4",
        "--master_addr",
        "NODE0_ADDRESS",
        "--master_port",
        "29500",
        "tools/run_net.py",
        "NUM_GPUS",
        "4",
    ]


def test_flags_replace_the_keys_in_the_line(capsys):
    error = _run_net(capsys, "--shard_id", 0, "NUM_SHARDS", 2, "SHARD_ID", 1)
    assert "--nnodes 2 --node_rank 0 " in error


def test_num_gpus_beyond_the_visible_gpus_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(distributed.torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(distributed.torch.cuda, "is_available", lambda: True)
    error = _run_net(
        capsys, "NUM_GPUS", 2, "OUTPUT_DIR", tmp_path, "TRAIN.ENABLE", False, "TEST.CHECKPOINT_FILE_PATH", ""
    )
    assert error == "error: NUM_GPUS: is 2 but 1 GPU(s) are visible (set NUM_GPUS 1 or fewer; 0 runs on CPU)"


def test_launch_world_size(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert [distributed.launch_world_size(make_cfg(NUM_GPUS=n)) for n in (0, 1, 8)] == [1, 1, 8]
    monkeypatch.setenv("WORLD_SIZE", "16")
    assert distributed.launch_world_size(make_cfg(NUM_GPUS=8)) == 16


def rank_and_world(cfg):
    """Run in each spawned process: what the process group says."""
    return {
        "rank": dist.get_rank(),
        "world": dist.get_world_size(),
        "gpus": cfg.NUM_GPUS,
        "ranks": distributed.all_gather_objects(dist.get_rank()),
    }


class Refused(ValueError):
    """A user error raised in a spawned process."""


def refuse(cfg):
    raise Refused("no such list")


@pytest.mark.slow
def test_spawn_local_runs_one_process_group_of_n(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    result = distributed.spawn_local(make_cfg(), rank_and_world, 2)
    assert result == {"rank": 0, "world": 2, "gpus": 0, "ranks": [0, 1]}


@pytest.mark.slow
def test_a_user_error_in_a_spawned_process_is_one_line(monkeypatch, capfd):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(distributed.SpawnedProcessError) as info:
        distributed.spawn_local(make_cfg(), refuse, 2, (Refused,))
    assert info.value.exit_code == distributed.USER_ERROR_EXIT
    err = capfd.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == ["error: no such list"]


def test_multi_node_error_is_a_config_error():
    assert issubclass(MultiNodeError, ConfigError)


def test_spawning_leaves_this_process_s_signal_handlers_as_they_were():
    """torch's elastic agent installs SIGTERM/SIGINT handlers for a launch; spawn_local puts ours back,
    so a later SIGTERM in this process (e.g. a run's graceful stop) is not torch's."""
    import signal

    from resformer_video.utils import distributed

    def sentinel(signum, frame):
        pass

    before = signal.signal(signal.SIGTERM, sentinel)
    try:
        with distributed._signal_handlers_restored():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # what the agent does, in effect
        assert signal.getsignal(signal.SIGTERM) is sentinel
    finally:
        signal.signal(signal.SIGTERM, before)

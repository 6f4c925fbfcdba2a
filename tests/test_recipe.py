"""The training recipe: accumulation, TimeSformer's schedule, the two weight-decay rules, the
pretrained guard of the K400 configs and the dry-run that prints all of it."""

import copy
import importlib.util

import pytest
import torch
import torch.nn.functional as F
from timm.optim import param_groups_weight_decay as timm_groups

from resformer_video.config import ConfigError, check_pretrained, load_config
from resformer_video.datasets.loader import train_iterations_per_epoch
from resformer_video.engine.optimizer import LRSchedule, build_optimizer
from resformer_video.engine.recipe import epoch_learning_rates
from resformer_video.engine.train import build_train_state, train_epoch
from resformer_video.models import build_model
from resformer_video.utils.logging import StatsWriter
from resformer_video.utils.meters import TrainMeter

from conftest import REPO_ROOT, make_cfg

K400 = REPO_ROOT / "configs" / "k400_resformer_b.yaml"
_SPEC = importlib.util.spec_from_file_location("run_net_tool", REPO_ROOT / "tools" / "run_net.py")
run_net = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(run_net)
SIZES = (32, 16)


# ----------------------------------------------------------------------------------------------
# Gradient accumulation: one step over micro-batches == one step over the whole batch
# ----------------------------------------------------------------------------------------------
def _batches(num_clips, per_batch):
    gen = torch.Generator().manual_seed(5)
    base = torch.randn(num_clips, 3, 2, SIZES[0], SIZES[0], generator=gen)
    clips = [
        F.interpolate(base.flatten(1, 2), size=(s, s), mode="bilinear", align_corners=False).view(num_clips, 3, 2, s, s)
        for s in SIZES
    ]
    labels = torch.arange(num_clips) % 4
    return [
        {"clips": [c[i : i + per_batch] for c in clips], "label": labels[i : i + per_batch], "sizes": list(SIZES)}
        for i in range(0, num_clips, per_batch)
    ]


def _one_epoch(tmp_path, batch_size, global_batch):
    cfg = make_cfg(
        MODEL__DROP_PATH_RATE=0.0,
        MODEL__DEPTH=1,
        DATA__NUM_FRAMES=2,
        DATA__TRAIN_CROP_SIZES=list(SIZES),
        DATA__TRAIN_JITTER_SCALES=[32, 40],
        DATA__TEST_CROP_SIZE=32,
        TRAIN__BATCH_SIZE=batch_size,
        TRAIN__GLOBAL_BATCH_SIZE=global_batch,
        SOLVER__BASE_LR=0.5,
        SOLVER__ZERO_WD_1D_PARAM=False,
        SOLVER__MAX_EPOCH=1,
        OUTPUT_DIR=str(tmp_path),
    )
    torch.manual_seed(0)
    state = build_train_state(cfg, build_model(cfg), torch.device("cpu"))
    before = copy.deepcopy(state.model.state_dict())
    loader = _batches(8, batch_size)
    stats = StatsWriter(str(tmp_path))
    try:
        train_epoch(state, loader, 0, cfg, TrainMeter(len(loader), 1), stats)
    finally:
        stats.close()
    return state, before


def test_accumulated_step_equals_one_step_on_the_whole_batch(tmp_path):
    accumulated, before = _one_epoch(tmp_path / "a", batch_size=2, global_batch=8)
    whole, _ = _one_epoch(tmp_path / "b", batch_size=8, global_batch=8)
    assert accumulated.accum_steps == 4 and whole.accum_steps == 1
    moved = 0
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(
            accumulated.model.state_dict()[name], value, rtol=0, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}"
        )
        moved += int((value - before[name]).abs().max() > 1e-3)
    assert moved > 10  # the step changed the weights: the comparison is not of two untouched models


# ----------------------------------------------------------------------------------------------
# The learning rate: TimeSformer's steps_with_relative_lrs
# ----------------------------------------------------------------------------------------------
def timesformer_lr(base_lr, steps, lrs, max_epoch, cur_epoch):
    """TimeSformer's (PySlowFast's) lr_policy.lr_func_steps_with_relative_lrs with its
    get_step_index: the first step of ``steps + [max_epoch]`` after ``cur_epoch``, minus one."""
    for ind, step in enumerate(list(steps) + [max_epoch]):
        if cur_epoch < step:
            break
    return lrs[ind - 1] * base_lr


def test_lr_of_every_iteration_equals_timesformers_schedule():
    cfg = load_config(str(K400))
    solver = cfg.SOLVER
    schedule = LRSchedule.from_cfg(cfg)
    data_size = 7  # train_net.py sets get_epoch_lr(cur_epoch + cur_iter / data_size) every iteration
    for epoch in range(solver.MAX_EPOCH):
        for it in range(data_size):
            expected = timesformer_lr(
                solver.BASE_LR, solver.STEPS, solver.LRS, solver.MAX_EPOCH, epoch + it / data_size
            )
            assert schedule(epoch + it / data_size) == pytest.approx(expected, rel=1e-12)
    expected = [
        timesformer_lr(solver.BASE_LR, solver.STEPS, solver.LRS, solver.MAX_EPOCH, e) for e in range(solver.MAX_EPOCH)
    ]
    assert epoch_learning_rates(cfg) == pytest.approx(expected, rel=1e-12)
    assert expected[10] == pytest.approx(0.005) and expected[11] == pytest.approx(0.0005)


# ----------------------------------------------------------------------------------------------
# Weight decay: TimeSformer's rule (SOLVER.ZERO_WD_1D_PARAM False) and timm's groups (True)
# ----------------------------------------------------------------------------------------------
def _named_groups(model, optimizer):
    names = {id(p): n for n, p in model.named_parameters()}
    return [(g["weight_decay"], {names[id(p)] for p in g["params"]}) for g in optimizer.param_groups]


def test_timesformer_rule_decays_every_parameter_of_the_model():
    cfg = make_cfg(SOLVER__ZERO_WD_1D_PARAM=False)
    model = build_model(cfg)
    groups = _named_groups(model, build_optimizer(model, cfg))
    assert groups == [(1e-4, {n for n, _ in model.named_parameters()})]  # no name holds "bn"
    assert {"cls_token", "time_embed", "norm.weight", "head.bias", "gpe.proj.weight"} <= groups[0][1]


def test_timesformer_rule_exempts_names_with_bn():
    cfg = make_cfg(SOLVER__ZERO_WD_1D_PARAM=False)
    model = torch.nn.Sequential()
    model.add_module("conv", torch.nn.Conv1d(2, 2, 1))
    model.add_module("bn", torch.nn.BatchNorm1d(2))
    groups = _named_groups(model, build_optimizer(model, cfg))
    assert groups == [(1e-4, {"conv.weight", "conv.bias"}), (0.0, {"bn.weight", "bn.bias"})]


def test_zero_wd_1d_param_gives_timms_groups():
    cfg = make_cfg(SOLVER__ZERO_WD_1D_PARAM=True)
    model = build_model(cfg)
    groups = dict(_named_groups(model, build_optimizer(model, cfg)))
    reference = {
        g["weight_decay"]: {n for n, p in model.named_parameters() if any(p is q for q in g["params"])}
        for g in timm_groups(model, 1e-4, no_weight_decay_list=list(model.no_weight_decay()))
    }
    assert groups == reference and set(groups) == {1e-4, 0.0}
    assert set(model.no_weight_decay()) <= groups[0.0] and "blocks.0.norm1.weight" in groups[0.0]
    assert "head.weight" in groups[1e-4] and "head.bias" in groups[0.0]


def test_k400_configs_use_timesformers_recipe():
    for name in ("k400_resformer_b.yaml", "k400_resformer_s.yaml", "k400_timesformer_b.yaml"):
        cfg = load_config(str(REPO_ROOT / "configs" / name))
        assert cfg.TRAIN.GLOBAL_BATCH_SIZE == 64 and cfg.SOLVER.ZERO_WD_1D_PARAM is False
        assert cfg.TRAIN.REQUIRE_PRETRAINED is True and cfg.TEST.PROTOCOL == "timesformer"
        assert (cfg.SOLVER.NESTEROV, cfg.SOLVER.MOMENTUM, cfg.SOLVER.WEIGHT_DECAY) == (True, 0.9, 1e-4)


# ----------------------------------------------------------------------------------------------
# The pretrained guard
# ----------------------------------------------------------------------------------------------
def test_k400_config_without_pretrained_stops_naming_the_key(tmp_path):
    cfg = load_config(str(K400))
    with pytest.raises(ConfigError, match=r"^MODEL.PRETRAINED: is not set.*MODEL.PRETRAINED none"):
        check_pretrained(cfg)
    check_pretrained(load_config(str(K400), ["MODEL.PRETRAINED", "none"]))  # from scratch on purpose
    check_pretrained(load_config(str(K400), ["TRAIN.ENABLE", "False"]))  # testing needs no start
    check_pretrained(make_cfg())  # configs without TRAIN.REQUIRE_PRETRAINED (demo, study)


def test_pretrained_none_builds_a_model_from_scratch():
    cfg = make_cfg(MODEL__PRETRAINED="none")
    torch.manual_seed(0)
    model = build_model(cfg)
    torch.manual_seed(0)
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), build_model(make_cfg()).state_dict().values())
    )


# ----------------------------------------------------------------------------------------------
# The dry-run
# ----------------------------------------------------------------------------------------------
def test_train_iterations_per_epoch_equal_the_loaders():
    cfg = make_cfg(TRAIN__BATCH_SIZE=4)
    assert [train_iterations_per_epoch(cfg, 50, world) for world in (1, 2, 4)] == [12, 6, 3]
    repeated = make_cfg(TRAIN__BATCH_SIZE=4, DATA__NUM_REPEATED_SAMPLES=2)
    assert train_iterations_per_epoch(repeated, 50, 1) == 12  # 25 decodes, 2 per batch


def _dry_run(capsys, data_dir, *opts):
    code = run_net.main(
        [
            "--cfg",
            str(K400),
            "--dry-run",
            "DATA.PATH_TO_DATA_DIR",
            str(data_dir),
            "MODEL.ARCH",
            "resformer_tiny",
            "MODEL.DEPTH",
            "1",
            "MODEL.NUM_CLASSES",
            "4",
            "DATA.NUM_FRAMES",
            "2",
            "DATA.TRAIN_CROP_SIZES",
            "[64, 32]",
            "DATA.TRAIN_JITTER_SCALES",
            "[64, 80]",
            "DATA.TEST_CROP_SIZE",
            "64",
            "TEST.RESOLUTIONS",
            "[32, 64]",
            *map(str, opts),
        ]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def test_dry_run_prints_the_recipe_without_opening_videos(tmp_path, capsys):
    data = tmp_path / "k400"
    data.mkdir()
    (data / "train.csv").write_text("".join(f"missing/v{i}.mp4 {i % 4}\n" for i in range(100)))
    (data / "test.csv").write_text("".join(f"missing/t{i}.mp4 {i % 4}\n" for i in range(10)))
    weights = tmp_path / "weights.pth"
    state = build_model(make_cfg(MODEL__DEPTH=1)).state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("head.")}, weights)
    code, out, err = _dry_run(
        capsys,
        data,
        "NUM_GPUS",
        2,
        "TRAIN.BATCH_SIZE",
        4,
        "TRAIN.GLOBAL_BATCH_SIZE",
        16,
        "MODEL.PRETRAINED",
        weights,
        "OUTPUT_DIR",
        tmp_path / "out",
    )
    assert code == 0, err
    assert (
        "2 process(es) x 4 clip(s) per process (TRAIN.BATCH_SIZE) x 2 accumulated "
        "micro-batch(es) = 16 clips per optimiser step"
    ) in out
    # 100 videos over 2 processes: 50 each, 12 iterations of 4, 6 steps of 2 micro-batches
    assert "optimiser steps: 6 per epoch (100 train videos, 12 iterations per process), 90 in 15 epochs" in out
    assert "1-11: 0.005, 12-14: 0.0005, 15: 5e-05" in out
    assert "(SOLVER.ZERO_WD_1D_PARAM False: every parameter whose name lacks 'bn'" in out
    assert "none on 0" in out and "no decay:" not in out
    assert "clip: 2 frames x sampling rate 32 at 30 fps (2.13 s)" in out
    assert "train: crops 64/32 (short side jitter 64-80, 32-40 px)" in out
    assert "test: TEST.PROTOCOL timesformer, 1 clip(s) x 3 crop(s) at 64, sweep 32/64, logits summed" in out
    assert "split test (10 videos)" in out and "precision: bf16 autocast on GPU" in out
    total = len(state)
    assert f"starting weights: {weights}: {total - 2} of {total} model tensors loaded, 2 missing" in out
    assert "missing (kept at initialisation): head.weight, head.bias" in out
    assert "GFLOPs per training clip" in out and " + " in out


def test_dry_run_of_a_k400_config_without_weights_says_what_to_set(tmp_path, capsys):
    (tmp_path / "train.csv").write_text("a.mp4 0\n")
    code, out, err = _dry_run(capsys, tmp_path, "NUM_GPUS", 0, "SOLVER.ZERO_WD_1D_PARAM", True)
    assert code == 2
    assert "starting weights: NOT SET" in out and "no decay: cls_token" in out
    assert "optimiser steps: 1 per epoch (1 train videos" in out
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        line for line in err.splitlines() if line.startswith("error: MODEL.PRETRAINED: is not set")
    ]


def test_lr_line_names_momentum_only_for_sgd():
    from resformer_video.engine.recipe import _lr_line

    sgd = _lr_line(make_cfg(SOLVER__OPTIMIZING_METHOD="sgd", SOLVER__MOMENTUM=0.9, SOLVER__NESTEROV=True))
    adamw = _lr_line(make_cfg(SOLVER__OPTIMIZING_METHOD="adamw", SOLVER__MOMENTUM=0.9, SOLVER__NESTEROV=True))
    assert "sgd, momentum 0.9, nesterov)" in sgd
    assert "adamw)" in adamw and "momentum" not in adamw and "nesterov" not in adamw

"""Optimiser parameter groups and the per-iteration learning-rate schedule."""

import math

import pytest
import torch

from resformer_video.engine.optimizer import build_optimizer, get_lr_at_epoch, set_lr
from resformer_video.models import build_model

from conftest import make_cfg


def test_no_weight_decay_on_norms_biases_and_embeddings():
    cfg = make_cfg(MODEL__TEMPORAL_EMBED="learned")
    model = build_model(cfg)
    opt = build_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is True
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    decay_names = {names[id(p)] for p in decay["params"]}
    assert set(model.no_weight_decay()) <= no_decay_names
    assert all(n.endswith(".bias") or "norm" in n or n in model.no_weight_decay() for n in no_decay_names)
    assert all(names[id(p)] in decay_names for p in decay["params"] if p.ndim >= 2)
    assert "head.weight" in decay_names and "head.bias" in no_decay_names
    assert len(decay_names) + len(no_decay_names) == len(list(model.parameters()))


def test_adamw_option():
    cfg = make_cfg(SOLVER__OPTIMIZING_METHOD="adamw", SOLVER__BASE_LR=1e-3)
    opt = build_optimizer(build_model(cfg), cfg)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize(
    "epoch, lr", [(0.0, 0.005), (10.99, 0.005), (11.0, 0.0005), (13.5, 0.0005), (14.0, 0.00005), (14.99, 0.00005)]
)
def test_multistep_schedule_of_the_paper(epoch, lr):
    cfg = make_cfg()  # defaults: BASE_LR 0.005, STEPS [0, 11, 14], LRS [1, 0.1, 0.01]
    assert get_lr_at_epoch(cfg, epoch) == pytest.approx(lr)


def test_linear_warmup_then_policy():
    cfg = make_cfg(SOLVER__WARMUP_EPOCHS=2.0, SOLVER__WARMUP_START_LR=0.001)
    assert get_lr_at_epoch(cfg, 0.0) == pytest.approx(0.001)
    assert get_lr_at_epoch(cfg, 1.0) == pytest.approx(0.003)  # halfway from 0.001 to 0.005
    assert get_lr_at_epoch(cfg, 2.0) == pytest.approx(0.005)


def test_cosine_schedule_per_iteration():
    cfg = make_cfg(SOLVER__LR_POLICY="cosine", SOLVER__BASE_LR=0.1, SOLVER__MAX_EPOCH=10)
    assert get_lr_at_epoch(cfg, 0.0) == pytest.approx(0.1)
    assert get_lr_at_epoch(cfg, 5.0) == pytest.approx(0.05)
    assert get_lr_at_epoch(cfg, 2.5) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    assert get_lr_at_epoch(cfg, 2.5) < get_lr_at_epoch(cfg, 2.4)  # changes within an epoch


def test_set_lr_sets_every_group():
    cfg = make_cfg()
    opt = build_optimizer(build_model(cfg), cfg)
    set_lr(opt, 0.123)
    assert [g["lr"] for g in opt.param_groups] == [0.123, 0.123]

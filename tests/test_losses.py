"""The multi-resolution loss: values against hand-written formulas, no gradient to the teacher,
and per-resolution backward giving the same gradients as one backward."""

import pytest
import torch
import torch.nn.functional as F

from resformer_video.engine.losses import MultiResolutionLoss, parts_to_floats, scale_consistency_loss
from resformer_video.engine.train import build_train_state, forward_backward
from resformer_video.models import build_model

from conftest import make_cfg


def _tiny_model(**overrides):
    cfg = make_cfg(MODEL__DROP_PATH_RATE=0.0, **overrides)
    torch.manual_seed(0)
    return cfg, build_model(cfg)


def _clips(batch=2, sizes=(64, 32), frames=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(batch, 3, frames, sizes[0], sizes[0], generator=gen)
    return [
        F.interpolate(base.flatten(1, 2), size=(s, s), mode="bilinear", align_corners=False).view(
            batch, 3, frames, s, s
        )
        for s in sizes
    ]


def test_scale_consistency_values_match_formulas():
    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(4, 10, generator=gen), torch.randn(4, 10, generator=gen)
    diff = student - teacher
    assert torch.isclose(scale_consistency_loss(student, teacher, "l2"), (diff**2).mean())
    smooth = torch.where(diff.abs() < 1, 0.5 * diff**2, diff.abs() - 0.5).mean()
    assert torch.isclose(scale_consistency_loss(student, teacher, "smooth_l1"), smooth)
    p, q = teacher.softmax(-1), student.softmax(-1)
    kl = (p * (p.log() - q.log())).sum(-1).mean()
    assert torch.isclose(scale_consistency_loss(student, teacher, "kl"), kl, atol=1e-6)
    with pytest.raises(ValueError, match="SCALE_CONSISTENCY.LOSS"):
        scale_consistency_loss(student, teacher, "l1")


@pytest.mark.parametrize("target", ["cls_token", "logits"])
def test_teacher_gets_no_gradient_from_consistency(target):
    _, model = _tiny_model()
    criterion = MultiResolutionLoss(sc_weight=1.0, sc_target=target, sc_loss="l2")
    labels = torch.tensor([0, 3])
    big, small = [c.requires_grad_() for c in _clips()]
    feats0 = model.forward_features(big)
    logits0 = model.forward_head(feats0)
    loss0, parts0, teacher = criterion.term(feats0, logits0, labels, None, 2, 64)
    feats1 = model.forward_features(small)
    logits1 = model.forward_head(feats1)
    loss1, parts1, _ = criterion.term(feats1, logits1, labels, teacher, 2, 32)
    # The smaller size's term (CE_1 + SC_1) reaches its own input but never the teacher's.
    grad_big, grad_small = torch.autograd.grad(loss1, [big, small], allow_unused=True)
    assert grad_big is None
    assert grad_small is not None and grad_small.abs().sum() > 0
    # Each part is reported and equals an independent computation.
    ref_target = (feats0, feats1) if target == "cls_token" else (logits0, logits1)
    assert set(parts0) == {"ce_64"} and set(parts1) == {"ce_32", "sc_32"}
    assert torch.isclose(parts1["sc_32"], F.mse_loss(ref_target[1], ref_target[0]))
    assert torch.isclose(parts1["ce_32"], F.cross_entropy(logits1, labels))
    assert torch.isclose(loss1 * 2, parts1["ce_32"] + parts1["sc_32"])
    assert torch.isclose(loss0 * 2, parts0["ce_64"])


def test_total_loss_is_mean_over_resolutions_with_weight():
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn(3, 8, generator=gen) for _ in range(3)]
    logits = [torch.randn(3, 5, generator=gen) for _ in range(3)]
    labels = torch.tensor([1, 0, 4])
    criterion = MultiResolutionLoss(label_smoothing=0.1, sc_weight=0.5)
    total, parts = criterion(list(zip(feats, logits)), labels, [96, 64, 48])
    ce = [F.cross_entropy(lg, labels, label_smoothing=0.1) for lg in logits]
    sc = [F.mse_loss(feats[1], feats[0]), F.mse_loss(feats[2], feats[1])]
    expected = (ce[0] + ce[1] + 0.5 * sc[0] + ce[2] + 0.5 * sc[1]) / 3
    assert torch.isclose(total, expected)
    floats = parts_to_floats(parts)
    assert set(floats) == {"ce_96", "ce_64", "ce_48", "sc_64", "sc_48", "loss"}
    assert floats["sc_48"] == pytest.approx(sc[1].item(), rel=1e-5)
    # Weight 0 drops the consistency term (the TimeSformer baseline).
    _, parts = MultiResolutionLoss(sc_weight=0.0)(list(zip(feats, logits)), labels, [96, 64, 48])
    assert not any(k.startswith("sc_") for k in parts)


@pytest.mark.parametrize("sc_weight", [0.5, 0.0])
def test_structured_parts_sum_to_the_total(sc_weight):
    gen = torch.Generator().manual_seed(2)
    outputs = [(torch.randn(3, 8, generator=gen), torch.randn(3, 5, generator=gen)) for _ in range(3)]
    labels = torch.tensor([4, 1, 0])
    criterion = MultiResolutionLoss(label_smoothing=0.1, sc_weight=sc_weight)
    total, parts = criterion(outputs, labels, [96, 64, 48])
    assert list(parts.sizes) == [96, 64, 48] and parts.sizes[96].sc is None
    assert all((parts.sizes[s].sc is not None) == (sc_weight > 0) for s in (64, 48))
    summed = sum(p.ce + (sc_weight * p.sc if p.sc is not None else 0.0) for p in parts.sizes.values()) / 3
    assert torch.isclose(summed, total) and torch.equal(parts.total, total.detach())
    # The same parts by size, fed one size at a time through the chain (backward per resolution).
    chain = criterion.chain(labels, [96, 64, 48])
    shares = [chain.add(feats, logits) for feats, logits in outputs]
    assert torch.isclose(sum(shares), total)
    assert parts_to_floats(chain.parts()) == pytest.approx(parts_to_floats(parts), rel=1e-6)


def _grads_after_step(per_resolution: bool):
    cfg, model = _tiny_model(TRAIN__BACKWARD_PER_RESOLUTION=per_resolution, DATA__TRAIN_CROP_SIZES=[64, 48, 32])
    state = build_train_state(cfg, model, torch.device("cpu"))
    parts = forward_backward(state, _clips(sizes=(64, 48, 32)), torch.tensor([1, 2]))
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, parts


def test_backward_per_resolution_gives_the_same_gradients():
    grads_once, parts_once = _grads_after_step(False)
    grads_each, parts_each = _grads_after_step(True)
    assert grads_once.keys() == grads_each.keys() and len(grads_once) > 10
    for name in grads_once:
        torch.testing.assert_close(
            grads_each[name], grads_once[name], rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}"
        )
    assert parts_to_floats(parts_each) == pytest.approx(parts_to_floats(parts_once), rel=1e-5)

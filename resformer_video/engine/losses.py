"""Multi-resolution training loss: cross-entropy at every size plus ResFormer's scale consistency.

For training sizes ``s_0 > s_1 > ... > s_{r-1}`` (largest first) the loss is

    total = sum_i (CE_i + w * SC_i) / r,   SC_0 = 0,   SC_i = dist(z_i, stopgrad(z_{i-1}))

where ``z_i`` is the final-norm class token (``SCALE_CONSISTENCY.TARGET cls_token``) or the logits
(``logits``) at size ``s_i``. The larger size is the teacher and gets no gradient from ``SC_i``.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from yacs.config import CfgNode


def scale_consistency_loss(student: Tensor, teacher: Tensor, kind: str = "l2") -> Tensor:
    """Distance between ``student`` and ``teacher`` (both ``(B, D)``); the teacher is detached.

    ``l2`` is the mean squared error, ``smooth_l1`` the mean smooth-L1 (beta 1), ``kl`` the
    batch-mean KL(softmax(teacher) || softmax(student)) over the last dimension.
    """
    teacher = teacher.detach()
    if kind == "l2":
        return F.mse_loss(student, teacher)
    if kind == "smooth_l1":
        return F.smooth_l1_loss(student, teacher)
    if kind == "kl":
        return F.kl_div(F.log_softmax(student, dim=-1), F.log_softmax(teacher, dim=-1),
                        reduction="batchmean", log_target=True)
    raise ValueError(f"SCALE_CONSISTENCY.LOSS: unknown loss {kind!r}")


class MultiResolutionLoss:
    """Cross-entropy per resolution plus the scale-consistency term towards the next larger size.

    Use :meth:`term` one resolution at a time (backward per resolution: keep the returned teacher
    for the next, smaller size) or :meth:`__call__` on all resolutions at once; both give the same
    value and the same gradients.
    """

    def __init__(self, label_smoothing: float = 0.0, sc_weight: float = 1.0,
                 sc_target: str = "cls_token", sc_loss: str = "l2") -> None:
        self.label_smoothing = label_smoothing
        self.sc_weight = sc_weight
        self.sc_target = sc_target
        self.sc_loss = sc_loss

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> "MultiResolutionLoss":
        return cls(cfg.TRAIN.LABEL_SMOOTHING, cfg.SCALE_CONSISTENCY.WEIGHT,
                   cfg.SCALE_CONSISTENCY.TARGET, cfg.SCALE_CONSISTENCY.LOSS)

    def term(self, feats: Tensor, logits: Tensor, labels: Tensor, teacher: Optional[Tensor],
             num_resolutions: int, size: int) -> Tuple[Tensor, Dict[str, Tensor], Tensor]:
        """One resolution's share of the total loss.

        Args:
            feats: final-norm class tokens ``(B, D)`` at this size.
            logits: ``(B, num_classes)`` at this size.
            labels: ``(B,)`` class indices.
            teacher: the detached target of the next larger size, or None for the largest.
            num_resolutions: ``r``, the number of training sizes (the total is divided by it).
            size: this crop size, used to name the logged parts (``ce_224``, ``sc_160``).

        Returns:
            ``(CE + w * SC) / r`` as a tensor, the parts as detached 0-d tensors, and this size's detached target
            (the teacher of the next, smaller size).
        """
        ce = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        loss = ce
        parts = {f"ce_{size}": ce.detach()}
        target = feats if self.sc_target == "cls_token" else logits
        target = target.float()
        if teacher is not None and self.sc_weight > 0:
            sc = scale_consistency_loss(target, teacher, self.sc_loss)
            loss = loss + self.sc_weight * sc
            parts[f"sc_{size}"] = sc.detach()
        return loss / num_resolutions, parts, target.detach()

    def __call__(self, outputs: Sequence[Tuple[Tensor, Tensor]], labels: Tensor,
                 sizes: Sequence[int]) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Total loss over ``outputs`` = ``[(feats_i, logits_i), ...]`` (largest size first)."""
        total: Optional[Tensor] = None
        parts: Dict[str, Tensor] = {}
        teacher: Optional[Tensor] = None
        for (feats, logits), size in zip(outputs, sizes):
            loss, term_parts, teacher = self.term(feats, logits, labels, teacher, len(outputs), size)
            total = loss if total is None else total + loss
            parts.update(term_parts)
        assert total is not None, "no resolutions given"
        parts["loss"] = total.detach()
        return total, parts


def parts_to_floats(parts: Dict[str, Tensor]) -> Dict[str, float]:
    """Loss parts as Python floats, with one device synchronisation."""
    if not parts:
        return {}
    values = torch.stack([v.float() for v in parts.values()]).tolist()
    return dict(zip(parts.keys(), values))

"""Multi-resolution training loss: cross-entropy at every size plus ResFormer's scale consistency.

For training sizes ``s_0 > s_1 > ... > s_{r-1}`` (largest first) the loss is

    total = sum_i (CE_i + w * SC_i) / r,   SC_0 = 0,   SC_i = dist(z_i, stopgrad(z_{i-1}))

where ``z_i`` is the final-norm class token (``SCALE_CONSISTENCY.TARGET cls_token``) or the logits
(``logits``) at size ``s_i``. The larger size is the teacher and gets no gradient from ``SC_i``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence

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
        return F.kl_div(
            F.log_softmax(student, dim=-1), F.log_softmax(teacher, dim=-1), reduction="batchmean", log_target=True
        )
    raise ValueError(f"SCALE_CONSISTENCY.LOSS: unknown loss {kind!r}")


@dataclasses.dataclass
class SizeLoss:
    """One training size's loss parts, detached 0-d tensors: cross-entropy and, for every size
    below the largest one (with a consistency weight > 0), the scale-consistency distance."""

    ce: Tensor
    sc: Tensor | None = None


@dataclasses.dataclass(eq=False)
class LossParts(Mapping):
    """The parts of a multi-resolution loss: :class:`SizeLoss` per crop size (largest first) and
    the detached total (None for a single size's term).

    Read as a mapping it gives the names logged per iteration: ``ce_{size}``, ``sc_{size}`` for
    each size (largest first), then ``loss``.
    """

    sizes: dict[int, SizeLoss] = dataclasses.field(default_factory=dict)
    total: Tensor | None = None

    def flat(self) -> dict[str, Tensor]:
        """``{"ce_224": ..., "ce_160": ..., "sc_160": ..., ..., "loss": ...}``."""
        out: dict[str, Tensor] = {}
        for size, part in self.sizes.items():
            out[f"ce_{size}"] = part.ce
            if part.sc is not None:
                out[f"sc_{size}"] = part.sc
        if self.total is not None:
            out["loss"] = self.total
        return out

    def __getitem__(self, key: str) -> Tensor:
        return self.flat()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.flat())

    def __len__(self) -> int:
        return len(self.flat())


class MultiResolutionLoss:
    """Cross-entropy per resolution plus the scale-consistency term towards the next larger size.

    :meth:`chain` adds the sizes one at a time (backward per resolution); :meth:`__call__` takes
    all resolutions at once through the same chain; both give the same value and gradients.
    """

    def __init__(
        self, label_smoothing: float = 0.0, sc_weight: float = 1.0, sc_target: str = "cls_token", sc_loss: str = "l2"
    ) -> None:
        self.label_smoothing = label_smoothing
        self.sc_weight = sc_weight
        self.sc_target = sc_target
        self.sc_loss = sc_loss

    @classmethod
    def from_cfg(cls, cfg: CfgNode) -> MultiResolutionLoss:
        return cls(
            cfg.TRAIN.LABEL_SMOOTHING,
            cfg.SCALE_CONSISTENCY.WEIGHT,
            cfg.SCALE_CONSISTENCY.TARGET,
            cfg.SCALE_CONSISTENCY.LOSS,
        )

    def term(
        self, feats: Tensor, logits: Tensor, labels: Tensor, teacher: Tensor | None, num_resolutions: int, size: int
    ) -> tuple[Tensor, LossParts, Tensor]:
        """One resolution's share of the total loss.

        Args:
            feats: final-norm class tokens ``(B, D)`` at this size.
            logits: ``(B, num_classes)`` at this size.
            labels: ``(B,)`` class indices.
            teacher: the detached target of the next larger size, or None for the largest.
            num_resolutions: ``r``, the number of training sizes (the total is divided by it).
            size: this crop size, the key of its parts.

        Returns:
            ``(CE + w * SC) / r`` as a tensor, this size's :class:`LossParts` (no total), and this
            size's detached target (the teacher of the next, smaller size).
        """
        ce = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        loss = ce
        part = SizeLoss(ce=ce.detach())
        target = feats if self.sc_target == "cls_token" else logits
        target = target.float()
        if teacher is not None and self.sc_weight > 0:
            sc = scale_consistency_loss(target, teacher, self.sc_loss)
            loss = loss + self.sc_weight * sc
            part.sc = sc.detach()
        return loss / num_resolutions, LossParts({size: part}), target.detach()

    def chain(self, labels: Tensor, sizes: Sequence[int]) -> ResolutionChain:
        """A :class:`ResolutionChain` over ``sizes`` (largest first) for ``labels`` ``(B,)``."""
        return ResolutionChain(self, labels, sizes)

    def __call__(
        self, outputs: Sequence[tuple[Tensor, Tensor]], labels: Tensor, sizes: Sequence[int]
    ) -> tuple[Tensor, LossParts]:
        """Total loss over ``outputs`` = ``[(feats_i, logits_i), ...]`` (largest size first)."""
        assert outputs, "no resolutions given"
        chain = self.chain(labels, sizes)
        total = sum(chain.add(feats, logits) for feats, logits in outputs)
        return total, chain.parts()


class ResolutionChain:
    """The teacher loop: each size's term, largest first, with the detached target of the size
    before it as its teacher. :meth:`add` one size's outputs at a time (and backward its loss
    before the next forward, if wanted); :meth:`parts` at the end."""

    def __init__(self, criterion: MultiResolutionLoss, labels: Tensor, sizes: Sequence[int]) -> None:
        self.criterion = criterion
        self.labels = labels
        self.sizes = list(sizes)
        self._parts = LossParts()
        self._teacher: Tensor | None = None
        self._total: Tensor | None = None

    def add(self, feats: Tensor, logits: Tensor) -> Tensor:
        """The next size's share ``(CE + w * SC) / r`` of the total (with its graph)."""
        size = self.sizes[len(self._parts.sizes)]
        loss, parts, self._teacher = self.criterion.term(
            feats, logits, self.labels, self._teacher, len(self.sizes), size
        )
        self._parts.sizes.update(parts.sizes)
        self._total = loss.detach() if self._total is None else self._total + loss.detach()
        return loss

    def parts(self) -> LossParts:
        """The parts of every size added so far, with their detached total."""
        return LossParts(dict(self._parts.sizes), self._total)


def parts_to_floats(parts: Mapping) -> dict[str, float]:
    """Loss parts (a :class:`LossParts` or ``{name: 0-d tensor}``) as Python floats by name, with
    one device synchronisation."""
    flat = parts.flat() if isinstance(parts, LossParts) else dict(parts)
    if not flat:
        return {}
    values = torch.stack([v.float() for v in flat.values()]).tolist()
    return dict(zip(flat.keys(), values))

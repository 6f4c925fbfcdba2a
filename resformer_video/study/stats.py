"""The study's statistics: mean and sample std, Student-t 95 % intervals (of a mean, of a paired
difference, and the range a single new run should fall in), without scipy."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# Two-sided 95 % quantiles of Student's t, t(0.975, df), for df = 1..30 (standard tables).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t975(df: int) -> float:
    """t(0.975, ``df``): the multiplier of a two-sided 95 % interval (1.96 beyond the table's 30,
    where the t and normal quantiles agree to 2 %)."""
    if df < 1:
        raise ValueError(f"a t interval needs at least 2 values (df >= 1), got df = {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}``: the sample std (n - 1), 0 for one value."""
    values = list(values)
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def mean_interval(values: Sequence[float]) -> dict[str, float]:
    """:func:`mean_std` plus the 95 % t interval of the mean, ``ci95 = [low, high]`` (None for one value)."""
    out: dict[str, object] = dict(mean_std(values))
    n = out["n"]
    if n < 2:
        out["ci95"] = None
        return out  # type: ignore[return-value]
    half = t975(n - 1) * out["std"] / math.sqrt(n)
    out["ci95"] = [out["mean"] - half, out["mean"] + half]
    return out  # type: ignore[return-value]


def paired_differences(treated: dict[tuple, float], baseline: dict[tuple, float]) -> list[float]:
    """``treated[k] - baseline[k]`` for every key both have (a key: one (dataset, seed) pair), in key order."""
    return [treated[key] - baseline[key] for key in sorted(set(treated) & set(baseline))]


def prediction_range(mean: float, std: float, n: int, low: float = 0.0, high: float = 100.0) -> list[float]:
    """Where one more run should fall with 95 % probability, from ``n`` runs' mean and std:
    ``mean -/+ t(0.975, n - 1) * std * sqrt(1 + 1/n)``, clipped to ``[low, high]``."""
    half = t975(n - 1) * std * math.sqrt(1 + 1 / n)
    return [max(low, mean - half), min(high, mean + half)]

"""Intervals for evaluation tables: a mean over conditions and a paired difference of two
policies on the same conditions, both by the percentile bootstrap over conditions (the unit
that varies between runs of a benchmark), with NaN entries (a metric undefined for a sample,
e.g. no registered frame) dropped pairwise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from geogrpo.utils.checks import check_int_range


def _percentile_interval(means: Tensor, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    q = torch.tensor([tail, 1 - tail], dtype=torch.float64)
    lo, hi = torch.quantile(means, q).tolist()
    return lo, hi


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level: a confidence level in (0, 1), got {level}; e.g. 0.95")


def bootstrap_mean_interval(
    values: Tensor, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of the finite entries of ``values`` ``[N]``
    (resampling entries); NaN when fewer than 2 are finite."""
    _check_level(level)
    check_int_range("resamples", resamples, 1)
    x = values[torch.isfinite(values)].double()
    if x.numel() < 2:
        return math.nan, math.nan
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(x.numel(), (resamples, x.numel()), generator=gen)
    return _percentile_interval(x[idx].mean(dim=1), level)


def mean_with_interval(
    values: Tensor, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """``{"mean", "ci95_low", "ci95_high", "n"}`` over the finite entries of ``values`` ``[N]``."""
    x = values[torch.isfinite(values)].double()
    lo, hi = bootstrap_mean_interval(x, level, resamples, seed)
    mean = float(x.mean()) if x.numel() else math.nan
    return {"mean": mean, "ci95_low": lo, "ci95_high": hi, "n": int(x.numel())}


def paired_comparison(
    a: Tensor,  # [N] metric of policy A per condition
    b: Tensor,  # [N] metric of policy B on the same conditions
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Paired comparison of B against A over conditions where both are finite: the mean
    difference ``b - a``, its paired-bootstrap interval (conditions resampled, both policies
    kept together, so the spread between conditions cancels), and how many conditions went up
    and down."""
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"a, b: expected two [N] vectors over the same conditions, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    both = torch.isfinite(a) & torch.isfinite(b)
    diff = (b.double() - a.double())[both]
    n = int(diff.numel())
    lo, hi = bootstrap_mean_interval(diff, level, resamples, seed)
    return {
        "n": n,
        "mean_a": float(a.double()[both].mean()) if n else math.nan,
        "mean_b": float(b.double()[both].mean()) if n else math.nan,
        "diff": float(diff.mean()) if n else math.nan,
        "ci95_low": lo,
        "ci95_high": hi,
        "up": int((diff > 0).sum()),
        "down": int((diff < 0).sum()),
    }

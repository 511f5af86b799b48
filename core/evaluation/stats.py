"""Paired significance test between two models' per-image metrics.

``paired_wilcoxon(a, b)`` is the two-sided Wilcoxon signed-rank test of ``a - b`` with Wilcoxon's zero
handling (zero differences are dropped before ranking), in NumPy alone so that the reading-station
bundle, which ships without SciPy, compares models too. It gives ``scipy.stats.wilcoxon(a, b)``'s
results (the tests check it against SciPy):

* no ties among the non-zero differences and at most 50 of them: the exact null distribution;
* ties and at most 13 non-zero differences: every sign assignment enumerated (an exact permutation test);
* otherwise the normal approximation with the tie-corrected variance, no continuity correction.

The statistic is ``min(R+, R-)``.

* Pairs where either value is not finite (``nan``/``±inf``, e.g. HD95 of an empty mask) are dropped;
  ``n`` is the number of pairs used (zero differences included) and ``n_excluded`` the dropped ones.
* Differences are ``a - b``; ``mean_difference`` and ``median_difference`` are over the used pairs.
* All differences zero (including a single pair): ``statistic=0.0``, ``p_value=1.0``. No usable pair:
  everything ``nan``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

EXACT_MAX_N = 50  # no ties: the exact distribution up to this many non-zero differences
ENUMERATE_MAX_N = 13  # ties: all 2**n sign assignments up to this many


@dataclass(frozen=True)
class WilcoxonResult:
    n: int
    statistic: float
    p_value: float
    mean_difference: float
    median_difference: float
    n_excluded: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def average_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks 1..n with ties given their average rank, and the size of each tie group."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, ordered.size])
    average = starts + (sizes + 1) / 2.0  # the mean of ranks start+1 .. start+size
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(average, sizes)
    return ranks, sizes


def exact_signed_rank_counts(n: int) -> np.ndarray:
    """How many of the 2**n sign assignments give each rank sum R+ = 0 .. n(n+1)/2 (no ties)."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.float64)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[: counts.size - rank].copy()
    return counts


def _exact_p(r_plus: float, n: int) -> float:
    counts = exact_signed_rank_counts(n)
    total = counts.sum()
    lower = counts[: int(math.ceil(r_plus)) + 1].sum() / total  # P(R+ <= r)
    upper = counts[int(math.floor(r_plus)):].sum() / total  # P(R+ >= r)
    return float(min(1.0, 2.0 * min(lower, upper)))


def _enumerated_p(ranks: np.ndarray, r_plus: float) -> float:
    sums = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=ranks.size)])
    tolerance = 1e-14 * max(1.0, abs(r_plus))  # as scipy's permutation test: ties with the observed count
    lower = np.mean(sums <= r_plus + tolerance)
    upper = np.mean(sums >= r_plus - tolerance)
    return float(min(1.0, 2.0 * min(lower, upper)))


def _normal_p(r_plus: float, n: int, tie_sizes: np.ndarray) -> float:
    mean = n * (n + 1) / 4.0
    variance = (n * (n + 1) * (2 * n + 1) - np.sum(tie_sizes**3 - tie_sizes) / 2.0) / 24.0
    z = (r_plus - mean) / math.sqrt(variance)
    return float(min(1.0, math.erfc(abs(z) / math.sqrt(2.0))))


def paired_wilcoxon(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of the paired samples ``a`` and ``b`` (``a - b``)."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length; got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    excluded = int(keep.size - np.count_nonzero(keep))
    x, y = x[keep], y[keep]
    n = int(x.size)
    nan = float("nan")
    if n == 0:
        return WilcoxonResult(0, nan, nan, nan, nan, excluded)
    diff = x - y
    mean_diff = float(diff.mean())
    median_diff = float(np.median(diff))
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return WilcoxonResult(n, 0.0, 1.0, mean_diff, median_diff, excluded)
    ranks, tie_sizes = average_ranks(np.abs(nonzero))
    r_plus = float(ranks[nonzero > 0].sum())
    r_minus = float(ranks[nonzero < 0].sum())
    count = int(nonzero.size)
    has_ties = bool(np.any(tie_sizes > 1))
    if n <= EXACT_MAX_N and not has_ties and count == n:
        p_value = _exact_p(r_plus, count)
    elif n <= ENUMERATE_MAX_N:
        p_value = _enumerated_p(ranks, r_plus)
    else:
        p_value = _normal_p(r_plus, count, tie_sizes)
    return WilcoxonResult(n, min(r_plus, r_minus), p_value, mean_diff, median_diff, excluded)

"""Paired significance test between two models' per-image metrics.

``paired_wilcoxon(a, b)`` runs ``scipy.stats.wilcoxon(a, b)`` two-sided with ``zero_method='wilcox'``
(zero differences are dropped before ranking) and scipy's default ``method='auto'`` (exact
distribution for small samples without ties, normal approximation otherwise).

* Pairs where either value is not finite (``nan``/``±inf``, e.g. HD95 of an empty mask) are dropped;
  ``n`` is the number of pairs used (zero differences included) and ``n_excluded`` the dropped ones.
* Differences are ``a - b``; ``mean_difference`` and ``median_difference`` are over the used pairs.
* All differences zero (including a single pair): ``statistic=0.0``, ``p_value=1.0`` without calling
  scipy, which raises in that case. No usable pair: everything ``nan``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


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
    if not np.any(diff != 0):
        return WilcoxonResult(n, 0.0, 1.0, mean_diff, median_diff, excluded)
    result = stats.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    return WilcoxonResult(
        n=n,
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        mean_difference=mean_diff,
        median_difference=median_diff,
        n_excluded=excluded,
    )

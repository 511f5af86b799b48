"""Summary statistics of a per-image metric over a data set.

* Only finite values are summarised: ``nan`` and ``±inf`` (e.g. HD95 when exactly one of pred/GT is
  empty) are dropped and counted in ``n_excluded``; ``n`` is the number of finite values used.
* ``std`` is the sample standard deviation (``ddof=1``); ``nan`` when ``n < 2``.
* ``ci95_low``/``ci95_high``: percentile bootstrap of the mean. ``n_boot`` (2000) resamples of size
  ``n`` with replacement, drawn from ``numpy.random.default_rng(seed)`` with a fixed seed (0), so the
  same values always give the same interval; the interval is the 2.5th and 97.5th percentiles
  (linear interpolation) of the resampled means. With ``n == 1`` it collapses to the value.
* With ``n == 0`` every statistic is ``nan``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

N_BOOT = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
# Resampled indices are drawn in chunks of at most this many elements to bound memory.
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float
    median: float
    ci95_low: float
    ci95_high: float
    n_excluded: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = N_BOOT, seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of finite ``values``."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return float("nan"), float("nan")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    rng = np.random.default_rng(seed)
    n = x.size
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // n)
    means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, rows_per_chunk):
        stop = min(n_boot, start + rows_per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def summarize(values: Iterable[float], n_boot: int = N_BOOT, seed: int = BOOTSTRAP_SEED) -> Summary:
    """n, mean, std (ddof=1), median and 95% bootstrap CI of the mean over the finite values."""
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).ravel()
    finite = x[np.isfinite(x)]
    n = int(finite.size)
    excluded = int(x.size - n)
    if n == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan, excluded)
    low, high = bootstrap_mean_ci(finite, n_boot=n_boot, seed=seed)
    return Summary(
        n=n,
        mean=float(finite.mean()),
        std=float(finite.std(ddof=1)) if n > 1 else float("nan"),
        median=float(np.median(finite)),
        ci95_low=low,
        ci95_high=high,
        n_excluded=excluded,
    )

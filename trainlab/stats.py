"""Statistics over seeds: mean with a 95% confidence interval, Welch's t-test, and the mean ± std band
of per-epoch histories. A handful of seeds is a small sample, so intervals use Student's t, not the normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtr, stdtrit  # Student's t without scipy.stats, slow to import

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """The mean of ``n`` finite values with the half-width of its confidence interval."""

    mean: float
    ci: float  # half-width: the interval is mean ± ci (nan with fewer than 2 values)
    std: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.ci

    @property
    def high(self) -> float:
        return self.mean + self.ci

    def overlaps(self, other: Estimate) -> bool:
        return self.low <= other.high and other.low <= self.high


def finite(values) -> np.ndarray:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return a[np.isfinite(a)]


def mean_ci(values, level: float = LEVEL) -> Estimate:
    """Mean ± the t-interval half-width ``t(level, n-1) · s / √n`` over the finite values."""
    a = finite(values)
    n = len(a)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    if n == 1:
        return Estimate(float(a[0]), math.nan, math.nan, 1)
    std = float(a.std(ddof=1))
    t = float(stdtrit(n - 1, (1 + level) / 2))
    return Estimate(float(a.mean()), t * std / math.sqrt(n), std, n)


def welch_p(a, b) -> float:
    """Two-sided p-value of Welch's t-test that ``a`` and ``b`` have the same mean (unequal variances);
    identical constant samples give 1, different ones 0."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if a.std() == 0 and b.std() == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch–Satterthwaite
    return float(2 * stdtr(df, -abs(t)))


def band(histories: list[dict[str, np.ndarray]], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs, mean and std of ``column`` across runs; runs that stopped early drop out of later epochs."""
    length = max(len(h[column]) for h in histories)
    table = np.full((len(histories), length), np.nan)
    for i, h in enumerate(histories):
        table[i, : len(h[column])] = h[column]
    with np.errstate(all="ignore"):
        table[~np.isfinite(table)] = np.nan
        counts = np.sum(~np.isnan(table), axis=0)
        mean = np.nansum(table, axis=0) / np.maximum(counts, 1)
        # the sample std (ddof 1), as in the report's tables; one run has no spread
        std = np.sqrt(np.nansum((table - mean) ** 2, axis=0) / np.maximum(counts - 1, 1))
    mean[counts == 0] = np.nan
    return np.arange(1, length + 1), mean, std

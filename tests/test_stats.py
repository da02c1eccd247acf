import math

import numpy as np
import pytest

from trainlab.stats import mean_ci, welch_p


def test_mean_ci_matches_the_t_interval_by_hand():
    values = [1.0, 2.0, 3.0, 4.0]
    e = mean_ci(values)
    # t(0.975, 3) = 3.182446; s = 1.290994
    assert e.mean == 2.5 and e.n == 4
    assert e.ci == pytest.approx(3.182446 * 1.290994 / 2, rel=1e-5)
    assert e.low < 2.5 < e.high


def test_mean_ci_ignores_nan_and_handles_tiny_samples():
    assert mean_ci([1.0, math.nan, 3.0]).n == 2
    one = mean_ci([5.0])
    assert one.mean == 5.0 and math.isnan(one.ci)
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)


def test_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = sum(mean_ci(rng.normal(3.0, 2.0, size=5)).overlaps(mean_ci([3.0, 3.0])) for _ in range(4000))
    assert 0.93 < hits / 4000 < 0.97


def test_welch_separates_different_means_and_not_equal_ones():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 10), rng.normal(3, 1, 10)
    assert welch_p(a, b) < 1e-3
    assert welch_p(a, rng.normal(0, 1, 10)) > 0.05
    assert welch_p([0.5, 0.5], [0.5, 0.5]) == 1.0
    assert welch_p([0.5, 0.5], [0.7, 0.7]) == 0.0
    assert math.isnan(welch_p([1.0], [2.0, 3.0]))


def test_interval_and_welch_p_equal_scipy_stats():
    from scipy import stats

    rng = np.random.default_rng(2)
    for n, m in [(2, 2), (3, 10), (10, 4), (30, 30)]:
        a, b = rng.normal(0, 1, n), rng.normal(0.5, 2, m)
        half = stats.t.ppf(0.975, df=n - 1) * a.std(ddof=1) / math.sqrt(n)
        assert mean_ci(a).ci == pytest.approx(half, rel=1e-12)
        assert welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)

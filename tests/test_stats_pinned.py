"""The two-sample tests every analysis shares (analysis.stats), each pinned to scipy or
statsmodels on random inputs: the vectorised pooled z-test and Welch test that the slice
metrics and the comparison both use, and the comparison's per-slice tests built on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportions_ztest

from analysis.stats.intervals import proportion_test, two_proportions_pvalues, welch, welch_test
from analysis.stats.tests import paired_mean_tests, unpaired_slice_tests, welch_tests

rng = np.random.default_rng(2026)


def test_the_pooled_z_test_is_statsmodels_proportions_ztest():
    n_a, n_b = rng.integers(1, 400, 200), rng.integers(1, 400, 200)
    k_a, k_b = rng.binomial(n_a, rng.uniform(0.05, 0.95, 200)), rng.binomial(n_b, rng.uniform(0.05, 0.95, 200))
    got = two_proportions_pvalues(k_a, n_a, k_b, n_b)
    for i in range(200):
        if 0 < k_a[i] + k_b[i] < n_a[i] + n_b[i]:
            expected = proportions_ztest([k_a[i], k_b[i]], [n_a[i], n_b[i]])[1]
            assert got[i] == pytest.approx(expected, rel=1e-9)
            assert proportion_test((int(k_a[i]), int(k_b[i])), (int(n_a[i]), int(n_b[i]))) == pytest.approx(expected)
        else:
            assert np.isnan(got[i])
    assert np.isnan(two_proportions_pvalues([0], [0], [1], [3])[0])


def test_welch_is_scipys_ttest_ind_from_stats_and_its_interval_is_welchs():
    samples = [
        (rng.normal(1, rng.uniform(0.2, 3), rng.integers(2, 60)), rng.normal(1.3, 1, rng.integers(2, 60)))
        for _ in range(100)
    ]
    for a, b in samples:
        delta, half, p = welch([a.mean()], [a.std(ddof=1)], [len(a)], [b.mean()], [b.std(ddof=1)], [len(b)])
        result = sps.ttest_ind(b, a, equal_var=False)
        assert p[0] == pytest.approx(result.pvalue, rel=1e-9)
        low, high = result.confidence_interval(0.95)
        assert (delta[0] - half[0], delta[0] + half[0]) == pytest.approx((low, high), rel=1e-9)
        assert welch_test((a.mean(), a.std(ddof=1), len(a)), (b.mean(), b.std(ddof=1), len(b))) == pytest.approx(
            result.pvalue, rel=1e-9
        )
    assert np.isnan(welch([1.0], [0.0], [5], [1.0], [0.0], [5])[2][0])
    assert np.isnan(welch([1.0], [1.0], [1], [2.0], [1.0], [5])[2][0])


def test_the_comparisons_slice_tests_agree_with_scipy_and_statsmodels():
    rows = []
    for _ in range(40):
        b, c = np.abs(rng.normal(1, 1, rng.integers(3, 80))), np.abs(rng.normal(1.2, 1, rng.integers(3, 80)))
        d = rng.normal(0.1, 0.5, rng.integers(3, 80))
        eb, ec = rng.binomial(len(b), 0.3), rng.binomial(len(c), 0.4)
        rows.append({"b": b, "c": c, "d": d, "eb": eb, "ec": ec})
    frame = pd.DataFrame(
        {
            "n_labeled_b": [len(r["b"]) for r in rows],
            "n_labeled_c": [len(r["c"]) for r in rows],
            "error_rate_b": [r["b"].mean() for r in rows],
            "error_rate_c": [r["c"].mean() for r in rows],
            "errors_sq_b": [(r["b"] ** 2).sum() for r in rows],
            "errors_sq_c": [(r["c"] ** 2).sum() for r in rows],
        }
    )
    welch_tests(frame)
    for r, p in zip(rows, frame["p_value"]):
        assert p == pytest.approx(sps.ttest_ind(r["c"], r["b"], equal_var=False).pvalue, rel=1e-7)
    paired = pd.DataFrame(
        {
            "n_both": [len(r["d"]) for r in rows],
            "d_sum": [r["d"].sum() for r in rows],
            "d_sq": [(r["d"] ** 2).sum() for r in rows],
        }
    )
    paired_mean_tests(paired)
    for r, (p, low, high) in zip(rows, paired[["p_value", "ci_low", "ci_high"]].to_numpy()):
        result = sps.ttest_1samp(r["d"], 0.0)
        assert p == pytest.approx(result.pvalue, rel=1e-7)
        assert (low, high) == pytest.approx(tuple(result.confidence_interval(0.95)), rel=1e-7)
    props = pd.DataFrame(
        {
            "n_labeled_b": [len(r["b"]) for r in rows],
            "n_labeled_c": [len(r["c"]) for r in rows],
            "errors_b": [r["eb"] for r in rows],
            "errors_c": [r["ec"] for r in rows],
        }
    ).assign(error_rate_b=lambda f: f.errors_b / f.n_labeled_b, error_rate_c=lambda f: f.errors_c / f.n_labeled_c)
    unpaired_slice_tests(props)
    for r, p in zip(rows, props["p_value"]):
        if 0 < r["eb"] + r["ec"] < len(r["b"]) + len(r["c"]):
            assert p == pytest.approx(proportions_ztest([r["ec"], r["eb"]], [len(r["c"]), len(r["b"])])[1], rel=1e-9)
        else:
            assert p == 1.0

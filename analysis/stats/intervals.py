"""95% intervals and two-sample tests for the metrics of a slice.

Every function takes counts or sums that DuckDB aggregated, never rows:

* a proportion: Wilson score interval (statsmodels ``proportion_confint``);
  two samples: pooled two-proportion z-test (:func:`two_proportions_pvalues`, checked
  against statsmodels' ``proportions_ztest``);
* F1: F1 = 2q / (1 + q) with q = tp / (tp + fp + fn), an increasing function
  of a proportion, so the Wilson interval of q maps to an interval of F1 and
  two F1 scores differ exactly when their q differ (z-test on q);
* ROC AUC: Hanley & McNeil (1982) standard error, interval on the logit scale
  (so it stays inside (0, 1); an observed AUC of exactly 0 or 1 is moved by
  half a pair, 0.5 / (n_pos n_neg), to get a finite logit, and its own end of
  the interval stays at 0 or 1); two samples: z-test on the independent AUCs;
* average precision (PR AUC): the logit interval of Boyd, Eng & Page (2013),
  with standard error sqrt(AP (1 - AP) / n_pos) on the probability scale;
  two samples: z-test with that standard error;
* a mean of a per-row value that can be negative (an outcome with negative
  values): Student t interval from count, sum and sum of squares;
* a mean of a non-negative per-row value (log loss, Brier score, absolute
  error, squared error, a cost, an outcome whose values are all >= 0): the
  Student interval on the log scale, from the same three sums. With
  ``v = s² / (n m²)`` the delta-method variance of ``log m``, the interval is
  ``m · exp(v/2 ± t(n−1) √v)`` (``v/2``: the second-order correction of the
  bias of ``log m``). It never goes below zero, and it is longer upwards, as
  the uncertainty of a mean of right-skewed values is. Measured coverage of
  the 95% interval (tests/test_intervals.py, 4,000 replicates per cell):
  93–95% for exponential and lognormal (σ = 0.5) values at n = 10 … 200,
  where the plain t interval covers 90% at n = 10 and goes below zero. For
  heavier tails (lognormal σ = 1) every interval from these sums undercovers
  at small n (log scale 89% at n = 10, 93% from n ≈ 200; t 84%). A mean with a
  known ceiling (Brier ≤ 1) has its upper end capped there. A mean of
  exactly 0 (every value 0) gets the interval [0, 0].
  Two samples: Welch's t-test (:func:`welch`, checked against
  ``scipy.stats.ttest_ind_from_stats``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

Z95 = 1.959963984540054
NAN2 = (math.nan, math.nan)


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval; NaN for no trials."""
    if trials <= 0:
        return NAN2
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    return float(low), float(high)


def wilson_bounds(successes, trials) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wilson` for arrays of counts in one statsmodels call: (lows, highs)."""
    k = np.asarray(successes, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no trials: NaN, as in wilson()
        low, high = proportion_confint(k, np.where(n > 0, n, np.nan), alpha=0.05, method="wilson")
    return np.atleast_1d(np.asarray(low, dtype="float64")), np.atleast_1d(np.asarray(high, dtype="float64"))


def pooled_z_pvalues(size, errors, n, total, total_sq) -> np.ndarray:
    """Two-sided p-values of a group's mean against the rest's, over arrays: ``size`` rows
    with the sum ``errors``, out of ``n`` rows with sum ``total`` and sum of squares
    ``total_sq``, with the variance over all ``n`` rows (the permutation null's):
    ``z = (m_group − m_rest) / sqrt(v (1/size + 1/(n − size)))``. For 0/1 values this is the
    pooled two-proportion z-test. NaN where a side is empty or nothing varies."""
    size, errors, n, total, total_sq = (np.asarray(x, dtype="float64") for x in (size, errors, n, total, total_sq))
    rest = n - size
    with np.errstate(all="ignore"):
        var = np.where(n > 0, np.maximum(total_sq / n - (total / n) ** 2, 0.0), 0.0)
        se = np.sqrt(var * (1 / size + 1 / rest))
        z = (errors / size - (total - errors) / rest) / se
    return np.where((rest > 0) & (size > 0) & (se > 0), 2 * stats.norm.sf(np.abs(z)), np.nan)


def two_proportions_pvalues(k_a, n_a, k_b, n_b) -> np.ndarray:
    """The pooled two-proportion z-test of ``k_b / n_b`` against ``k_a / n_a`` over arrays
    (:func:`pooled_z_pvalues` of 0/1 values); NaN where a side has no trials or the pooled
    rate is 0 or 1."""
    k_a, k_b = np.asarray(k_a, dtype="float64"), np.asarray(k_b, dtype="float64")
    n = np.asarray(n_a, dtype="float64") + np.asarray(n_b, dtype="float64")
    return pooled_z_pvalues(n_b, k_b, n, k_a + k_b, k_a + k_b)


def proportion_test(successes: tuple[int, int], trials: tuple[int, int]) -> float:
    """p-value of the two-proportion z-test; NaN where it is undefined."""
    return float(two_proportions_pvalues([successes[0]], [trials[0]], [successes[1]], [trials[1]])[0])


def f1_interval(tp: int, fp: int, fn: int) -> tuple[float, float]:
    """95% interval of F1 from the Wilson interval of tp / (tp + fp + fn)."""
    low, high = wilson(tp, tp + fp + fn)
    if math.isnan(low):
        return NAN2
    return 2 * low / (1 + low), 2 * high / (1 + high)


def f1_test(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """p-value for F1 of ``a`` = (tp, fp, fn) vs ``b``: z-test on tp / (tp + fp + fn)."""
    return proportion_test((a[0], b[0]), (sum(a), sum(b)))


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of ROC AUC (Hanley & McNeil, Radiology 1982)."""
    if not (n_pos > 0 and n_neg > 0) or auc != auc:
        return math.nan
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def auc_interval(auc: float, n_pos: int, n_neg: int) -> tuple[float, float, float]:
    """(standard error, low, high) of ROC AUC: Hanley-McNeil on the logit scale (module docstring)."""
    se = hanley_mcneil_se(auc, n_pos, n_neg)
    if math.isnan(se):
        return (math.nan,) * 3
    half_pair = 0.5 / (n_pos * n_neg)
    a = min(max(auc, half_pair), 1 - half_pair)
    eta, tau = math.log(a / (1 - a)), hanley_mcneil_se(a, n_pos, n_neg) / (a * (1 - a))
    low, high = 1 / (1 + math.exp(-(eta - Z95 * tau))), 1 / (1 + math.exp(-(eta + Z95 * tau)))
    return se, (0.0 if auc <= 0 else low), (1.0 if auc >= 1 else high)


def average_precision_se(ap: float, n_pos: int) -> float:
    """Standard error of average precision, sqrt(AP (1 - AP) / n_pos)."""
    if not n_pos > 0 or ap != ap:
        return math.nan
    return math.sqrt(max(ap * (1 - ap), 0.0) / n_pos)


def average_precision_interval(ap: float, n_pos: int) -> tuple[float, float]:
    """95% logit interval of average precision (Boyd, Eng & Page, ECML 2013)."""
    if not n_pos > 0 or ap != ap:
        return NAN2
    if ap <= 0 or ap >= 1:  # the logit is infinite: the bound at the edge stays there
        return (0.0, 0.0) if ap <= 0 else (1.0, 1.0)
    eta = math.log(ap / (1 - ap))
    tau = 1 / math.sqrt(n_pos * ap * (1 - ap))
    return 1 / (1 + math.exp(-(eta - Z95 * tau))), 1 / (1 + math.exp(-(eta + Z95 * tau)))


def z_test(a: float, se_a: float, b: float, se_b: float) -> float:
    """Two-sided p-value of a - b for two independent estimates with standard errors."""
    se = math.hypot(se_a, se_b)
    if not se > 0:
        return math.nan
    return float(2 * stats.norm.sf(abs(a - b) / se))


def mean_interval(n: int, total: float, squares: float) -> tuple[float, float, float, float]:
    """(mean, sd, low, high) of a mean from its count, sum and sum of squares."""
    if n <= 0:
        return (math.nan,) * 4
    mean = total / n
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    var = max((squares - n * mean * mean) / (n - 1), 0.0)
    sd = math.sqrt(var)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


def mean_intervals(n, total, squares) -> tuple[np.ndarray, ...]:
    """:func:`mean_interval` for arrays: (means, sds, lows, highs)."""
    n = np.asarray(n, dtype="float64")
    total = np.nan_to_num(np.asarray(total, dtype="float64"))
    squares = np.nan_to_num(np.asarray(squares, dtype="float64"))
    with np.errstate(all="ignore"):
        mean = np.where(n > 0, total / n, np.nan)
        var = np.where(n >= 2, np.maximum((squares - n * mean * mean) / (n - 1), 0.0), np.nan)
        sd = np.sqrt(var)
        half = stats.t.ppf(0.975, np.where(n >= 2, n - 1, np.nan)) * sd / np.sqrt(n)
    return mean, sd, mean - half, mean + half


def positive_mean_intervals(n, total, squares, ceiling: float | None = None) -> tuple[np.ndarray, ...]:
    """:func:`mean_intervals` for a mean of non-negative values: the same means
    and sds, and the log-scale interval of the module docstring (inside
    ``[0, ceiling]``)."""
    mean, sd, _, _ = mean_intervals(n, total, squares)
    n = np.asarray(n, dtype="float64")
    with np.errstate(all="ignore"):
        v = sd * sd / (n * mean * mean)
        t = stats.t.ppf(0.975, np.where(n >= 2, n - 1, np.nan))
        low = mean * np.exp(v / 2 - t * np.sqrt(v))
        high = mean * np.exp(v / 2 + t * np.sqrt(v))
    zero = (n >= 2) & (mean == 0)  # every value is 0: nothing to scale
    low, high = np.where(zero, 0.0, low), np.where(zero, 0.0, high)
    if ceiling is not None:
        high = np.minimum(high, ceiling)
    return mean, sd, low, high


def positive_mean_interval(
    n: int, total: float, squares: float, ceiling: float | None = None
) -> tuple[float, float, float, float]:
    """(mean, sd, low, high) of a mean of non-negative values (see :func:`positive_mean_intervals`)."""
    if n <= 0:
        return (math.nan,) * 4
    return tuple(float(x[0]) for x in positive_mean_intervals([n], [total], [squares], ceiling))


def welch(mean_a, sd_a, n_a, mean_b, sd_b, n_b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch's t-test of ``mean_b - mean_a`` over arrays: the difference, the half width
    of its 95% interval and the two-sided p-value, NaN where a side has fewer than two values or both
    standard deviations are 0. The degrees of freedom are Welch–Satterthwaite's."""
    mean_a, sd_a, n_a, mean_b, sd_b, n_b = (
        np.asarray(x, dtype="float64") for x in (mean_a, sd_a, n_a, mean_b, sd_b, n_b)
    )
    with np.errstate(all="ignore"):
        a, b = sd_a**2 / n_a, sd_b**2 / n_b
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n_a - 1) + b**2 / (n_b - 1))
        ok = (n_a > 1) & (n_b > 1) & (se > 0)
        df = np.where(ok, df, 1.0)
        t = np.where(ok, (mean_b - mean_a) / se, 0.0)
    half = np.where(ok, stats.t.ppf(0.975, df) * se, np.nan)
    return mean_b - mean_a, half, np.where(ok, 2 * stats.t.sf(np.abs(t), df), np.nan)


def welch_test(a: tuple[float, float, int], b: tuple[float, float, int]) -> float:
    """p-value of Welch's t-test from (mean, sd, n) of two samples; NaN where undefined."""
    (m1, s1, n1), (m2, s2, n2) = a, b
    return float(welch([m1], [s1], [n1], [m2], [s2], [n2])[2][0])

"""The tests of a difference between two versions on many slices at once, vectorized
over a frame with one row per slice: unpaired error rates (pooled two-proportion
z-test, Wald interval), unpaired mean absolute errors (Welch), paired error rates
(McNemar: exact binomial below 25 discordant pairs, else chi-square with continuity
correction, as statsmodels runs it; paired Wald interval) and paired absolute errors
(paired t-test). Each adds ``ci_low``, ``ci_high``, ``p_value`` and ``test``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from analysis.stats.intervals import mean_intervals, two_proportions_pvalues, welch

Z = stats.norm.ppf(0.975)


def mcnemar_p(n01: int, n10: int) -> float:
    """McNemar's test as statsmodels runs it: exact binomial below 25 discordant pairs,
    else chi-square with continuity correction."""
    if n01 + n10 == 0:
        return 1.0
    exact = n01 + n10 < 25
    return float(mcnemar([[0, n01], [n10, 0]], exact=exact, correction=True).pvalue)


def mcnemar_pvalues(n01, n10) -> np.ndarray:
    """:func:`mcnemar_p` over arrays (the same numbers, without a call per slice)."""
    n01, n10 = np.asarray(n01, dtype=float), np.asarray(n10, dtype=float)
    n = n01 + n10
    exact = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(n01, n10), np.maximum(n, 1), 0.5))
    with np.errstate(divide="ignore", invalid="ignore"):
        chi = (np.abs(n01 - n10) - 1) ** 2 / n
    asymptotic = stats.chi2.sf(chi, 1)
    return np.where(n == 0, 1.0, np.where(n < 25, exact, asymptotic))


def unpaired_slice_tests(frame: pd.DataFrame) -> None:
    """Wald interval and pooled two-proportion z-test of the error-rate difference (vectorized)."""
    nb, nc = frame["n_labeled_b"].to_numpy(float), frame["n_labeled_c"].to_numpy(float)
    pb, pc = frame["error_rate_b"].to_numpy(float), frame["error_rate_c"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(pb * (1 - pb) / nb + pc * (1 - pc) / nc)
    frame["ci_low"], frame["ci_high"] = (pc - pb) - Z * se, (pc - pb) + Z * se
    p = two_proportions_pvalues(frame["errors_b"].to_numpy(float), nb, frame["errors_c"].to_numpy(float), nc)
    # Both sides with rows and the same rate everywhere (pooled 0 or 1): no difference at all.
    frame["p_value"] = np.where((nb > 0) & (nc > 0), np.nan_to_num(p, nan=1.0), np.nan)
    frame["test"] = "two-proportion z-test; Wald interval"


def welch_tests(frame: pd.DataFrame) -> None:
    """Regression, unpaired: Welch's t-test and interval on the mean absolute errors."""
    n_b, n_c = frame["n_labeled_b"].to_numpy(float), frame["n_labeled_c"].to_numpy(float)
    m_b, sd_b, _, _ = mean_intervals(n_b, frame["error_rate_b"].to_numpy(float) * n_b, frame["errors_sq_b"])
    m_c, sd_c, _, _ = mean_intervals(n_c, frame["error_rate_c"].to_numpy(float) * n_c, frame["errors_sq_c"])
    delta, half, p = welch(m_b, sd_b, n_b, m_c, sd_c, n_c)
    frame["ci_low"], frame["ci_high"] = delta - half, delta + half
    frame["p_value"] = p
    frame["test"] = "Welch t-test on absolute errors"


def paired_mean_tests(frame: pd.DataFrame) -> None:
    """Regression, paired: the t-test and interval of each pair's change of absolute error."""
    n = frame["n_both"].fillna(0).to_numpy(float)
    mean, sd, low, high = mean_intervals(n, frame["d_sum"].fillna(0), frame["d_sq"].fillna(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd / np.sqrt(n)
        ok = (n > 1) & (se > 0)
        t = np.where(ok, mean / se, 0.0)
    frame["paired_n"] = n.astype(int)
    frame["delta"] = np.where(n > 0, mean, np.nan)
    frame["ci_low"], frame["ci_high"] = np.where(ok, low, np.nan), np.where(ok, high, np.nan)
    frame["p_value"] = np.where(ok, 2 * stats.t.sf(np.abs(t), np.where(ok, n - 1, 1.0)), np.nan)
    frame["test"] = "paired t-test on absolute errors"


def paired_tests(frame: pd.DataFrame) -> None:
    """Delta over the pairs labeled on both sides, its paired Wald interval and McNemar's p."""
    n01, n10 = frame["n01"].fillna(0).to_numpy(float), frame["n10"].fillna(0).to_numpy(float)
    n = frame["n_both"].fillna(0).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (n01 - n10) / n
        se = np.sqrt(np.maximum(n01 + n10 - (n01 - n10) ** 2 / n, 0)) / n
    frame["paired_n"] = n.astype(int)
    frame["delta"] = delta
    frame["ci_low"], frame["ci_high"] = delta - Z * se, delta + Z * se
    frame["p_value"] = np.where(n > 0, mcnemar_pvalues(n01, n10), np.nan)
    frame["test"] = "McNemar; paired Wald interval"

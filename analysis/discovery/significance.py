"""Is a discovered slice's error real, or chance? Tests, intervals and the
false-discovery-rate correction for slice finding.

*Test.* Under the null hypothesis a slice's rows are exchangeable with the
rest: its mean error differs from the rest's only by chance. The pooled
z-test compares the two means with the variance of the error over all rows,
``v = Q/n − ē²`` (``Q`` the sum of squared errors), which is the variance the
permutation null implies: ``z = (m_S − m_rest) / sqrt(v (1/|S| + 1/(n−|S|)))``.
For a 0/1 error this is exactly the pooled two-proportion z-test
(statsmodels ``proportions_ztest``). Two-sided p-values, so a slice better than
the rest is as surprising as a worse one; only worse ones are reported anyway.

*Family.* Every slice whose statistics were computed in a run (all level-1
values and every candidate that survived pruning) is one hypothesis; the
Benjamini–Hochberg procedure (statsmodels ``multipletests(method="fdr_bh")``)
over all of them gives the q-values. Slices pruned unevaluated are not in the
family: they could not be reported.

*Intervals* of a reported slice's error rate: Wilson for a 0/1 error, else the
log-scale interval of a mean of non-negative values (every error and cost here is
non-negative) from the slice's own sum of squares (see :mod:`analysis.stats.intervals`).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis.stats.intervals import positive_mean_interval, wilson


def pooled_z_pvalues(size: np.ndarray, errors: np.ndarray, n: int, total: float, total_sq: float) -> np.ndarray:
    """Two-sided p-values of slice vs rest mean error (see the module docstring)."""
    size = np.asarray(size, dtype=float)
    errors = np.asarray(errors, dtype=float)
    rest = n - size
    var = max(total_sq / n - (total / n) ** 2, 0.0) if n else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = errors / size - (total - errors) / rest
        se = np.sqrt(var * (1 / size + 1 / rest))
        z = diff / se
    p = 2 * stats.norm.sf(np.abs(z))
    # No rest, or no variance at all: nothing to test.
    return np.where((rest > 0) & (size > 0) & (se > 0), p, np.nan)


def error_rate_interval(
    size: int, errors: float, squares: float, binary: bool, ceiling: float | None = None
) -> tuple[float, float]:
    """95% interval of a slice's mean error (``ceiling``: the most one row's error can be)."""
    if binary:
        return wilson(int(round(errors)), int(size))
    _, _, low, high = positive_mean_interval(int(size), float(errors), float(squares), ceiling)
    return low, high

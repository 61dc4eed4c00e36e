"""Is a discovered slice's error real, or chance? Tests, intervals and the
false-discovery-rate correction for slice finding.

*Test.* Under the null hypothesis a slice's rows are exchangeable with the
rest: its mean error differs from the rest's only by chance. The pooled
z-test compares the two means with the variance of the error over all rows,
``v = Q/n − ē²`` (``Q`` the sum of squared errors), which is the variance the
permutation null implies: ``z = (m_S − m_rest) / sqrt(v (1/|S| + 1/(n−|S|)))``.
For a 0/1 error this is exactly the pooled two-proportion z-test
(statsmodels ``proportions_ztest``); the test is :func:`analysis.stats.intervals.pooled_z_pvalues`,
which the comparison's slice tests use too. Two-sided p-values, so a slice better than
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

from analysis.stats.intervals import positive_mean_interval, wilson


def error_rate_interval(
    size: int, errors: float, squares: float, binary: bool, ceiling: float | None = None
) -> tuple[float, float]:
    """95% interval of a slice's mean error (``ceiling``: the most one row's error can be)."""
    if binary:
        return wilson(int(round(errors)), int(size))
    _, _, low, high = positive_mean_interval(int(size), float(errors), float(squares), ceiling)
    return low, high

"""The last step of each test, on the aggregates the queries return: p-values as scipy
gives them, and q-values by Benjamini–Hochberg over every test of one drift call."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from analysis.stats.multiple_testing import bh_qvalues

# A feature drifted in a period when its q-value is below this.
FALSE_DISCOVERY_RATE = 0.05


def chi_square_p(statistic: float, categories: int) -> float:
    """Pearson's chi-square test of a 2 × ``categories`` table, as
    ``scipy.stats.chi2_contingency(table, correction=False)``: ``categories - 1`` degrees of
    freedom; one category alone is no evidence (p = 1)."""
    if categories <= 1:
        return 1.0
    return float(stats.chi2.sf(statistic, categories - 1))


def ks_p(d: float, n: int, m: int) -> float:
    """The two-sided two-sample Kolmogorov–Smirnov p-value of D for samples of ``n`` and
    ``m`` values: Smirnov's asymptotic distribution as ``scipy.stats.ks_2samp(...,
    method="asymp")`` computes it (``kstwo.sf(D, round(n·m/(n+m)))``). Ties make it
    conservative, never too eager."""
    effective = np.round(float(n) * float(m) / (float(n) + float(m)))
    return float(np.clip(stats.kstwo.sf(d, effective), 0.0, 1.0))


def js_distance(js_sum: float) -> float:
    """The Jensen–Shannon distance in base 2 (between 0 and 1) from the sum of the two
    Kullback–Leibler terms in natural logarithm, as ``scipy.spatial.distance.jensenshannon(p,
    q, base=2)``. A sum below zero is rounding of equal distributions."""
    return math.sqrt(max(js_sum, 0.0) / 2.0 / math.log(2.0))


def q_values(p_values: list[float]) -> list[float]:
    """Benjamini–Hochberg q-values of all the p-values of one call (NaN: no test, not
    counted)."""
    if not p_values:
        return []
    return [float(q) for q in bh_qvalues(np.array(p_values, dtype=float))]

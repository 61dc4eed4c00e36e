"""False-discovery control over many tests: Benjamini–Hochberg, plain and weighted."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.multitest import multipletests

SINGLE_SHARE = 0.9  # of the weight in a comparison's search: single conditions (pairs: the rest)


def bh_qvalues(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values); NaN p-values stay NaN and are not counted."""
    pvalues = np.asarray(pvalues, dtype=float)
    q = np.full(pvalues.shape, np.nan)
    ok = ~np.isnan(pvalues)
    if ok.any():
        q[ok] = multipletests(pvalues[ok], method="fdr_bh")[1]
    return q


def weighted_bh(p: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg with weights by level (Genovese, Roeder & Wasserman 2006):
    single conditions share ``SINGLE_SHARE`` of the weight, pairs the rest; the weights
    average one, so the false-discovery rate stays at the level. ``p / w`` is adjusted
    as in BH (capped at 1)."""
    p, level = np.asarray(p, dtype=float), np.asarray(level)
    singles, pairs = level == 1, level > 1
    weights = np.ones(len(p))
    if singles.any() and pairs.any():
        weights[singles] = SINGLE_SHARE * len(p) / singles.sum()
        weights[pairs] = (1 - SINGLE_SHARE) * len(p) / pairs.sum()
    return np.minimum(bh_qvalues(p / weights), 1.0)

"""SliceLine's score of a slice, the upper bound of its children's scores that prunes
them, and the threshold they are judged against (the package docstring has the formulas)."""

from __future__ import annotations

import numpy as np

PRUNE_RTOL = 1e-9  # an upper bound must fall this far below the threshold to prune
TIE_RTOL = 1e-12  # scores this close count as tied


# --------------------------------------------------------------------------------------------
# scores and bounds


def scores(ss: np.ndarray, se: np.ndarray, n: int, ebar: float, alpha: float) -> np.ndarray:
    """The SliceLine score; -inf for empty slices."""
    ss = np.asarray(ss, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = alpha * ((se / ss) / ebar - 1) - (1 - alpha) * (n / ss - 1)
    sc[~(ss > 0)] = -np.inf
    return np.nan_to_num(sc, nan=-np.inf)


def upper_bounds(
    ss: np.ndarray, se: np.ndarray, sm: np.ndarray, n: int, ebar: float, alpha: float, sigma: int
) -> np.ndarray:
    """Largest score any slice with at most ``ss`` rows, error sum ``se`` and
    row errors ``<= sm`` can reach with at least ``σ`` rows; -inf if none can."""
    ss = np.asarray(ss, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    sm = np.asarray(sm, dtype=np.float64)
    lo = float(max(sigma, 1))
    best = np.full(ss.shape, -np.inf)
    ok = (ss >= lo) & (se > 0) & (sm > 0)
    if not ok.any():
        return best
    s_ok, e_ok, m_ok = ss[ok], se[ok], sm[ok]
    top = np.full(s_ok.shape, -np.inf)
    for s in (np.full(s_ok.shape, lo), np.minimum(np.maximum(e_ok / m_ok, lo), s_ok), s_ok):
        g = alpha * ((np.minimum(s * m_ok, e_ok) / s) / ebar - 1) - (1 - alpha) * (n / s - 1)
        top = np.maximum(top, g)
    best[ok] = top
    return best


def kth_best(scores: np.ndarray, k: int) -> float:
    """The k-th best positive score, 0 if there are fewer than k."""
    pos = scores[scores > 0]
    if len(pos) < k:
        return 0.0
    return float(np.partition(pos, len(pos) - k)[len(pos) - k])


def prune_line(theta: float) -> float:
    return theta - PRUNE_RTOL * max(1.0, abs(theta))

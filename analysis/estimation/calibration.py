"""Calibrating a model's scores on the labeled reference, only where it helps.

A score is calibrated when, among rows scored ``s``, a share ``s`` are positive; then the
score is the probability each confusion-matrix outcome is computed from. Scores are
calibrated by isotonic regression (SciPy's ``isotonic_regression``, what scikit-learn's
``IsotonicRegression`` fits with: monotone, so the ranking is kept, and free of a
parametric shape), but only when that helps: every
candidate is fitted on four fifths of the reference and scored (Brier score) on the fifth
it did not see, fold by fold, and the candidate with the lower held-out error wins, the
scores as they are on a tie. The held-out probabilities are kept: they are what the
calibration error of each estimate is measured on (:mod:`analysis.estimation.fit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.optimize import isotonic_regression

FOLDS = 5
FOLD_SEED = 20161  # folds are drawn once per reference, the same on every call

METHOD_WORDS = {
    "none": "scores used as they are",
    "isotonic": "isotonic calibration",
}


@dataclass(frozen=True)
class Calibrator:
    """A fitted map from score to probability: piecewise linear through ``(x, y)`` for
    isotonic calibration (as ``IsotonicRegression.predict`` with ``out_of_bounds="clip"``),
    the score itself for ``none``."""

    method: str
    x: np.ndarray
    y: np.ndarray
    # Isotonic regression fits a step function: each step's level is the share of positives
    # among the ``counts`` reference rows it pools, so each level carries the sampling error
    # of a proportion (see :meth:`level_variance`).
    levels: np.ndarray = field(default_factory=lambda: np.zeros(0))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def apply(self, scores: np.ndarray) -> np.ndarray:
        if self.method == "none":
            return np.clip(scores, 0.0, 1.0)
        return np.interp(scores, self.x, self.y)

    def nearest_level(self, probabilities: np.ndarray) -> np.ndarray | None:
        """Each probability's nearest fitted level (None without levels): found once per
        period, then every metric's :meth:`level_variance` reads it."""
        if len(self.levels) == 0:
            return None
        above = np.clip(np.searchsorted(self.levels, probabilities), 0, len(self.levels) - 1)
        below = np.maximum(above - 1, 0)
        closer_below = np.abs(probabilities - self.levels[below]) < np.abs(self.levels[above] - probabilities)
        return np.where(closer_below, below, above)

    def level_variance(self, nearest: np.ndarray | None, weighted_grad: np.ndarray) -> float:
        """The variance a metric inherits from the sampling error of the fitted levels:
        each row counts toward the level its probability is nearest to (``nearest``), with
        its gradient times the rows it stands for (``weighted_grad``), and a level of
        ``n`` reference rows at ``q`` varies by ``q (1 - q) / n``."""
        if nearest is None or len(nearest) == 0:
            return 0.0
        sums = np.bincount(nearest, weights=weighted_grad, minlength=len(self.levels))
        return float(np.sum(sums**2 * self.levels * (1 - self.levels) / self.counts))


IDENTITY = Calibrator("none", np.array([0.0, 1.0]), np.array([0.0, 1.0]))


def fit_isotonic(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> Calibrator:
    """Isotonic regression of the labels (0/1) on the scores (``weights``: rows per entry)."""
    if weights is not None:
        keep = weights > 0
        scores, labels, weights = scores[keep], labels[keep], weights[keep]
    if len(scores) == 0:
        return IDENTITY
    weights = np.ones(len(scores)) if weights is None else weights
    # Rows that share a score are one point weighted by their number, so each fold's fit
    # pools distinct scores only (the reference comes in score order: nothing is sorted).
    distinct, inverse = _distinct(scores)
    counts = np.bincount(inverse, weights=weights, minlength=len(distinct))
    means = np.bincount(inverse, weights=weights * labels, minlength=len(distinct)) / counts
    fitted = np.clip(isotonic_regression(means, weights=counts, increasing=True).x, 0.0, 1.0)
    # The points prediction needs (as IsotonicRegression keeps them): both ends of each
    # step, where the fitted value changes.
    keep = np.ones(len(fitted), bool)
    keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    levels, step = np.unique(fitted, return_inverse=True)
    return Calibrator(
        "isotonic", distinct[keep], fitted[keep], levels, np.bincount(step, weights=counts, minlength=len(levels))
    )


def _distinct(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct scores and each row's index among them (``np.unique``), without
    sorting scores that come in order (the reference is read in score order)."""
    if len(scores) and np.all(scores[1:] >= scores[:-1]):
        new = np.r_[True, scores[1:] != scores[:-1]]
        return scores[new], np.cumsum(new) - 1
    return np.unique(scores, return_inverse=True)


FITTERS = {
    "none": lambda scores, labels, weights=None: IDENTITY,
    "isotonic": fit_isotonic,
}


def draw_folds(n: int) -> np.ndarray:
    """A fold (0 … FOLDS-1) for each of ``n`` rows, balanced, the same for the same ``n``."""
    rng = np.random.default_rng(FOLD_SEED)
    return rng.permutation(n) % FOLDS


def fold_counts(folds_or_weights: np.ndarray, per_row: bool = False) -> np.ndarray:
    """How many of each entry's rows are in each fold (entries × FOLDS). From ``per_row``
    folds (one row per entry), or from each entry's number of rows: the rows, entry after
    entry, take :func:`draw_folds`' folds, as if each had been read on its own (rows
    alike are interchangeable, so only how many of them fall in a fold matters)."""
    if per_row:
        return np.eye(FOLDS)[np.asarray(folds_or_weights, int)]
    rows = np.asarray(folds_or_weights).astype(np.int64)
    entry = np.repeat(np.arange(len(rows)), rows)
    drawn = np.bincount(entry * FOLDS + draw_folds(int(rows.sum())), minlength=len(rows) * FOLDS)
    return drawn.reshape(len(rows), FOLDS).astype(float)


class FoldCalibrators:
    """One method's calibrators fitted on some rows (``folds``: :func:`fold_counts`): one
    without each fold, which held-out probabilities come from, and one on all of them
    (fitted when asked). Fitted once, they serve every slice of those rows."""

    def __init__(self, fit, scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> None:
        self._fit, self._scores, self._labels = fit, scores, labels
        self._rows = folds.sum(axis=1)
        self.without_fold = [fit(scores, labels, self._rows - folds[:, fold]) for fold in range(FOLDS)]

    def held_out(self, scores: np.ndarray) -> np.ndarray:
        """Each score's probability in each fold (scores × FOLDS)."""
        return np.column_stack([c.apply(scores) for c in self.without_fold])

    @cached_property
    def every(self) -> Calibrator:
        return self._fit(self._scores, self._labels, self._rows)


def held_out(fit, scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each entry's probability in each fold (entries × FOLDS) from a calibrator fitted on
    the other folds' rows (``folds``: :func:`fold_counts`)."""
    return FoldCalibrators(fit, scores, labels, folds).held_out(scores)


def brier(probabilities: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> float:
    """The held-out Brier score: ``probabilities`` per entry and fold, each counted by the
    entry's rows in that fold."""
    total = folds.sum()
    if total == 0:
        return float("nan")
    return float(np.sum(folds * (probabilities - labels[:, None]) ** 2) / total)

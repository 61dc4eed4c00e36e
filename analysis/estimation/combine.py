"""One period's estimate, and the estimate combined with the labels that have arrived.

**Estimate.** Each metric from the calibrated probabilities of the period's rows
(:mod:`.expected`), no label of the period used. Its variance is the sampling variance of
the realized metric around it (each row's label a Bernoulli draw with its probability:
Poisson-binomial, by the delta method) plus the calibration error measured on the
reference's held-out folds (:mod:`.fit`): the larger of the metric's own measured error
and what the measured per-prediction bias of the probabilities would move it by.

**Combined.** Labeled rows count with their labels. Unlabeled rows count with their
probability corrected by the bias the period's labeled rows show (the mean of ``label -
probability`` among rows with the same prediction), as prediction-powered inference
corrects an estimator by its error on the labeled rows. The correction is weighted by how
much the labeled rows can tell: with ``τ²`` the bias the reference allows and ``v`` the
variance of the labeled rows' mean residual, the correction is ``τ²/(τ² + v)`` of that
mean and its remaining variance ``τ² v/(τ² + v)`` (a precision-weighted average of the
reference's and the period's evidence), so a handful of labels moves the figure a
little and many labels move it to what they say. Its variance: the sampling variance of
the unlabeled rows, the remaining variance of the correction, and the rest of the
calibration error, in proportion to the unlabeled share. With no labels it equals the
estimate; with every row labeled it is the realized figure, and the interval closes on
it (nothing of the period is left to estimate).

Intervals are ``value ± 1.96 sd``, kept within the metric's range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.estimation.expected import Expected, Rows
from analysis.estimation.figures import MetricEstimate, bounds, shrink
from analysis.estimation.fit import Fit

# A period's labels disagree with its estimate when the estimate made for the labeled rows
# misses their realized figure by more than its interval allows: a two-sided test, its
# p-values adjusted over the periods of a timeline (Benjamini-Hochberg, :mod:`.timeline`).
DISAGREE_Q = 0.05


@dataclass(frozen=True)
class Correction:
    """The per-prediction correction of unlabeled rows' probabilities, and its variance."""

    shift: dict[int, float]
    variance: dict[int, float]

    @classmethod
    def from_labels(cls, fit: Fit, rows: Rows, p: np.ndarray, labels: np.ndarray) -> "Correction":
        labeled = labels >= 0
        counts = rows.by_prediction(np.ones(len(rows)), labeled)
        residuals = rows.by_prediction(labels - p, labeled)
        noise = rows.by_prediction(p * (1 - p), labeled)
        shift, variance = {}, {}
        for group, k in counts.items():
            prior = fit.prior(group)
            if k == 0:
                shift[group], variance[group] = 0.0, prior
                continue
            shift[group], variance[group] = shrink(prior, residuals[group] / k, noise[group] / k**2)
        return cls(shift, variance)


def estimate_period(
    fit: Fit,
    rows: Rows,
    labels: np.ndarray,
    names: list[str],
    known: Rows | None = None,
) -> dict[str, MetricEstimate]:
    """Every metric in ``names`` for one period's rows (``labels``: the 0/1 outcome, or -1
    when not arrived; an entry may stand for several rows alike, ``rows.weights``);
    ``known``: the rows as their labels say (multiclass: where a labeled row's error went).
    The realized figure is the metric of the labeled rows with their labels (what
    :mod:`.expected` computes with the labels as probabilities, as scikit-learn does)."""
    known = known or rows
    calibrator = fit.calibrator
    p = calibrator.apply(rows.s)
    nearest = calibrator.nearest_level(p)
    labeled = labels >= 0
    k = float(rows.weigh(labeled).sum())
    n = rows.count
    correction = Correction.from_labels(fit, rows, p, labels)
    shift = np.zeros(len(rows))
    for group, value in correction.shift.items():
        shift[rows.yhat == group] = value
    shifted = np.clip(p + shift, 0.0, 1.0)
    pi = np.where(labeled, labels, shifted)
    partly = 0 < k < n
    labeled_rows = rows.subset(labeled) if partly else None
    known_labeled = (labeled_rows if known is rows else known.subset(labeled)) if partly else known
    unlabeled_nearest = nearest[~labeled] if partly and nearest is not None else None
    labeled_nearest = nearest[labeled] if partly and nearest is not None else None
    out = {}
    for name in names:
        expected = fit.expected[name]
        estimate = expected(rows, p)
        group_var = _group_variance(fit, rows.by_prediction(estimate.grad))
        calibration = max(fit.errors[name].squared, group_var) + calibrator.level_variance(
            nearest, rows.weigh(estimate.grad)
        )
        variance = estimate.variance(p) + calibration
        low, high = bounds(name, estimate.value, variance)
        realized = None if k == 0 else _figure(expected(known_labeled, labels[labeled] if partly else labels).value)
        if k == 0:
            combined, c_low, c_high = estimate.value, low, high
        else:
            mixed = expected(known, pi)
            if not partly:
                combined, c_low, c_high = mixed.value, mixed.value, mixed.value
            else:
                unlabeled_grad = rows.by_prediction(mixed.grad, ~labeled)
                rest = max(fit.errors[name].squared - group_var, 0.0) * (1 - k / n) ** 2
                c_var = (
                    mixed.variance(pi)
                    + _group_variance(fit, unlabeled_grad, correction.variance)
                    + rest
                    + calibrator.level_variance(unlabeled_nearest, rows.weigh(mixed.grad)[~labeled])
                )
                combined = mixed.value
                c_low, c_high = bounds(name, combined, c_var)
        disagreement = (
            _disagreement_p(fit, expected, labeled_rows, p[labeled], labeled_nearest, realized, name)
            if labeled_rows is not None
            else float("nan")
        )
        out[name] = MetricEstimate(realized, estimate.value, low, high, combined, c_low, c_high, False, disagreement)
    return out


def _figure(value: float) -> float | None:
    """A realized figure, None where the labeled rows do not define it."""
    return float(value) if np.isfinite(value) else None


def _group_variance(fit: Fit, grad_sums: dict[int, float], variances: dict[int, float] | None = None) -> float:
    variances = variances or {g: fit.prior(g) for g in grad_sums}
    return float(sum(total**2 * variances.get(g, fit.prior(g)) for g, total in grad_sums.items()))


def _disagreement_p(
    fit: Fit, expected, rows: Rows, p: np.ndarray, nearest: np.ndarray | None, realized: float | None, name: str
) -> float:
    """How surprising the labeled rows' realized figure is, given what the estimate says for
    those same rows (two-sided, normal): small when the scores no longer mean what they
    meant on the reference."""
    if realized is None or not np.isfinite(realized):
        return float("nan")
    estimate: Expected = expected(rows, p)
    variance = (
        estimate.variance(p)
        + max(fit.errors[name].squared, _group_variance(fit, rows.by_prediction(estimate.grad)))
        + fit.calibrator.level_variance(nearest, rows.weigh(estimate.grad))
    )
    if not (np.isfinite(estimate.value) and variance > 0):
        return float("nan")
    return math.erfc(abs(realized - estimate.value) / math.sqrt(2 * variance))  # two-sided normal

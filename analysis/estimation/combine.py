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

from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.estimation.expected import Expected, Rows
from analysis.estimation.figures import MetricEstimate, bounds, shrink
from analysis.estimation.fit import Fit

# A period's labels disagree with its estimate when the estimate made for the labeled rows
# misses their realized figure by more than its interval allows: a two-sided test, its
# p-values adjusted over the periods of a timeline (Benjamini-Hochberg, :mod:`.timeline`).
DISAGREE_Q = 0.05


def _by_prediction(rows: Rows, values: np.ndarray, mask: np.ndarray | None = None) -> dict[int, float]:
    keep = np.ones(len(rows), bool) if mask is None else mask
    return {int(g): float(values[keep & (rows.yhat == g)].sum()) for g in rows.groups}


@dataclass(frozen=True)
class Correction:
    """The per-prediction correction of unlabeled rows' probabilities, and its variance."""

    shift: dict[int, float]
    variance: dict[int, float]

    @classmethod
    def from_labels(cls, fit: Fit, rows: Rows, p: np.ndarray, labels: np.ndarray) -> "Correction":
        labeled = labels >= 0
        shift, variance = {}, {}
        for group in rows.groups.astype(int):
            prior = fit.prior(group)
            at = labeled & (rows.yhat == group)
            k = int(at.sum())
            if k == 0:
                shift[group], variance[group] = 0.0, prior
                continue
            seen = float(np.mean(labels[at] - p[at]))
            noise = float(np.sum(p[at] * (1 - p[at]))) / k**2
            shift[group], variance[group] = shrink(prior, seen, noise)
        return cls(shift, variance)


def estimate_period(
    fit: Fit,
    rows: Rows,
    labels: np.ndarray,
    names: list[str],
    realized: dict[str, float | None],
    known: Rows | None = None,
) -> dict[str, MetricEstimate]:
    """Every metric in ``names`` for one period's rows (``labels``: the 0/1 outcome, or -1
    when not arrived); ``realized``: the engine's figure on the labeled rows; ``known``: the
    rows as their labels say (multiclass: where a labeled row's error went)."""
    known = known or rows
    p = fit.calibrator.apply(rows.s)
    labeled = labels >= 0
    k, n = int(labeled.sum()), len(rows)
    correction = Correction.from_labels(fit, rows, p, labels)
    shift = np.zeros(len(rows))
    for group, value in correction.shift.items():
        shift[rows.yhat == group] = value
    shifted = np.clip(p + shift, 0.0, 1.0)
    pi = np.where(labeled, labels, shifted)
    labeled_rows = rows.subset(labeled) if 0 < k < n else None
    out = {}
    for name in names:
        expected = fit.expected[name]
        estimate = expected(rows, p)
        group_var = _group_variance(fit, _by_prediction(rows, estimate.grad))
        calibration = max(fit.errors[name].squared, group_var) + fit.calibrator.fit_variance(p, estimate.grad)
        variance = estimate.variance(p) + calibration
        low, high = bounds(name, estimate.value, variance)
        if k == 0:
            combined, c_low, c_high = estimate.value, low, high
        else:
            mixed = expected(known, pi)
            if k == n:
                combined, c_low, c_high = mixed.value, mixed.value, mixed.value
            else:
                unlabeled_grad = _by_prediction(rows, mixed.grad, ~labeled)
                rest = max(fit.errors[name].squared - group_var, 0.0) * (1 - k / n) ** 2
                c_var = (
                    mixed.variance(pi)
                    + _group_variance(fit, unlabeled_grad, correction.variance)
                    + rest
                    + fit.calibrator.fit_variance(p[~labeled], mixed.grad[~labeled])
                )
                combined = mixed.value
                c_low, c_high = bounds(name, combined, c_var)
        disagreement = (
            _disagreement_p(fit, expected, labeled_rows, p[labeled], realized.get(name), name)
            if labeled_rows is not None
            else float("nan")
        )
        out[name] = MetricEstimate(
            realized.get(name), estimate.value, low, high, combined, c_low, c_high, False, disagreement
        )
    return out


def _group_variance(fit: Fit, grad_sums: dict[int, float], variances: dict[int, float] | None = None) -> float:
    variances = variances or {g: fit.prior(g) for g in grad_sums}
    return float(sum(total**2 * variances.get(g, fit.prior(g)) for g, total in grad_sums.items()))


def _disagreement_p(fit: Fit, expected, rows: Rows, p: np.ndarray, realized: float | None, name: str) -> float:
    """How surprising the labeled rows' realized figure is, given what the estimate says for
    those same rows (two-sided, normal): small when the scores no longer mean what they
    meant on the reference."""
    if realized is None or not np.isfinite(realized):
        return float("nan")
    estimate: Expected = expected(rows, p)
    variance = (
        estimate.variance(p)
        + max(fit.errors[name].squared, _group_variance(fit, _by_prediction(rows, estimate.grad)))
        + fit.calibrator.fit_variance(p, estimate.grad)
    )
    if not (np.isfinite(estimate.value) and variance > 0):
        return float("nan")
    return float(2 * stats.norm.sf(abs(realized - estimate.value) / np.sqrt(variance)))

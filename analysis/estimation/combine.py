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

from analysis.estimation.expected import BY_PERIOD, Expected, Periods, Rows
from analysis.estimation.figures import MetricEstimate, bounds, shrink
from analysis.estimation.fit import Fit

NAN = float("nan")

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
    full: bool = True,
) -> dict[str, MetricEstimate]:
    """Every metric in ``names`` for one period's rows (``labels``: the 0/1 outcome, or -1
    when not arrived; an entry may stand for several rows alike, ``rows.weights``);
    ``known``: the rows as their labels say (multiclass: where a labeled row's error went).
    The realized figure is the metric of the labeled rows with their labels (what
    :mod:`.expected` computes with the labels as probabilities, as scikit-learn does).
    Not ``full``: the estimate with its interval and the combined figure only (no realized
    figure, no interval of a partly labeled period's combined figure, no test of the
    labels), which is all a monitor reads, at about half the work."""
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
    checked = partly and full  # the labeled rows read apart: the realized figure, the test
    labeled_rows = rows.subset(labeled) if checked else None
    known_labeled = (labeled_rows if known is rows else known.subset(labeled)) if checked else known
    unlabeled_nearest = nearest[~labeled] if partly and nearest is not None else None
    labeled_nearest = nearest[labeled] if checked and nearest is not None else None
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
        realized = (
            None
            if k == 0 or (partly and not full)
            else _figure(expected(known_labeled, labels[labeled] if partly else labels).value)
        )
        if k == 0:
            combined, c_low, c_high = estimate.value, low, high
        else:
            mixed = expected(known, pi)
            if not partly:
                combined, c_low, c_high = mixed.value, mixed.value, mixed.value
            elif not full:
                combined, c_low, c_high = mixed.value, float("nan"), float("nan")
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


def estimate_by_period(fit: Fit, rows: Rows, labels: np.ndarray, names: list[str], periods: Periods) -> list[dict]:
    """:func:`estimate_period` (not ``full``) of each of several periods of a binary
    classifier's rows at once, for metrics of ``BY_PERIOD`` (entries in score order within
    each period): a dict of figures per period, as that function gives them for the
    period's rows alone (tested equal). A monitor's back-fill estimates a slice's days so."""
    w, count = rows.w, periods.count
    p = fit.calibrator.apply(rows.s)
    nearest = fit.calibrator.nearest_level(p)
    labeled = labels >= 0
    groups = [int(g) for g in np.unique(rows.yhat)]
    of_group = [rows.yhat == g for g in groups]
    # Per period: labeled rows, rows, and per prediction the labeled rows, their residuals
    # and their noise (Correction.from_labels), in one pass.
    columns = [w * labeled, w]
    for mine in of_group:
        labeled_mine = w * (mine & labeled)
        columns += [labeled_mine, labeled_mine * (labels - p), labeled_mine * p * (1 - p)]
    sums = periods.sums(np.column_stack(columns))
    k, n = sums[:, 0], sums[:, 1]
    shift = np.zeros(len(rows))
    for i, (group, mine) in enumerate(zip(groups, of_group)):
        seen, residuals, noise = sums[:, 2 + 3 * i], sums[:, 3 + 3 * i], sums[:, 4 + 3 * i]
        with np.errstate(divide="ignore", invalid="ignore"):
            moved = np.where(seen > 0, shrink(fit.prior(group), residuals / seen, noise / seen**2)[0], 0.0)
        shift = np.where(mine, moved[periods.of], shift)
    pi = np.where(labeled, labels, np.clip(p + shift, 0.0, 1.0))
    partly = (0 < k) & (k < n)
    out: list[dict] = [{} for _ in range(count)]
    for name in names:
        by_period = BY_PERIOD[name]
        value, grad = by_period(rows, p, periods)
        weighted = w * grad
        spread = periods.sums(np.column_stack([weighted * grad * p * (1 - p)] + [weighted * m for m in of_group]))
        own = spread[:, 0]
        groups_variance = sum(spread[:, 1 + i] ** 2 * fit.prior(g) for i, g in enumerate(groups))
        levels = _level_variances(fit, nearest, weighted, periods)
        calibration = np.maximum(fit.errors[name].squared, groups_variance) + levels
        variance = np.where(np.isfinite(value), own, NAN) + calibration
        low, high = bounds(name, value, variance)
        mixed = by_period(rows, pi, periods)[0] if (k > 0).any() else value
        for i in range(count):
            if k[i] == 0:
                combined, c_low, c_high, realized = value[i], low[i], high[i], None
            elif partly[i]:
                combined, c_low, c_high, realized = mixed[i], NAN, NAN, None
            else:
                combined, c_low, c_high, realized = mixed[i], mixed[i], mixed[i], _figure(mixed[i])
            out[i][name] = MetricEstimate(
                realized, float(value[i]), float(low[i]), float(high[i]), float(combined), c_low, c_high, False, NAN
            )
    return out


def _level_variances(fit: Fit, nearest: np.ndarray | None, weighted_grad: np.ndarray, periods: Periods) -> np.ndarray:
    """:meth:`.calibration.Calibrator.level_variance` of each period at once."""
    levels = fit.calibrator.levels
    if nearest is None or len(nearest) == 0:
        return np.zeros(periods.count)
    sums = np.bincount(periods.of * len(levels) + nearest, weights=weighted_grad, minlength=periods.count * len(levels))
    return (sums.reshape(periods.count, len(levels)) ** 2 * (levels * (1 - levels) / fit.calibrator.counts)).sum(axis=1)


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

"""Binary metrics as functions of each row's probability of being positive.

Each function takes the rows (:class:`Rows`: their scores and their predictions, 0 or 1)
and a probability ``pi`` that each row is positive, and returns the metric and its gradient
with respect to each row's ``pi``. With ``pi`` the calibrated scores it is the estimate
(as confidence-based performance estimation computes it: the expected confusion matrix,
and for the ranking metrics the ROC and precision-recall curves of the rows counted
positive with weight ``pi`` and negative with weight ``1 - pi``); with ``pi`` the labels
(0 or 1) it is the realized metric, exactly as scikit-learn computes it.

The gradient gives the sampling variance of the realized metric around the estimate,
``sum(pi (1 - pi) grad²)`` (each row's label is a Bernoulli draw; the delta method), and
how far the metric moves when probabilities shift. A metric that is undefined (no
predicted positives for precision, a single class for ROC AUC) is NaN.

One function per metric, registered by task and name in ``EXPECTED_BY_TASK``; a metric is
added in this file. Multiclass metrics take ``pi`` as each row's probability of being
right, and spread a wrong row over the true classes by its ``wrong_to``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from analysis.metrics.sql import EPS

NAN = float("nan")


@dataclass(frozen=True)
class Expected:
    value: float
    grad: np.ndarray  # d value / d pi of one row, per (weighted) row
    # Variance beyond each row's Bernoulli outcome (multiclass: which class a wrong row is).
    extra: float = 0.0
    weights: np.ndarray | None = None  # rows each entry stands for (None: one each)

    def variance(self, pi: np.ndarray) -> float:
        """The delta-method variance of the realized metric when each row is positive (or,
        multiclass, right) with probability ``pi``."""
        if not np.isfinite(self.value):
            return NAN
        terms = pi * (1.0 - pi) * self.grad**2
        if self.weights is not None:
            terms = terms * self.weights
        return float(np.sum(terms)) + self.extra


class Rows:
    """A period's (or a slice's) scored rows: scores, predictions (binary: 0/1; multiclass:
    the predicted class's index), and their order by score, sorted once for every ranking
    metric asked of them. Multiclass rows also say, for each row, how a wrong prediction
    is spread over the true classes (``wrong_to``, a row per prediction: the reference's
    confusion for an unlabeled row, the true class for a labeled one).

    An entry may stand for several rows alike (the same score, prediction and outcome,
    counted in SQL): ``weights`` says how many; every metric and its variance count them,
    and a gradient is still that of one row. Rows read in score order say so
    (``presorted``) and are never sorted again."""

    def __init__(
        self,
        scores: np.ndarray,
        predictions: np.ndarray,
        wrong_to: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        presorted: bool = False,
    ) -> None:
        self.s = np.asarray(scores, float)
        self.yhat = np.asarray(predictions, float)
        self.wrong_to = wrong_to
        self.weights = None if weights is None else np.asarray(weights, float)
        self.presorted = presorted

    def __len__(self) -> int:
        return len(self.s)

    @property
    def w(self) -> np.ndarray:
        """How many rows each entry stands for."""
        return np.ones(len(self.s)) if self.weights is None else self.weights

    @cached_property
    def count(self) -> float:
        """The number of rows."""
        return float(len(self.s)) if self.weights is None else float(self.weights.sum())

    def weigh(self, values: np.ndarray) -> np.ndarray:
        """``values`` per entry times the rows the entry stands for."""
        return values if self.weights is None else values * self.weights

    def subset(self, keep) -> "Rows":
        """The entries ``keep`` selects (a mask or a slice): still in score order if these were."""
        return Rows(
            self.s[keep],
            self.yhat[keep],
            None if self.wrong_to is None else self.wrong_to[keep],
            None if self.weights is None else self.weights[keep],
            self.presorted,
        )

    def with_weights(self, weights: np.ndarray) -> "Rows":
        return Rows(self.s, self.yhat, self.wrong_to, weights, self.presorted)

    def with_wrong_to(self, wrong_to: np.ndarray) -> "Rows":
        return Rows(self.s, self.yhat, wrong_to, self.weights, self.presorted)

    @cached_property
    def groups(self) -> np.ndarray:
        """The distinct predictions: rows are corrected by the bias of their own prediction."""
        return np.unique(self.yhat)

    def by_prediction(self, values: np.ndarray, keep: np.ndarray | None = None) -> dict[int, float]:
        """The sum of ``values`` (per row) over the rows of each prediction (``keep``: only those)."""
        weighted = self.weigh(values) if keep is None else self.weigh(values) * keep
        sums = weighted @ self._indicator if self._indicator is not None else None
        if sums is None:
            by_index = np.bincount(self._prediction_index, weights=weighted)
            sums = [by_index[g] for g in self._group_index]
        return {g: float(total) for g, total in zip(self._group_index, sums)}

    @cached_property
    def _prediction_index(self) -> np.ndarray:
        return self.yhat.astype(np.intp)

    @cached_property
    def _group_index(self) -> list[int]:
        return [int(g) for g in self.groups]

    @cached_property
    def _indicator(self) -> np.ndarray | None:
        """Which prediction each row has, one column per prediction (a few predictions: a
        product sums them faster than counting); None for many."""
        if len(self._group_index) > 4:
            return None
        return (self.yhat[:, None] == np.array(self._group_index, float)[None, :]).astype(float)

    @cached_property
    def ascending(self) -> tuple:
        return _score_groups(self.s, self.presorted)

    @cached_property
    def descending(self) -> tuple:
        if self.presorted:
            order, _, _ = self.ascending
            return _runs(order[::-1], self.s[::-1])
        return _score_groups(-self.s)


def _undefined(n: int) -> Expected:
    return Expected(NAN, np.zeros(n))


def accuracy(rows: Rows, pi) -> Expected:
    n, yhat = rows.count, rows.yhat
    if n == 0:
        return _undefined(len(pi))
    correct = np.where(yhat == 1, pi, 1.0 - pi)
    return Expected(float(rows.weigh(correct).sum() / n), np.where(yhat == 1, 1.0, -1.0) / n, 0.0, rows.weights)


def precision(rows: Rows, pi) -> Expected:
    positive = rows.yhat == 1
    predicted = rows.weigh(positive).sum()
    if predicted == 0:
        return _undefined(len(pi))
    return Expected(float(rows.weigh(pi)[positive].sum() / predicted), positive / predicted, 0.0, rows.weights)


def recall(rows: Rows, pi) -> Expected:
    yhat = rows.yhat
    weighted = rows.weigh(pi)
    hits, positives = float(np.sum(weighted * yhat)), float(weighted.sum())
    if positives <= 0:
        return _undefined(len(pi))
    value = hits / positives
    return Expected(value, (yhat - value) / positives, 0.0, rows.weights)


def f1(rows: Rows, pi) -> Expected:
    yhat = rows.yhat
    weighted = rows.weigh(pi)
    hits, denominator = float(np.sum(weighted * yhat)), float(rows.weigh(yhat).sum() + weighted.sum())
    if denominator <= 0:
        return _undefined(len(pi))
    value = 2.0 * hits / denominator
    return Expected(value, (2.0 * yhat - value) / denominator, 0.0, rows.weights)


def _score_groups(s, presorted: bool = False):
    """Rows sorted by score, the start of each run of equal scores, and each sorted row's run."""
    order = np.arange(len(s)) if presorted else np.argsort(s, kind="mergesort")
    return _runs(order, s if presorted else s[order])


def _runs(order, sorted_scores):
    new_run = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]] if len(order) else np.zeros(0, bool)
    return order, np.flatnonzero(new_run), np.cumsum(new_run) - 1


def _per_row(order, group_of_sorted, per_group) -> np.ndarray:
    out = np.empty(len(order))
    out[order] = per_group[group_of_sorted]
    return out


def roc_auc(rows: Rows, pi) -> Expected:
    """The Mann-Whitney statistic of rows positive with weight ``pi`` and negative with
    ``1 - pi``, ties counted half."""
    n = len(pi)
    if rows.count < 2:  # a pair of rows at least: one row ranks against nothing
        return _undefined(n)
    order, _, _ = rows.ascending
    values, grad = _roc_auc_sorted(rows.s[order], rows.w[order], np.asarray(pi, float)[order], Periods.one(n))
    if not np.isfinite(values[0]):
        return _undefined(n)
    out = np.empty(n)
    out[order] = grad
    return Expected(float(values[0]), out, 0.0, rows.weights)


def _roc_auc_sorted(s, w, pi, periods: "Periods") -> tuple[np.ndarray, np.ndarray]:
    """:func:`roc_auc` of each period's entries at once (in score order within each period):
    each period's value (NaN where undefined) and each entry's gradient (0 there)."""
    count = periods.count
    new_run = np.ones(len(s), bool)
    new_run[1:] = (s[1:] != s[:-1]) | (periods.of[1:] != periods.of[:-1])
    starts = np.flatnonzero(new_run)
    if len(starts) == 0:
        return np.full(count, NAN), np.zeros(0)
    run_of, run_period = np.cumsum(new_run) - 1, periods.of[starts]
    weighted = w * pi
    pos = np.add.reduceat(weighted, starts)
    neg = np.add.reduceat(w - weighted, starts)
    total_pos = np.bincount(run_period, weights=pos, minlength=count)
    total_neg = np.bincount(run_period, weights=neg, minlength=count)
    # Sums of the runs before each run within its period: a running sum less the period's start.
    first_run = np.searchsorted(run_period, np.arange(count))
    pos_before, neg_before = np.cumsum(pos) - pos, np.cumsum(neg) - neg
    first_run = np.minimum(first_run, len(starts) - 1)
    neg_below = neg_before - neg_before[first_run][run_period]
    pos_above = total_pos[run_period] - (pos_before - pos_before[first_run][run_period]) - pos
    pairs = total_pos * total_neg
    defined = (periods.sums(w) >= 2) & (total_pos > 0) & (total_neg > 0)  # a pair of rows, both outcomes
    with np.errstate(divide="ignore", invalid="ignore"):
        wins = np.bincount(run_period, weights=pos * (neg_below + 0.5 * neg), minlength=count)
        values = np.where(defined, wins / pairs, NAN)
        # A row that turns positive wins against the negatives below it and stops losing
        # against the positives above it.
        d_wins = (neg_below + 0.5 * neg) - (pos_above + 0.5 * pos)
        grad_run = d_wins / pairs[run_period] - values[run_period] * (
            1.0 / total_pos[run_period] - 1.0 / total_neg[run_period]
        )
    return values, np.where(defined[run_period], grad_run, 0.0)[run_of]


class Periods:
    """Entries of several periods at once, period after period: each entry's period (0, 1,
    …, none empty)."""

    def __init__(self, of: np.ndarray) -> None:
        self.of = np.asarray(of, np.intp)
        self.count = int(self.of[-1]) + 1 if len(self.of) else 0
        first = np.ones(len(self.of), bool)
        first[1:] = self.of[1:] != self.of[:-1]
        self.starts = np.flatnonzero(first)

    @classmethod
    def one(cls, n: int) -> "Periods":
        return cls(np.zeros(n, np.intp))

    def sums(self, values: np.ndarray) -> np.ndarray:
        """The sum of ``values`` (per entry; or a column of them each) in each period."""
        if self.count == 0:
            return np.zeros((0, *np.shape(values)[1:]))
        return np.add.reduceat(values, self.starts, axis=0)


def roc_auc_by_period(rows: Rows, pi, periods: Periods) -> tuple[np.ndarray, np.ndarray]:
    """:func:`roc_auc` of each period at once (``rows`` in score order within each period)."""
    return _roc_auc_sorted(rows.s, rows.w, np.asarray(pi, float), periods)


def accuracy_by_period(rows: Rows, pi, periods: Periods) -> tuple[np.ndarray, np.ndarray]:
    """:func:`accuracy` of each period at once."""
    n = periods.sums(rows.w)
    correct = np.where(rows.yhat == 1, pi, 1.0 - pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(n > 0, periods.sums(rows.weigh(correct)) / n, NAN)
        grad = np.where(n[periods.of] > 0, np.where(rows.yhat == 1, 1.0, -1.0) / n[periods.of], 0.0)
    return values, grad


def pr_auc(rows: Rows, pi) -> Expected:
    """Average precision: over the distinct scores from the highest, the recall gained
    times the precision there (the rows at or above the score are all counted)."""
    n = len(pi)
    if n == 0:
        return _undefined(0)
    order, starts, group = rows.descending  # highest score first
    pos = np.add.reduceat(rows.weigh(pi)[order], starts)
    count = np.add.reduceat(rows.w[order], starts)
    total_pos = pos.sum()
    if total_pos <= 0:
        return _undefined(n)
    hits = np.cumsum(pos)
    seen = np.cumsum(count)
    terms = pos * hits / seen
    value = float(terms.sum() / total_pos)
    later = np.cumsum((pos / seen)[::-1])[::-1]  # sum over this score and every lower one
    d_sum = hits / seen + later
    grad_group = (d_sum - value) / total_pos
    return Expected(value, _per_row(order, group, grad_group), 0.0, rows.weights)


def log_loss(rows: Rows, pi) -> Expected:
    n = rows.count
    if n == 0:
        return _undefined(len(pi))
    clipped = np.clip(rows.s, EPS, 1.0 - EPS)
    if_positive, if_negative = -np.log(clipped), -np.log1p(-clipped)
    value = float(rows.weigh(pi * if_positive + (1.0 - pi) * if_negative).sum() / n)
    return Expected(value, (if_positive - if_negative) / n, 0.0, rows.weights)


def brier(rows: Rows, pi) -> Expected:
    n = rows.count
    if n == 0:
        return _undefined(len(pi))
    if_positive, if_negative = (1.0 - rows.s) ** 2, rows.s**2
    value = float(rows.weigh(pi * if_positive + (1.0 - pi) * if_negative).sum() / n)
    return Expected(value, (if_positive - if_negative) / n, 0.0, rows.weights)


def multiclass_accuracy(rows: Rows, pi) -> Expected:
    """The share of right predictions: ``pi`` is each row's probability of being right."""
    n = rows.count
    if n == 0:
        return _undefined(len(pi))
    return Expected(float(rows.weigh(pi).sum() / n), np.full(len(pi), 1.0 / n), 0.0, rows.weights)


def macro_f1(rows: Rows, pi) -> Expected:
    """F1 per class, averaged over the classes predicted or (expectedly) present. Expected
    counts: a row predicted ``k`` is a true positive of ``k`` with probability ``pi``, else a
    false positive of ``k`` and a false negative of a class drawn from its ``wrong_to``."""
    n = len(pi)
    if n == 0:
        return _undefined(0)
    classes = rows.wrong_to.shape[1]
    predicted = rows.yhat.astype(int)
    right, wrong = rows.weigh(pi), rows.weigh(1.0 - pi)
    tp = np.bincount(predicted, weights=right, minlength=classes)
    fp = np.bincount(predicted, weights=wrong, minlength=classes)
    fn = wrong @ rows.wrong_to
    denominator = 2 * tp + fp + fn
    seen = denominator > 0
    if not seen.any():
        return _undefined(n)
    count = int(seen.sum())
    safe = np.where(seen, denominator, 1.0)
    f1 = np.where(seen, 2 * tp / safe, 0.0)
    # A row that turns right: its class gains a true positive and loses a false positive;
    # the class its error went to loses a false negative.
    own = ((2 * safe - 2 * tp) / safe**2)[predicted]
    per_fn = np.where(seen, -2 * tp / safe**2, 0.0)  # d F1_c / d FN_c
    grad = (own - rows.wrong_to @ per_fn) / count
    # Which class a wrong row's error goes to is a draw of its own.
    spread = rows.wrong_to @ per_fn**2 - (rows.wrong_to @ per_fn) ** 2
    extra = float(np.sum(wrong * spread)) / count**2
    return Expected(float(f1[seen].mean()), grad, extra, rows.weights)


EXPECTED_BY_TASK: dict[str, dict[str, Callable[..., Expected]]] = {}

# Binary metrics computed for many periods at once (a monitor's days): the value of each
# period and each row's gradient within its own.
BY_PERIOD = {"roc_auc": roc_auc_by_period, "accuracy": accuracy_by_period}

EXPECTED: dict[str, Callable[..., Expected]] = {
    "accuracy": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "roc_auc": roc_auc,
    "pr_auc": pr_auc,
    "log_loss": log_loss,
    "brier": brier,
}

EXPECTED_BY_TASK.update(
    {
        "binary": EXPECTED,
        "multiclass": {"accuracy": multiclass_accuracy, "macro_f1": macro_f1},
    }
)

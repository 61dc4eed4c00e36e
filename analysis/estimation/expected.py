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

One function per metric, registered by name in ``EXPECTED``; a metric is added in this
file.
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
    grad: np.ndarray  # d value / d pi, per row

    def variance(self, pi: np.ndarray) -> float:
        """The delta-method variance of the realized metric when each row is positive with
        probability ``pi``."""
        if not np.isfinite(self.value):
            return NAN
        return float(np.sum(pi * (1.0 - pi) * self.grad**2))


class Rows:
    """A period's (or a slice's) scored rows: scores, predictions (0/1), and their order by
    score, sorted once for every ranking metric asked of them."""

    def __init__(self, scores: np.ndarray, predictions: np.ndarray) -> None:
        self.s = np.asarray(scores, float)
        self.yhat = np.asarray(predictions, float)

    def __len__(self) -> int:
        return len(self.s)

    def subset(self, mask: np.ndarray) -> "Rows":
        return Rows(self.s[mask], self.yhat[mask])

    @cached_property
    def ascending(self) -> tuple:
        return _score_groups(self.s)

    @cached_property
    def descending(self) -> tuple:
        return _score_groups(-self.s)


def _undefined(n: int) -> Expected:
    return Expected(NAN, np.zeros(n))


def accuracy(rows: Rows, pi) -> Expected:
    n, yhat = len(pi), rows.yhat
    if n == 0:
        return _undefined(0)
    correct = np.where(yhat == 1, pi, 1.0 - pi)
    return Expected(float(correct.mean()), np.where(yhat == 1, 1.0, -1.0) / n)


def precision(rows: Rows, pi) -> Expected:
    positive = rows.yhat == 1
    predicted = positive.sum()
    if predicted == 0:
        return _undefined(len(pi))
    return Expected(float(pi[positive].sum() / predicted), positive / predicted)


def recall(rows: Rows, pi) -> Expected:
    yhat = rows.yhat
    hits, positives = float(np.sum(pi * yhat)), float(pi.sum())
    if positives <= 0:
        return _undefined(len(pi))
    value = hits / positives
    return Expected(value, (yhat - value) / positives)


def f1(rows: Rows, pi) -> Expected:
    yhat = rows.yhat
    hits, denominator = float(np.sum(pi * yhat)), float(yhat.sum() + pi.sum())
    if denominator <= 0:
        return _undefined(len(pi))
    value = 2.0 * hits / denominator
    return Expected(value, (2.0 * yhat - value) / denominator)


def _score_groups(s):
    """Rows sorted by score, the start of each run of equal scores, and each sorted row's run."""
    order = np.argsort(s, kind="mergesort")
    sorted_scores = s[order]
    new_run = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    return order, np.flatnonzero(new_run), np.cumsum(new_run) - 1


def _per_row(order, group_of_sorted, per_group) -> np.ndarray:
    out = np.empty(len(order))
    out[order] = per_group[group_of_sorted]
    return out


def roc_auc(rows: Rows, pi) -> Expected:
    """The Mann-Whitney statistic of rows positive with weight ``pi`` and negative with
    ``1 - pi``, ties counted half."""
    n = len(pi)
    if n == 0:
        return _undefined(0)
    order, starts, group = rows.ascending
    pos = np.add.reduceat(pi[order], starts)
    neg = np.add.reduceat(1.0 - pi[order], starts)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return _undefined(n)
    neg_below = np.cumsum(neg) - neg
    pos_above = total_pos - np.cumsum(pos)
    pairs = total_pos * total_neg
    value = float(np.sum(pos * (neg_below + 0.5 * neg)) / pairs)
    # A row that turns positive wins against the negatives below it and stops losing
    # against the positives above it.
    d_wins = (neg_below + 0.5 * neg) - (pos_above + 0.5 * pos)
    grad_group = d_wins / pairs - value * (1.0 / total_pos - 1.0 / total_neg)
    return Expected(value, _per_row(order, group, grad_group))


def pr_auc(rows: Rows, pi) -> Expected:
    """Average precision: over the distinct scores from the highest, the recall gained
    times the precision there (the rows at or above the score are all counted)."""
    n = len(pi)
    if n == 0:
        return _undefined(0)
    order, starts, group = rows.descending  # highest score first
    pos = np.add.reduceat(pi[order], starts)
    count = np.diff(np.r_[starts, n]).astype(float)
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
    return Expected(value, _per_row(order, group, grad_group))


def log_loss(rows: Rows, pi) -> Expected:
    n = len(pi)
    if n == 0:
        return _undefined(0)
    clipped = np.clip(rows.s, EPS, 1.0 - EPS)
    if_positive, if_negative = -np.log(clipped), -np.log1p(-clipped)
    value = float(np.mean(pi * if_positive + (1.0 - pi) * if_negative))
    return Expected(value, (if_positive - if_negative) / n)


def brier(rows: Rows, pi) -> Expected:
    n = len(pi)
    if n == 0:
        return _undefined(0)
    if_positive, if_negative = (1.0 - rows.s) ** 2, rows.s**2
    value = float(np.mean(pi * if_positive + (1.0 - pi) * if_negative))
    return Expected(value, (if_positive - if_negative) / n)


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

"""Metrics that are a mean over rows: each row's figure in SQL, and which labeled rows count.

Accuracy is the mean of "this row is right" over labeled rows, precision the mean of "the
label is positive" over rows predicted positive, the mean absolute error the mean of each
row's error. A monitor of the labels themselves (``realized``) watches these figures day
by day as labels arrive: a mean's sampling error is known from its rows, so no model of the
metric is needed. Metrics that are not a mean over rows (ROC AUC, F1, RMSE, R²) are watched
through the label-free estimate combined with the labels (:mod:`analysis.estimation`).

Each figure equals :func:`analysis.metrics.sql.compute_metrics`' on the same rows (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.metrics.sql import EPS


@dataclass(frozen=True)
class RowMean:
    rows: str  # which labeled rows the mean is over
    figure: str  # each row's figure
    rate: bool  # every figure is 0 or 1: the mean is a share of rows


_RIGHT = "CASE WHEN prediction = label THEN 1.0 ELSE 0.0 END"
_WRONG = "CASE WHEN prediction = label THEN 0.0 ELSE 1.0 END"
_POSITIVE = "CASE WHEN label THEN 1.0 ELSE 0.0 END"
_CLIPPED = f"greatest(least(score, {1 - EPS!r}), {EPS!r})"  # as compute_metrics clips it

ROW_MEANS: dict[str, dict[str, RowMean]] = {
    "binary": {
        "accuracy": RowMean("TRUE", _RIGHT, True),
        "error_rate": RowMean("TRUE", _WRONG, True),
        "precision": RowMean("prediction", _POSITIVE, True),
        "recall": RowMean("label", "CASE WHEN prediction THEN 1.0 ELSE 0.0 END", True),
        "log_loss": RowMean(
            "score IS NOT NULL", f"CASE WHEN label THEN -ln({_CLIPPED}) ELSE -ln(1 - {_CLIPPED}) END", False
        ),
        "brier": RowMean("score IS NOT NULL", f"(score - {_POSITIVE}) * (score - {_POSITIVE})", False),
    },
    "multiclass": {
        "accuracy": RowMean("TRUE", _RIGHT, True),
        "error_rate": RowMean("TRUE", _WRONG, True),
    },
    "regression": {
        "mae": RowMean("TRUE", "abs(label - prediction)", False),
    },
}


def row_means(task: str) -> dict[str, RowMean]:
    """The task's metrics that are a mean over rows."""
    return ROW_MEANS[task]

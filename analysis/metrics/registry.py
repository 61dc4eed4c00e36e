"""The one table of metrics: each metric's name, its name in words, which way is better,
whether it is a share of rows, which tasks have it, and each task's headline.

The engine (which metrics a task computes, which way a comparison or a gate counts as
worse), the command line, the pages and the reports all read it here; the number
formatting (:mod:`analysis.numbers`) asks it how to show a metric. Product metrics are
the project's own (:mod:`analysis.metrics.product`) and carry the same facts in their
definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Metric:
    name: str
    words: str  # in a sentence: "ROC AUC", "accuracy", "mean absolute error"
    higher_is_better: bool
    proportion: bool  # a share of rows: shown in percent, its changes in points
    tasks: tuple[str, ...]
    needs_score: bool = False  # computed from the score, on the rows that have one
    digits: int = 3  # decimals when it is not a share (significant digits when in the label's units)
    label_units: bool = False  # measured in the label's units (an error of 9.4 dollars, not a rate)
    computed: bool = True  # one of compute_metrics' columns (else derived by an analysis)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "accuracy", True, True, ("binary", "multiclass")),
        Metric("precision", "precision", True, True, ("binary",)),
        Metric("recall", "recall", True, True, ("binary",)),
        Metric("f1", "F1", True, True, ("binary",)),
        Metric("roc_auc", "ROC AUC", True, False, ("binary",), needs_score=True),
        Metric("pr_auc", "PR AUC", True, False, ("binary",), needs_score=True),
        Metric("log_loss", "log loss", False, False, ("binary",), needs_score=True, digits=4),
        Metric("brier", "Brier score", False, False, ("binary",), needs_score=True, digits=4),
        Metric("macro_f1", "macro F1", True, True, ("multiclass",)),
        Metric("mae", "mean absolute error", False, False, ("regression",), digits=4, label_units=True),
        Metric("rmse", "RMSE", False, False, ("regression",), digits=4, label_units=True),
        Metric("r2", "R²", True, False, ("regression",)),
        # Derived by the analyses that use them, not by compute_metrics:
        Metric("error_rate", "error rate", False, True, ("binary", "multiclass"), computed=False),
        Metric("excess_error_rate", "excess error rate", False, True, TASKS, computed=False),
    )
}

# Each task's headline metric and the one shown beside it: the Overview's cards, the
# comparison's daily series, the sentences of a report.
HEADLINES: dict[str, tuple[str, str]] = {
    "binary": ("roc_auc", "accuracy"),
    "multiclass": ("accuracy", "macro_f1"),
    "regression": ("mae", "rmse"),
}


def metric(name: str) -> Metric | None:
    """The registered metric of that name, or None (a product metric, a count)."""
    return METRICS.get(name)


def metrics_for(task: str) -> tuple[str, ...]:
    """The metrics :func:`analysis.metrics.sql.compute_metrics` returns for a task, in the
    order people see them."""
    return tuple(m.name for m in METRICS.values() if m.computed and task in m.tasks)


def headline_metrics(task: str) -> tuple[str, str]:
    """The task's headline metric and the one shown beside it."""
    return HEADLINES[task]


def is_headline(name: str) -> bool:
    """One of some task's two headline metrics."""
    return any(name in pair for pair in HEADLINES.values())

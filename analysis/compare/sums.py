"""What a comparison sums per bucket of examples, and each compared ML metric as a
function of those sums (its direction is the metric registry's)."""

from __future__ import annotations

import numpy as np

from analysis.metrics.registry import METRICS
from analysis.metrics.sql import binary_terms
from analysis.store.project import Project

# -- what is summed per bucket ---------------------------------------------------------------------


def ml_sums(project: Project) -> dict[str, str]:
    """Per-row terms whose sums give every compared ML metric of the task."""
    if project.task == "binary":
        return dict(binary_terms())
    labeled = "label IS NOT NULL AND prediction IS NOT NULL"
    if project.task == "multiclass":
        return {
            "n_labeled": f"CASE WHEN {labeled} THEN 1 ELSE 0 END",
            "correct": f"CASE WHEN {labeled} AND label = prediction THEN 1 ELSE 0 END",
        }
    return {
        "n_labeled": f"CASE WHEN {labeled} THEN 1 ELSE 0 END",
        "abs_sum": f"CASE WHEN {labeled} THEN abs(label - prediction) ELSE 0 END",
        "sq_sum": f"CASE WHEN {labeled} THEN (label - prediction) * (label - prediction) ELSE 0 END",
    }


def ratio(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


# Each compared ML metric as a function of the summed columns of ml_sums (its direction
# is the registry's).
FROM_SUMS = {
    "binary": {
        "accuracy": lambda s: ratio(s["tp"] + s["tn"], s["tp"] + s["tn"] + s["fp"] + s["fn"]),
        "precision": lambda s: ratio(s["tp"], s["tp"] + s["fp"]),
        "recall": lambda s: ratio(s["tp"], s["tp"] + s["fn"]),
        "f1": lambda s: ratio(2 * s["tp"], 2 * s["tp"] + s["fp"] + s["fn"]),
        "log_loss": lambda s: ratio(s["ll_sum"], s["n_scored"]),
        "brier": lambda s: ratio(s["brier_sum"], s["n_scored"]),
    },
    "multiclass": {"accuracy": lambda s: ratio(s["correct"], s["n_labeled"])},
    "regression": {
        "mae": lambda s: ratio(s["abs_sum"], s["n_labeled"]),
        "rmse": lambda s: np.sqrt(ratio(s["sq_sum"], s["n_labeled"])),
    },
}


def direction(name: str) -> str:
    return "higher" if METRICS[name].higher_is_better else "lower"

"""The figures an estimate is made of, whatever the task: how far a calibration was off on
the reference (:class:`MetricError`), a period's figures with their intervals
(:class:`MetricEstimate`), and the precision-weighted correction the labels of a period
make (:func:`shrink`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.metrics.registry import metric
from analysis.stats.intervals import Z95


@dataclass(frozen=True)
class MetricError:
    """How far the held-out estimate of a metric was from the realized one on the slice's
    reference rows (``bias``), and the sampling variance of that difference."""

    bias: float
    variance: float

    @property
    def squared(self) -> float:
        """``bias² + variance``: what an estimate's variance gains for calibration (NaN, when
        the metric is undefined on the reference, counts as 0: the metric's own interval is
        then NaN too)."""
        total = self.bias**2 + self.variance
        return float(total) if np.isfinite(total) else 0.0


@dataclass(frozen=True)
class MetricEstimate:
    realized: float | None
    estimated: float
    low: float
    high: float
    combined: float
    combined_low: float
    combined_high: float
    labels_disagree: bool = False
    disagreement_p: float = float("nan")  # the test of the labeled rows against the estimate

    def to_dict(self) -> dict:
        return {
            "realized": self.realized,
            "estimated": self.estimated,
            "low": self.low,
            "high": self.high,
            "combined": self.combined,
            "combined_low": self.combined_low,
            "combined_high": self.combined_high,
        }


def metric_range(name: str) -> tuple[float, float]:
    """Where a metric's values lie: shares, the ranking metrics and the Brier score in [0, 1];
    log loss and errors in the label's units from 0 up."""
    registered = metric(name)
    if (registered is not None and registered.proportion) or name in ("roc_auc", "pr_auc", "brier"):
        return 0.0, 1.0
    return 0.0, np.inf


def bounds(name: str, value, variance):
    """A figure's 95% interval within the metric's range (NaN where the figure or its
    variance is not finite); ``value`` and ``variance`` may be arrays of many figures."""
    value, variance = np.asarray(value, float), np.asarray(variance, float)
    lowest, highest = metric_range(name)
    half = Z95 * np.sqrt(np.maximum(variance, 0.0))
    finite = np.isfinite(value) & np.isfinite(variance)
    low = np.where(finite, np.maximum(value - half, lowest), np.nan)
    high = np.where(finite, np.minimum(value + half, highest), np.nan)
    return (float(low), float(high)) if low.ndim == 0 else (low, high)


def shrink(prior: float, seen, noise):
    """The correction a period's labeled rows make to a bias the reference allows ``prior``
    (its squared size) when they show a mean residual ``seen`` with variance ``noise``: the
    precision-weighted average of the two, ``prior/(prior + noise)`` of ``seen``, and what
    is left uncertain, ``prior·noise/(prior + noise)``. ``seen`` and ``noise`` may be
    arrays (many periods at once)."""
    seen, noise = np.asarray(seen, float), np.asarray(noise, float)
    if prior == 0.0:
        shift, left = np.zeros_like(seen), np.zeros_like(seen)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(noise == 0.0, seen, prior / (prior + noise) * seen)
            left = np.where(noise == 0.0, 0.0, prior * noise / (prior + noise))
    return (float(shift), float(left)) if shift.ndim == 0 else (shift, left)

"""A slice's estimate timeline: every period after the reference, its rows and labeled
rows, and per metric the realized figure (labeled rows only), the estimate (no label of
the period used) with its interval, and the two combined (:mod:`.combine`).

Two queries: the rows' scores, predictions and labels (what the estimates are computed
from), and the engine's metrics per period on the labeled rows (the realized figures,
from the one place metrics are computed).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.estimation.combine import DISAGREE_Q, estimate_period
from analysis.estimation.expected import EXPECTED_BY_TASK
from analysis.estimation.figures import MetricEstimate
from analysis.estimation.fit import Fit, scored_rows_sql
from analysis.estimation.outcomes import READINGS
from analysis.estimation.periods import Period, check_granularity, first_period_after, period_start_sql
from analysis.estimation.regression import REGRESSION_METRICS, RegressionPeriods
from analysis.metrics.registry import metrics_for
from analysis.metrics.sql import GroupKey, compute_metrics
from analysis.slices import compile_slice
from analysis.stats.multiple_testing import bh_qvalues
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, and_all

# A period's scores moved far from the reference's when the Kolmogorov-Smirnov distance
# between the two is at least this; or lie outside the reference's range for this share.
LARGE_SHIFT = 0.25
OUTSIDE_SHARE = 0.01


@dataclass(frozen=True)
class PeriodEstimate:
    period: Period
    rows: int
    labeled: int
    metrics: dict[str, MetricEstimate]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            **self.period.to_dict(),
            "rows": self.rows,
            "labeled": self.labeled,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class EstimateTimeline:
    fit: Fit
    by: str
    metrics: tuple[str, ...]
    periods: list[PeriodEstimate] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "reference": self.fit.to_dict(),
            "by": self.by,
            "metrics": list(self.metrics),
            "periods": [p.to_dict() for p in self.periods],
        }

    def frame(self) -> pd.DataFrame:
        """One row per period and metric."""
        records = [
            {
                "period": p.period.label,
                "start": pd.Timestamp(p.period.start),
                "end": pd.Timestamp(p.period.end),
                "rows": p.rows,
                "labeled": p.labeled,
                "labeled_share": p.labeled / p.rows if p.rows else np.nan,
                "metric": name,
                **{k: (np.nan if v is None else v) for k, v in m.to_dict().items()},
                "labels_disagree": m.labels_disagree,
                "notes": "; ".join(p.notes),
            }
            for p in self.periods
            for name, m in p.metrics.items()
        ]
        return pd.DataFrame.from_records(records)


def estimable_metrics(project: Project) -> tuple[str, ...]:
    return tuple(m for m in metrics_for(project.task) if m in ESTIMATED.get(project.task, ()))


def _metric_names(project: Project, metrics) -> tuple[str, ...]:
    known = estimable_metrics(project)
    if not metrics:
        return known
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise ConfigError(f"No estimate of {', '.join(unknown)} for {project.name}; estimated: {', '.join(known)}.")
    return tuple(dict.fromkeys(metrics))


def estimate_timeline(con, project: Project, fit: Fit, by: str = "day", metrics=None) -> EstimateTimeline:
    """Every whole period after ``fit``'s reference window, for ``fit``'s slice."""
    check_granularity(by)
    names = _metric_names(project, metrics)
    reference = fit.reference
    after = Scope.of(reference.version, reference.stage, first_period_after(reference.end, by), None)
    where = and_all([after.to_sql(), compile_slice(fit.slice_, project)])
    period = GroupKey("period", period_start_sql(by))
    realized = compute_metrics(con, project, group_by=[period], where=where, include_outcomes=False)
    periods = PERIODS[project.task]
    starts, data = periods.read(con, project, fit, where, period_start_sql(by))
    by_start = {r["period"]: r for r in realized.to_dict(orient="records")}
    out = []
    for start in sorted(by_start, key=lambda d: pd.Timestamp(d)):
        day = pd.Timestamp(start).date()
        counts = by_start[start]
        at = starts == day
        if not at.any():
            continue
        rows = periods.subset(data, at)
        figures = {n: (None if pd.isna(counts.get(n)) else float(counts[n])) for n in names}
        out.append(
            PeriodEstimate(
                Period.starting(day, by),
                int(counts["n_rows"]),
                int(counts["n_labeled"]),
                periods.estimate(fit, rows, list(names), figures),
                _shift_notes(fit, periods.scores(rows)),
            )
        )
    return EstimateTimeline(fit, by, names, _flag_disagreements(out, names))


class ClassifierPeriods:
    """A classifier's periods: scores, predictions and labels, estimated from calibrated
    probabilities (:mod:`.combine`)."""

    def read(self, con, project: Project, fit: Fit, where: Sql, period_sql: str):
        data = con.execute(*scored_rows_sql(project, where, fit.slice_, period_sql)).fetchnumpy()
        starts = pd.to_datetime(np.asarray(data["period"])).date if len(data["period"]) else np.array([])
        return starts, READINGS[project.task].read(data, fit.classes)

    def scores(self, read) -> np.ndarray:
        return read.rows.s

    def subset(self, read, at: np.ndarray):
        return replace(read, rows=read.rows.subset(at), outcomes=read.outcomes[at], known=read.known.subset(at))

    def estimate(self, fit: Fit, read, names, realized: dict) -> dict[str, MetricEstimate]:
        return estimate_period(fit, read.rows, read.outcomes, names, realized, read.known)


PERIODS = {"binary": ClassifierPeriods(), "multiclass": ClassifierPeriods(), "regression": RegressionPeriods()}
# The metrics each task's estimates cover.
ESTIMATED = {**{task: tuple(metrics) for task, metrics in EXPECTED_BY_TASK.items()}, "regression": REGRESSION_METRICS}


def _flag_disagreements(periods: list[PeriodEstimate], names) -> list[PeriodEstimate]:
    """Which periods' labels disagree with their estimate: per metric, the periods' tests
    adjusted together (Benjamini-Hochberg), so a long timeline does not flag periods by
    chance; each flagged period says so in its notes."""
    flagged = {}
    for name in names:
        q = bh_qvalues(np.array([p.metrics[name].disagreement_p for p in periods], dtype=float))
        flagged[name] = q < DISAGREE_Q
    out = []
    for i, period in enumerate(periods):
        metrics = {n: replace(m, labels_disagree=bool(flagged[n][i])) for n, m in period.metrics.items()}
        out.append(replace(period, metrics=metrics, notes=period.notes + _disagreement_notes(metrics)))
    return out


def _shift_notes(fit: Fit, scores: np.ndarray) -> tuple[str, ...]:
    notes = []
    q = fit.score_quantiles
    outside = float(np.mean((scores < q[0]) | (scores > q[-1])))
    if outside >= OUTSIDE_SHARE:
        notes.append(f"{outside:.0%} of the {fit.compared} lie outside the reference's range")
    cdf = np.searchsorted(np.sort(scores), q, side="right") / len(scores)
    distance = float(np.max(np.abs(cdf - np.linspace(0.0, 1.0, len(q)))))
    if distance >= LARGE_SHIFT:
        notes.append(f"the {fit.compared} moved far from the reference's (Kolmogorov-Smirnov distance {distance:.2f})")
    return tuple(notes)


def _disagreement_notes(estimates: dict[str, MetricEstimate]) -> tuple[str, ...]:
    names = [n for n, m in estimates.items() if m.labels_disagree]
    if not names:
        return ()
    return (
        "the labels that arrived disagree with the estimate for "
        + ", ".join(names)
        + ": the scores no longer mean what they meant on the reference, so the estimate may be off",
    )

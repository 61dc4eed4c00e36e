"""A slice's estimate timeline: every period after the reference, its scored rows and
labeled rows, and per metric the realized figure (labeled rows only), the estimate (no
label of the period used) with its interval, and the two combined (:mod:`.combine`).

One query reads the rows' scores, predictions and labels, rows alike counted together;
the realized figures are computed from the same rows, so they describe exactly the rows
the estimate does (a row without a score is in neither).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.estimation.combine import DISAGREE_Q, estimate_period
from analysis.estimation.expected import EXPECTED_BY_TASK
from analysis.estimation.figures import MetricEstimate
from analysis.estimation.fit import Fit, counted_rows_sql
from analysis.estimation.outcomes import READINGS
from analysis.estimation.periods import Period, check_granularity, first_period_after, period_start_sql
from analysis.estimation.regression import REGRESSION_METRICS, RegressionPeriods
from analysis.metrics.registry import metrics_for
from analysis.slices import compile_slice
from analysis.stats.multiple_testing import bh_qvalues
from analysis.store.known import log_known_at
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, and_all, quote_ident

# A period's scores moved far from the reference's when the Kolmogorov-Smirnov distance
# between the two is at least this; or lie outside the reference's range for this share.
LARGE_SHIFT = 0.25
OUTSIDE_SHARE = 0.01
MIN_OUTSIDE = 5  # rows: one odd score in a handful is no news
# Below this many rows a period's figures are shown without intervals: the delta method's
# normal approximation does not hold for a handful of rows (a ROC AUC of 6 rows "0.97 to 0.99").
MIN_PERIOD_ROWS = 30


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


def estimate_timeline(
    con,
    project: Project,
    fit: Fit,
    by: str = "day",
    metrics=None,
    known_at: datetime | None = None,
    days: tuple[date, date] | None = None,
) -> EstimateTimeline:
    """Every whole period after ``fit``'s reference window, for ``fit``'s slice.
    ``known_at``: the log as it was known then (rows logged and labels received before it);
    ``days``: only the periods starting from the first day to the last (both included)."""
    check_granularity(by)
    names = _metric_names(project, metrics)
    reference = fit.reference
    first = first_period_after(reference.end, by)
    first, last = (max(first, days[0]), days[1]) if days else (first, None)
    after = Scope.of(reference.version, reference.stage, first, last)
    where = and_all([after.to_sql(), compile_slice(fit.slice_, project)])
    periods = PERIODS[project.task]
    log = log_known_at(project, known_at) if known_at is not None else None
    starts, data = periods.read(con, project, fit, where, period_start_sql(by), log)
    out = []
    for day, at in period_runs(starts).items():
        rows = periods.subset(data, at)
        counted, labeled = periods.counts(rows)
        estimate = PeriodEstimate(
            Period.starting(day, by),
            counted,
            labeled,
            periods.estimate(fit, rows, list(names)),
            _shift_notes(fit, *periods.scores(rows)),
        )
        out.append(estimate if counted >= MIN_PERIOD_ROWS else _without_intervals(estimate))
    if out and by != "day":
        out[-1] = _mark_if_partial(con, project, after, out[-1])
    return EstimateTimeline(fit, by, names, _flag_disagreements(out, names))


def estimate_rows(con, project: Project, fit: Fit, where: Sql, metrics=None) -> tuple[int, dict[str, MetricEstimate]]:
    """One estimate over every row ``where`` selects, as if they were one period (such as a
    half of the reference window's rows): their number, and each metric's figures."""
    names = _metric_names(project, metrics)
    periods = PERIODS[project.task]
    _, data = periods.read(con, project, fit, where, "CAST(NULL AS DATE)")  # one period for every row
    counted, _ = periods.counts(data)
    return counted, periods.estimate(fit, data, list(names)) if counted else {}


def _without_intervals(period: PeriodEstimate) -> PeriodEstimate:
    nan = float("nan")
    metrics = {
        name: replace(m, low=nan, high=nan, combined_low=nan, combined_high=nan, disagreement_p=nan)
        for name, m in period.metrics.items()
    }
    note = f"only {period.rows:,} rows: too few for an interval"
    return replace(period, metrics=metrics, notes=(note, *period.notes))


def _mark_if_partial(con, project: Project, after: Scope, last: PeriodEstimate) -> PeriodEstimate:
    """The last week or month may not be over: its estimate then covers fewer days, said in
    its notes (a person would read it as the whole period)."""
    logged = con.execute(
        *Sql.compose(
            'SELECT max("timestamp") FROM {log} WHERE {scope}', log=quote_ident(project.log_table), scope=after.to_sql()
        )
    ).fetchall()[0][0]
    if logged is None:
        return last
    day = pd.Timestamp(logged).date()
    if day + timedelta(days=1) >= last.period.end:
        return last
    days, length = (day - last.period.start).days + 1, (last.period.end - last.period.start).days
    note = f"partial: the log ends on {day.isoformat()}, {days} of its {length} days"
    return replace(last, notes=(note, *last.notes))


def period_days(values) -> np.ndarray:
    """A query's period column as days (``datetime64[D]``)."""
    values = np.asarray(values)
    if values.dtype == np.dtype("datetime64[D]"):
        return values
    return pd.to_datetime(values).to_numpy().astype("datetime64[D]")


def period_runs(starts: np.ndarray) -> dict:
    """Each period's entries, given their period's first days in order: a slice of them."""
    if len(starts) == 0:
        return {}
    edges = np.r_[0, np.flatnonzero(starts[1:] != starts[:-1]) + 1, len(starts)]
    return {starts[a].astype(object): slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])}


class ClassifierPeriods:
    """A classifier's periods: scores, predictions and labels, estimated from calibrated
    probabilities (:mod:`.combine`). Rows alike are counted in SQL (:func:`counted_rows_sql`)."""

    def read(self, con, project: Project, fit: Fit, where: Sql, period_sql: str, log: Sql | None = None):
        data = con.execute(*counted_rows_sql(project, where, period_sql, log=log)).fetchnumpy()
        return period_days(data["period"]), self.interpret(project, fit, data)

    def interpret(self, project: Project, fit: Fit, data: dict):
        """Counted rows (:func:`counted_rows_sql`'s columns) as the task's reading of them."""
        return READINGS[project.task].read(data, fit.classes, presorted=True)

    def scores(self, read) -> tuple[np.ndarray, np.ndarray | None]:
        return read.rows.s, read.rows.weights

    def subset(self, read, at: slice):
        return replace(read, rows=read.rows.subset(at), outcomes=read.outcomes[at], known=read.known.subset(at))

    def counts(self, read) -> tuple[int, int]:
        """The period's scored rows, and how many of them are labeled."""
        return int(read.rows.count), int(read.rows.weigh(read.outcomes >= 0).sum())

    def estimate(self, fit: Fit, read, names, full: bool = True) -> dict[str, MetricEstimate]:
        return estimate_period(fit, read.rows, read.outcomes, names, read.known, full)


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


def _shift_notes(fit: Fit, scores: np.ndarray, weights: np.ndarray | None = None) -> tuple[str, ...]:
    """What is unusual about a period's scores (``weights``: the rows each score stands for)."""
    notes = []
    q = fit.score_quantiles
    w = np.ones(len(scores)) if weights is None else weights
    total = float(w.sum())
    beyond = float(w[(scores < q[0]) | (scores > q[-1])].sum())
    outside = beyond / total
    if outside >= OUTSIDE_SHARE and beyond >= MIN_OUTSIDE:
        notes.append(f"{outside:.0%} of the {fit.compared} lie outside the reference's range")
    order = np.argsort(scores, kind="stable")
    below = np.r_[0.0, np.cumsum(w[order])]
    cdf = below[np.searchsorted(scores[order], q, side="right")] / total
    distance = float(np.max(np.abs(cdf - np.linspace(0.0, 1.0, len(q)))))
    # Far, and beyond what a period of this size shows by chance (the 1% critical value of
    # the Kolmogorov-Smirnov distance against a known distribution: a few rows always look moved).
    if distance >= max(LARGE_SHIFT, 1.63 / np.sqrt(total)):
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

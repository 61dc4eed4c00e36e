"""Estimates for many slices of one reference at once, as a monitor run asks them.

Each slice's fit and figures are those of :func:`.fit.fit_slice` and
:func:`.timeline.estimate_timeline` for it alone (tested equal), but the work is shared:

* every slice's rows come from one scan of the log, counted alike in the columns the
  slices read (:class:`analysis.slices.cells.SliceCells`); a slice's entries are its
  combinations' entries merged (:func:`_merged`), in Python;
* the whole reference is read and calibrated once (:func:`.fit.whole_calibrations`); a
  slice's reference rows are its part of the whole reference's entries, with the folds
  the rows would have drawn read alone.

Classifiers only: a regression model's fit is a model of its errors, fitted per slice.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from analysis.errors import ConfigError
from analysis.estimation.calibration import FOLDS, draw_folds
from analysis.estimation.combine import estimate_by_period
from analysis.estimation.expected import BY_PERIOD, Periods
from analysis.estimation.figures import MetricEstimate
from analysis.estimation.fit import (
    Fit,
    ReferenceRows,
    check_estimable,
    check_outcomes,
    fit_rows,
    labeled_reference,
    slices_predicted,
    whole_calibrations,
    why_nothing_to_calibrate,
)
from analysis.estimation.outcomes import READINGS
from analysis.estimation.reference import ReferenceWindow
from analysis.estimation.timeline import MIN_PERIOD_ROWS, PERIODS, period_days, period_runs
from analysis.slices import Slice
from analysis.slices.cells import SliceCells
from analysis.store.project import Project
from analysis.store.sql import Sql, quote_ident

TASKS = ("binary", "multiclass")  # the tasks fitted and estimated many slices at once
KEYS = ("score", "yhat", "y")


def _counted(
    con, project: Project, where: Sql, slices: list[Slice], period: str | None = None, log: Sql | None = None
) -> tuple[dict, list[np.ndarray]]:
    """The rows ``where`` selects counted alike in :func:`.fit.counted_rows_sql`'s keys
    (with ``period``) and in every column the slices read: every entry, and each slice's
    places among them (:class:`analysis.slices.cells.SliceCells`). One scan (none for no
    slice)."""
    if not slices:
        return {}, []
    cells = SliceCells(
        project,
        slices,
        log if log is not None else quote_ident(project.log_table),
        Sql.compose("{where} AND score IS NOT NULL AND prediction IS NOT NULL", where=where),
    )
    keys = Sql(f"{period} AS period, " * (period is not None) + "score, " + READINGS[project.task].select)
    names = ["period"] * (period is not None) + list(KEYS)
    data = cells.read(con, keys, names, [("w", "count(*)")])
    if period is not None and np.asarray(data["period"]).dtype.kind == "M":
        data["period"] = period_days(data["period"])  # once for every slice
    return data, cells.positions(con, data["sb_combo"])


def _merged(data: dict, at: np.ndarray) -> dict:
    """The entries at ``at`` with equal keys made one (their rows added up), in the keys'
    order: :func:`.fit.counted_rows_sql`'s entries of those rows, and each one's ``key``
    (its place among all the keys)."""
    rank = np.asarray(data["sb_key"], np.int64)[at]
    order = np.argsort(rank, kind="stable")  # merges the combinations' runs, each in order
    at, rank = at[order], rank[order]
    first = np.ones(len(rank), bool)
    first[1:] = rank[1:] != rank[:-1]
    weights = np.asarray(data["w"], np.int64)[at]
    added = np.add.reduceat(weights, np.flatnonzero(first)) if len(at) else weights
    kept = at[first]
    return {k: data[k][kept] for k in data if not k.startswith("sb_") and k != "w"} | {"w": added, "key": rank[first]}


def slice_entries(
    con,
    project: Project,
    where: Sql,
    slices: list[Slice],
    period_sql: str | None = None,
    log: Sql | None = None,
    merged: bool = True,
) -> Iterator[dict]:
    """Each slice's rows ``where`` selects, counted alike (by period with ``period_sql``):
    per slice, in order, :func:`.fit.counted_rows_sql`'s columns. One scan for them all.
    Not ``merged``: rows alike may stay in two entries or more (from different
    combinations of the slices' columns), side by side: every estimate weighs them the same,
    and a back-fill is spared adding them up."""
    data, places = _counted(con, project, where, slices, period_sql, log)
    for at in places:
        if merged:
            entries = _merged(data, at)
            del entries["key"]
            yield entries
        else:
            at = at[np.argsort(np.asarray(data["sb_key"], np.int64)[at], kind="stable")]
            yield {k: v[at] for k, v in data.items() if not k.startswith("sb_")}


class _WholeReference:
    """The whole reference's labeled entries (``data``: :func:`_merged` of them all),
    calibrated once; each row's fold is its place in the whole order
    (:func:`.calibration.fold_counts`)."""

    def __init__(self, project: Project, reference: ReferenceWindow, data: dict) -> None:
        self.project, self.reference, self.data = project, reference, data
        read = READINGS[project.task].read(data, presorted=True)
        check_outcomes(project, reference, read.outcomes)
        self.classes = read.classes
        self.weights = np.asarray(data["w"], np.int64)
        self.ends = np.cumsum(self.weights)
        # Rows of each fold before each place in the whole order (places 0 … rows).
        drawn = np.eye(FOLDS, dtype=np.int32)[draw_folds(int(self.ends[-1]))]
        self.before = np.vstack([np.zeros((1, FOLDS), np.int64), np.cumsum(drawn, axis=0, dtype=np.int64)])
        starts = self.ends - self.weights
        folds = (self.before[self.ends] - self.before[starts]).astype(float)
        everything = np.ones(len(self.weights), bool)
        self.calibrations = whole_calibrations(
            ReferenceRows(read.rows, read.outcomes, everything, folds, read.known, project.task, read.classes)
        )

    def split(self, inside: dict) -> tuple[ReferenceRows, bool]:
        """A slice's reference rows (``inside``: its :func:`_merged` entries), and whether
        they are the whole reference. Within an entry of the whole, the slice's rows are
        taken as its last (the order :func:`counted_rows_sql` with ``slice_`` reads them
        in: outside, then inside), so each has the fold it draws there."""
        of, parts = np.asarray(inside["key"], np.int64), np.asarray(inside["w"], np.int64)
        ends = self.ends[of]
        folds = (self.before[ends] - self.before[ends - parts]).astype(float)
        data = {k: self.data[k][of] for k in KEYS} | {"w": parts}
        read = READINGS[self.project.task].read(data, self.classes, presorted=True)
        everything = len(of) == len(self.weights) and bool(np.all(parts == self.weights[of]))
        rows = ReferenceRows(
            read.rows, read.outcomes, np.ones(len(of), bool), folds, read.known, self.project.task, read.classes
        )
        return rows, everything


def fit_slices(con, project: Project, reference: ReferenceWindow, slices: list[Slice]) -> list[Fit | ConfigError]:
    """:func:`.fit.fit_slice` of each slice (or why it cannot be fitted), the whole
    reference read once and calibrated once (when a slice has rows to fit). A reference no
    slice can be fitted on raises."""
    check_estimable(con, project, reference)
    data, places = _counted(con, project, labeled_reference(reference), slices)
    whole = None
    out: list[Fit | ConfigError | None] = []
    for slice_, at in zip(slices, places):
        if len(at) == 0:
            out.append(None)  # said why below, for all such slices at once
            continue
        whole = whole or _WholeReference(project, reference, _merged(data, np.arange(len(data["w"]))))
        rows, everything = whole.split(_merged(data, at))
        out.append(fit_rows(reference, slice_, rows, whole=whole.calibrations, everything=everything))
    empty = [i for i, fit in enumerate(out) if fit is None]
    predicted = slices_predicted(con, project, reference, [slices[i] for i in empty])
    for i, found in zip(empty, predicted):
        out[i] = why_nothing_to_calibrate(reference, slices[i], found)
    return out


def estimate_entries(
    project: Project, fit: Fit, data: dict, names: list[str], least_rows: int = 0, full: bool = True
) -> tuple[int, dict[str, MetricEstimate] | None]:
    """One period's estimate from its counted rows (:func:`slice_entries`' columns): its
    scored rows, and each metric's figures (None below ``least_rows`` rows, or none);
    not ``full``: the figures a monitor reads only (:func:`.combine.estimate_period`)."""
    periods = PERIODS[project.task]
    read = periods.interpret(project, fit, data)
    counted, _ = periods.counts(read)
    if counted == 0 or counted < least_rows:
        return counted, None
    return counted, periods.estimate(fit, read, names, full)


def estimate_days(
    project: Project, fit: Fit, data: dict, names: list[str], least_rows: int = 0, days: bool = True
) -> dict:
    """Each day of a slice's entries (:func:`slice_entries` by day; not ``days``: by the
    period column's values as they are), estimated as :func:`estimate_entries` (not
    ``full``) estimates it alone: ``{day: (rows, figures or None)}``. A binary classifier's
    metrics that can be (:data:`.expected.BY_PERIOD`) are estimated for every day at once;
    the others day by day."""
    at_once = [n for n in names if n in BY_PERIOD] if project.task == "binary" else []
    rest = [n for n in names if n not in at_once]
    out = {
        day: estimate_entries(project, fit, entries, rest, least_rows, full=False)
        for day, entries in (by_period(data, days).items() if rest else ())
    }
    periods_of = period_days(data["period"]) if days else np.asarray(data["period"])
    if not at_once or len(periods_of) == 0:
        return out
    new = np.ones(len(periods_of), bool)
    new[1:] = periods_of[1:] != periods_of[:-1]
    periods = Periods(np.cumsum(new) - 1)
    read = READINGS[project.task].read({k: v for k, v in data.items() if k != "period"})
    figures = estimate_by_period(fit, read.rows, read.outcomes, at_once, periods)
    rows = periods.sums(read.rows.w)
    for i, day in enumerate(periods_of[new].astype(object)):
        counted = int(rows[i])
        estimated = None if counted == 0 or counted < least_rows else figures[i]
        others = out.get(day, (counted, {}))[1]
        out[day] = (counted, None if estimated is None else {**estimated, **others})
    return out


def by_period(data: dict, days: bool = True) -> dict:
    """A slice's entries (:func:`slice_entries` with a period) split by period: by day
    (``days``), or by the period column's values as they are."""
    periods = period_days(data["period"]) if days else np.asarray(data["period"])
    return {p: {k: v[at] for k, v in data.items() if k != "period"} for p, at in period_runs(periods).items()}


__all__ = ["estimate_days", "MIN_PERIOD_ROWS", "TASKS", "by_period", "estimate_entries", "fit_slices", "slice_entries"]

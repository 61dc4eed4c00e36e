"""Estimates for many slices of one reference at once, as a monitor run asks them.

Each slice's fit and figures are those of :func:`.fit.fit_slice` and
:func:`.timeline.estimate_timeline` for it alone (tested equal), but the work is shared:

* the rows of up to ``BATCH`` slices come from one scan of the log, each entry numbered by
  its slice (:func:`slices_counted_sql`);
* the whole reference is read and calibrated once (:func:`.fit.whole_calibrations`); a
  slice's reference rows are the whole reference's entries split into the rows outside
  and inside it, with the folds the rows would have drawn read alone.

Classifiers only: a regression model's fit is a model of its errors, fitted per slice.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.estimation.calibration import FOLDS, draw_folds
from analysis.estimation.figures import MetricEstimate
from analysis.estimation.fit import (
    Fit,
    ReferenceRows,
    check_estimable,
    check_outcomes,
    counted_rows_sql,
    fit_rows,
    labeled_reference,
    slices_predicted,
    whole_calibrations,
    why_nothing_to_calibrate,
)
from analysis.estimation.outcomes import READINGS
from analysis.estimation.reference import ReferenceWindow
from analysis.estimation.timeline import MIN_PERIOD_ROWS, PERIODS, period_days, period_runs
from analysis.slices import Slice, compile_slice
from analysis.store.project import Project
from analysis.store.sql import Sql, quote_ident

BATCH = 200  # slices one scan of the log answers
TASKS = ("binary", "multiclass")  # the tasks fitted and estimated many slices at once
KEYS = ("score", "yhat", "y")


def slices_counted_sql(
    project: Project, where: Sql, slices: list[Slice], period: str | None = None, log: Sql | None = None
) -> Sql:
    """:func:`.fit.counted_rows_sql` for many slices at once: each entry also has the number
    of its slice in ``slices`` (``slice_no``, first in the order); a row counts in every
    slice it is in.

    The rows are first counted alike in score, prediction, label, period and every column
    the slices read (``sb_cells``); each distinct combination of those columns is tested
    against every slice once (``sb_members``: the numbers of the slices it is in), and the
    cells are joined to their slices. A condition is tested per combination (a few
    thousand for categories), not per row."""
    columns = list(dict.fromkeys(c for s in slices for c in s.columns()))
    cells = [f"sb_c{i}" for i in range(len(columns))]
    numbers = [
        Sql.compose("CASE WHEN {s} THEN {i} END", s=compile_slice(s, project), i=Sql("CAST(? AS INTEGER)", [i]))
        for i, s in enumerate(slices)
    ]
    return Sql.compose(
        "WITH sb_cells AS (SELECT {period}score, yhat, y{cells}, count(*) AS w FROM ("
        "SELECT {period_of}score, {outcomes}{named} FROM {log} "
        "WHERE {where} AND score IS NOT NULL AND prediction IS NOT NULL) AS scored GROUP BY ALL), "
        "sb_members AS (SELECT {cells_only}UNNEST(list_filter(list_value({numbers}), lambda n: n IS NOT NULL)) "
        "AS slice_no FROM (SELECT {cells_only}{originals}1 AS sb_one FROM (SELECT DISTINCT {cells_only}1 AS sb_one "
        "FROM sb_cells) AS sb_distinct) AS sb_combinations) "
        "SELECT slice_no, {period}score, yhat, y, sum(w) AS w FROM sb_cells JOIN sb_members ON {same} "
        "GROUP BY ALL ORDER BY slice_no, {period}score, yhat, y",
        period="period, " if period is not None else "",
        period_of=f"{period} AS period, " if period is not None else "",
        outcomes=READINGS[project.task].select,
        named="".join(f", {quote_ident(c)} AS {a}" for c, a in zip(columns, cells)),
        cells="".join(f", {a}" for a in cells),
        cells_only="".join(f"{a}, " for a in cells),
        originals="".join(f"{a} AS {quote_ident(c)}, " for c, a in zip(columns, cells)),
        numbers=Sql.join(", ", numbers),
        same=" AND ".join([f"sb_cells.{a} IS NOT DISTINCT FROM sb_members.{a}" for a in cells] or ["TRUE"]),
        log=log if log is not None else quote_ident(project.log_table),
        where=where,
    )


def slice_entries(
    con, project: Project, where: Sql, slices: list[Slice], period_sql: str | None = None, log: Sql | None = None
) -> Iterator[dict]:
    """Each slice's rows ``where`` selects, counted alike (by period with ``period_sql``):
    per slice, in order, :func:`.fit.counted_rows_sql`'s columns. One scan per ``BATCH`` slices."""
    for start in range(0, len(slices), BATCH):
        chunk = slices[start : start + BATCH]
        data = con.execute(*slices_counted_sql(project, where, chunk, period_sql, log)).fetchnumpy()
        edges = np.searchsorted(np.asarray(data["slice_no"]), np.arange(len(chunk) + 1))
        for a, b in zip(edges[:-1], edges[1:]):
            yield {k: v[a:b] for k, v in data.items() if k != "slice_no"}


class _WholeReference:
    """The whole reference's labeled entries, read and calibrated once; each row's fold is
    its place in the whole order (:func:`.calibration.fold_counts`)."""

    def __init__(self, con, project: Project, reference: ReferenceWindow) -> None:
        self.project, self.reference = project, reference
        self.data = con.execute(*counted_rows_sql(project, labeled_reference(reference))).fetchnumpy()
        read = READINGS[project.task].read(self.data, presorted=True)
        check_outcomes(project, reference, read.outcomes)
        self.classes = read.classes
        self.weights = np.asarray(self.data["w"], np.int64)
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
        self.index = pd.MultiIndex.from_arrays([self.data[k] for k in KEYS])

    def split(self, inside: dict) -> ReferenceRows:
        """A slice's reference rows: each whole entry split into its rows outside the slice,
        then inside (the order :func:`counted_rows_sql` with ``slice_`` reads them in)."""
        entry = self.index.get_indexer(pd.MultiIndex.from_arrays([inside[k] for k in KEYS]))
        if (entry < 0).any():
            raise ValueError("a slice's reference rows are not among the whole reference's")
        rows_in = np.zeros(len(self.weights), np.int64)
        rows_in[entry] = np.asarray(inside["w"], np.int64)
        parts = np.column_stack([self.weights - rows_in, rows_in]).ravel()  # outside, inside; entry by entry
        ends = np.column_stack([self.ends - rows_in, self.ends]).ravel()
        keep = parts > 0
        parts, ends = parts[keep], ends[keep]
        of = np.repeat(np.arange(len(self.weights)), 2)[keep]
        in_slice = np.tile([False, True], len(self.weights))[keep]
        data = {k: self.data[k][of] for k in KEYS} | {"w": parts}
        read = READINGS[self.project.task].read(data, self.classes, presorted=True)
        folds = (self.before[ends] - self.before[ends - parts]).astype(float)
        return ReferenceRows(read.rows, read.outcomes, in_slice, folds, read.known, self.project.task, read.classes)


def fit_slices(con, project: Project, reference: ReferenceWindow, slices: list[Slice]) -> list[Fit | ConfigError]:
    """:func:`.fit.fit_slice` of each slice (or why it cannot be fitted), the whole
    reference read and calibrated once (when a slice has rows to fit). A reference no slice
    can be fitted on raises."""
    check_estimable(con, project, reference)
    whole = None
    out: list[Fit | ConfigError | None] = []
    for slice_, inside in zip(slices, slice_entries(con, project, labeled_reference(reference), slices)):
        if len(inside["w"]) == 0:
            out.append(None)  # said why below, for all such slices at once
            continue
        whole = whole or _WholeReference(con, project, reference)
        out.append(fit_rows(reference, slice_, whole.split(inside), whole=whole.calibrations))
    empty = [i for i, fit in enumerate(out) if fit is None]
    predicted = slices_predicted(con, project, reference, [slices[i] for i in empty])
    for i, found in zip(empty, predicted):
        out[i] = why_nothing_to_calibrate(reference, slices[i], found)
    return out


def estimate_entries(
    project: Project, fit: Fit, data: dict, names: list[str], least_rows: int = 0
) -> tuple[int, dict[str, MetricEstimate] | None]:
    """One period's estimate from its counted rows (:func:`slice_entries`' columns): its
    scored rows, and each metric's figures (None below ``least_rows`` rows, or none)."""
    periods = PERIODS[project.task]
    read = periods.interpret(project, fit, data)
    counted, _ = periods.counts(read)
    if counted == 0 or counted < least_rows:
        return counted, None
    return counted, periods.estimate(fit, read, names)


def by_period(data: dict, days: bool = True) -> dict:
    """A slice's entries (:func:`slice_entries` with a period) split by period: by day
    (``days``), or by the period column's values as they are."""
    periods = period_days(data["period"]) if days else np.asarray(data["period"])
    return {p: {k: v[at] for k, v in data.items() if k != "period"} for p, at in period_runs(periods).items()}


__all__ = ["BATCH", "MIN_PERIOD_ROWS", "TASKS", "by_period", "estimate_entries", "fit_slices", "slice_entries"]

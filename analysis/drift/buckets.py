"""The rows drift compares, each in its bucket: the slice's rows of one version and stage
in the reference window, and in each period that starts after the window ends.

A row's bucket is a date: the first day of its period, or, for the reference window's
rows, the window's first day (no period starts that early, so the two never mix). Rows
after the window but before the first whole period (the rest of the window's last week
or month) are in neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from analysis.estimation.periods import Period, check_granularity, period_end, period_start, period_start_sql
from analysis.estimation.reference import ReferenceWindow
from analysis.slices import Slice, compile_slice
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, quote_ident


@dataclass(frozen=True)
class Buckets:
    """Where the rows of one drift call come from and how they are bucketed."""

    project: Project
    reference: ReferenceWindow
    slice_: Slice
    by: str

    @property
    def reference_key(self) -> date:
        """The bucket of the reference window's rows."""
        return self.reference.start

    @property
    def first_period(self) -> date:
        """The first day of the first period that starts after the reference window."""
        return period_end(period_start(self.reference.end, self.by), self.by)

    def base_sql(self, columns: list[str]) -> Sql:
        """``SELECT bucket, c0, c1, ...``: what is measured of each feature (``columns``: SQL
        over the log's columns, from the schema) renamed by position (so a feature called
        ``bucket`` is just ``c3``), over the slice's rows in the buckets."""
        check_granularity(self.by)
        reference_end = datetime.combine(self.reference.end + timedelta(days=1), time())
        renamed = ", ".join(f"{expression} AS c{i}" for i, expression in enumerate(columns))
        first_period = datetime.combine(self.first_period, time())
        # The days between the window and the first whole period are left out; the filter
        # is only written when there are such days (evaluated on every row, it is not free).
        gap = (
            Sql('AND ("timestamp" < ? OR "timestamp" >= ?)', [reference_end, first_period])
            if first_period > reference_end
            else Sql("")
        )
        return Sql.compose(
            'SELECT CASE WHEN "timestamp" < {reference_end} THEN {reference_key} ELSE {period} END AS bucket, '
            "{renamed} FROM {log} WHERE {scope} AND ({slice}) {gap}",
            reference_end=Sql("?", [reference_end]),
            reference_key=Sql("?", [self.reference_key]),
            period=period_start_sql(self.by),
            renamed=renamed,
            log=quote_ident(self.project.log_table),
            scope=Scope.of(self.reference.version, self.reference.stage, self.reference.start).to_sql(),
            slice=compile_slice(self.slice_, self.project),
            gap=gap,
        )

    def periods(self, con) -> list[Period]:
        """Every period from the first after the window to the last one the version logged
        in this stage (whether or not the slice has rows in it)."""
        last = con.execute(
            *Sql.compose(
                'SELECT max("timestamp") FROM {log} WHERE {scope}',
                log=quote_ident(self.project.log_table),
                scope=Scope.of(self.reference.version, self.reference.stage, self.first_period).to_sql(),
            )
        ).fetchall()[0][0]
        if last is None:
            return []
        out, start = [], self.first_period
        while start <= last.date():
            out.append(Period.starting(start, self.by))
            start = period_end(start, self.by)
        return out

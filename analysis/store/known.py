"""The log as it was known at a moment: only the rows logged before it, and of their labels
(and outcomes) only those received before it.

A label's time is its ``label_timestamp``; a label stored without one counts as known when
its row was logged. Replaying the past with this source lets a monitor see each day exactly
as a person would have seen it that evening, late labels and all.
"""

from __future__ import annotations

from datetime import datetime

from analysis.store.project import Project
from analysis.store.schema import CANONICAL_COLUMNS
from analysis.store.sql import Sql, quote_ident

LATE_COLUMNS = ("label", "label_timestamp")  # and every outcome: they arrive with the label


def log_known_at(project: Project, at: datetime) -> Sql:
    """A subquery standing for ``project``'s log as known at ``at`` (usable wherever the
    log table's name is: ``FROM {log}``)."""
    return _known(project, Sql("?", [at]), Sql('WHERE "timestamp" < ?', [at]))


def log_known_each_evening(project: Project) -> Sql:
    """The log with each row as known at the end of the day it was logged on: its label
    (and outcomes) only if received by then. A day's rows read from it are the day as
    :func:`log_known_at` the end of that day shows them, for many days in one scan."""
    return _known(project, Sql("date_trunc('day', \"timestamp\") + INTERVAL 1 DAY"), Sql(""))


def _known(project: Project, at: Sql, rows: Sql) -> Sql:
    late = set(LATE_COLUMNS) | {c.name for c in project.outcomes}
    arrived = Sql.compose("(label_timestamp IS NULL OR label_timestamp < {at})", at=at)
    columns = [
        Sql.compose("CASE WHEN {arrived} THEN {c} END AS {c}", arrived=arrived, c=quote_ident(name))
        if name in late
        else Sql(quote_ident(name))
        for name in (*CANONICAL_COLUMNS, *(c.name for c in project.columns))
    ]
    return Sql.compose(
        "(SELECT {columns} FROM {log} {rows}) AS sb_known",
        columns=Sql.join(", ", columns),
        log=quote_ident(project.log_table),
        rows=rows,
    )

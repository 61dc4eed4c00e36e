"""Periods of a timeline: days, ISO weeks or months, each a half-open range of days.

A period is named by its start: ``2016-01-05`` (a day), ``2016-W01`` (an ISO week,
which starts on a Monday) or ``2016-01`` (a month). The SQL that puts a row in its
period is portable (``date_trunc`` with the unit first reads the same in Spark SQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from analysis.errors import ConfigError

GRANULARITIES = ("day", "week", "month")


def check_granularity(by: str) -> str:
    if by not in GRANULARITIES:
        raise ConfigError(f"Periods are by {', '.join(GRANULARITIES)}, not {by!r}.")
    return by


def period_start_sql(by: str, column: str = '"timestamp"') -> str:
    """SQL for the first day of the period a row's time falls in (a DATE)."""
    check_granularity(by)
    if by == "day":
        return f"CAST({column} AS DATE)"
    return f"CAST(date_trunc('{by}', {column}) AS DATE)"


def period_start(day: date, by: str) -> date:
    """The first day of the period ``day`` falls in."""
    check_granularity(by)
    if by == "week":
        return day - timedelta(days=day.weekday())
    if by == "month":
        return day.replace(day=1)
    return day


def period_end(start: date, by: str) -> date:
    """The first day after the period that starts on ``start``."""
    if by == "week":
        return start + timedelta(days=7)
    if by == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=1)


def period_label(start: date, by: str) -> str:
    if by == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if by == "month":
        return f"{start.year}-{start.month:02d}"
    return start.isoformat()


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in days, and its name."""

    label: str
    start: date
    end: date

    @classmethod
    def starting(cls, start: date, by: str) -> "Period":
        return cls(period_label(start, by), start, period_end(start, by))

    def to_dict(self) -> dict:
        return {"period": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}


def first_period_after(day: date, by: str) -> date:
    """The start of the first whole period after ``day`` (periods that began on or before
    it are not listed: their rows would be cut in two)."""
    following = day + timedelta(days=1)
    start = period_start(following, by)
    return start if start == following else period_end(start, by)

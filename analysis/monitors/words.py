"""Alerts in words a person reads: what changed, where, since when, and how rarely a change
that size would be a false alarm at the project's budget."""

from __future__ import annotations

from datetime import date

from analysis.numbers import format_count, format_number, format_p, format_value, metric_name
from analysis.store.project import Project

DAYS_PER_YEAR = 365.0


def _figure(watch, value) -> str:
    kind, metric = watch.monitor.kind, watch.monitor.metric
    if kind == "volume":
        return format_number(value, 0) + " rows a day"
    if kind == "drift":
        return format_number(value)
    return format_value(metric, value)


def _what(watch) -> str:
    kind, metric = watch.monitor.kind, watch.monitor.metric
    if kind == "volume":
        return "Rows logged"
    if kind == "coverage":
        lag = watch.reference["lag_days"]
        return "The share labeled " + ("the same day" if lag == 0 else f"within {lag} days")
    if kind == "drift":
        return f"Drift of {metric}"
    words = metric_name(metric)
    prefix = {"estimated": "Estimated ", "combined": ""}.get(kind, "Labeled ")
    return prefix + words


def evidence_text(evidence: float) -> str:
    """An e-value for a person: ``3,412``, or ``over a million`` (its digits say no more)."""
    return "over a million" if evidence >= 1e6 else format_count(round(evidence))


def rarity(level: float) -> str:
    """How rarely one monitor raises a false alarm at ``level`` (daily periods)."""
    years = level / DAYS_PER_YEAR
    if years >= 2:
        return f"less than once in {format_count(round(years))} years"
    if years >= 1:
        return "less than once a year"
    return f"less than once in {format_count(round(level))} days"


def alert_message(project: Project, watch, value, reference, since: date, period: date, evidence, level) -> str:
    monitor = watch.monitor
    where = monitor.slice_.readable() or "every row"
    scope = f"of {watch.version} ({watch.stage}) on {where}"
    if monitor.kind == "drift":
        p = format_p(1 / evidence)
        change = f"{_what(watch)} {scope} reached {_figure(watch, value)} on {period} (p = {p})"
    else:
        verb = "fell" if monitor.direction == "lower" else "rose"
        days = (period - since).days + 1
        span = f"on {period}" if days == 1 else f"over the {days} days from {since} to {period}"
        change = f"{_what(watch)} {scope} {verb} from {_figure(watch, reference)} to {_figure(watch, value)} {span}"
    return (
        f"{change}. Evidence {evidence_text(evidence)} against an alert level of {format_count(round(level))}: "
        f"at this budget a change this size would be a false alarm {rarity(level)} of watching this monitor."
    )


def recovery_note(project: Project, watch, figure, reference, days: int) -> str:
    return (
        f"recovered: {_what(watch).lower()} was {_figure(watch, figure)} over the last {days} days "
        f"(reference {_figure(watch, reference)})"
    )

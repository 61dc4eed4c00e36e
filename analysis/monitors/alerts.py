"""Alerts: one per monitor episode, their life cycle and their history.

An alert is **new** when a monitor's evidence crosses its level; a person **acknowledges**
it, **snoozes** it until a day (it comes back as new after that day if the figure has not
recovered), or **resolves** it; Sliceboard resolves it when the figure recovers. While a
monitor's alert is open, its later crossings update that alert (the same episode) instead
of raising another. Every change is kept in ``sb_alert_events``.

The feed is ordered by impact (rows affected × size of the change), open alerts first.
Alerts that began the same day on the same figure are shown as one change
(:func:`changes`), led by the slice where the change is concentrated: one outage is one
entry, not one per slice it touches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import date, datetime

import duckdb

from analysis.errors import ConfigError
from analysis.store.clock import utc_now

STATES = ("new", "acknowledged", "snoozed", "resolved")
OPEN_STATES = ("new", "acknowledged", "snoozed")
SLICEBOARD = "sliceboard"  # who changed an alert's state when no person did
NEARLY = 0.8  # a change's lead moved at least this share as far as its sharpest alert


@dataclass(frozen=True)
class Alert:
    alert_id: int
    monitor: str
    slice: str
    metric: str
    kind: str
    version: str
    stage: str
    period: date  # the day the evidence crossed the line
    since: date  # the first day of the change, as the evidence places it
    last_period: date  # the latest day the evidence crossed again
    value: float
    reference: float
    evidence: float  # the e-value at the crossing
    impact: float
    rows: int
    state: str
    snoozed_until: date | None
    message: str
    opened_at: datetime
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def to_dict(self) -> dict:
        return {
            "id": self.alert_id,
            "monitor": self.monitor,
            "slice": self.slice,
            "metric": self.metric,
            "kind": self.kind,
            "version": self.version,
            "stage": self.stage,
            "period": self.period.isoformat(),
            "since": self.since.isoformat(),
            "last_period": self.last_period.isoformat(),
            "value": _finite(self.value),
            "reference": _finite(self.reference),
            "evidence": _finite(self.evidence),
            "state": self.state,
            "snoozed_until": self.snoozed_until.isoformat() if self.snoozed_until else None,
            "impact": _finite(self.impact),
            "rows": self.rows,
            "message": self.message,
        }


COLUMNS = tuple(f.name for f in fields(Alert))


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _read(rows) -> list[Alert]:
    return [Alert(*row) for row in rows]


def _select(where: str) -> str:
    return f"SELECT {', '.join(COLUMNS)} FROM sb_alerts WHERE project_id = ? AND {where}"


def list_alerts(con: duckdb.DuckDBPyConnection, project, states=None) -> list[Alert]:
    """The project's alerts (``states``: only those), open ones first, then by impact."""
    states = tuple(states or STATES)
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise ConfigError(f"An alert's state is one of {', '.join(STATES)}, not {', '.join(map(repr, unknown))}.")
    query = (
        _select(f"state IN ({', '.join('?' * len(states))})")
        + " ORDER BY CASE WHEN state = 'resolved' THEN 1 ELSE 0 END, coalesce(impact, 0) DESC, alert_id DESC"
    )
    return _read(con.execute(query, [project.project_id, *states]).fetchall())


@dataclass(frozen=True)
class Change:
    """Open alerts that began on the same day, on the same figure of the same version: most
    likely one change, seen in every slice that holds its rows (an outage on the mobile app
    also lowers the figure of each region, by less). The lead is where the change is
    concentrated: of the alerts whose figure moved nearly as far as the sharpest's (relative
    to its reference, at least ``NEARLY`` as far), the one of most rows: among the small
    slices inside it one moves a little further by chance. The others follow, sharpest
    first; the broad slices that merely contain its rows come last."""

    alerts: tuple[Alert, ...]

    @property
    def lead(self) -> Alert:
        return self.alerts[0]

    @property
    def others(self) -> tuple[Alert, ...]:
        return self.alerts[1:]


def sharpness(alert: Alert) -> float:
    """How far an alert's figure moved from its reference, relative to the reference."""
    moved = abs(alert.value - alert.reference)
    if not math.isfinite(moved):
        return 0.0
    return moved / abs(alert.reference) if alert.reference else moved


def changes(alerts: list[Alert]) -> list[Change]:
    """The open alerts of ``alerts`` grouped into :class:`Change` s, in the order of their
    first alert in ``alerts`` (the feed's: the most costly change first)."""
    groups: dict[tuple, list[Alert]] = {}
    for alert in alerts:
        if alert.is_open:
            key = (alert.since, alert.metric, alert.kind, alert.version, alert.stage)
            groups.setdefault(key, []).append(alert)
    return [Change(_lead_first(g)) for g in groups.values()]


def _lead_first(alerts: list[Alert]) -> tuple[Alert, ...]:
    ordered = sorted(alerts, key=lambda a: (-sharpness(a), a.alert_id))
    sharpest = sharpness(ordered[0])
    lead = max((a for a in ordered if sharpness(a) >= NEARLY * sharpest), key=lambda a: a.rows)
    return (lead, *(a for a in ordered if a is not lead))


def get_alert(con: duckdb.DuckDBPyConnection, project, alert_id: int) -> Alert:
    rows = con.execute(_select("alert_id = ?"), [project.project_id, int(alert_id)]).fetchall()
    if not rows:
        raise ConfigError(f"{project.name} has no alert {alert_id}.")
    return _read(rows)[0]


def open_alerts(con: duckdb.DuckDBPyConnection, project) -> dict[str, Alert]:
    """Each monitor's open alert, by monitor."""
    query = _select(f"state IN ({', '.join('?' * len(OPEN_STATES))})")
    return {a.monitor: a for a in _read(con.execute(query, [project.project_id, *OPEN_STATES]).fetchall())}


def raise_alert(con: duckdb.DuckDBPyConnection, project, found: Alert) -> Alert:
    """Store ``found`` as a new alert (its id and times given here)."""
    (next_id,) = con.execute(
        "SELECT coalesce(max(alert_id), 0) + 1 FROM sb_alerts WHERE project_id = ?", [project.project_id]
    ).fetchall()[0]
    now = utc_now()
    alert = Alert(**{**found.__dict__, "alert_id": int(next_id), "state": "new", "opened_at": now, "updated_at": now})
    con.execute(
        f"INSERT INTO sb_alerts (project_id, {', '.join(COLUMNS)}) VALUES (?{', ?' * len(COLUMNS)})",
        [project.project_id, *(getattr(alert, c) for c in COLUMNS)],
    )
    _event(con, project, alert.alert_id, alert.period, "new", SLICEBOARD, alert.message)
    return alert


def update_alert(con: duckdb.DuckDBPyConnection, project, alert: Alert, found: Alert) -> Alert:
    """The same episode crossed again: the alert takes the latest figures and evidence."""
    keep = ("alert_id", "state", "snoozed_until", "opened_at", "since", "period")
    updated = Alert(**{**found.__dict__, **{k: getattr(alert, k) for k in keep}, "updated_at": utc_now()})
    changed = ("last_period", "value", "reference", "evidence", "impact", "rows", "message", "updated_at")
    con.execute(
        f"UPDATE sb_alerts SET {', '.join(f'{c} = ?' for c in changed)} WHERE project_id = ? AND alert_id = ?",
        [*(getattr(updated, c) for c in changed), project.project_id, alert.alert_id],
    )
    _event(con, project, alert.alert_id, found.last_period, alert.state, SLICEBOARD, "crossed again: " + found.message)
    return updated


def set_state(
    con: duckdb.DuckDBPyConnection,
    project,
    alert: Alert,
    state: str,
    by: str,
    note: str | None = None,
    snoozed_until: date | None = None,
    period: date | None = None,
) -> Alert:
    con.execute(
        "UPDATE sb_alerts SET state = ?, snoozed_until = ?, updated_at = ? WHERE project_id = ? AND alert_id = ?",
        [state, snoozed_until, utc_now(), project.project_id, alert.alert_id],
    )
    _event(con, project, alert.alert_id, period, state, by, note)
    return get_alert(con, project, alert.alert_id)


def acknowledge(con, project, alert_id: int, by: str, note: str | None = None) -> Alert:
    alert = _open(con, project, alert_id, "acknowledged")
    return set_state(con, project, alert, "acknowledged", by, note)


def resolve(con, project, alert_id: int, by: str, note: str | None = None) -> Alert:
    alert = _open(con, project, alert_id, "resolved")
    return set_state(con, project, alert, "resolved", by, note)


def snooze(con, project, alert_id: int, until: date, by: str, note: str | None = None) -> Alert:
    alert = _open(con, project, alert_id, "snoozed")
    if until <= alert.last_period:
        raise ConfigError(
            f"Snooze alert {alert_id} until a day after its latest evidence ({alert.last_period}), not {until}."
        )
    return set_state(con, project, alert, "snoozed", by, note, snoozed_until=until)


def acknowledge_all(con, project, alert_ids, by: str, note: str | None = None) -> list[Alert]:
    """Acknowledge the open alerts among ``alert_ids`` not acknowledged yet (one change's)."""
    waiting = [get_alert(con, project, i) for i in alert_ids]
    return [set_state(con, project, a, "acknowledged", by, note) for a in waiting if a.state in ("new", "snoozed")]


def resolve_all(con, project, alert_ids, by: str, note: str | None = None) -> list[Alert]:
    """Resolve the open alerts among ``alert_ids`` (one change's)."""
    waiting = [get_alert(con, project, i) for i in alert_ids]
    return [set_state(con, project, a, "resolved", by, note) for a in waiting if a.is_open]


def _open(con, project, alert_id: int, wanted: str) -> Alert:
    alert = get_alert(con, project, alert_id)
    if not alert.is_open:
        raise ConfigError(f"Alert {alert_id} is resolved already: it cannot be {wanted}.")
    return alert


def alert_history(con: duckdb.DuckDBPyConnection, project, alert_id: int) -> list[dict]:
    get_alert(con, project, alert_id)
    rows = con.execute(
        "SELECT happened_at, period, state, by_whom, note FROM sb_alert_events WHERE project_id = ? AND alert_id = ? "
        "ORDER BY happened_at, rowid",
        [project.project_id, int(alert_id)],
    ).fetchall()
    return [
        {"at": at.isoformat(), "period": p.isoformat() if p else None, "state": s, "by": by, "note": note}
        for at, p, s, by, note in rows
    ]


def _event(con, project, alert_id: int, period: date | None, state: str, by: str, note: str | None) -> None:
    con.execute(
        "INSERT INTO sb_alert_events VALUES (?, ?, ?, ?, ?, ?, ?)",
        [project.project_id, alert_id, utc_now(), period, state, by, note],
    )

"""Notifications: a project's webhook, told once of each new alert.

The POST body is JSON: the project, the alert (the fields ``alerts list`` prints) and a
Slack-compatible ``text``. New alerts of one change (:func:`.alerts.changes`) go in one
message: its lead as ``alert``, all of them in ``alerts``. A delivery that fails (no answer,
or an HTTP status other than 2xx) is tried again after a back-off; every attempt is
recorded in ``sb_deliveries``, and an alert never delivered is tried again by the next run,
so none is lost silently.

Sending happens outside any transaction (:func:`send`); reading what to send
(:func:`undelivered`) and recording the attempts (:func:`record`) are the database's part.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlparse

import duckdb

from analysis.errors import ConfigError
from analysis.monitors.alerts import OPEN_STATES, Alert, changes, list_alerts
from analysis.store.clock import utc_now

BACKOFF_SECONDS = (1.0, 4.0, 16.0)  # waits before the second, third and fourth attempts
TIMEOUT_SECONDS = 10.0
MAX_URL = 2000


@dataclass(frozen=True)
class Attempt:
    alert_id: int
    attempt: int
    delivered: bool
    status: int | None
    error: str | None


def set_webhook(con: duckdb.DuckDBPyConnection, project, url: str | None) -> str | None:
    """Store the project's webhook (``None`` or empty: none)."""
    if not url:
        con.execute("DELETE FROM sb_webhooks WHERE project_id = ?", [project.project_id])
        return None
    url = url.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > MAX_URL:
        raise ConfigError(f"A webhook is an http:// or https:// address, not {url[:80]!r}.")
    con.execute("INSERT OR REPLACE INTO sb_webhooks VALUES (?, ?, ?)", [project.project_id, url, utc_now()])
    return url


def get_webhook(con: duckdb.DuckDBPyConnection, project) -> str | None:
    rows = con.execute("SELECT url FROM sb_webhooks WHERE project_id = ?", [project.project_id]).fetchall()
    return rows[0][0] if rows else None


def undelivered(con: duckdb.DuckDBPyConnection, project) -> list[Alert]:
    """The open alerts raised since the webhook was set whose delivery has not succeeded
    yet (oldest first)."""
    saved = con.execute("SELECT saved_at FROM sb_webhooks WHERE project_id = ?", [project.project_id]).fetchall()
    if not saved:
        return []
    delivered = {
        a
        for (a,) in con.execute(
            "SELECT DISTINCT alert_id FROM sb_deliveries WHERE project_id = ? AND delivered", [project.project_id]
        ).fetchall()
    }
    alerts = [
        a for a in list_alerts(con, project, OPEN_STATES) if a.alert_id not in delivered and a.opened_at >= saved[0][0]
    ]
    return sorted(alerts, key=lambda a: a.alert_id)


def attempts_so_far(con: duckdb.DuckDBPyConnection, project, alert_id: int) -> int:
    return con.execute(
        "SELECT count(*) FROM sb_deliveries WHERE project_id = ? AND alert_id = ?", [project.project_id, alert_id]
    ).fetchall()[0][0]


def messages(alerts: list[Alert]) -> list[tuple[Alert, ...]]:
    """What to send: one message per change among ``alerts`` (:func:`.alerts.changes`), its
    lead first; an outage seen in a hundred slices is one message, not a hundred."""
    return [change.alerts for change in changes(alerts)]


def body(project_name: str, alerts: tuple[Alert, ...]) -> dict:
    """A message of one change: its lead (``alert``), every alert of it (``alerts``) and a
    Slack-compatible ``text``."""
    lead, others = alerts[0], alerts[1:]
    text = f"Sliceboard alert {lead.alert_id} on {project_name} ({lead.monitor}): {lead.message}"
    if others:
        shown = ", ".join(a.slice for a in others[:5]) + (", …" if len(others) > 5 else "")
        text += f" The same change in {len(others)} more slice{'s' if len(others) != 1 else ''}: {shown}."
    return {"project": project_name, "alert": lead.to_dict(), "alerts": [a.to_dict() for a in alerts], "text": text}


def send(url: str, project_name: str, alerts: tuple[Alert, ...], first_attempt: int = 1, backoff=None) -> list[Attempt]:
    """POST one change's message, trying again after each wait of ``backoff`` (default
    :data:`BACKOFF_SECONDS`) until it is delivered; each attempt is recorded for every alert
    in it."""
    backoff = BACKOFF_SECONDS if backoff is None else backoff
    data = json.dumps(body(project_name, alerts)).encode()
    attempts = []
    for i in range(len(backoff) + 1):
        if i:
            time.sleep(backoff[i - 1])  # back-off between attempts to a server that failed
        status, error = _post(url, data)
        delivered = status is not None and 200 <= status < 300
        attempts += [Attempt(a.alert_id, first_attempt + i, delivered, status, error) for a in alerts]
        if delivered:
            break
    return attempts


def _post(url: str, data: bytes) -> tuple[int | None, str | None]:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            return answer.status, None
    except urllib.error.HTTPError as e:
        return e.code, f"HTTP {e.code} {e.reason}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return None, str(getattr(e, "reason", e))[:500]


def record(con: duckdb.DuckDBPyConnection, project, attempts: list[Attempt]) -> None:
    con.executemany(
        "INSERT INTO sb_deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
        [[project.project_id, a.alert_id, a.attempt, utc_now(), a.delivered, a.status, a.error] for a in attempts],
    )

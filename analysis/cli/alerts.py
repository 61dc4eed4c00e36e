"""Alerts: ``alerts list`` (the feed, open ones first by impact), ``alerts ack``,
``alerts resolve``, ``alerts snooze --until DATE`` and ``alerts history`` of one alert."""

from __future__ import annotations

import argparse
import getpass

from analysis.cli.output import EXIT_OK, emit, open_store


def cmd_alerts(args) -> int:
    from analysis.store.project import get_project
    from analysis.store.sql import in_transaction

    action = ACTIONS[args.action]
    store = open_store(args)
    if args.action in ("list", "history"):
        with store.read() as con:
            payload, text = action(args, con, get_project(con, args.project))
    else:
        with store.write(create=False) as con:
            project = get_project(con, args.project)
            payload, text = in_transaction(con, lambda: action(args, con, project))
    emit(args, payload, text)
    return EXIT_OK


def _list(args, con, project):
    from analysis.monitors.alerts import changes, list_alerts

    alerts = list_alerts(con, project, args.state or None)
    # An open alert's change: the id of its lead (itself, alone): of the alerts that began with
    # it and moved nearly as far as the sharpest, the one of most rows.
    change = {a.alert_id: c.lead.alert_id for c in changes(alerts) for a in c.alerts}
    listed = [a.to_dict() | {"change": change.get(a.alert_id)} for a in alerts]
    text = "\n".join(_line(a) for a in alerts) if alerts else f"{project.name} has no alert"
    return listed, text


def _line(alert) -> str:
    from analysis.numbers import format_number

    snoozed = f" until {alert.snoozed_until}" if alert.state == "snoozed" else ""
    return f"{alert.alert_id} [{alert.state}{snoozed}] impact {format_number(alert.impact, 0)}: {alert.message}"


def _changed(alert) -> tuple[dict, str]:
    return alert.to_dict(), _line(alert)


def _ack(args, con, project):
    from analysis.monitors.alerts import acknowledge

    return _changed(acknowledge(con, project, _id(args), _by(args), args.note))


def _resolve(args, con, project):
    from analysis.monitors.alerts import resolve

    return _changed(resolve(con, project, _id(args), _by(args), args.note))


def _snooze(args, con, project):
    from datetime import date

    from analysis.errors import ConfigError
    from analysis.monitors.alerts import snooze

    if not args.until:
        raise ConfigError("alerts snooze needs --until DATE (YYYY-MM-DD).")
    try:
        until = date.fromisoformat(args.until)
    except ValueError:
        raise ConfigError(f"--until {args.until!r} is not a date (use YYYY-MM-DD).") from None
    return _changed(snooze(con, project, _id(args), until, _by(args), args.note))


def _history(args, con, project):
    from analysis.monitors.alerts import alert_history

    events = alert_history(con, project, _id(args))
    text = "\n".join(f"{e['at']} {e['state']} by {e['by']}" + (f": {e['note']}" if e["note"] else "") for e in events)
    return events, text


def _id(args) -> int:
    from analysis.errors import ConfigError

    if args.id is None:
        raise ConfigError(f"alerts {args.action} needs --id (the alert's number, from alerts list).")
    return args.id


def _by(args) -> str:
    if args.by:
        return args.by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "someone"


ACTIONS = {"list": _list, "ack": _ack, "resolve": _resolve, "snooze": _snooze, "history": _history}


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("alerts", parents=[common], help="alerts: list, ack, resolve, snooze, history")
    p.add_argument("action", choices=tuple(ACTIONS))
    p.add_argument("--project", required=True)
    p.add_argument("--id", type=int, help="ack, resolve, snooze, history: the alert's number")
    p.add_argument("--state", action="append", help="list: only alerts in this state (repeatable)")
    p.add_argument("--until", help="snooze: the last day it stays quiet (YYYY-MM-DD)")
    p.add_argument("--by", help="ack, resolve, snooze: who (default: the user's login)")
    p.add_argument("--note", help="ack, resolve, snooze: a note kept in the alert's history")
    p.set_defaults(func=cmd_alerts)

"""Monitors: ``monitor add`` (one, or ``--auto`` for every saved slice and every value of
chosen features), ``monitor list``, ``monitor remove``, ``monitor budget`` (the project's false alerts a month),
``monitor run`` (exit 0: no new alert, 1: new alerts, 2: an error; a cron job runs it
daily) and ``monitor webhook`` (where new alerts are sent)."""

from __future__ import annotations

import argparse
import sys

from analysis.cli.output import EXIT_OK, emit, kv_table, open_store

EXIT_NEW_ALERTS = 1


def cmd_monitor(args) -> int:
    from analysis.store.project import get_project
    from analysis.store.sql import in_transaction

    if args.action == "run":
        return _run(args)
    action = ACTIONS[args.action]
    store = open_store(args)
    if args.action == "list" or (args.action == "webhook" and args.url is None and not args.clear):
        with store.read() as con:
            payload, text = action(args, con, get_project(con, args.project))
    else:
        with store.write(create=False) as con:
            project = get_project(con, args.project)
            payload, text = in_transaction(con, lambda: action(args, con, project))
    emit(args, payload, text)
    return EXIT_OK


def _add(args, con, project):
    from analysis.errors import ConfigError
    from analysis.metrics.registry import headline_metrics
    from analysis.monitors.definitions import DEFAULT_KIND, Monitor, add_monitor, auto_monitors
    from analysis.slices import Slice, parse_slice

    def asked(name: str, metric: str, slice_=None) -> Monitor:
        return Monitor(
            name,
            metric,
            args.kind or DEFAULT_KIND,
            args.version,
            args.stage,
            slice_ or Slice(),
            args.direction,
            args.tolerance if args.tolerance is not None else 0.0,
        )

    if args.auto:
        if args.name or args.where or args.slice_json:
            raise ConfigError(
                "monitor add --auto names its monitors and makes one per saved slice and feature value: "
                "--name, --where and --slice-json are for one monitor."
            )
        headline = headline_metrics(project.task)[0]
        added = auto_monitors(con, project, args.feature or (), asked("", args.metric or headline))
    else:
        if not args.name or not args.metric:
            raise ConfigError("monitor add needs --name and --metric (or --auto).")
        slice_ = Slice.from_json(args.slice_json) if args.slice_json else parse_slice(*(args.where or []))
        added = [add_monitor(con, project, asked(args.name, args.metric, slice_))]
    listed = [m.to_dict() for m in added]
    return listed, _table(listed) if listed else "no new monitor (every one asked for exists)"


def _remove(args, con, project):
    from analysis.errors import ConfigError
    from analysis.monitors.definitions import remove_monitor

    if not args.name:
        raise ConfigError("monitor remove needs --name (monitor list shows them).")
    removed = remove_monitor(con, project, args.name, args.by or "cli").to_dict()
    return removed, f"removed {_table([removed])}"


def _list(args, con, project):
    from analysis.monitors.definitions import list_monitors

    listed = [m.to_dict() for m in list_monitors(con, project)]
    return listed, _table(listed) if listed else f"{project.name} has no monitor yet (monitor add)"


def _budget(args, con, project):
    from analysis.monitors.definitions import get_budget, list_monitors, set_budget

    budget = set_budget(con, project, args.amount) if args.amount is not None else get_budget(con, project)
    monitors = len(list_monitors(con, project))
    payload = {
        "project": project.name,
        "false_alerts_per_month": budget.false_alerts_per_month,
        "monitors": monitors,
        "alert_level": budget.threshold(monitors),
    }
    return payload, kv_table({"false alerts a month, at most": budget.false_alerts_per_month, "monitors": monitors})


def _run(args) -> int:
    """Evaluate the monitors (one transaction), then tell the webhook of the new alerts and
    record each attempt (outside it: a slow server holds no lock)."""
    from datetime import date

    from analysis.errors import ConfigError
    from analysis.monitors.budget import Budget
    from analysis.monitors.notify import attempts_so_far, get_webhook, messages, record, send, undelivered
    from analysis.monitors.run import run_monitors
    from analysis.store.project import get_project
    from analysis.store.sql import in_transaction

    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        raise ConfigError(f"--as-of {args.as_of!r} is not a date (use YYYY-MM-DD).") from None
    budget = Budget(args.amount_budget) if args.amount_budget is not None else None
    store = open_store(args)
    with store.write(create=False) as con:
        project = get_project(con, args.project)
        result = in_transaction(con, lambda: run_monitors(con, project, as_of, budget))
        url, waiting = get_webhook(con, project), messages(undelivered(con, project))
        tried = [max(attempts_so_far(con, project, a.alert_id) for a in alerts) for alerts in waiting]
    attempts = [a for alerts, before in zip(waiting, tried) for a in send(url, project.name, alerts, before + 1)]
    if attempts:
        with store.write(create=False) as con:
            in_transaction(con, lambda: record(con, project, attempts))
    failed = sorted({a.alert_id for a in attempts} - {a.alert_id for a in attempts if a.delivered})
    payload = {**result.to_dict(), "undelivered": failed}
    if failed:
        print(
            f"warning: the webhook did not take alert(s) {', '.join(map(str, failed))}; the next run tries again",
            file=sys.stderr,
        )
    emit(args, payload, _run_text(result, failed))
    return EXIT_NEW_ALERTS if result.new_alerts else EXIT_OK


def _run_text(result, failed: list[int]) -> str:
    lines = [
        f"{result.project} as of {result.as_of}: {result.monitors} monitors, {result.evaluated} days evaluated, "
        f"{len(result.new_alerts)} new alert(s)"
    ]
    lines += [f"  alert {a.alert_id}: {a.message}" for a in result.new_alerts]
    lines += [f"  skipped {name}: {reason}" for name, reason in result.skipped]
    if result.resolved:
        lines.append(f"  resolved (recovered): {', '.join(str(a.alert_id) for a in result.resolved)}")
    return "\n".join(lines)


def _webhook(args, con, project):
    from analysis.monitors.notify import get_webhook, set_webhook

    url = set_webhook(con, project, args.url) if (args.url is not None or args.clear) else get_webhook(con, project)
    return {"project": project.name, "webhook": url}, f"webhook: {url or 'none'}"


def _table(monitors: list[dict]) -> str:
    from analysis.numbers import format_number

    return "\n".join(
        f"{m['name']}: {m['kind']} {m['metric']} on {m['slice']}, {m['direction']} is worse"
        + (f" (tolerance {format_number(m['tolerance'])})" if m["tolerance"] else "")
        + (f", {m['version']}" + (f" ({m['stage']})" if m["stage"] else "") if m["version"] else ", production")
        for m in monitors
    )


ACTIONS = {"add": _add, "list": _list, "remove": _remove, "budget": _budget, "run": None, "webhook": _webhook}


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    # Kinds and directions are checked by the engine (analysis.monitors.definitions), with a
    # message naming the choices; importing it here would load the estimates for every command.
    p = sub.add_parser(
        "monitor",
        parents=[common],
        help="monitors: add (one, or --auto), list, remove, budget (false alerts a month), run, webhook",
    )
    p.add_argument("action", choices=tuple(ACTIONS))
    p.add_argument("amount", nargs="?", type=float, help="budget: the false alerts a month to allow")
    p.add_argument("--project", required=True)
    p.add_argument("--name", help="add, remove: the monitor's name")
    p.add_argument("--by", help="remove: who removes it (its open alert is resolved by them)")
    p.add_argument("--version", help="add: the model version (default: whatever serves production)")
    p.add_argument("--stage", help="add: its stage (with --version)")
    p.add_argument("--where", action="append", help="add: the slice (repeatable: AND); default every row")
    p.add_argument("--slice-json", help="add: the slice as JSON instead of --where")
    p.add_argument("--metric", help="add: the metric (drift: the feature)")
    p.add_argument("--kind", help="add: realized, estimated, combined (default), drift, coverage or volume")
    p.add_argument("--direction", help="add: which way is worse, lower or higher (default: the metric's)")
    p.add_argument("--tolerance", type=float, help="add: the smallest change that matters, in the metric's units")
    p.add_argument(
        "--auto", action="store_true", help="add: the headline metric (or --metric, of --kind) for every saved slice"
    )
    p.add_argument("--feature", action="append", help="add --auto: also every value of this feature (repeatable)")
    p.add_argument("--as-of", help="run: evaluate up to this day (YYYY-MM-DD; default: the log's last day)")
    p.add_argument(
        "--budget", dest="amount_budget", type=float, help="run: false alerts a month (default: the stored budget)"
    )
    p.add_argument("--url", help="webhook: the address new alerts are POSTed to")
    p.add_argument("--clear", action="store_true", help="webhook: send no more alerts")
    p.set_defaults(func=cmd_monitor)

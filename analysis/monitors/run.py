"""A monitor run: every monitor of a project, every day since its last run up to ``as_of``,
each day as it was known that evening (rows logged and labels received by then).

A monitor's first run freezes its reference (:mod:`.state`): the reference window the
project chooses, looked for before ``as_of``, and the figures its family needs of it. Each
run replays the stored days into the monitor's detector, then feeds the new ones; a day
whose evidence reaches the budget's level raises an alert, or updates the monitor's open
one (:mod:`.alerts`). An open alert is resolved when seven days after its latest crossing
the figure is back within half of its drop (and within the tolerance's reach).

A monitor that follows production (no version of its own) watches the version serving
production on ``as_of``; when another takes over, its reference and days start afresh.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from analysis.errors import ConfigError
from analysis.estimation.reference import resolve_reference, version_stage
from analysis.monitors.alerts import SLICEBOARD, Alert, open_alerts, raise_alert, set_state, update_alert
from analysis.monitors.budget import Budget
from analysis.monitors.definitions import Monitor, get_budget, list_monitors
from analysis.monitors.families import Watch, end_of, families, worse_by
from analysis.monitors.state import Observation, State, add_observations, load_states, observations, save_states
from analysis.monitors.words import alert_message, recovery_note
from analysis.store.project import Project
from analysis.store.sql import quote_ident

RECOVERY_DAYS = 7
PRODUCTION = "production"


@dataclass
class RunResult:
    project: str
    as_of: date
    monitors: int
    budget: Budget
    alert_level: float
    evaluated: int = 0  # days evaluated, over every monitor
    new_alerts: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "as_of": self.as_of.isoformat(),
            "monitors": self.monitors,
            "alerts": [a.to_dict() for a in self.new_alerts],
            "updated": sorted({a.alert_id for a in self.updated}),
            "resolved": sorted({a.alert_id for a in self.resolved}),
            "skipped": [{"monitor": m, "reason": r} for m, r in self.skipped],
            "evaluated": self.evaluated,
            "false_alerts_per_month": self.budget.false_alerts_per_month,
            "alert_level": self.alert_level,
        }


def last_day(con, project: Project) -> date:
    (latest,) = con.execute(f'SELECT max("timestamp") FROM {quote_ident(project.log_table)}').fetchall()[0]
    if latest is None:
        raise ConfigError(f"{project.name} has no predictions yet: nothing to monitor.")
    return latest.date()


def run_monitors(con, project: Project, as_of: date | None = None, budget: Budget | None = None) -> RunResult:
    """Evaluate every monitor of ``project`` up to ``as_of`` (default: the log's last day)."""
    as_of = as_of or last_day(con, project)
    monitors = list_monitors(con, project)
    budget = budget or get_budget(con, project)
    level = budget.threshold(len(monitors))
    result = RunResult(project.name, as_of, len(monitors), budget, level)
    kinds = families()
    alerts = open_alerts(con, project)
    states, stored = load_states(con, project), observations(con, project)
    watches = _watches(con, project, monitors, kinds, as_of, states, result)
    asked = []
    for watch in watches:
        state = states.get(watch.monitor.name)
        kept = state is not None and (state.version, state.stage) == (watch.version, watch.stage)
        history = stored.get(watch.monitor.name, []) if kept else []  # a new reference starts afresh
        start = history[-1].period + timedelta(days=1) if history else watch.first_period
        if start <= as_of:
            family = kinds[watch.monitor.kind]
            asked.append((watch, family, history, [start + timedelta(days=i) for i in range((as_of - start).days + 1)]))
    seen = {}
    for family in {id(f): f for _, f, _, _ in asked}.values():  # each family sees its monitors at once
        seen |= family.observe_many(con, project, [(w, days) for w, f, _, days in asked if f is family])
    new = {w.monitor.name: [Observation(day, *seen[w.monitor.name][day]) for day in days] for w, _, _, days in asked}
    groups: dict[tuple, list] = {}
    for watch, family, history, days in asked:  # monitors alike, on the same days: one detector for all
        key = (id(family), watch.monitor.metric, watch.bad, watch.monitor.tolerance, len(history), days[0], len(days))
        groups.setdefault(key, []).append((watch, family, history))
    for members in groups.values():
        _evaluate(con, project, members, new, level, alerts, result)
    add_observations(con, project, new)
    result.evaluated = sum(len(days) for days in new.values())
    return result


def _evaluate(con, project: Project, members: list, new: dict, level: float, alerts: dict, result) -> None:
    """Replay the stored days of monitors alike into one detector, then feed the new ones:
    alerts raised, updated or resolved on the way."""
    family = members[0][1]
    watches = [w for w, _, _ in members]
    every = [history + new[w.monitor.name] for w, _, history in members]
    x = np.array([[o.x for o in days] for days in every], float)
    n = np.array([[o.n for o in days] for days in every], float)
    detector = family.detectors(project, watches, level)
    replayed = len(members[0][2])
    for t in range(x.shape[1]):
        crossed, log_e = detector.step(x[:, t], n[:, t])
        if t < replayed:
            continue
        for i, watch in enumerate(watches):
            name = watch.monitor.name
            alert, day = alerts.get(name), every[i][t].period
            if crossed[i]:
                best = int(detector.best_start[i])
                if alert is not None and alert.is_open:  # the same episode: its figures from its start
                    first = next((k for k, o in enumerate(every[i]) if o.period >= alert.since), best)
                    found = _found(project, family, watch, every[i][first : t + 1], log_e[i], level)
                    alert = update_alert(con, project, alert, found)
                    result.updated.append(alert)
                    result.new_alerts = [alert if a.alert_id == alert.alert_id else a for a in result.new_alerts]
                else:
                    alert = raise_alert(
                        con, project, _found(project, family, watch, every[i][best : t + 1], log_e[i], level)
                    )
                    result.new_alerts.append(alert)
                alerts[name] = alert
            elif alert is not None and alert.is_open:
                alert = _after_alert(con, project, family, watch, alert, every[i][: t + 1], day)
                alerts[name] = alert
                if not alert.is_open:
                    result.resolved.append(alert)


def _watches(con, project: Project, monitors: list[Monitor], kinds: dict, as_of: date, states: dict, result) -> list:
    """Each monitor as this run evaluates it: with its stored reference, or (on its first run,
    or when another version took over) a reference found now, each family's found at once.
    A monitor that cannot be watched yet is named in ``result.skipped``, with why."""
    serving = functools.cache(lambda: serving_version(con, project, as_of))  # asked once, if at all
    windows = functools.cache(
        lambda version, stage, labels: resolve_reference(con, project, version, stage, need_labels=labels, before=as_of)
    )
    watches, pending = [], {}
    for monitor in monitors:
        family = kinds[monitor.kind]
        try:
            version, stage = (serving(), PRODUCTION) if monitor.version is None else (monitor.version, monitor.stage)
            stage = stage if monitor.version is None else version_stage(con, project, version, stage)
            state = states.get(monitor.name)
            if state is not None and (state.version, state.stage) == (version, stage):
                watches.append(Watch(monitor, version, stage, state.window, state.reference, state.first_period))
                continue
            window = windows(version, stage, family.needs_labels)
            if window.end >= as_of:
                raise ConfigError(f"the reference window ends on {window.end}: no day after it to watch by {as_of}")
            pending.setdefault(id(family), (family, []))[1].append((monitor, window))
        except ConfigError as skipped:
            result.skipped.append((monitor.name, str(skipped)))
    new_states = {}
    for family, waiting in pending.values():
        found = family.reference_many(con, project, waiting)
        for monitor, window in waiting:
            reference = found[monitor.name]
            too_little = str(reference) if isinstance(reference, ConfigError) else family.enough(reference)
            if too_little:
                result.skipped.append((monitor.name, too_little))
                continue
            state = State(window.version, window.stage, window, reference, window.end + timedelta(days=1))
            new_states[monitor.name] = state  # its days under an older reference are dropped
            watches.append(Watch(monitor, window.version, window.stage, window, reference, state.first_period))
    save_states(con, project, new_states)
    order = {m.name: i for i, m in enumerate(monitors)}
    return sorted(watches, key=lambda w: order[w.monitor.name])


def serving_version(con, project: Project, as_of: date) -> str:
    """The version that logged the latest production prediction by the end of ``as_of``."""
    rows = con.execute(
        f'SELECT model_version FROM {quote_ident(project.log_table)} WHERE stage = ? AND "timestamp" < ? '
        'ORDER BY "timestamp" DESC LIMIT 1',
        [PRODUCTION, end_of(as_of)],
    ).fetchall()
    if not rows:
        raise ConfigError(f"No version of {project.name} served production by {as_of}: give the monitor a version.")
    return rows[0][0]


def _found(project: Project, family, watch: Watch, episode: list[Observation], log_e: float, level: float) -> Alert:
    xs = np.array([o.x for o in episode])
    ns = np.array([o.n for o in episode])
    rows = np.array([o.rows for o in episode])
    value = family.figure(project, watch, xs, ns, rows)
    reference = family.reference_figure(project, watch)
    impact = _impact(watch.monitor, reference, value, rows)
    evidence = math.exp(min(log_e, 700.0))
    monitor = watch.monitor
    since, period = episode[0].period, episode[-1].period
    message = alert_message(project, watch, value, reference, since, period, evidence, level)
    return Alert(
        0,
        monitor.name,
        monitor.slice_.readable() or "every row",
        monitor.metric,
        monitor.kind,
        watch.version,
        watch.stage,
        period,
        since,
        period,
        value,
        reference,
        evidence,
        impact,
        int(rows.sum()),
        "new",
        None,
        message,
        None,
        None,
    )


def _impact(monitor: Monitor, reference: float, value: float, rows: np.ndarray) -> float:
    """Rows affected × the size of the change: for a share, about how many more rows went
    wrong (or unlabeled); for volume, the rows missing; for drift, the rows that drifted."""
    if monitor.kind == "drift":
        return float(rows[-1])
    shortfall = worse_by(reference, value, monitor.direction)
    if not math.isfinite(shortfall):
        return 0.0
    affected = len(rows) if monitor.kind == "volume" else rows.sum()
    return max(float(shortfall * affected), 0.0)


def _after_alert(con, project: Project, family, watch: Watch, alert: Alert, every: list[Observation], day: date):
    if alert.state == "snoozed" and alert.snoozed_until is not None and day > alert.snoozed_until:
        alert = set_state(
            con, project, alert, "new", SLICEBOARD, "the snooze is over and the change goes on", period=day
        )
    recent = [o for o in every if o.period > alert.last_period]
    if len(recent) < RECOVERY_DAYS:
        return alert
    recent = recent[-RECOVERY_DAYS:]
    xs, ns = np.array([o.x for o in recent]), np.array([o.n for o in recent])
    figure = family.figure(project, watch, xs, ns, np.array([o.rows for o in recent]))
    reference = family.reference_figure(project, watch)
    bad = watch.monitor.direction
    allowed = max(watch.monitor.tolerance, 0.5 * worse_by(reference, alert.value, bad))
    if math.isfinite(figure) and worse_by(reference, figure, bad) <= allowed:
        note = recovery_note(project, watch, figure, reference, RECOVERY_DAYS)
        alert = set_state(con, project, alert, "resolved", SLICEBOARD, note, period=day)
    return alert

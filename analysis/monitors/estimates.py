"""Monitors of label-free estimates (``estimated``) and of estimates combined with the
labels known each evening (``combined``): each day's figure with the estimate's variance,
against the same figure on the two halves of the reference window's rows."""

from __future__ import annotations

import math
from datetime import date

import numpy as np

from analysis.errors import ConfigError
from analysis.estimation import many
from analysis.estimation.fit import fit_from_state, fit_slice, fit_state, labeled_reference
from analysis.estimation.periods import period_start_sql
from analysis.estimation.reference import ReferenceWindow
from analysis.estimation.timeline import MIN_PERIOD_ROWS, estimate_rows, estimate_timeline
from analysis.monitors.definitions import Monitor
from analysis.monitors.evidence import EstimateMonitors
from analysis.monitors.watch import HALF, NAN, Family, Watch, end_of, ratio
from analysis.slices import compile_slice
from analysis.store.known import log_known_each_evening
from analysis.store.project import Project
from analysis.store.sql import Sql, and_all

INTERVAL_SDS = 3.92  # a 95% interval is this many standard deviations wide (2 × 1.96)
SPAN_DAYS = 7  # days of estimates one scan reads (a back-fill reads its days a week at a time)


class Estimates(Family):
    """Label-free estimates (``estimated``) or estimates combined with the labels known that
    evening (``combined``), each day's figure with the estimate's variance, against the
    same figure on the two halves of the reference window's rows.

    A classifier's monitors are fitted and estimated many at once (:mod:`analysis.estimation.many`):
    their fits once, at the first run, kept with the frozen reference; then every slice's
    days of a week from one scan of the log, each row as known the evening of its day. A
    regression model's are fitted in each run, one at a time."""

    needs_labels = True

    def __init__(self):
        self._fits = {}  # one fit per version, stage, window and slice in a run

    def fit(self, con, project: Project, monitor: Monitor, window: ReferenceWindow):
        key = (window, monitor.slice_.to_json())
        if key not in self._fits:
            self._fits[key] = fit_slice(con, project, window, monitor.slice_)
        return self._fits[key]

    def _value(self, monitor: Monitor, estimate) -> tuple[float, float]:
        value = estimate.combined if monitor.kind == "combined" else estimate.estimated
        variance = ((estimate.high - estimate.low) / INTERVAL_SDS) ** 2
        if value is None or not (math.isfinite(value) and math.isfinite(variance) and variance > 0):
            return NAN, NAN
        return float(value), float(variance)

    def reference(self, con, project: Project, monitor: Monitor, window: ReferenceWindow) -> dict:
        fit = self.fit(con, project, monitor, window)
        halves = []
        for half in (0, 1):
            where = and_all(
                [
                    window.scope.to_sql(),
                    compile_slice(monitor.slice_, project),
                    "label IS NOT NULL",
                    Sql(f"{HALF} = ?", [half]),
                ]
            )
            rows, estimates = estimate_rows(con, project, fit, where, [monitor.metric])
            value, variance = self._value(monitor, estimates[monitor.metric]) if rows else (NAN, NAN)
            halves.append([rows, value, variance])
        return {"halves": halves}

    def reference_many(self, con, project: Project, pending: list[tuple[Monitor, ReferenceWindow]]) -> dict:
        if project.task not in many.TASKS:
            return super().reference_many(con, project, pending)
        out = {}
        for window, monitors in _by(pending, lambda m, w: w).items():
            slices = _distinct_slices(monitors)
            try:
                fits = dict(zip(slices, many.fit_slices(con, project, window, list(slices.values()))))
            except ConfigError as refused:
                out |= {m.name: refused for m, _ in monitors}
                continue
            fitted = {key: slices[key] for key, fit in fits.items() if not isinstance(fit, ConfigError)}
            entries = many.slice_entries(
                con, project, labeled_reference(window), list(fitted.values()), HALF, merged=False
            )
            names = {}  # each slice's metrics, estimated together
            for monitor, _ in monitors:
                names.setdefault(monitor.slice_.to_json(), set()).add(monitor.metric)
            halves = {
                key: many.estimate_days(project, fits[key], data, sorted(names[key]), days=False)
                for key, data in zip(fitted, entries)
            }
            for monitor, _ in monitors:
                key = monitor.slice_.to_json()
                if isinstance(fits[key], ConfigError):
                    out[monitor.name] = fits[key]
                    continue
                numbers = []
                for half in (0, 1):
                    rows, estimates = halves[key].get(half, (0, None))
                    value, variance = self._value(monitor, estimates[monitor.metric]) if estimates else (NAN, NAN)
                    numbers.append([rows, value, variance])
                out[monitor.name] = {"halves": numbers, "fit": fit_state(fits[key])}
        return out

    def enough(self, reference: dict) -> str | None:
        if not all(math.isfinite(h[2]) for h in reference["halves"]):
            rows = sum(h[0] for h in reference["halves"])
            return f"the reference window has {rows} labeled rows of it: too few for an estimate with an interval"
        return None

    def observe(self, con, project: Project, watch: Watch, days: list[date]) -> dict[date, tuple]:
        fit = self.fit(con, project, watch.monitor, watch.window)
        out = {}
        for day in days:  # each day as known that evening: its labels by then, none after
            timeline = estimate_timeline(
                con, project, fit, "day", [watch.monitor.metric], known_at=end_of(day), days=(day, day)
            )
            period = timeline.periods[0] if timeline.periods else None
            if period is None:
                out[day] = (NAN, NAN, 0)
            else:
                out[day] = (*self._value(watch.monitor, period.metrics[watch.monitor.metric]), period.rows)
        return out

    def observe_many(self, con, project: Project, asked: list[tuple[Watch, list[date]]]) -> dict[str, dict]:
        if project.task not in many.TASKS:
            return super().observe_many(con, project, asked)
        out = {}
        spans = [(w, days[i : i + SPAN_DAYS]) for w, days in asked for i in range(0, len(days), SPAN_DAYS)]
        for (window, first, last), members in _by(spans, lambda w, d: (w.window, d[0], d[-1])).items():
            watches = [w for w, _ in members]
            fits = self._kept_fits(con, project, window, watches)
            fitted = [(w.monitor, None) for w in watches if not isinstance(fits[w.monitor.name], ConfigError)]
            slices = _distinct_slices(fitted)
            names = {}  # each slice's metrics, estimated together
            for w in watches:
                names.setdefault(w.monitor.slice_.to_json(), set()).add(w.monitor.metric)
            where = watches[0].after(first, last).to_sql()
            log = log_known_each_evening(project)
            entries = many.slice_entries(
                con, project, where, list(slices.values()), period_start_sql("day"), log, merged=False
            )
            data = dict(zip(slices, entries))
            estimated = {}  # each slice's days, estimated together
            for watch, days in members:
                key, fit = watch.monitor.slice_.to_json(), fits[watch.monitor.name]
                seen = out.setdefault(watch.monitor.name, {})
                if isinstance(fit, ConfigError):
                    seen |= {day: (NAN, NAN, 0) for day in days}
                    continue
                if key not in estimated:
                    estimated[key] = many.estimate_days(project, fit, data[key], sorted(names[key]), MIN_PERIOD_ROWS)
                for day in days:
                    rows, estimates = estimated[key].get(day, (0, None))
                    value = self._value(watch.monitor, estimates[watch.monitor.metric]) if estimates else (NAN, NAN)
                    seen[day] = (*value, rows)
        return out

    def _kept_fits(self, con, project: Project, window: ReferenceWindow, watches: list[Watch]) -> dict:
        """Each monitor's fit, as its first run kept it (fitted again where it was not kept)."""
        fits = {
            w.monitor.name: fit_from_state(window, w.monitor.slice_, project.task, w.reference["fit"])
            for w in watches
            if "fit" in w.reference
        }
        missing = [w for w in watches if w.monitor.name not in fits]
        if missing:
            slices = _distinct_slices([(w.monitor, None) for w in missing])
            try:
                fitted = dict(zip(slices, many.fit_slices(con, project, window, list(slices.values()))))
            except ConfigError as refused:
                fitted = dict.fromkeys(slices, refused)
            fits |= {w.monitor.name: fitted[w.monitor.slice_.to_json()] for w in missing}
        return fits

    def detectors(self, project: Project, watches: list[Watch], threshold: float):
        halves = np.array([w.reference["halves"] for w in watches], float)  # monitor × half × (rows, value, var)
        first = watches[0]
        return EstimateMonitors(
            halves[:, 1, 1],
            halves[:, 1, 2],
            halves[:, 0, 1],
            halves[:, 0, 2],
            threshold,
            first.bad,
            first.monitor.tolerance,
        )

    def figure(self, project: Project, watch: Watch, xs, ns, rows) -> float:
        xs = np.asarray(xs, float)
        return ratio(np.nansum(xs * rows), np.sum(np.where(np.isfinite(xs), rows, 0)))

    def reference_figure(self, project: Project, watch: Watch) -> float:
        halves = watch.reference["halves"]
        return ratio(sum(h[0] * h[1] for h in halves), sum(h[0] for h in halves))


def _by(pairs, key) -> dict:
    """``pairs`` grouped by ``key(*pair)``, in order."""
    groups: dict = {}
    for pair in pairs:
        groups.setdefault(key(*pair), []).append(pair)
    return groups


def _distinct_slices(monitors) -> dict:
    """The monitors' slices, each once, by their JSON."""
    return {m.slice_.to_json(): m.slice_ for m, _ in monitors}

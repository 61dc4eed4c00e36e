"""What each kind of monitor observes, period after period, and how its evidence is weighed.

A period is a day. Its observation is what could be known by the end of it:

* ``realized`` (:class:`LabelMeans`): the labels *received* that day, for predictions made
  after the reference window. Counting labels by the day they arrive feeds each one to the
  test once, however late; it compares like with like provided how long a label takes does
  not depend on whether the prediction was right.
* ``estimated`` and ``combined`` (:class:`.estimates.Estimates`): the day's predictions, estimated from
  their scores (and combined with their labels known that evening), with the estimate's
  variance (for the combined figure too: its closing interval describes the day's rows, not
  the model's performance, and the larger variance keeps the test valid).
* ``coverage`` (:class:`Coverage`): the share of a day's rows labeled within the lag that
  95% of the reference's labels arrived in, observed when that lag has passed.
* ``volume`` (:class:`Volume`): the day's rows; ``drift`` (:class:`Drift`): a feature's
  test against the reference window.

Each family keeps a monitor's reference numbers frozen as JSON (the first run's), gives
one day's observation as ``(x, n, rows)`` (a rate's successes and trials, a figure and its
variance, a count, a p-value and a distance) and a detector fed them in order.
"""

from __future__ import annotations

import math
import zlib
from datetime import date, timedelta

import numpy as np

from analysis.drift import drift_table
from analysis.estimation.reference import ReferenceWindow
from analysis.metrics.row_means import row_means
from analysis.monitors.definitions import Monitor
from analysis.monitors.estimates import Estimates
from analysis.monitors.evidence import EstimateMonitors, RateMonitors
from analysis.monitors.watch import HALF, NAN, Family, Watch, end_of, ratio, worse_by
from analysis.slices import compile_slice
from analysis.slices.cells import SliceCells
from analysis.store.project import Project
from analysis.store.sql import Sql, and_all, quote_ident

__all__ = ["Estimates", "Family", "Watch", "end_of", "families", "worse_by"]

COVERAGE_QUANTILE = 0.95  # the lag a coverage monitor allows: the reference's labels arrived within it
KNOWN = 'greatest("timestamp", coalesce(label_timestamp, "timestamp"))'  # when a row's label was known
LABEL_DELAY_DAYS = f"date_diff('day', CAST(\"timestamp\" AS DATE), CAST({KNOWN} AS DATE))"  # a label's wait
PREDICTED = '"timestamp"'


class LabelMeans(Family):
    """Realized metrics that are a mean over rows, by the day their labels arrived: rates
    (accuracy, precision) as successes among trials against the reference's (beta-binomial
    mixtures), other means (MAE, Brier score) as a mean and its variance (normal mixtures)."""

    needs_labels = True

    def _mean(self, project: Project, monitor: Monitor):
        return row_means(project.task)[monitor.metric]

    def _counted(self, project: Project, monitor: Monitor) -> Sql:
        """The rows whose labels a monitor counts: labeled, predicted, with the metric's figure."""
        return and_all(["label IS NOT NULL AND prediction IS NOT NULL", self._mean(project, monitor).rows])

    def reference(self, con, project: Project, monitor: Monitor, window: ReferenceWindow) -> dict:
        return self.reference_many(con, project, [(monitor, window)])[monitor.name]

    def reference_many(self, con, project: Project, pending: list[tuple[Monitor, ReferenceWindow]]) -> dict:
        def labeled(monitor: Monitor, window: ReferenceWindow) -> Sql:
            return and_all([window.scope.to_sql(), self._counted(project, monitor)])

        out = {}
        for monitor, found in _reference_scans(con, project, pending, labeled, HALF, self._figure(project)):
            out[monitor.name] = {"halves": [list(found.get(half, (0, 0.0, 0.0))) for half in (0, 1)]}
        return out

    def enough(self, reference: dict) -> str | None:
        rows = sum(h[0] for h in reference["halves"])
        if min(h[0] for h in reference["halves"]) < 15:
            return f"the reference window has {rows} labeled rows of it: too few to compare with"
        return None

    def observe_many(self, con, project: Project, asked: list[tuple[Watch, list[date]]]) -> dict[str, dict]:
        def group(watch: Watch, days: list[date]):
            return (watch.version, watch.stage, watch.first_period, watch.monitor.metric, days[0], days[-1])

        def base(watch: Watch, days: list[date]) -> Sql:
            # Predictions after the reference window, by the day their label became known.
            return and_all(
                [
                    watch.after(watch.first_period).to_sql(),
                    self._counted(project, watch.monitor),
                    Sql(f"{KNOWN} >= ? AND {KNOWN} < ?", [end_of(days[0] - timedelta(days=1)), end_of(days[-1])]),
                ]
            )

        out = {}
        for (watch, days), found in _one_scan_each(
            con, project, asked, group, base, _day(KNOWN), self._figure(project)
        ):
            rate = self._mean(project, watch.monitor).rate
            seen = {}
            for day in days:
                n, s, q = found.get(day, (0, 0.0, 0.0))
                seen[day] = (s, float(n), n) if rate else (*_mean_and_variance(n, s, q), n)
            out[watch.monitor.name] = seen
        return out

    def _figure(self, project: Project):
        return lambda watch: self._mean(project, watch.monitor).figure

    def detectors(self, project: Project, watches: list[Watch], threshold: float):
        first = watches[0]
        halves = [w.reference["halves"] for w in watches]
        if self._mean(project, first.monitor).rate:
            trials = [sum(h[0] for h in both) for both in halves]
            successes = [sum(h[1] for h in both) for both in halves]
            return RateMonitors(successes, trials, threshold, first.bad, first.monitor.tolerance, _seeds(watches))
        means = np.array([[_mean_and_variance(*h) for h in both] for both in halves])  # monitor × half × (mean, var)
        return EstimateMonitors(
            means[:, 1, 0],
            means[:, 1, 1],
            means[:, 0, 0],
            means[:, 0, 1],
            threshold,
            first.bad,
            first.monitor.tolerance,
        )

    def figure(self, project: Project, watch: Watch, xs, ns, rows) -> float:
        if self._mean(project, watch.monitor).rate:
            return ratio(np.sum(xs), np.sum(ns))
        return ratio(np.nansum(np.asarray(xs) * rows), np.sum(np.where(np.isfinite(xs), rows, 0)))

    def reference_figure(self, project: Project, watch: Watch) -> float:
        halves = watch.reference["halves"]
        return ratio(sum(h[1] for h in halves), sum(h[0] for h in halves))


class Coverage(Family):
    """The share of a day's rows labeled within the lag that 95% of the reference's labels
    arrived in (whole days; 0 when they arrive the same day), observed once that lag has
    passed: a day's share is known ``lag`` days later."""

    needs_labels = True

    def reference(self, con, project: Project, monitor: Monitor, window: ReferenceWindow) -> dict:
        rows = and_all([window.scope.to_sql(), compile_slice(monitor.slice_, project)])
        lag_query = Sql.compose(
            "SELECT quantile_disc({delay}, {q}) FROM {log} WHERE {rows} AND label IS NOT NULL",
            delay=LABEL_DELAY_DAYS,
            q=Sql("?", [COVERAGE_QUANTILE]),
            log=_log(project),
            rows=rows,
        )
        lag = int(con.execute(*lag_query).fetchall()[0][0] or 0)
        counts = Sql.compose(
            "SELECT count(*), sum({in_time}) FROM {log} WHERE {rows}",
            in_time=_labeled_within(lag),
            log=_log(project),
            rows=rows,
        )
        trials, successes = con.execute(*counts).fetchall()[0]
        return {"lag_days": lag, "labeled": int(successes or 0), "rows": int(trials or 0)}

    def enough(self, reference: dict) -> str | None:
        if reference["rows"] < 30:
            return f"the reference window has {reference['rows']} rows of it: too few to compare with"
        return None

    def observe_many(self, con, project: Project, asked: list[tuple[Watch, list[date]]]) -> dict[str, dict]:
        def predicted(watch: Watch, days: list[date]) -> tuple[date, date]:  # the days whose lag has just passed
            lag = watch.reference["lag_days"]
            return max(days[0] - timedelta(days=lag), watch.first_period), days[-1] - timedelta(days=lag)

        def group(watch: Watch, days: list[date]):
            return (watch.version, watch.stage, watch.reference["lag_days"], *predicted(watch, days))

        def base(watch: Watch, days: list[date]) -> Sql:
            first, last = predicted(watch, days)
            return watch.after(first, last).to_sql() if first <= last else Sql("FALSE")

        def labeled_in_time(watch: Watch) -> Sql:
            return _labeled_within(watch.reference["lag_days"])

        out = {}
        for (watch, days), found in _one_scan_each(con, project, asked, group, base, _day(PREDICTED), labeled_in_time):
            lag = timedelta(days=watch.reference["lag_days"])
            seen = {}
            for day in days:
                n, k, _ = found.get(day - lag, (0, 0.0, 0.0))
                seen[day] = (k, float(n), n)
            out[watch.monitor.name] = seen
        return out

    def detectors(self, project: Project, watches: list[Watch], threshold: float):
        labeled = [w.reference["labeled"] for w in watches]
        rows = [w.reference["rows"] for w in watches]
        return RateMonitors(labeled, rows, threshold, watches[0].bad, watches[0].monitor.tolerance, _seeds(watches))

    def figure(self, project: Project, watch: Watch, xs, ns, rows) -> float:
        return ratio(np.sum(xs), np.sum(ns))

    def reference_figure(self, project: Project, watch: Watch) -> float:
        return ratio(watch.reference["labeled"], watch.reference["rows"])


class Volume(Family):
    """A day's rows against the reference window's days. Traffic varies more from day to day
    than a Poisson count would (weekdays, campaigns), so a day's rows are compared as a
    figure whose variance is the reference days' own spread: the mean of alternate days of
    the window is the reference, the other days' mean its prior. The tolerance is in rows a
    day."""

    needs_labels = False

    def reference(self, con, project: Project, monitor: Monitor, window: ReferenceWindow) -> dict:
        return self.reference_many(con, project, [(monitor, window)])[monitor.name]

    def reference_many(self, con, project: Project, pending: list[tuple[Monitor, ReferenceWindow]]) -> dict:
        scope = lambda monitor, window: window.scope.to_sql()  # noqa: E731
        out = {}
        for (monitor, window), (_, found) in zip(
            pending, _reference_scans(con, project, pending, scope, _day(PREDICTED), None)
        ):
            out[monitor.name] = {"days": [found.get(day, (0,))[0] for day in _window_days(window)]}
        return out

    def enough(self, reference: dict) -> str | None:
        days = reference["days"]
        if len(days) < 4 or not any(days):
            return f"the reference window has {len(days)} days and {sum(days)} rows of it: too few to compare with"
        return None

    def _spread(self, watch: Watch) -> float:
        """The variance of one day's rows: the reference days' (at least a Poisson count's)."""
        days = np.asarray(watch.reference["days"], float)
        return max(float(np.var(days, ddof=1)), float(days.mean()), 1.0)

    def observe_many(self, con, project: Project, asked: list[tuple[Watch, list[date]]]) -> dict[str, dict]:
        def group(watch: Watch, days: list[date]):
            return (watch.version, watch.stage, days[0], days[-1])

        def base(watch: Watch, days: list[date]) -> Sql:
            return watch.after(days[0], days[-1]).to_sql()

        out = {}
        for (watch, days), found in _one_scan_each(con, project, asked, group, base, _day(PREDICTED), None):
            spread = self._spread(watch)
            rows = {day: found.get(day, (0, 0.0, 0.0))[0] for day in days}
            out[watch.monitor.name] = {day: (float(n), spread, n) for day, n in rows.items()}
        return out

    def detectors(self, project: Project, watches: list[Watch], threshold: float):
        days = [np.asarray(w.reference["days"], float) for w in watches]
        spread = np.array([self._spread(w) for w in watches])
        return EstimateMonitors(
            [d[1::2].mean() for d in days],
            spread / [len(d[1::2]) for d in days],
            [d[0::2].mean() for d in days],
            spread / [len(d[0::2]) for d in days],
            threshold,
            watches[0].bad,
            watches[0].monitor.tolerance,
            # changes of a fifth of the traffic weigh most
            spread=np.maximum(np.sqrt(spread), [0.2 * d.mean() for d in days]),
        )

    def figure(self, project: Project, watch: Watch, xs, ns, rows) -> float:
        return ratio(np.sum(xs), len(xs))

    def reference_figure(self, project: Project, watch: Watch) -> float:
        return float(np.mean(watch.reference["days"]))


class Drift(Family):
    """A feature's drift each day against the reference window's rows of the slice: the
    day alerts when its test's p-value is at most one over the alert level (and the distance
    at least the tolerance). Days share the reference sample, so their tests are not
    independent and are not multiplied together; a p-value at most ``1/c`` has a chance at
    most ``1/c`` under no drift, whatever the dependence, which keeps the budget."""

    needs_labels = False

    def reference(self, con, project: Project, monitor: Monitor, window: ReferenceWindow) -> dict:
        return {"rows": window.rows}

    def enough(self, reference: dict) -> str | None:
        return None if reference["rows"] else "the reference window has no rows of it"

    def observe(self, con, project: Project, watch: Watch, days: list[date]) -> dict[date, tuple]:
        result = drift_table(con, project, watch.window, watch.monitor.slice_, "day", [watch.monitor.metric])
        found = {}
        for period in result.periods:
            for feature in period.features:
                if feature.feature == watch.monitor.metric and feature.p_value is not None:
                    found[period.period.start] = (float(feature.p_value), float(feature.distance), period.rows)
        return {day: found.get(day, (NAN, NAN, 0)) for day in days}

    def detectors(self, project: Project, watches: list[Watch], threshold: float):
        return _DriftDetectors(len(watches), threshold, watches[0].monitor.tolerance)

    def figure(self, project: Project, watch: Watch, xs, ns, rows) -> float:
        return float(ns[-1]) if len(ns) else NAN

    def reference_figure(self, project: Project, watch: Watch) -> float:
        return 0.0


class _DriftDetectors:
    """Each day by itself: its p-value at most ``1 / threshold`` (and its distance at least
    the tolerance) alerts; its evidence is ``1 / p``."""

    def __init__(self, count: int, threshold: float, tolerance: float):
        self.log_threshold, self.tolerance = math.log(threshold), tolerance
        self.t = 0
        self.best_start = np.zeros(count, dtype=int)

    def step(self, p_values, distances) -> tuple[np.ndarray, np.ndarray]:
        self.t += 1
        p = np.asarray(p_values, float)
        log_e = np.where(np.isfinite(p), -np.log(np.clip(np.nan_to_num(p, nan=1.0), 1e-300, 1.0)), 0.0)
        self.best_start[:] = self.t - 1
        with np.errstate(invalid="ignore"):
            alerts = (log_e >= self.log_threshold) & (np.asarray(distances, float) >= self.tolerance)
        return alerts, log_e


def _one_scan_each(con, project: Project, asked, group, base, period_sql: str, figure):
    """Many monitors' rows by period (``period_sql``: a day, or a half of the reference), one
    scan of the log for each group of monitors alike (``group``: the same scope, days and
    whatever ``base`` and ``figure`` depend on): per monitor and period, its slice's rows
    and, with ``figure`` (the group's SQL of a row's figure), its sum and sum of squares.
    Yields ``((watch, days), {period: (rows, sum, squares)})``.

    The scan adds up the rows alike in every column the slices read, and each slice adds
    up its combinations' entries (:class:`analysis.slices.cells.SliceCells`)."""
    groups: dict = {}
    for watch, days in asked:
        groups.setdefault(group(watch, days), []).append((watch, days))
    for members in groups.values():
        slices = {w.monitor.slice_.to_json(): w.monitor.slice_ for w, _ in members}
        cells = SliceCells(project, list(slices.values()), _log(project), base(*members[0]))
        f = Sql("1") if figure is None else Sql.of(figure(members[0][0]))
        totals = [
            ("sb_rows", "count(*)"),
            ("sb_sum", Sql.compose("sum({f})", f=f)),
            ("sb_squares", Sql.compose("sum(({f}) * ({f}))", f=f)),
        ]
        data = cells.read(con, Sql(f"{period_sql} AS sb_period"), ["sb_period"], totals)
        period_of = np.asarray(data["sb_key"], np.int64)  # the periods' ranks: 0, 1, …
        periods = _python_values(np.asarray(data["sb_period"])[np.unique(period_of, return_index=True)[1]])
        added = [np.ma.filled(np.ma.asarray(data[name], float), 0.0) for name, _ in totals]
        found = {}
        for key, at in zip(slices, cells.positions(con, data["sb_combo"])):
            n, total, squares = (np.bincount(period_of[at], weights=a[at], minlength=len(periods)) for a in added)
            found[key] = {
                p: (int(round(n[i])), float(total[i]), float(squares[i])) for i, p in enumerate(periods) if n[i] > 0
            }
        for member in members:
            yield member, found[member[0].monitor.slice_.to_json()]


def _python_values(values: np.ndarray) -> list:
    """A query's period values as Python's (days as dates), as the runs' days are."""
    if values.dtype.kind == "M":
        return values.astype("datetime64[D]").astype(object).tolist()
    return values.tolist()


def _labeled_within(lag: int) -> Sql:
    """1 for a row labeled within ``lag`` whole days of its prediction, else 0."""
    return Sql.compose(
        "CASE WHEN label IS NOT NULL AND {delay} <= {lag} THEN 1.0 ELSE 0.0 END",
        delay=LABEL_DELAY_DAYS,
        lag=Sql("?", [lag]),
    )


def _window_days(window: ReferenceWindow) -> list[date]:
    return [window.start + timedelta(days=i) for i in range((window.end - window.start).days + 1)]


def _day(timestamp_sql: str) -> str:
    return f"CAST({timestamp_sql} AS DATE)"


def _reference_scans(con, project: Project, pending, where, period_sql: str, figure):
    """:func:`_one_scan_each` over monitors' reference windows (``where(monitor, window)``:
    the rows each counts): ``(monitor, {period: (rows, sum, squares)})`` for each."""
    asked = [(Watch(m, w.version, w.stage, w, {}, w.end), []) for m, w in pending]
    group = lambda watch, _: (watch.window, watch.monitor.metric)  # noqa: E731
    base = lambda watch, _: where(watch.monitor, watch.window)  # noqa: E731
    for (watch, _), found in _one_scan_each(con, project, asked, group, base, period_sql, figure):
        yield watch.monitor, found


def _seeds(watches: list[Watch]) -> list[int]:
    """A seed per monitor from its name: its random split is its own, whoever it runs with."""
    return [zlib.crc32(w.monitor.name.encode()) for w in watches]


def _mean_and_variance(n, total, squares) -> tuple[float, float]:
    """A mean of ``n`` figures and the variance of that mean (NaN below two figures)."""
    if n < 2:
        return NAN, NAN
    mean = total / n
    variance = max(squares - n * mean * mean, 0.0) / (n - 1) / n
    return mean, variance if variance > 0 else NAN


def _log(project: Project) -> str:
    return quote_ident(project.log_table)


def families() -> dict:
    """Each kind's family, fresh for a run (the estimates keep their fits for one run)."""
    estimates = Estimates()
    return {
        "realized": LabelMeans(),
        "estimated": estimates,
        "combined": estimates,
        "coverage": Coverage(),
        "volume": Volume(),
        "drift": Drift(),
    }

"""Monitors as a project stores them: what each one watches, and the project's budget.

A monitor watches one figure of one scope: a model version and stage (none: whatever
serves production when it runs), a slice (none: every row), and a metric of a *kind*:

* ``realized``: a metric of the task that is a mean over rows (accuracy, precision, MAE), on
  the labels as they arrive (:mod:`analysis.metrics.row_means`);
* ``estimated`` and ``combined``: a label-free estimate, alone or combined with the labels
  that arrived (:mod:`analysis.estimation`);
* ``drift``: a feature's drift against the reference window (the metric is the feature);
* ``coverage``: the share of rows labeled; ``volume``: the number of rows.

It says which direction is bad (by default the metric's: lower accuracy, higher log loss,
more drift, fewer labels or rows) and the smallest change that matters (``tolerance``, in
the metric's units). Each kind says which metrics it takes in ``KINDS``; a kind is added
there. Definitions are stored as JSON by name (``sb_monitors``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime

import duckdb

from analysis.drift import measured_features
from analysis.errors import ConfigError
from analysis.estimation.timeline import estimable_metrics
from analysis.metrics.registry import METRICS, headline_metrics, metrics_for
from analysis.metrics.row_means import row_means
from analysis.monitors.alerts import open_alerts, set_state
from analysis.monitors.budget import Budget
from analysis.monitors.state import forget
from analysis.slices import Slice, parse_slice, validate_slice
from analysis.slices.saved import list_slices
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.store.sql import quote_ident

MAX_NAME = 200
DIRECTIONS = ("lower", "higher")
DEFAULT_KIND = "combined"
MAX_AUTO_VALUES = 50  # values of one feature that get a monitor each


class TaskMetrics:
    """A metric of the task on the labeled rows."""

    def metrics(self, project: Project) -> tuple[str, ...]:
        return tuple(metrics_for(project.task))

    def bad_direction(self, metric: str) -> str:
        return "lower" if METRICS[metric].higher_is_better else "higher"


class RealizedMetrics(TaskMetrics):
    """A metric of the task that is a mean over rows, on the labels as they arrive."""

    def metrics(self, project: Project) -> tuple[str, ...]:
        return tuple(row_means(project.task))


class EstimatedMetrics(TaskMetrics):
    """A label-free estimate (alone, or combined with the labels that arrived)."""

    def metrics(self, project: Project) -> tuple[str, ...]:
        return estimable_metrics(project)


class FeatureDrift:
    """A feature's drift against the reference window: more is worse."""

    def metrics(self, project: Project) -> tuple[str, ...]:
        return tuple(f.name for f in measured_features(project))

    def bad_direction(self, metric: str) -> str:
        return "higher"


@dataclass(frozen=True)
class OneFigure:
    """A figure of the rows themselves: fewer is worse."""

    name: str

    def metrics(self, project: Project) -> tuple[str, ...]:
        return (self.name,)

    def bad_direction(self, metric: str) -> str:
        return "lower"


KINDS = {
    "realized": RealizedMetrics(),
    "estimated": EstimatedMetrics(),
    "combined": EstimatedMetrics(),
    "drift": FeatureDrift(),
    "coverage": OneFigure("labeled_share"),
    "volume": OneFigure("rows"),
}


@dataclass(frozen=True)
class Monitor:
    name: str
    metric: str
    kind: str = DEFAULT_KIND
    version: str | None = None  # None: whatever serves production when the monitor runs
    stage: str | None = None
    slice_: Slice = field(default_factory=Slice)
    direction: str | None = None  # the bad direction; None: the metric's
    tolerance: float = 0.0
    created_at: datetime | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "slice": self.slice_.readable(),
            "metric": self.metric,
            "kind": self.kind,
            "direction": self.direction,
            "tolerance": self.tolerance,
            "version": self.version,
            "stage": self.stage,
        }

    def definition(self) -> str:
        return json.dumps(
            {
                "metric": self.metric,
                "kind": self.kind,
                "version": self.version,
                "stage": self.stage,
                "slice": self.slice_.to_dict(),
                "direction": self.direction,
                "tolerance": self.tolerance,
            },
            sort_keys=True,
        )

    @classmethod
    def read(cls, name: str, definition: str, created_at: datetime) -> "Monitor":
        d = json.loads(definition)
        return cls(
            name=name,
            metric=d["metric"],
            kind=d["kind"],
            version=d.get("version"),
            stage=d.get("stage"),
            slice_=Slice.from_dict(d["slice"]),
            direction=d.get("direction"),
            tolerance=float(d.get("tolerance") or 0.0),
            created_at=created_at,
        )


def checked(con: duckdb.DuckDBPyConnection, project: Project, monitor: Monitor) -> Monitor:
    """``monitor`` with its defaults filled in, or a ConfigError naming what is wrong."""
    name = (monitor.name or "").strip()
    if not name:
        raise ConfigError("A monitor needs a name (--name).")
    if len(name) > MAX_NAME:
        raise ConfigError(f"A monitor's name has at most {MAX_NAME} characters, not {len(name)}.")
    kind = KINDS.get(monitor.kind)
    if kind is None:
        raise ConfigError(f"A monitor's kind is one of {', '.join(KINDS)}, not {monitor.kind!r}.")
    allowed = kind.metrics(project)
    if monitor.metric not in allowed:
        raise ConfigError(
            f"A {monitor.kind} monitor of {project.name} watches one of {', '.join(allowed) or 'nothing'}, "
            f"not {monitor.metric!r}."
        )
    direction = monitor.direction or kind.bad_direction(monitor.metric)
    if direction not in DIRECTIONS:
        raise ConfigError(f"The bad direction is lower or higher, not {direction!r}.")
    tolerance = float(monitor.tolerance)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ConfigError(f"The tolerance is a change of 0 or more in the metric's units, not {monitor.tolerance}.")
    versions = _versions(con, project)
    if monitor.version is not None and monitor.version not in versions:
        raise ConfigError(f"{project.name} has no version {monitor.version!r}; it has {', '.join(versions)}.")
    if monitor.stage is not None and monitor.version is None:
        raise ConfigError("A stage is given with a version (--version): without one the monitor follows production.")
    if monitor.stage is not None:
        from analysis.estimation.reference import version_stage  # the stages a version is logged in

        version_stage(con, project, monitor.version, monitor.stage)
    slice_ = validate_slice(monitor.slice_, project)
    return Monitor(name, monitor.metric, monitor.kind, monitor.version, monitor.stage, slice_, direction, tolerance)


def _versions(con, project: Project) -> list[str]:
    query = f"SELECT DISTINCT model_version FROM {quote_ident(project.log_table)} ORDER BY 1"
    return [v for (v,) in con.execute(query).fetchall()]


def add_monitor(con: duckdb.DuckDBPyConnection, project: Project, monitor: Monitor) -> Monitor:
    """Store a new monitor (checked, its defaults filled in)."""
    monitor = checked(con, project, monitor)
    if monitor.name in {m.name for m in list_monitors(con, project)}:
        raise ConfigError(f"{project.name} has a monitor named {monitor.name!r} already.")
    now = utc_now()
    con.execute(
        "INSERT INTO sb_monitors VALUES (?, ?, ?, ?)", [project.project_id, monitor.name, monitor.definition(), now]
    )
    return Monitor(**{**monitor.__dict__, "created_at": now})


def remove_monitor(con: duckdb.DuckDBPyConnection, project: Project, name: str, by: str) -> Monitor:
    """Remove a monitor: its definition, its frozen reference and its stored days. Its open
    alert is resolved by ``by`` (alerts and their history are kept). To change a monitor,
    remove it and add it again: it starts afresh."""
    monitor = next((m for m in list_monitors(con, project) if m.name == name), None)
    if monitor is None:
        raise ConfigError(f"{project.name} has no monitor named {name!r} (monitor list shows them).")
    con.execute("DELETE FROM sb_monitors WHERE project_id = ? AND name = ?", [project.project_id, name])
    forget(con, project, [name])
    alert = open_alerts(con, project).get(name)
    if alert is not None:
        set_state(con, project, alert, "resolved", by, "the monitor was removed")
    return monitor


def list_monitors(con: duckdb.DuckDBPyConnection, project: Project) -> list[Monitor]:
    rows = con.execute(
        "SELECT name, definition, created_at FROM sb_monitors WHERE project_id = ? ORDER BY name",
        [project.project_id],
    ).fetchall()
    return [Monitor.read(*row) for row in rows]


def auto_monitors(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    features: list[str] | tuple[str, ...] = (),
    like: Monitor | None = None,
) -> list[Monitor]:
    """Monitors of the headline metric (combined with the labels that arrived) for every
    saved slice and every value of ``features``; those that exist already are kept. The
    new ones. ``like``: a monitor whose metric, kind, version, stage, direction and
    tolerance they take instead (its name and slice are not read)."""
    like = like or Monitor("", headline_metrics(project.task)[0])
    what = like.metric if like.kind == DEFAULT_KIND else f"{like.metric} ({like.kind})"
    wanted = [(f"{what} on {name}", parse_slice(where)) for name, where in _saved(con, project)]
    for feature in features:
        wanted += [(f"{what} on {feature} = {value}", slice_) for value, slice_ in _values(con, project, feature)]
    existing = {m.name for m in list_monitors(con, project)}
    return [add_monitor(con, project, replace(like, name=n, slice_=s)) for n, s in wanted if n not in existing]


def _saved(con, project: Project) -> list[tuple[str, str]]:
    saved = list_slices(con, project)
    return list(zip(saved["name"], saved["where"]))


def _values(con, project: Project, feature: str) -> list[tuple[str, Slice]]:
    column = next((c for c in project.features if c.name == feature), None)
    if column is None:
        raise ConfigError(
            f"{project.name} has no feature {feature!r}; it has {', '.join(c.name for c in project.features)}."
        )
    if column.kind not in ("categorical", "boolean", "text"):
        raise ConfigError(
            f"{feature} is a {column.kind} feature: monitors are made for each value of a category "
            "(save slices of its ranges for numbers)."
        )
    values = [
        v
        for (v,) in con.execute(
            f"SELECT DISTINCT {quote_ident(feature)} FROM {quote_ident(project.log_table)} "
            f"WHERE {quote_ident(feature)} IS NOT NULL ORDER BY 1 LIMIT {MAX_AUTO_VALUES + 1}"
        ).fetchall()
    ]
    if len(values) > MAX_AUTO_VALUES:
        raise ConfigError(
            f"{feature} has more than {MAX_AUTO_VALUES} values: a monitor each would drown the alerts; "
            "save the slices that matter and monitor those."
        )
    slices = [validate_slice(Slice.from_dict(_equals(feature, v)), project) for v in values]
    return [(str(v), s) for v, s in zip(values, slices)]


def _equals(feature: str, value) -> dict:
    return {"conditions": [{"column": feature, "op": "in", "values": [value]}]}


def get_budget(con: duckdb.DuckDBPyConnection, project: Project) -> Budget:
    row = con.execute("SELECT budget FROM sb_monitor_settings WHERE project_id = ?", [project.project_id]).fetchall()
    return Budget(float(row[0][0])) if row else Budget()


def set_budget(con: duckdb.DuckDBPyConnection, project: Project, false_alerts_per_month: float) -> Budget:
    budget = Budget(float(false_alerts_per_month))
    con.execute(
        "INSERT OR REPLACE INTO sb_monitor_settings VALUES (?, ?, ?)",
        [project.project_id, budget.false_alerts_per_month, utc_now()],
    )
    return budget

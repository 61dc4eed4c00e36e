"""The Overview: per model version and stage, volume, label coverage, metrics
and product outcomes, and their daily series.

Answered from the per-day rollup when the time window is whole days (always,
from the app), otherwise from the raw log; both give the same numbers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb
import pandas as pd

from analysis.metrics.registry import metrics_for
from analysis.metrics.sql import DAY, STAGE, VERSION, GroupKey, compute_metrics
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident


def outcome_units(products, outcomes: list[str]) -> dict:
    """For each outcome column, the product metric that is its plain sum (``sum(revenue)``),
    whose unit and format its totals and means are shown in."""

    def plain_sum(expression: str) -> str | None:
        m = re.fullmatch(r'\s*sum\s*\(\s*"?([A-Za-z_][A-Za-z0-9_ ]*?)"?\s*\)\s*', expression, re.IGNORECASE)
        return m.group(1) if m else None

    found = {plain_sum(p.expression): p for p in products}
    return {o: found[o] for o in outcomes if o in found}


def _metrics(con, project: Project, groups: list[GroupKey], scope: Scope, source: str | None) -> pd.DataFrame:
    if source is None:
        source = "rollup" if scope.day_aligned() else "log"
    if source == "log":
        return compute_metrics(con, project, group_by=groups, where=scope.to_sql())
    where = scope.to_rollup_sql()
    return compute_metrics(
        con,
        project,
        group_by=groups,
        where=where,
        source="rollup",
        curve=_curve_source(con, project, groups, scope, where),
    )


def _curve_source(con, project: Project, groups: list[GroupKey], scope: Scope, where) -> tuple | None:
    """Where a binary task's ROC and PR AUC come from when the rollup answers:
    the per-day figures when each group is one version x stage x day, the
    all-time figures when the window covers every day, else the log."""
    if project.task != "binary":
        return None
    aliases = {g.alias for g in groups}
    if {"model_version", "stage", "day"} <= aliases:
        return ("rollup", where)
    if aliases == {"model_version", "stage"} and _covers_all_days(con, project, scope):
        return ("ranks", Scope(scope.versions, scope.stages).to_rollup_sql())
    return ("log", scope.to_sql())


def _covers_all_days(con, project: Project, scope: Scope) -> bool:
    if scope.start is None and scope.end is None:
        return True
    first, last = con.execute(f"SELECT min(day), max(day) FROM {quote_ident(project.rollup_table)}").fetchall()[0]
    if first is None:
        return True
    return (scope.start is None or scope.start.date() <= first) and (scope.end is None or scope.end.date() > last)


def overview_table(
    con: duckdb.DuckDBPyConnection, project: Project, scope: Scope = Scope(), source: str | None = None
) -> pd.DataFrame:
    """One row per model version x stage with every metric and outcome sum/mean."""
    return _metrics(con, project, [VERSION, STAGE], scope, source)


@dataclass
class OverviewData:
    """What the Overview page shows for one scope."""

    table: pd.DataFrame
    daily: pd.DataFrame


def overview_data(con: duckdb.DuckDBPyConnection, project: Project, scope: Scope = Scope()) -> OverviewData:
    """The Overview's metrics table and daily series, on one connection."""
    return OverviewData(overview_table(con, project, scope), daily_series(con, project, scope))


def daily_series(
    con: duckdb.DuckDBPyConnection, project: Project, scope: Scope = Scope(), source: str | None = None
) -> pd.DataFrame:
    """One row per day x model version x stage: volume, label coverage, every metric."""
    frame = _metrics(con, project, [DAY, VERSION, STAGE], scope, source)
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def versions(con: duckdb.DuckDBPyConnection, project: Project) -> pd.DataFrame:
    """Model versions and stages present, with row counts and first/last day."""
    return con.execute(
        f"SELECT model_version, stage, sum(n) AS n_rows, min(day) AS first_day, max(day) AS last_day "
        f"FROM {quote_ident(project.rollup_table)} GROUP BY model_version, stage "
        "ORDER BY model_version, stage"
    ).df()


@dataclass
class ProjectSummary:
    name: str
    task: str
    positive_label: str | None
    negative_label: str | None
    n_rows: int
    n_labeled: int
    pending_labels: int
    versions: list[str]
    stages: list[str]
    first_timestamp: datetime | None
    last_timestamp: datetime | None
    features: dict[str, str]
    outcomes: list[str]
    last_ingest: datetime | None
    metrics: tuple[str, ...]
    external: str | None = None  # the Parquet dataset read in place, if any

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("first_timestamp", "last_timestamp", "last_ingest"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        d["metrics"] = list(d["metrics"])
        return d


def pending_labels(con: duckdb.DuckDBPyConnection, project: Project) -> int:
    """Labels still waiting for their predictions.

    Example-keyed labels stay as standing labels once applied; only those that
    match no logged prediction yet are waiting.
    """
    pending = quote_ident(project.pending_table)
    if not con.execute(f"SELECT count(*) FROM {pending}").fetchall()[0][0]:
        return 0
    log = quote_ident(project.log_table)
    # An anti-join: half the time of NOT IN over millions of example-keyed labels.
    return con.execute(
        f"SELECT count(*) FROM {pending} AS p WHERE p.key_kind = 'prediction' OR NOT EXISTS "
        f"(SELECT 1 FROM {log} AS l WHERE l.example_id = p.key)"
    ).fetchall()[0][0]


def project_summary(con: duckdb.DuckDBPyConnection, project: Project) -> ProjectSummary:
    log = quote_ident(project.log_table)
    first, last = con.execute(f'SELECT min("timestamp"), max("timestamp") FROM {log}').fetchall()[0]
    # Counts from the rollup (milliseconds at any size); regression's rollup
    # counts rows with both label and prediction, so its labels are counted here.
    rollup = quote_ident(project.rollup_table)
    labeled = {"binary": "sum(n_labeled)", "multiclass": "sum(CASE WHEN label IS NOT NULL THEN n ELSE 0 END)"}
    if project.task in labeled:
        n, labeled = con.execute(f"SELECT sum(n), {labeled[project.task]} FROM {rollup}").fetchall()[0]
    else:
        n, labeled = con.execute(f"SELECT count(*), count(label) FROM {log}").fetchall()[0]
    n, labeled = n or 0, labeled or 0
    vs = versions(con, project)
    last_ingest = con.execute(
        "SELECT max(ingested_at) FROM sb_ingests WHERE project_id = ?", [project.project_id]
    ).fetchall()[0][0]
    return ProjectSummary(
        name=project.name,
        task=project.task,
        positive_label=project.positive_label,
        negative_label=project.negative_label,
        n_rows=int(n),
        n_labeled=int(labeled),
        pending_labels=int(pending_labels(con, project)),
        versions=sorted(vs["model_version"].unique().tolist()),
        stages=sorted(vs["stage"].unique().tolist()),
        first_timestamp=first,
        last_timestamp=last,
        features={c.name: c.kind for c in project.features},
        outcomes=[c.name for c in project.outcomes],
        last_ingest=last_ingest,
        metrics=metrics_for(project.task),
        external=project.external,
    )

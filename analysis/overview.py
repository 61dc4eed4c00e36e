"""The Overview: per model version and stage, volume, label coverage, metrics
and product outcomes, and their daily series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from .metrics import GroupKey, compute_metrics, metrics_for
from .project import Project
from .scope import Scope
from .sql import quote_ident

VERSION_STAGE = [GroupKey("model_version", "model_version"), GroupKey("stage", "stage")]
DAY = GroupKey("day", 'CAST("timestamp" AS DATE)')


def overview_table(con: duckdb.DuckDBPyConnection, project: Project, scope: Scope = Scope()) -> pd.DataFrame:
    """One row per model version x stage with every metric and outcome sum/mean."""
    return compute_metrics(con, project, group_by=VERSION_STAGE, where=scope.to_sql())


def daily_series(con: duckdb.DuckDBPyConnection, project: Project, scope: Scope = Scope()) -> pd.DataFrame:
    """One row per day x model version x stage: volume, label coverage, every metric."""
    frame = compute_metrics(con, project, group_by=[DAY, *VERSION_STAGE], where=scope.to_sql())
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def versions(con: duckdb.DuckDBPyConnection, project: Project) -> pd.DataFrame:
    """Model versions and stages present, with row counts and time range."""
    return con.execute(
        f"SELECT model_version, stage, count(*) AS n_rows, min(\"timestamp\") AS first_seen, "
        f"max(\"timestamp\") AS last_seen FROM {quote_ident(project.log_table)} "
        "GROUP BY model_version, stage ORDER BY model_version, stage"
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

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        for k in ("first_timestamp", "last_timestamp", "last_ingest"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        d["metrics"] = list(d["metrics"])
        return d


def project_summary(con: duckdb.DuckDBPyConnection, project: Project) -> ProjectSummary:
    log = quote_ident(project.log_table)
    n, labeled, first, last = con.execute(
        f"SELECT count(*), count(label), min(\"timestamp\"), max(\"timestamp\") FROM {log}"
    ).fetchall()[0]
    # Example-keyed labels stay as standing labels once applied; only those that
    # matched nothing yet are waiting.
    pending = con.execute(
        f"SELECT count(*) FROM {quote_ident(project.pending_table)} p "
        f"WHERE p.key_kind = 'prediction' OR NOT EXISTS "
        f"(SELECT 1 FROM {log} l WHERE l.example_id = p.key)"
    ).fetchall()[0][0]
    vs = [r[0] for r in con.execute(f"SELECT DISTINCT model_version FROM {log} ORDER BY 1").fetchall()]
    sts = [r[0] for r in con.execute(f"SELECT DISTINCT stage FROM {log} ORDER BY 1").fetchall()]
    last_ingest = con.execute(
        "SELECT max(ingested_at) FROM sb_ingests WHERE project_id = ?", [project.project_id]
    ).fetchall()[0][0]
    return ProjectSummary(
        name=project.name, task=project.task, positive_label=project.positive_label,
        negative_label=project.negative_label, n_rows=int(n), n_labeled=int(labeled),
        pending_labels=int(pending), versions=vs, stages=sts, first_timestamp=first,
        last_timestamp=last, features={c.name: c.kind for c in project.features},
        outcomes=[c.name for c in project.outcomes], last_ingest=last_ingest,
        metrics=metrics_for(project.task),
    )

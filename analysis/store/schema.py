"""Database schema: the per-project log tables and what a project's tables are called
(the metadata tables, and how an older file becomes this version's: :mod:`.migrations`).

Everything that creates or alters a project's table lives here. A database holds any
number of projects. Each project has

* ``log_<id>``: one row per logged prediction, in native column types: the
  canonical columns below, then the project's feature columns and product
  outcome columns under their own names;
* ``pending_<id>``: labels and outcomes that arrived for predictions that are
  not logged yet (keyed by prediction id), and standing labels keyed by
  example id, applied to every prediction of that example as it arrives;
* ``members_<id>``: the members of the project's validation sets, one row per
  example and set version (version 0 is the working draft), with the label and
  the feature values the example had when it was promoted.
"""

from __future__ import annotations

import duckdb

from analysis.store.sql import quote_ident

TASKS = ("binary", "multiclass", "regression")
STAGES = ("offline", "shadow", "canary", "production")
DEFAULT_STAGE = "production"

# Canonical columns of every log table, in order. Types of prediction and label
# depend on the task (see ``label_type``).
CANONICAL_COLUMNS = (
    "prediction_id",
    "example_id",
    "example_key",
    "timestamp",
    "model_version",
    "stage",
    "prediction",
    "score",
    "label",
    "label_timestamp",
    "ingest_id",
)
RESERVED_NAMES = frozenset(CANONICAL_COLUMNS)

# Storage types a feature may have; anything else is converted or refused.
FEATURE_KINDS = ("categorical", "numeric", "boolean", "text", "timestamp")


def label_type(task: str) -> str:
    """DuckDB type of the prediction and label columns for a task."""
    return {"binary": "BOOLEAN", "multiclass": "VARCHAR", "regression": "DOUBLE"}[task]


def log_table(project_id: int) -> str:
    return f"log_{int(project_id)}"


def pending_table(project_id: int) -> str:
    return f"pending_{int(project_id)}"


def rollup_table(project_id: int) -> str:
    return f"rollup_{int(project_id)}"


def ranks_table(project_id: int) -> str:
    return f"ranks_{int(project_id)}"


def labeled_table(project_id: int) -> str:
    return f"labeled_{int(project_id)}"


def members_table(project_id: int) -> str:
    return f"members_{int(project_id)}"


# Metadata rows of a project, in the order they are deleted.
PROJECT_METADATA = (
    "sb_deliveries",
    "sb_webhooks",
    "sb_alert_events",
    "sb_alerts",
    "sb_monitor_observations",
    "sb_monitor_state",
    "sb_monitor_settings",
    "sb_monitors",
    "sb_reference_windows",
    "sb_key_repeats",
    "sb_engine",
    "sb_external",
    "sb_report_blocks",
    "sb_reports",
    "sb_saved_slices",
    "sb_valset_versions",
    "sb_valsets",
    "sb_product_metrics",
    "sb_gates",
    "sb_columns",
    "sb_ingests",
    "sb_projects",
)


# Binary rollup: additive counts and sums per version x stage x day, and the
# day's exact ranking statistics (see analysis.metrics.sql.curve_sql).
BINARY_SUMS = ("n_labeled", "n_scored", "tp", "fp", "fn", "tn", "ll_sum", "brier_sum")
CURVE_COLUMNS = ("n_pos", "n_neg", "auc_num", "ap_num")


def outcome_sum(name: str) -> str:
    """Rollup column holding the sum of an outcome."""
    return quote_ident(name + "__sum")


def outcome_count(name: str) -> str:
    """Rollup column holding the count of non-null values of an outcome."""
    return quote_ident(name + "__n")


def rollup_key_columns(task: str) -> list[str]:
    """Columns (besides version, stage, day) the rollup keeps distinct values of."""
    return {"multiclass": ["label", "prediction"]}.get(task, [])


def is_empty(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the database has no table or view at all: a file this connection
    has just created (Sliceboard's schema is not in it yet)."""
    return not con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database()"
    ).fetchall()[0][0]


def is_blank(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the database holds no data: no table but Sliceboard's own metadata, no
    project, and no write that changed stored data. That is a file just created, or the
    leftover of a first write that was interrupted before its data was committed."""
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = 'main'"
        ).fetchall()
    ]
    if any(not t.startswith("sb_") for t in tables):
        return False
    if "sb_projects" in tables and con.execute("SELECT count(*) FROM sb_projects").fetchall()[0][0]:
        return False
    return "sb_meta" not in tables or data_version(con) == 0


def bump_data_version(con: duckdb.DuckDBPyConnection) -> None:
    """Mark that stored data changed (caches key on this)."""
    con.execute("UPDATE sb_meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) WHERE key = 'data_version'")


def data_version(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT value FROM sb_meta WHERE key = 'data_version'").fetchall()
    return int(row[0][0]) if row else 0


def create_project_tables(
    con: duckdb.DuckDBPyConnection,
    project_id: int,
    task: str,
    features: list[tuple[str, str]],
    outcomes: list[str],
) -> None:
    """Create the log and pending tables of a new project."""
    lt = label_type(task)
    cols = [
        "prediction_id VARCHAR NOT NULL",
        "example_id VARCHAR NOT NULL",
        "example_key BIGINT NOT NULL",  # see analysis.store.example_key
        '"timestamp" TIMESTAMP NOT NULL',
        "model_version VARCHAR NOT NULL",
        "stage VARCHAR NOT NULL",
        f"prediction {lt}",
        "score DOUBLE",
        f"label {lt}",
        "label_timestamp TIMESTAMP",
        "ingest_id INTEGER NOT NULL",
    ]
    cols += [f"{quote_ident(name)} {dtype}" for name, dtype in features]
    cols += [f"{quote_ident(name)} DOUBLE" for name in outcomes]
    con.execute(f"CREATE TABLE {quote_ident(log_table(project_id))} ({', '.join(cols)})")
    pending_cols = [
        "key_kind VARCHAR NOT NULL",
        "key VARCHAR NOT NULL",
        f"label {lt}",
        "label_timestamp TIMESTAMP",
        "received_at TIMESTAMP NOT NULL",
        "ingest_id INTEGER NOT NULL",
    ] + [f"{quote_ident(name)} DOUBLE" for name in outcomes]
    con.execute(f"CREATE TABLE {quote_ident(pending_table(project_id))} ({', '.join(pending_cols)})")
    create_labeled_table(con, project_id)
    _create_rollup(con, project_id, task, outcomes)
    create_members_table(con, project_id, task, features)


def create_labeled_table(con: duckdb.DuckDBPyConnection, project_id: int) -> None:
    """An empty copy of the log table for its labeled rows.

    Labels are a minority of a log's rows and arrive late, scattered over its
    row groups: every metric, breakdown and error bucket reads only labeled
    rows, and reading them from a table of their own instead of filtering the
    whole log halves those scans. It is derived data, rebuilt with the rollup
    (``analysis.metrics.rollup.rebuild_days``) for every day a write touches.
    """
    con.execute(
        f"CREATE TABLE {quote_ident(labeled_table(project_id))} AS "
        f"SELECT * FROM {quote_ident(log_table(project_id))} LIMIT 0"
    )


def create_members_table(
    con: duckdb.DuckDBPyConnection, project_id: int, task: str, features: list[tuple[str, str]]
) -> None:
    """Validation-set members: an example at most once per set version (0 is the draft)."""
    cols = [
        "set_id INTEGER NOT NULL",
        "set_version INTEGER NOT NULL",
        "example_id VARCHAR NOT NULL",
        "prediction_id VARCHAR",
        f"label {label_type(task)}",
    ]
    cols += [f"{quote_ident(name)} {dtype}" for name, dtype in features]
    cols += [
        "reason VARCHAR NOT NULL",
        "source VARCHAR NOT NULL",
        "added_at TIMESTAMP NOT NULL",
        "PRIMARY KEY (set_id, set_version, example_id)",
    ]
    con.execute(f"CREATE TABLE {quote_ident(members_table(project_id))} ({', '.join(cols)})")


def _create_rollup(con: duckdb.DuckDBPyConnection, project_id: int, task: str, outcomes: list[str]) -> None:
    """The per-day rollup (see ``analysis.metrics.rollup``)."""
    lt = label_type(task)
    cols = ["model_version VARCHAR NOT NULL", "stage VARCHAR NOT NULL", "day DATE NOT NULL"]
    if task == "multiclass":
        cols += [f"label {lt}", f"prediction {lt}"]
    cols.append("n BIGINT NOT NULL")
    if task == "binary":
        cols += [f"{c} {'DOUBLE' if c.endswith('_sum') else 'BIGINT'} NOT NULL" for c in BINARY_SUMS]
        cols += [f"{c} DOUBLE NOT NULL" for c in CURVE_COLUMNS]
    if task == "regression":
        cols += [
            "n_labeled BIGINT NOT NULL",
            "sum_abs_error DOUBLE",
            "sum_sq_error DOUBLE",
            "sum_label DOUBLE",
            "sum_label_sq DOUBLE",
        ]
    for o in outcomes:
        cols += [f"{outcome_sum(o)} DOUBLE", f"{outcome_count(o)} BIGINT"]
    con.execute(f"CREATE TABLE {quote_ident(rollup_table(project_id))} ({', '.join(cols)})")
    if task == "binary":
        # Ranking statistics over each version x stage's whole history: ROC and
        # PR AUC do not add up over days, so the all-time figures are kept too.
        ranks = ["model_version VARCHAR NOT NULL", "stage VARCHAR NOT NULL"]
        ranks += [f"{c} DOUBLE NOT NULL" for c in CURVE_COLUMNS]
        con.execute(f"CREATE TABLE {quote_ident(ranks_table(project_id))} ({', '.join(ranks)})")


def drop_project_tables(con: duckdb.DuckDBPyConnection, project_id: int) -> None:
    for table in (
        log_table(project_id),
        labeled_table(project_id),
        pending_table(project_id),
        rollup_table(project_id),
        ranks_table(project_id),
        members_table(project_id),
    ):
        con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")


def add_outcome_column(con: duckdb.DuckDBPyConnection, project_id: int, name: str) -> None:
    """Add a product outcome column to a project's log and pending tables."""
    labeled = labeled_table(project_id)
    has_labeled = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [labeled]
    ).fetchall()[0][0]
    for table in (log_table(project_id), pending_table(project_id), *([labeled] if has_labeled else [])):
        con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(name)} DOUBLE")
    rollup = quote_ident(rollup_table(project_id))
    con.execute(f"ALTER TABLE {rollup} ADD COLUMN {outcome_sum(name)} DOUBLE")
    con.execute(f"ALTER TABLE {rollup} ADD COLUMN {outcome_count(name)} BIGINT")

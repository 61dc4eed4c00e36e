"""Database schema: the metadata tables, the per-project log tables, migrations.

Everything that creates or alters a table lives here. A database holds any
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
import sqlglot
from sqlglot import exp

from analysis.errors import SliceboardError
from analysis.store.example_key import example_key_sql
from analysis.store.sql import quote_ident

SCHEMA_VERSION = 12

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


def _migration_1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE sb_projects (
            project_id INTEGER PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            task VARCHAR NOT NULL,
            positive_label VARCHAR,
            negative_label VARCHAR,
            threshold DOUBLE NOT NULL,
            mapping_toml VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE sb_columns (
            project_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            role VARCHAR NOT NULL,
            dtype VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (project_id, name)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE sb_ingests (
            ingest_id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL,
            kind VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            ingested_at TIMESTAMP NOT NULL,
            rows_read BIGINT NOT NULL,
            details VARCHAR NOT NULL
        )
        """
    )


def _migration_2(con: duckdb.DuckDBPyConnection) -> None:
    """Saved slices: every edit is a new revision; deleting adds a deleted revision."""
    con.execute(
        """
        CREATE TABLE sb_saved_slices (
            project_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            revision INTEGER NOT NULL,
            description VARCHAR NOT NULL,
            definition VARCHAR NOT NULL,
            deleted BOOLEAN NOT NULL,
            saved_at TIMESTAMP NOT NULL,
            PRIMARY KEY (project_id, name, revision)
        )
        """
    )


def _migration_3(con: duckdb.DuckDBPyConnection) -> None:
    """Validation sets: the sets, their committed versions, and a members table per project."""
    con.execute(
        """
        CREATE TABLE sb_valsets (
            set_id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            description VARCHAR NOT NULL,
            owner VARCHAR,
            tags VARCHAR NOT NULL,
            criteria VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            UNIQUE (project_id, name)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE sb_valset_versions (
            project_id INTEGER NOT NULL,
            set_id INTEGER NOT NULL,
            version INTEGER NOT NULL,
            message VARCHAR NOT NULL,
            content_hash VARCHAR NOT NULL,
            n_members BIGINT NOT NULL,
            committed_at TIMESTAMP NOT NULL,
            PRIMARY KEY (set_id, version)
        )
        """
    )
    projects = con.execute("SELECT project_id, task FROM sb_projects ORDER BY project_id").fetchall()
    for pid, task in projects:
        features = con.execute(
            "SELECT name, dtype FROM sb_columns WHERE project_id = ? AND role = 'feature' ORDER BY position", [pid]
        ).fetchall()
        create_members_table(con, pid, task, features)


def _migration_4(con: duckdb.DuckDBPyConnection) -> None:
    """Product metrics (named aggregate expressions per project, in display order) and
    each project's deployment-gate criteria."""
    con.execute(
        """
        CREATE TABLE sb_gates (
            project_id INTEGER PRIMARY KEY,
            criteria VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE sb_product_metrics (
            project_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            expression VARCHAR NOT NULL,
            direction VARCHAR NOT NULL,
            unit VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (project_id, name)
        )
        """
    )


def _migration_5(con: duckdb.DuckDBPyConnection) -> None:
    """Reports: named, ordered blocks, each with the parameters that pin what it shows,
    the numbers it showed when added (or last refreshed) and the data's fingerprint then."""
    con.execute(
        """
        CREATE TABLE sb_reports (
            report_id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            title VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            UNIQUE (project_id, name)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE sb_report_blocks (
            project_id INTEGER NOT NULL,
            report_id INTEGER NOT NULL,
            block_id INTEGER NOT NULL,
            position INTEGER NOT NULL,
            kind VARCHAR NOT NULL,
            title VARCHAR NOT NULL,
            params VARCHAR NOT NULL,
            snapshot VARCHAR NOT NULL,
            fingerprint VARCHAR NOT NULL,
            computed_at TIMESTAMP NOT NULL,
            PRIMARY KEY (report_id, block_id)
        )
        """
    )


def _migration_6(con: duckdb.DuckDBPyConnection) -> None:
    """Projects whose log is an external Parquet dataset, read in place."""
    con.execute(
        """
        CREATE TABLE sb_external (
            project_id INTEGER PRIMARY KEY,
            uri VARCHAR NOT NULL,
            attached_at TIMESTAMP NOT NULL,
            refreshed_at TIMESTAMP NOT NULL
        )
        """
    )


def _migration_7(con: duckdb.DuckDBPyConnection) -> None:
    """Every log row gets its example key (analysis.store.example_key): stored logs get the
    column, computed from the example id; an external dataset's view computes it. And
    each project's engine (analysis.engines.settings)."""

    # Which engine answers a project's analyses (analysis.engines.settings); no row: DuckDB.
    con.execute(
        "CREATE TABLE sb_engine (project_id INTEGER PRIMARY KEY, engine VARCHAR NOT NULL, spark_remote VARCHAR)"
    )
    key = example_key_sql("example_id")
    for (project_id,) in con.execute("SELECT project_id FROM sb_projects ORDER BY project_id").fetchall():
        log = log_table(project_id)
        kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?", [log]).fetchall()
        has_key = con.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = ? AND column_name = 'example_key'",
            [log],
        ).fetchall()[0][0]
        if not kind or has_key:
            continue
        if kind[0][0] == "VIEW":
            # The view's query, rewritten on sqlglot's tree: its rows, with the key beside them.
            definition = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = ?", [log]).fetchall()[0][0]
            query = sqlglot.parse_one(definition, read="duckdb").expression
            keyed = exp.select(exp.Star(), exp.alias_(sqlglot.parse_one(key, read="duckdb"), "example_key")).from_(
                query.subquery("v6")
            )
            con.execute(f"DROP VIEW {quote_ident(log)}")
            con.execute(f"CREATE VIEW {quote_ident(log)} AS {keyed.sql(dialect='duckdb')}")
        else:
            con.execute(f"ALTER TABLE {quote_ident(log)} ADD COLUMN example_key BIGINT")
            con.execute(f"UPDATE {quote_ident(log)} SET example_key = {key}")


def _migration_8(con: duckdb.DuckDBPyConnection) -> None:
    """A stored log's labeled rows get a copy of their own (see create_labeled_table)."""
    for (project_id,) in con.execute("SELECT project_id FROM sb_projects ORDER BY project_id").fetchall():
        log = log_table(project_id)
        kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?", [log]).fetchall()
        if kind and kind[0][0] == "BASE TABLE":
            create_labeled_table(con, project_id)
            con.execute(
                f"INSERT INTO {quote_ident(labeled_table(project_id))} BY NAME "
                f"SELECT * FROM {quote_ident(log)} WHERE label IS NOT NULL"
            )


def _migration_9(con: duckdb.DuckDBPyConnection) -> None:
    """Whether each version x stage of a stored log repeats an example (analysis.ingest.key_repeats)."""
    con.execute(
        "CREATE TABLE sb_key_repeats (project_id INTEGER NOT NULL, model_version VARCHAR NOT NULL, "
        "stage VARCHAR NOT NULL, repeats BOOLEAN NOT NULL, PRIMARY KEY (project_id, model_version, stage))"
    )
    for (project_id,) in con.execute("SELECT project_id FROM sb_projects ORDER BY project_id").fetchall():
        log = log_table(project_id)
        kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?", [log]).fetchall()
        if kind and kind[0][0] == "BASE TABLE":
            con.execute(
                "INSERT INTO sb_key_repeats SELECT ?, model_version, stage, "
                f"count(*) <> count(DISTINCT example_key) FROM {quote_ident(log)} "
                "GROUP BY model_version, stage",
                [project_id],
            )


# Views that reading an input used to leave behind in the file when the process was
# killed halfway (inputs are now opened as temporary views, which never reach the file).
LEFTOVER_INPUT_VIEWS = ("sb_src", "sb_scored", "sb_preview")


def _migration_10(con: duckdb.DuckDBPyConnection) -> None:
    """Drop input views an interrupted ingest, labels run or re-scoring left in the file."""
    for name in LEFTOVER_INPUT_VIEWS:
        con.execute(f"DROP VIEW IF EXISTS main.{quote_ident(name)}")


def _migration_11(con: duckdb.DuckDBPyConnection) -> None:
    """Each project's reference window for label-free estimates and drift
    (analysis.estimation.reference): dates, both inclusive, or the most recent N fully
    labeled days; no row: the default."""
    con.execute(
        "CREATE TABLE sb_reference_windows (project_id INTEGER PRIMARY KEY, start_day DATE, end_day DATE, "
        "recent_days INTEGER, saved_at TIMESTAMP NOT NULL)"
    )


def _migration_12(con: duckdb.DuckDBPyConnection) -> None:
    """Monitors (analysis.monitors.definitions): each one's definition as JSON, by name; and
    each project's false-alarm budget (false alerts a month; no row: the default)."""
    con.execute(
        "CREATE TABLE sb_monitors (project_id INTEGER NOT NULL, name VARCHAR NOT NULL, definition VARCHAR NOT NULL, "
        "created_at TIMESTAMP NOT NULL, PRIMARY KEY (project_id, name))"
    )
    con.execute(
        "CREATE TABLE sb_monitor_settings (project_id INTEGER PRIMARY KEY, budget DOUBLE NOT NULL, "
        "saved_at TIMESTAMP NOT NULL)"
    )


# Ordered (version, function); each runs once, in a transaction, in order.
MIGRATIONS = (
    (1, _migration_1),
    (2, _migration_2),
    (3, _migration_3),
    (4, _migration_4),
    (5, _migration_5),
    (6, _migration_6),
    (7, _migration_7),
    (8, _migration_8),
    (9, _migration_9),
    (10, _migration_10),
    (11, _migration_11),
    (12, _migration_12),
)


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'sb_meta'").fetchall()[0][0]
    if not exists:
        return 0
    row = con.execute("SELECT value FROM sb_meta WHERE key = 'schema_version'").fetchall()
    return int(row[0][0]) if row else 0


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create or migrate the metadata schema to ``SCHEMA_VERSION``."""
    version = current_version(con)
    if version > SCHEMA_VERSION:
        raise SliceboardError(
            f"The database was written by a newer Sliceboard (schema {version}, "
            f"this one knows {SCHEMA_VERSION}). Upgrade Sliceboard to open it."
        )
    if version == SCHEMA_VERSION:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE TABLE IF NOT EXISTS sb_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        for number, migrate in MIGRATIONS:
            if number > version:
                migrate(con)
        con.execute("INSERT OR REPLACE INTO sb_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        con.execute("INSERT OR IGNORE INTO sb_meta VALUES ('data_version', '0')")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


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

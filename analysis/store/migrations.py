"""How a database file becomes this version's: the metadata tables, created by numbered
migrations that each run once, in order, in one transaction (``ensure_schema``)."""

from __future__ import annotations

import duckdb
import sqlglot
from sqlglot import exp

from analysis.errors import SliceboardError
from analysis.store.example_key import example_key_sql
from analysis.store.schema import create_labeled_table, create_members_table, labeled_table, log_table
from analysis.store.sql import quote_ident

SCHEMA_VERSION = 13


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


def _migration_13(con: duckdb.DuckDBPyConnection) -> None:
    """Monitor runs (analysis.monitors.run): each monitor's frozen reference and every
    period's observation; alerts, their history and their webhook deliveries; a project's
    webhook."""
    con.execute(
        "CREATE TABLE sb_monitor_state (project_id INTEGER NOT NULL, monitor VARCHAR NOT NULL, "
        "version VARCHAR NOT NULL, stage VARCHAR NOT NULL, reference VARCHAR NOT NULL, first_period DATE NOT NULL, "
        "PRIMARY KEY (project_id, monitor))"
    )
    con.execute(
        "CREATE TABLE sb_monitor_observations (project_id INTEGER NOT NULL, monitor VARCHAR NOT NULL, "
        "period DATE NOT NULL, x DOUBLE, n DOUBLE, rows BIGINT NOT NULL, PRIMARY KEY (project_id, monitor, period))"
    )
    con.execute(
        "CREATE TABLE sb_alerts (project_id INTEGER NOT NULL, alert_id INTEGER NOT NULL, monitor VARCHAR NOT NULL, "
        "slice VARCHAR NOT NULL, metric VARCHAR NOT NULL, kind VARCHAR NOT NULL, version VARCHAR NOT NULL, "
        "stage VARCHAR NOT NULL, period DATE NOT NULL, "
        "since DATE NOT NULL, last_period DATE NOT NULL, value DOUBLE, reference DOUBLE, evidence DOUBLE, "
        "impact DOUBLE, rows BIGINT, state VARCHAR NOT NULL, snoozed_until DATE, message VARCHAR NOT NULL, "
        "opened_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL, PRIMARY KEY (project_id, alert_id))"
    )
    con.execute(
        "CREATE TABLE sb_alert_events (project_id INTEGER NOT NULL, alert_id INTEGER NOT NULL, "
        "happened_at TIMESTAMP NOT NULL, period DATE, state VARCHAR NOT NULL, by_whom VARCHAR NOT NULL, note VARCHAR)"
    )
    con.execute(
        "CREATE TABLE sb_webhooks (project_id INTEGER PRIMARY KEY, url VARCHAR NOT NULL, saved_at TIMESTAMP NOT NULL)"
    )
    con.execute(
        "CREATE TABLE sb_deliveries (project_id INTEGER NOT NULL, alert_id INTEGER NOT NULL, "
        "attempt INTEGER NOT NULL, attempted_at TIMESTAMP NOT NULL, delivered BOOLEAN NOT NULL, status INTEGER, "
        "error VARCHAR)"
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
    (13, _migration_13),
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

"""Per-day rollup of each project's log: the Overview's fast path.

The rollup keeps, per model version, stage and day, the sufficient statistics
of every metric (binary: confusion counts, log-loss and Brier sums and the
day's exact ROC/PR ranking statistics; multiclass: counts per label x
prediction; regression: sums of errors and labels) and the sum and count of
every outcome column. Metrics computed from it equal those computed from the
raw log (the same formulas), so a ten-million-row log answers in milliseconds.

ROC and PR AUC do not add up over days, so a binary project also keeps each
version x stage's all-time ranking statistics (``ranks_<id>``); a window that
is neither one day nor all time computes them from the log.

It is derived data: every write rebuilds the days (and versions) it touched
from the log, in the same transaction, so it never drifts from the log. The
copy of a stored log's labeled rows (``analysis.store.schema.create_labeled_table``)
is rebuilt the same way, day by day.
"""

from __future__ import annotations

import duckdb

from analysis.metrics.sql import binary_sums, curve_sql, regression_sums, score_counts_sql
from analysis.store.project import Project
from analysis.store.schema import CURVE_COLUMNS, outcome_count, outcome_sum, rollup_key_columns
from analysis.store.sql import quote_ident

DAY_SQL = 'CAST("timestamp" AS DATE)'
KEYS = ("model_version", "stage", "day")


def _additive(project: Project, outcomes: list[str]) -> tuple[list[str], list[str], str]:
    """(rollup columns, expressions over log rows, group by) of the additive part."""
    keys = rollup_key_columns(project.task)
    cols = ["model_version", "stage", "day", *keys, "n"]
    exprs = ["model_version", "stage", DAY_SQL, *keys, "count(*)"]
    sums = {"binary": binary_sums, "regression": regression_sums}.get(project.task)
    for name, expr in sums() if sums else []:
        cols.append(name)
        exprs.append(expr)
    cols = [quote_ident(c) for c in cols]
    for name in outcomes:
        cols += [outcome_sum(name), outcome_count(name)]
        exprs += [f"sum({quote_ident(name)})", f"count({quote_ident(name)})"]
    return cols, exprs, ", ".join(["model_version", "stage", DAY_SQL, *keys])


def rebuild_days(con: duckdb.DuckDBPyConnection, project: Project, days_sql: str, params: list) -> None:
    """Recompute the rollup rows of the days ``days_sql`` selects (a one-column query)."""
    log = quote_ident(project.log_table)
    table = quote_ident(project.rollup_table)
    con.execute("DROP TABLE IF EXISTS sb_days")
    con.execute(f"CREATE TEMP TABLE sb_days AS SELECT DISTINCT * FROM ({days_sql}) AS d(day)", params)
    if not con.execute("SELECT count(*) FROM sb_days").fetchall()[0][0]:
        con.execute("DROP TABLE sb_days")
        return
    # Outcome columns are read from the catalog: a write may just have added one.
    outcomes = [
        r[0]
        for r in con.execute(
            "SELECT name FROM sb_columns WHERE project_id = ? AND role = 'outcome' ORDER BY position",
            [project.project_id],
        ).fetchall()
    ]
    cols, exprs, group = _additive(project, outcomes)
    in_days = f"{DAY_SQL} IN (SELECT day FROM sb_days)"
    if project.external is None:
        labeled = quote_ident(project.labeled_table)
        con.execute(f"DELETE FROM {labeled} WHERE {in_days}")
        con.execute(f"INSERT INTO {labeled} BY NAME SELECT * FROM {log} WHERE {in_days} AND label IS NOT NULL")
    additive = f"SELECT {', '.join(exprs)} FROM {log} WHERE {in_days} GROUP BY {group}"
    con.execute(f"DELETE FROM {table} WHERE day IN (SELECT day FROM sb_days)")
    if project.task != "binary":
        con.execute(f"INSERT INTO {table} ({', '.join(cols)}) {additive}")
    else:
        day_groups = [("model_version", "model_version"), ("stage", "stage"), ("day", DAY_SQL)]
        curve = curve_sql(score_counts_sql(log, day_groups, in_days), list(KEYS))
        a_cols = [f"a{i}" for i in range(len(exprs))]
        named = ", ".join(f"{e} AS {c}" for e, c in zip(exprs, a_cols))
        join = " AND ".join(f"a.a{i} = c.{k}" for i, k in enumerate(KEYS))
        con.execute(
            f"INSERT INTO {table} ({', '.join(cols)}, {', '.join(CURVE_COLUMNS)}) "
            f"SELECT {', '.join('a.' + c for c in a_cols)}, "
            f"{', '.join(f'coalesce(c.{c}, 0)' for c in CURVE_COLUMNS)} "
            f"FROM (SELECT {named} FROM {log} WHERE {in_days} GROUP BY {group}) AS a "
            f"LEFT JOIN ({curve}) AS c ON {join}"
        )
        _rebuild_ranks(con, project)
    con.execute("DROP TABLE sb_days")


def _rebuild_ranks(con: duckdb.DuckDBPyConnection, project: Project) -> None:
    """All-time ranking statistics of every version x stage with a row on a touched day."""
    log = quote_ident(project.log_table)
    ranks = quote_ident(project.ranks_table)
    con.execute("DROP TABLE IF EXISTS sb_pairs")
    con.execute(
        f"CREATE TEMP TABLE sb_pairs AS SELECT DISTINCT model_version, stage FROM {quote_ident(project.rollup_table)} "
        "WHERE day IN (SELECT day FROM sb_days)"
    )
    con.execute(f"DELETE FROM {ranks} WHERE (model_version, stage) IN (SELECT model_version, stage FROM sb_pairs)")
    # Pairs that no longer have any row (a replace moved them) are dropped too.
    con.execute(
        f"DELETE FROM {ranks} WHERE (model_version, stage) NOT IN "
        f"(SELECT DISTINCT model_version, stage FROM {quote_ident(project.rollup_table)})"
    )
    pairs_log = f"(SELECT l.* FROM {log} l JOIN sb_pairs p ON l.model_version = p.model_version AND l.stage = p.stage)"
    counts = score_counts_sql(pairs_log, [("model_version", "model_version"), ("stage", "stage")], "TRUE")
    con.execute(
        f"INSERT INTO {ranks} (model_version, stage, {', '.join(CURVE_COLUMNS)}) "
        f"{curve_sql(counts, ['model_version', 'stage'])}"
    )
    con.execute("DROP TABLE sb_pairs")


def days_of_rows(project: Project, where: str) -> str:
    """A query for the days of the log rows matching ``where``."""
    return f"SELECT DISTINCT {DAY_SQL} FROM {quote_ident(project.log_table)} WHERE {where}"


def rebuild_all(con: duckdb.DuckDBPyConnection, project: Project, reader=None) -> None:
    """Every day's rollup rows, and each version x stage's ranking figures, from the log
    as it is now. ``reader`` runs the aggregations (the project's Spark engine, for a
    lake too large for one machine to read); the local store keeps what they return,
    a few rows per version, stage and day."""
    if reader is None or reader is con:
        rebuild_days(con, project, days_of_rows(project, "TRUE"), [])
        return
    log, table = quote_ident(project.log_table), quote_ident(project.rollup_table)
    outcomes = [
        r[0]
        for r in con.execute(
            "SELECT name FROM sb_columns WHERE project_id = ? AND role = 'outcome' ORDER BY position",
            [project.project_id],
        ).fetchall()
    ]
    cols, exprs, group = _additive(project, outcomes)
    a_cols = [f"a{i}" for i in range(len(exprs))]
    named = ", ".join(f"{e} AS {c}" for e, c in zip(exprs, a_cols))
    frames = {"sb_additive": reader.execute(f"SELECT {named} FROM {log} GROUP BY {group}").df()}
    if project.task == "binary":
        day_groups = [("model_version", "model_version"), ("stage", "stage"), ("day", DAY_SQL)]
        frames["sb_curve"] = reader.execute(curve_sql(score_counts_sql(log, day_groups, "TRUE"), list(KEYS))).df()
        pairs = [("model_version", "model_version"), ("stage", "stage")]
        frames["sb_ranks"] = reader.execute(
            curve_sql(score_counts_sql(log, pairs, "TRUE"), ["model_version", "stage"])
        ).df()
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        con.execute(f"DELETE FROM {table}")
        if project.task != "binary":
            con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(a_cols)} FROM sb_additive")
            return
        join = " AND ".join(f"a.a{i} = c.{k}" for i, k in enumerate(KEYS))
        con.execute(
            f"INSERT INTO {table} ({', '.join(cols)}, {', '.join(CURVE_COLUMNS)}) "
            f"SELECT {', '.join('a.' + c for c in a_cols)}, "
            f"{', '.join(f'coalesce(c.{c}, 0)' for c in CURVE_COLUMNS)} "
            f"FROM sb_additive AS a LEFT JOIN sb_curve AS c ON {join}"
        )
        ranks = quote_ident(project.ranks_table)
        con.execute(f"DELETE FROM {ranks}")
        con.execute(
            f"INSERT INTO {ranks} (model_version, stage, {', '.join(CURVE_COLUMNS)}) "
            f"SELECT model_version, stage, {', '.join(CURVE_COLUMNS)} FROM sb_ranks"
        )
    finally:
        for name in frames:
            con.unregister(name)

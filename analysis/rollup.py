"""Per-day rollup of each project's log: the Overview's fast path.

The rollup keeps, per model version, stage and day, the sufficient statistics
of every metric (binary: counts per label x prediction x score; multiclass:
counts per label x prediction; regression: sums of errors and labels) and the
sum and count of every outcome column. Every metric the Overview shows is
computed from it exactly as from the raw log (the same SQL, weighted by the
counts), so a ten-million-row log answers in milliseconds.

It is derived data: every write rebuilds the days it touched from the log, in
the same transaction, so it never drifts from the log.
"""

from __future__ import annotations

import duckdb

from .project import Project
from .schema import outcome_count, outcome_sum, rollup_key_columns, rollup_table
from .sql import quote_ident

DAY_SQL = 'CAST("timestamp" AS DATE)'


def _select_from_log(project: Project) -> tuple[list[tuple[str, str]], str]:
    """([(rollup column, expression over log rows)], group by list)."""
    keys = rollup_key_columns(project.task)
    sel = [("model_version", "model_version"), ("stage", "stage"), ("day", DAY_SQL)]
    sel += [(k, k) for k in keys] + [("n", "count(*)")]
    if project.task == "regression":
        lab = "label IS NOT NULL AND prediction IS NOT NULL"
        err = "(label - prediction)"
        sel += [
            ("n_labeled", f"sum(CASE WHEN {lab} THEN 1 ELSE 0 END)"),
            ("sum_abs_error", f"sum(CASE WHEN {lab} THEN abs{err} END)"),
            ("sum_sq_error", f"sum(CASE WHEN {lab} THEN {err} * {err} END)"),
            ("sum_label", f"sum(CASE WHEN {lab} THEN label END)"),
            ("sum_label_sq", f"sum(CASE WHEN {lab} THEN label * label END)"),
        ]
    group = ", ".join(["model_version", "stage", DAY_SQL, *keys])
    return sel, group


def rebuild_days(con: duckdb.DuckDBPyConnection, project: Project, days_sql: str, params: list) -> None:
    """Recompute the rollup rows of the days ``days_sql`` selects (a one-column query)."""
    log = quote_ident(project.log_table)
    table = quote_ident(rollup_table(project.project_id))
    con.execute("DROP TABLE IF EXISTS sb_days")
    con.execute(f"CREATE TEMP TABLE sb_days AS SELECT DISTINCT * FROM ({days_sql}) AS d(day)", params)
    if con.execute("SELECT count(*) FROM sb_days").fetchall()[0][0]:
        sel, group = _select_from_log(project)
        cols = [quote_ident(c) for c, _ in sel]
        exprs = [e for _, e in sel]
        # Outcome columns are read from the catalog: a write may just have added one.
        outcomes = con.execute(
            "SELECT name FROM sb_columns WHERE project_id = ? AND role = 'outcome' ORDER BY position",
            [project.project_id],
        ).fetchall()
        for (name,) in outcomes:
            cols += [outcome_sum(name), outcome_count(name)]
            exprs += [f"sum({quote_ident(name)})", f"count({quote_ident(name)})"]
        con.execute(f"DELETE FROM {table} WHERE day IN (SELECT day FROM sb_days)")
        con.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {log} "
            f"WHERE {DAY_SQL} IN (SELECT day FROM sb_days) GROUP BY {group}"
        )
    con.execute("DROP TABLE sb_days")


def days_of_rows(project: Project, where: str) -> str:
    """A query for the days of the log rows matching ``where``."""
    return f"SELECT DISTINCT {DAY_SQL} FROM {quote_ident(project.log_table)} WHERE {where}"


def rebuild_all(con: duckdb.DuckDBPyConnection, project: Project) -> None:
    rebuild_days(con, project, days_of_rows(project, "TRUE"), [])

"""Projects whose predictions live in an external Parquet dataset, read in place.

A file, a glob or a folder (hive-partitioned folders such as
``model_version=.../day=.../part-0.parquet`` included; local, or on object storage
where DuckDB's ``httpfs`` reaches it) becomes a project without copying its rows: the
project's log is a view over the dataset that applies the column mapping, with the same
conversions as an ingest, so every analysis reads it as it reads a stored log, and
DuckDB prunes partitions and row groups by the filters of each query.

Attaching checks the whole dataset once (the mapping, every value's type, unique
prediction ids) and builds the per-day rollup the Overview reads; :func:`refresh`
rebuilds the rollup after files were added. Labels and outcomes are the dataset's
own: writes that would change the log (ingests, labels, re-scored validation sets)
are refused with a message. Curation data (saved slices, validation sets, reports,
product metrics, gate criteria) stays in the local database, keyed by ids.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

import duckdb
import sqlglot
from sqlglot import exp

from analysis.engines.settings import engine_connection, settings_from_mapping, store_settings
from analysis.errors import ConfigError, IngestError
from analysis.ingest import convert as cv
from analysis.ingest.mapping import Mapping, guess_mapping
from analysis.ingest.plan import plan_ingest
from analysis.ingest.predictions import check_unique_ids, next_ingest_id, record_ingest, register_project
from analysis.ingest.sources import close_source, count_rows, open_source, parquet_scan, resolve_path
from analysis.metrics.rollup import rebuild_all
from analysis.store.clock import utc_now
from analysis.store.project import Project, find_project, get_project
from analysis.store.schema import bump_data_version, labeled_table
from analysis.store.sql import in_transaction, quote_ident, sql_literal


def _literal(value) -> exp.Expression:
    """A bound value as a literal of the view's definition (which cannot bind parameters)."""
    from datetime import date

    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(int(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return exp.cast(exp.Literal.number(repr(value)), "DOUBLE")
        return exp.cast(exp.Literal.string(str(value)), "DOUBLE")  # 'nan', 'inf', '-inf'
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, str):
        if "\x00" in value:
            raise ConfigError("A value contains a NUL character.")
        return exp.Literal.string(value)
    raise ConfigError(f"Cannot write a {type(value).__name__} value into a view.")


def with_literals(sql: str, params: list) -> str:
    """``sql`` (a DuckDB expression) with each ``?`` placeholder replaced by its value as a
    literal, on the parsed tree: a ``?`` inside a quoted name or a string is not one."""
    tree = sqlglot.parse_one(f"SELECT {sql}", read="duckdb")
    holders = list(tree.find_all(exp.Placeholder, bfs=False))  # depth first: in the order written
    if len(holders) != len(params):
        raise RuntimeError(f"internal error: {len(holders)} placeholders for {len(params)} values in a view")
    for holder, value in zip(holders, params):
        holder.replace(_literal(value))
    return tree.expressions[0].sql(dialect="duckdb")


def attach_parquet(
    con: duckdb.DuckDBPyConnection,
    source: str,
    *,
    project: str,
    mapping: Mapping | None = None,
    version: str | None = None,
    stage: str | None = None,
) -> Project:
    """A new project over the Parquet dataset ``source`` (see the module docstring)."""
    name = (project or "").strip()
    if not name:
        raise ConfigError("A project name is required.")
    if find_project(con, name) is not None:
        raise ConfigError(f"A project named {name!r} exists already; an external dataset gets a project of its own.")
    pattern, kind, _ = resolve_path(str(source))
    if kind != "parquet":
        raise ConfigError(f"{source!r} is not a Parquet dataset; attach reads Parquet in place (ingest copies CSV).")
    src = open_source(con, str(source))
    try:
        plan = plan_ingest(con, src, name, None, mapping, version, stage)
        total = count_rows(con, src)
        if not total:
            raise IngestError("has no rows", source=src.name)
        # The whole dataset is checked now, so that a bad value is named here and not
        # met later as a failed query.
        cv.run_checks(con, src, plan.checks)
        check_unique_ids(con, src, plan.id_column, plan.exprs["prediction_id"])

        def work() -> Project:

            stored = (mapping or guess_mapping(src.columns)).with_(
                name=name, task=plan.task, positive_label=plan.positive
            )
            pid = register_project(con, name, plan, stored)
            ingest_id = next_ingest_id(con)
            log = quote_ident(f"log_{pid}")
            # The view has the stored log's columns, in its order and of its types.
            columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {log}").fetchall()]
            exprs = {c: with_literals(*e.strict()) for c, e in plan.exprs.items()}
            exprs["ingest_id"] = str(int(ingest_id))
            select = ", ".join(f"CAST(({exprs.get(c, 'NULL')}) AS {t}) AS {quote_ident(c)}" for c, t in columns)
            con.execute(f"DROP TABLE {log}")
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(labeled_table(pid))}")  # the view is read in place
            con.execute(f"CREATE VIEW {log} AS SELECT {select} FROM {parquet_scan(sql_literal(pattern), dataset=True)}")
            con.execute("INSERT INTO sb_external VALUES (?, ?, ?, ?)", [pid, pattern, utc_now(), utc_now()])
            attached = get_project(con, name)
            if mapping is not None and mapping.engine:
                store_settings(con, attached, settings_from_mapping(mapping.engine))
            _rebuild_rollup(con, attached)
            record_ingest(
                con,
                ingest_id,
                pid,
                "external",
                src.name,
                total,
                {"uri": pattern, "rows": total, "warnings": plan.warnings},
            )
            bump_data_version(con)
            return attached

        return in_transaction(con, work)
    finally:
        close_source(con, src)


def attach_warnings(con: duckdb.DuckDBPyConnection, project: Project) -> list[str]:
    """What attaching ``project``'s dataset warned about (such as infinite feature
    values read as missing)."""
    rows = con.execute(
        "SELECT details FROM sb_ingests WHERE project_id = ? AND kind = 'external' ORDER BY ingest_id DESC LIMIT 1",
        [project.project_id],
    ).fetchall()
    return list(json.loads(rows[0][0]).get("warnings", [])) if rows else []


def refresh(con: duckdb.DuckDBPyConnection, project: Project) -> int:
    """Rebuild the rollup of an external project from its dataset as it is now, on the
    project's engine; its rows."""
    if project.external is None:
        raise ConfigError(f"{project.name} is stored in this database, not read from an external dataset.")

    def work() -> int:
        _rebuild_rollup(con, project)
        con.execute("UPDATE sb_external SET refreshed_at = ? WHERE project_id = ?", [utc_now(), project.project_id])
        bump_data_version(con)
        return stored_rows(con, project)

    return in_transaction(con, work)


def _rebuild_rollup(con: duckdb.DuckDBPyConnection, project: Project) -> None:
    """The Overview's rollup of the whole dataset, aggregated by the project's engine:
    on Spark, the cluster reads the lake and only the per-day figures come back."""

    with engine_connection(con, project) as reader:
        rebuild_all(con, project, reader)


def stored_rows(con: duckdb.DuckDBPyConnection, project: Project) -> int:
    """Rows of the project as its rollup counts them (as of the last attach or refresh)."""
    rows = con.execute(f"SELECT sum(n) FROM {quote_ident(project.rollup_table)}").fetchall()[0][0]
    return int(rows or 0)

"""Whether a version x stage scored some example more than once, kept by every write.

A paired comparison joins two versions' rows on the example. It may join the rows as
they are only if neither side repeats an example; otherwise it takes each side's
latest prediction, which costs a sort. Proving uniqueness when comparing means a
distinct count over millions of keys. A write learns it for the price of checking its
own rows against the rows already stored (``sb_key_repeats``, schema 9).

The flag is sticky: once a version x stage repeats an example, it stays marked, even if
a later replace removes the repeat. The comparison is then exact, only slower. A lake
read in place has no flags, so the comparison proves uniqueness itself.
"""

from __future__ import annotations

import duckdb

from analysis.store.project import Project
from analysis.store.sql import quote_ident

TABLE = "sb_key_repeats"  # created by analysis.store.schema (migration 9)


def note_ingest(con: duckdb.DuckDBPyConnection, project: Project, ingest_id: int) -> None:
    """Mark each version x stage an ingest wrote to: does one of its new rows share an
    example with another row of its version and stage (new or stored)?"""
    log = quote_ident(project.log_table)
    con.execute(
        f"INSERT INTO {TABLE} SELECT ?, t.model_version, t.stage, r.model_version IS NOT NULL "
        f"FROM (SELECT DISTINCT model_version, stage FROM {log} WHERE ingest_id = ?) AS t "
        f"LEFT JOIN (SELECT DISTINCT n.model_version, n.stage FROM {log} AS n JOIN {log} AS o "
        "ON o.example_key = n.example_key AND o.model_version = n.model_version AND o.stage = n.stage "
        "AND o.rowid <> n.rowid WHERE n.ingest_id = ?) AS r "
        "ON r.model_version = t.model_version AND r.stage = t.stage "
        "ON CONFLICT (project_id, model_version, stage) DO UPDATE "
        f"SET repeats = {TABLE}.repeats OR excluded.repeats",
        [project.project_id, ingest_id, ingest_id],
    )


def examples_unique(con, project: Project, sides: list[tuple[str, str | None]]) -> bool | None:
    """True when no ``(version, stage)`` of ``sides`` repeats an example, False when one
    does, None when the store does not know: a lake, a side with no rows, or a side of
    every stage (a version may score an example once in each of two stages)."""
    if project.external is not None or any(stage is None for _, stage in sides):
        return None
    local = getattr(con, "local", None) or con  # a Spark connection keeps its metadata locally
    flags = {}
    for version, stage in sides:
        row = local.execute(
            f"SELECT repeats FROM {TABLE} WHERE project_id = ? AND model_version = ? AND stage = ?",
            [project.project_id, version, stage],
        ).fetchall()
        flags[(version, stage)] = row[0][0] if row else None
    if any(v is True for v in flags.values()):
        return False
    return None if any(v is None for v in flags.values()) else True

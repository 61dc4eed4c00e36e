"""Ingests and labels with the slow part outside the database lock.

Reading a file, converting every value and checking it is most of an ingest (a
million-row CSV takes seconds). Done inside the write, it would keep the app and
every other reader out of the database for all that time. Here it runs first, in a
staging database of the write's own, in a private folder (mode 0700) beside the
store that is removed afterwards; the store is then locked only to copy the
converted rows in and to update what depends on them (waiting labels, the daily
rollup). A bad input is refused before the store is even locked.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from analysis.ingest.labels import (
    LabelReport,
    apply_labels,
    attach_labels,
    check_label_options,
    convert_labels,
    plan_labels,
)
from analysis.ingest.mapping import Mapping, guess_mapping
from analysis.ingest.plan import plan_ingest, staged_plan
from analysis.ingest.predictions import (
    IngestReport,
    check_ingest_options,
    empty_report,
    explain_rejected_input,
    ingest_predictions,
    write_planned,
)
from analysis.ingest.sources import Source, close_source, count_rows, open_source
from analysis.store.project import Project, find_project, get_project
from analysis.store.sql import quote_ident, sql_literal

STAGING_PREFIX = "sliceboard-staging-"
STAGED_TABLE = "staged"
STAGING_ALIAS = "sb_staging"
_FOLDER = re.compile(re.escape(STAGING_PREFIX) + r"(?P<pid>\d+)-")


def ingest_staged(
    store,
    source,
    *,
    project: str | Project,
    mapping: Mapping | None = None,
    on_duplicate: str = "error",
    version: str | None = None,
    stage: str | None = None,
    source_name: str | None = None,
) -> IngestReport:
    """:func:`analysis.ingest.predictions.ingest_predictions` into ``store``, holding the store's
    lock only to write. Same arguments, checks, messages and report."""
    started = time.perf_counter()
    name = check_ingest_options(project, on_duplicate, stage)
    existing = None
    if store.exists():
        with store.read() as con:
            existing = find_project(con, name)
    if existing is not None and existing.external is not None:
        with store.write(create=False) as con:  # refused with the usual message
            return ingest_predictions(
                con,
                source,
                project=name,
                mapping=mapping,
                on_duplicate=on_duplicate,
                version=version,
                stage=stage,
                source_name=source_name,
            )
    with _staging_folder(store.path.parent) as folder:
        staged = folder / "staging.duckdb"
        with _reading(staged, store, source, source_name) as (con, src):
            if existing is None and mapping is None:
                mapping = guess_mapping(src.columns)
            total = count_rows(con, src)
            plan = plan_ingest(con, src, name, existing, mapping, version, stage)
            if total == 0:
                return empty_report(name, src, plan)
            columns = _stage_rows(con, src, plan)
        with store.write() as con:
            if find_project(con, name) != existing:
                # Another writer created or changed the project while the input was read:
                # plan again against what is stored now, inside the lock.
                report = ingest_predictions(
                    con,
                    source,
                    project=name,
                    mapping=mapping,
                    on_duplicate=on_duplicate,
                    version=version,
                    stage=stage,
                    source_name=source_name,
                )
            else:
                report = _write_staged(
                    con, staged, src, name, existing, staged_plan(plan, columns), mapping, total, on_duplicate
                )
    report.seconds = time.perf_counter() - started
    return report


def labels_staged(
    store,
    source,
    *,
    project: str | Project,
    key: str = "prediction",
    id_column: str | None = None,
    label_column: str | None = None,
    label_timestamp_column: str | None = None,
    outcomes: list[str] | None = None,
    overwrite: bool = False,
    source_name: str | None = None,
    positive_label=None,
    negative_label=None,
) -> LabelReport:
    """:func:`analysis.ingest.labels.attach_labels` into ``store``, holding the store's lock
    only to write. Same arguments, checks, messages and report."""
    started = time.perf_counter()
    with store.read() as con:
        proj, classes = check_label_options(con, project, key, positive_label, negative_label)
    with _staging_folder(store.path.parent) as folder:
        staged = folder / "staging.duckdb"
        with _reading(staged, store, source, source_name) as (con, src):
            plan = plan_labels(con, src, proj, key, id_column, label_column, label_timestamp_column, outcomes, classes)
            if not plan.report.rows_read:
                return plan.report
            plan = convert_labels(con, src, plan, STAGED_TABLE)
        with store.write(create=False) as con:
            if (
                get_project(con, proj.name),
                check_label_options(con, project, key, positive_label, negative_label)[1],
            ) != (proj, classes):
                # Another writer changed the project while the input was read: again, inside the lock.
                return attach_labels(
                    con,
                    source,
                    project=project,
                    key=key,
                    id_column=id_column,
                    label_column=label_column,
                    label_timestamp_column=label_timestamp_column,
                    outcomes=outcomes,
                    overwrite=overwrite,
                    source_name=source_name,
                    positive_label=positive_label,
                    negative_label=negative_label,
                )
            with _attached(con, staged, list(plan.exprs), src) as rows:
                return apply_labels(con, rows, proj, plan, overwrite, started)


def _stage_rows(con: duckdb.DuckDBPyConnection, src: Source, plan) -> list[str]:
    """Convert and check every row into the staging table; its columns."""
    columns = list(plan.exprs)
    strict = [plan.exprs[c].strict() for c in columns]
    select = ", ".join(f"({sql}) AS {quote_ident(c)}" for (sql, _), c in zip(strict, columns))
    params = [p for _, ps in strict for p in ps]
    try:
        con.execute(f"CREATE TABLE {STAGED_TABLE} AS SELECT {select} FROM {quote_ident(src.view)}", params)
    except duckdb.Error as exc:
        explain_rejected_input(con, src, plan, exc)
    repeats, unpredicted = con.execute(
        f"SELECT count(*) - count(DISTINCT prediction_id), count(*) - count(prediction) FROM {STAGED_TABLE}"
    ).fetchall()[0]
    if repeats or unpredicted:  # ids given twice; predictions derived from a missing score
        explain_rejected_input(con, src, plan, None)
    return columns


def _write_staged(
    con, staged: Path, src: Source, name: str, existing, plan, mapping, total: int, on_duplicate: str
) -> IngestReport:
    with _attached(con, staged, list(plan.exprs), src) as rows:
        return write_planned(con, rows, name, existing, plan, mapping, total, on_duplicate)


@contextmanager
def _attached(con, staged: Path, columns: list[str], src: Source) -> Iterator[Source]:
    """The staged rows as a source in the store's connection (attached read-only)."""
    con.execute(f"ATTACH {sql_literal(str(staged))} AS {STAGING_ALIAS} (READ_ONLY)")
    view = "sb_staged_rows"
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {STAGING_ALIAS}.main.{STAGED_TABLE}")
        yield Source(src.name, src.kind, view, columns, {}, False, False)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")
        con.execute(f"DETACH {STAGING_ALIAS}")


@contextmanager
def _reading(
    staged: Path, store, source, source_name: str | None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Source]]:
    """The input opened in the staging database ``staged``; both closed afterwards."""
    con = _staging_connection(staged, store)
    try:
        src = open_source(con, source, name=source_name)
        try:
            yield con, src
        finally:
            close_source(con, src)
    finally:
        con.close()


def _staging_connection(path: Path, store) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET memory_limit = ?", [store.memory_limit])
    if store.threads:
        con.execute("SET threads = ?", [int(store.threads)])
    return con


@contextmanager
def _staging_folder(parent: Path) -> Iterator[Path]:
    """A folder only this user can enter (mkdtemp makes it 0700), removed afterwards;
    folders left by staging processes that no longer run are removed first."""
    parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_abandoned_staging(parent: Path) -> list[Path]:
    """Remove staging folders in ``parent`` whose process has ended (killed halfway)."""
    removed = []
    for path in parent.glob(f"{STAGING_PREFIX}*"):
        match = _FOLDER.match(path.name)
        if not match or not path.is_dir() or path.is_symlink() or _running(int(match["pid"])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

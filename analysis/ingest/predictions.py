"""Ingest logged predictions from CSV, Parquet or a DataFrame into a project.

The whole input is checked: mapped columns exist, values convert to the stored
types, ids are unique in the input and (by default) new to the store, scores lie
in [0, 1] for classification, timestamps parse. The write is one transaction,
so a rejected input leaves the database as it was.

For speed the checks ride along the single INSERT pass: a value that does not
convert raises inside DuckDB, the transaction rolls back, and only then a
second pass over the input finds every offending column, row and count for the
message. A clean input is read once.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

import duckdb

from analysis.engines.settings import settings_from_mapping, store_settings
from analysis.errors import ConfigError, IngestError
from analysis.ingest import convert as cv
from analysis.ingest.key_repeats import note_ingest
from analysis.ingest.mapping import Mapping, guess_mapping, mapping_to_toml
from analysis.ingest.pending import apply_pending
from analysis.ingest.plan import Plan, plan_ingest
from analysis.ingest.sources import FILE_COLUMN, Source, close_source, count_rows, open_source
from analysis.ingest.values import SourceValue
from analysis.metrics.product import metrics_from_mapping, store_metrics
from analysis.metrics.rollup import days_of_rows, rebuild_days
from analysis.store.clock import utc_now
from analysis.store.project import Project, find_project, get_project, project_name, require_stored
from analysis.store.schema import (
    RESERVED_NAMES,
    STAGES,
    add_outcome_column,
    bump_data_version,
    create_project_tables,
)
from analysis.store.sql import quote_ident
from analysis.wording import agree, count, counted

DUPLICATE_POLICIES = ("error", "skip", "replace")


@dataclass
class IngestReport:
    """What an ingest did. ``to_dict()`` is the stable JSON form."""

    project: str
    source: str
    task: str
    rows_read: int
    inserted: int
    skipped_duplicates: int = 0
    replaced: int = 0
    labels_applied_from_pending: int = 0
    pending_conflicts: int = 0
    created_project: bool = False
    ingest_id: int | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def next_ingest_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM sb_ingests").fetchall()[0][0]


def record_ingest(con, ingest_id: int, project_id: int, kind: str, source: str, rows: int, details: dict) -> None:
    con.execute(
        "INSERT INTO sb_ingests VALUES (?, ?, ?, ?, ?, ?, ?)",
        [ingest_id, project_id, kind, source, utc_now(), rows, json.dumps(details, default=str)],
    )


# --- write --------------------------------------------------------------------------------


def ingest_predictions(
    con: duckdb.DuckDBPyConnection,
    source,
    *,
    project: str | Project,
    mapping: Mapping | None = None,
    on_duplicate: str = "error",
    version: str | None = None,
    stage: str | None = None,
    source_name: str | None = None,
) -> IngestReport:
    """Append predictions from ``source`` (path or DataFrame) to ``project``.

    The first ingest creates the project. ``mapping`` says which column is
    which; without it an existing project reuses its stored mapping and a new
    one is guessed from column names. ``version`` / ``stage`` set a constant
    model version / stage for every row (and win over a mapped column).
    ``on_duplicate`` decides what happens to prediction ids already stored:
    ``error`` (default) rejects the input, ``skip`` keeps the stored rows,
    ``replace`` overwrites them (labels and outcomes the input does not carry
    are kept).
    """
    started = time.perf_counter()
    name = check_ingest_options(project, on_duplicate, stage)
    src = open_source(con, source, name=source_name)
    try:
        report = _ingest(con, src, name, mapping, on_duplicate, version, stage)
    finally:
        close_source(con, src)
    report.seconds = time.perf_counter() - started
    return report


def check_ingest_options(project: str | Project, on_duplicate: str, stage: str | None) -> str:
    """Refuse bad options before any input is read; the project's name, trimmed."""
    project = project_name(project)
    if on_duplicate not in DUPLICATE_POLICIES:
        raise ConfigError(f"on_duplicate must be one of {', '.join(DUPLICATE_POLICIES)}, got {on_duplicate!r}.")
    if not project or not str(project).strip():
        raise ConfigError("A project name is required.")
    if stage is not None and stage.strip().lower() not in STAGES:
        raise ConfigError(f"stage {stage!r} is not one of {', '.join(STAGES)}.")
    return str(project).strip()


def _ingest(
    con,
    src: Source,
    project_name: str,
    mapping: Mapping | None,
    on_duplicate: str,
    version: str | None,
    stage: str | None,
) -> IngestReport:
    existing = find_project(con, project_name)
    if existing is not None:
        require_stored(existing, "an ingest")
    total = count_rows(con, src)
    plan = plan_ingest(con, src, project_name, existing, mapping, version, stage)
    if total == 0:
        return empty_report(project_name, src, plan)
    return write_planned(con, src, project_name, existing, plan, mapping, total, on_duplicate)


def empty_report(project_name: str, src: Source, plan: Plan) -> IngestReport:
    plan.warnings.append("the input has no rows; nothing was written")
    return IngestReport(project_name, src.name, plan.task, 0, 0, warnings=plan.warnings)


def write_planned(
    con,
    src: Source,
    project_name: str,
    existing: Project | None,
    plan: Plan,
    mapping: Mapping | None,
    total: int,
    on_duplicate: str,
) -> IngestReport:
    """Write the ``total`` rows of ``src`` as ``plan`` says, in one transaction."""
    view = quote_ident(src.view)
    pid_sql, pid_params = plan.exprs["prediction_id"].strict()

    dup_count = 0
    if existing is not None:
        dup_count = con.execute(
            f"SELECT count(*) FROM {view} WHERE ({pid_sql}) IN "
            f"(SELECT prediction_id FROM {quote_ident(existing.log_table)})",
            pid_params,
        ).fetchall()[0][0]
    if dup_count and on_duplicate == "error":
        sample = [
            r[0]
            for r in con.execute(
                f"SELECT i FROM (SELECT ({pid_sql}) AS i FROM {view}) WHERE i IN "
                f"(SELECT prediction_id FROM {quote_ident(existing.log_table)}) ORDER BY i LIMIT 5",
                pid_params,
            ).fetchall()
        ]
        raise IngestError(
            f"{dup_count} of {count(total, 'prediction id')} {agree(dup_count, 'are')} already stored in "
            f"project {project_name!r} "
            f"(for example {', '.join(repr(s) for s in sample)}); nothing was written. If this file was "
            "ingested before, nothing needs doing; to add only the new rows use --on-duplicate skip, to "
            "overwrite the stored rows --on-duplicate replace.",
            source=src.name,
            column=plan.id_column,
            count=dup_count,
        )

    con.execute("BEGIN TRANSACTION")
    try:
        report = _write(con, src, project_name, existing, plan, mapping, total, dup_count, on_duplicate)
        if mapping is not None and mapping.metrics:
            store_metrics(con, get_project(con, project_name), metrics_from_mapping(mapping.metrics))
        if mapping is not None and mapping.engine:
            store_settings(con, get_project(con, project_name), settings_from_mapping(mapping.engine))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report


def _write(
    con,
    src: Source,
    project_name: str,
    existing: Project | None,
    plan: Plan,
    mapping: Mapping | None,
    total: int,
    dup_count: int,
    on_duplicate: str,
) -> IngestReport:
    view = quote_ident(src.view)
    if existing is None:
        stored_mapping = (mapping or guess_mapping(src.columns)).with_(
            name=project_name, task=plan.task, positive_label=plan.positive, negative_label=plan.negative
        )
        pid = register_project(con, project_name, plan, stored_mapping)
    else:
        pid = existing.project_id
        if (plan.positive, plan.negative) != (existing.positive_label, existing.negative_label):
            con.execute(
                "UPDATE sb_projects SET positive_label = ?, negative_label = ? WHERE project_id = ?",
                [plan.positive, plan.negative, pid],
            )
        register_outcomes(con, existing, plan.outcomes_in_input)
    proj = get_project(con, project_name)
    log = quote_ident(proj.log_table)
    ingest_id = next_ingest_id(con)
    exprs = dict(plan.exprs)
    exprs["ingest_id"] = SourceValue("CAST(? AS INTEGER)", [ingest_id])
    columns = list(exprs)
    strict = [exprs[c].strict() for c in columns]
    select_sql = ", ".join(f"({sql}) AS {quote_ident(c)}" for (sql, _), c in zip(strict, columns))
    select_params = [p for _, params in strict for p in params]
    col_list = ", ".join(quote_ident(c) for c in columns)

    skipped = replaced = 0
    try:
        if dup_count and on_duplicate == "replace":
            replaced = dup_count
            _replace_rows(con, proj, view, select_sql, select_params, columns)
        elif dup_count and on_duplicate == "skip":
            skipped = dup_count
            pid_sql, pid_params = plan.exprs["prediction_id"].strict()
            con.execute(
                f"INSERT INTO {log} ({col_list}) SELECT {select_sql} FROM {view} WHERE ({pid_sql}) NOT IN "
                f"(SELECT prediction_id FROM {log} WHERE ingest_id <> ?)",
                select_params + pid_params + [ingest_id],
            )
        else:
            con.execute(f"INSERT INTO {log} ({col_list}) SELECT {select_sql} FROM {view}", select_params)
    except duckdb.Error as exc:
        _explain_failure(con, src, plan, exc)
    if con.execute(f"SELECT count(*) FROM {log} WHERE ingest_id = ? AND prediction IS NULL", [ingest_id]).fetchall()[0][
        0
    ]:
        _explain_failure(con, src, plan, None)  # a prediction derived from a missing score
    repeats = con.execute(
        f"SELECT count(*) - count(DISTINCT prediction_id) FROM {log} WHERE ingest_id = ?", [ingest_id]
    ).fetchall()[0][0]
    if repeats:
        check_unique_ids(con, src, plan.id_column, plan.exprs["prediction_id"])
    note_ingest(con, proj, ingest_id)
    applied, conflicts = apply_pending(con, proj, ingest_id)
    days = days_of_rows(proj, "ingest_id = ?")
    if replaced:
        rebuild_days(con, proj, f"{days} UNION SELECT day FROM sb_replaced_days", [ingest_id])
        con.execute("DROP TABLE sb_replaced_days")
    else:
        rebuild_days(con, proj, days, [ingest_id])
    warnings = plan.warnings
    if conflicts:
        warnings.append(
            f"{count(conflicts, 'waiting label')} disagreed with labels in this input; the input's labels were kept"
        )
    report = IngestReport(
        project=project_name,
        source=src.name,
        task=plan.task,
        rows_read=total,
        inserted=total - skipped,
        skipped_duplicates=skipped,
        replaced=replaced,
        labels_applied_from_pending=applied,
        pending_conflicts=conflicts,
        created_project=existing is None,
        ingest_id=ingest_id,
        warnings=warnings,
    )
    record_ingest(con, ingest_id, pid, "predictions", src.name, total, report.to_dict())
    bump_data_version(con)
    return report


def _explain_failure(con, src: Source, plan: Plan, exc: duckdb.Error | None) -> None:
    """The fast pass failed: find every offending column and row for the message."""
    con.execute("ROLLBACK")
    con.execute("BEGIN TRANSACTION")  # the caller rolls this one back
    explain_rejected_input(con, src, plan, exc)


def explain_rejected_input(con, src: Source, plan: Plan, exc: duckdb.Error | None) -> NoReturn:
    """Converting ``src`` failed with ``exc`` (or its ids repeat): raise the error that
    names every offending column, its first rows and how many rows fail."""
    cv.run_checks(con, src, plan.checks)
    check_unique_ids(con, src, plan.id_column, plan.exprs["prediction_id"])
    why = str(exc).splitlines()[0] if exc is not None else "rows without a prediction"
    raise IngestError(f"could not be ingested: {why}", source=src.name) from None


def register_project(con, name: str, plan: Plan, mapping: Mapping) -> int:
    pid = con.execute("SELECT coalesce(max(project_id), 0) + 1 FROM sb_projects").fetchall()[0][0]
    con.execute(
        "INSERT INTO sb_projects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [pid, name, plan.task, plan.positive, plan.negative, mapping.threshold, mapping_to_toml(mapping), utc_now()],
    )
    position = 0
    for fname, dtype, kind in plan.features:
        con.execute("INSERT INTO sb_columns VALUES (?, ?, 'feature', ?, ?, ?)", [pid, fname, dtype, kind, position])
        position += 1
    outcomes = list(mapping.outcomes)
    for oname in outcomes:
        con.execute("INSERT INTO sb_columns VALUES (?, ?, 'outcome', 'DOUBLE', 'outcome', ?)", [pid, oname, position])
        position += 1
    create_project_tables(con, pid, plan.task, [(f, d) for f, d, _ in plan.features], outcomes)
    return pid


def register_outcomes(con, project: Project, names: list[str]) -> list[str]:
    """Add outcome columns the project does not have yet; return the new ones."""
    have = {c.name.lower() for c in project.columns}
    added = []
    position = len(project.columns)
    for name in names:
        if name.lower() in have:
            continue
        if name in RESERVED_NAMES:
            raise ConfigError(f"{name!r} is a reserved column name and cannot be an outcome.")
        con.execute(
            "INSERT INTO sb_columns VALUES (?, ?, 'outcome', 'DOUBLE', 'outcome', ?)",
            [project.project_id, name, position],
        )
        add_outcome_column(con, project.project_id, name)
        position += 1
        have.add(name.lower())
        added.append(name)
    return added


def check_unique_ids(con, src: Source, id_col: str, pid_expr: SourceValue) -> None:
    view = quote_ident(src.view)
    sql, params = pid_expr.sql, pid_expr.params
    dup = con.execute(f"SELECT count(*) - count(DISTINCT ({sql})) FROM {view}", params).fetchall()[0][0]
    if not dup:
        return
    files = (
        f"list(DISTINCT {quote_ident(FILE_COLUMN)} ORDER BY {quote_ident(FILE_COLUMN)})" if src.multi_file else "NULL"
    )
    sample = con.execute(
        f"SELECT ({sql}) AS i, count(*) AS n, {files} FROM {view} GROUP BY 1 HAVING count(*) > 1 ORDER BY i LIMIT 5",
        params,
    ).fetchall()
    shown = ", ".join(
        f"{i!r} ({n} times" + (f" in {', '.join(Path(f).name for f in where)}" if where else "") + ")"
        for i, n, where in sample
    )
    raise IngestError(
        f"rejected, nothing was written.\n- column {id_col!r}: {counted(dup, 'row', 'repeat')} an id that appears "
        f"earlier in the input (for example {shown}); ids must be unique.",
        source=src.name,
        column=id_col,
        count=int(dup),
    )


def _replace_rows(con, proj: Project, view: str, select_sql: str, select_params: list, columns: list[str]) -> None:
    """Overwrite stored rows whose ids the input repeats; keep late fields the input lacks."""
    log = quote_ident(proj.log_table)
    con.execute("DROP TABLE IF EXISTS sb_new")
    con.execute("DROP TABLE IF EXISTS sb_replaced")
    con.execute(f"CREATE TEMP TABLE sb_new AS SELECT {select_sql} FROM {view}", select_params)
    con.execute(
        f"CREATE TEMP TABLE sb_replaced AS SELECT * FROM {log} "
        "WHERE prediction_id IN (SELECT prediction_id FROM sb_new)"
    )
    con.execute("DROP TABLE IF EXISTS sb_replaced_days")
    con.execute(
        'CREATE TEMP TABLE sb_replaced_days AS SELECT DISTINCT CAST("timestamp" AS DATE) AS day FROM sb_replaced'
    )
    con.execute(f"DELETE FROM {log} WHERE prediction_id IN (SELECT prediction_id FROM sb_new)")
    all_cols = [r[0] for r in con.execute(f"DESCRIBE {log}").fetchall()]
    late = {"label", "label_timestamp"} | {c.name for c in proj.outcomes}
    selects = []
    for c in all_cols:
        q = quote_ident(c)
        if c in columns and c in late:
            selects.append(f"coalesce(n.{q}, o.{q})")
        elif c in columns:
            selects.append(f"n.{q}")
        else:
            selects.append(f"o.{q}")
    con.execute(
        f"INSERT INTO {log} ({', '.join(quote_ident(c) for c in all_cols)}) SELECT {', '.join(selects)} "
        "FROM sb_new n LEFT JOIN sb_replaced o ON o.prediction_id = n.prediction_id"
    )
    con.execute("DROP TABLE sb_new")
    con.execute("DROP TABLE sb_replaced")

"""Ingest logged predictions from CSV, Parquet or a DataFrame into a project.

Everything is checked before anything is written: mapped columns exist, values
convert to the stored types, ids are unique in the input and (by default) new to
the store, scores lie in [0, 1] for classification, timestamps parse. The write
itself is one transaction, so a rejected input leaves the database as it was.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import duckdb

from . import convert as cv
from .errors import ConfigError, IngestError
from .mapping import LATE_ROLES, Mapping, guess_mapping, mapping_to_toml, normalize_class_value, parse_mapping
from .project import Project, find_project, get_project
from .schema import (
    DEFAULT_STAGE,
    RESERVED_NAMES,
    STAGES,
    add_outcome_column,
    bump_data_version,
    create_project_tables,
)
from .sources import Source, close_source, count_rows, open_source
from .sql import quote_ident

DUPLICATE_POLICIES = ("error", "skip", "replace")
_TEXT_MIN_AVG_LENGTH = 40
_TEXT_MIN_DISTINCT = 1000


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


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class _Expr:
    sql: str
    params: list = field(default_factory=list)


def _missing_columns(src: Source, wanted: list[str]) -> list[str]:
    have = set(src.columns)
    return [c for c in wanted if c not in have]


def _suggest(src: Source, name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, src.columns, n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _require_columns(src: Source, required) -> None:
    """``required``: {role: column} or [(role, column)]; every column must be in the input."""
    pairs = list(required.items()) if isinstance(required, dict) else list(required)
    problems = [
        f"column {col!r} (mapped as {role}) is not in the input{_suggest(src, col)}"
        for role, col in pairs
        if col not in src.columns
    ]
    if problems:
        first = next(col for _, col in pairs if col not in src.columns)
        raise IngestError(
            "rejected, nothing was written.\n- " + "\n- ".join(problems)
            + f"\nColumns in the input: {', '.join(src.columns)}",
            source=src.name,
            column=first,
        )


def _family(src: Source, column: str) -> str:
    # CSV is read as text; conversions go from text. Other sources keep their types.
    return "string" if src.raw_varchar else cv.type_family(src.types[column])


def _detected_family(src: Source, column: str) -> str:
    return cv.type_family(src.types[column])


def next_ingest_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM sb_ingests").fetchall()[0][0]


def record_ingest(con, ingest_id: int, project_id: int, kind: str, source: str, rows: int, details: dict) -> None:
    con.execute(
        "INSERT INTO sb_ingests VALUES (?, ?, ?, ?, ?, ?, ?)",
        [ingest_id, project_id, kind, source, utc_now(), rows, json.dumps(details, default=str)],
    )


def _infer_task(con, src: Source, mapping: Mapping) -> tuple[str, str]:
    cols = [c for c in (mapping.prediction, mapping.label) if c]
    if not cols:
        if mapping.score:
            return "binary", "only a score column is mapped"
        raise ConfigError("Map a prediction column (or a score column) to ingest predictions.")
    family = _detected_family(src, cols[0])
    expr = cv.to_class_value(cv.col(cols[0]), _family(src, cols[0]))
    n = con.execute(
        f"SELECT count(DISTINCT {expr}) FROM {quote_ident(src.view)}"
    ).fetchall()[0][0]
    if family == "float" and n > 20:
        return "regression", f"{cols[0]!r} holds {n} distinct numbers"
    if n <= 2:
        return "binary", f"{cols[0]!r} holds {n} distinct values"
    return "multiclass", f"{cols[0]!r} holds {n} distinct values"


def _class_values(con, src: Source, columns: list[str]) -> list[str]:
    parts = [
        f"SELECT {cv.to_class_value(cv.col(c), _family(src, c))} AS v FROM {quote_ident(src.view)}"
        for c in columns
    ]
    sql = f"SELECT DISTINCT v FROM ({' UNION ALL '.join(parts)}) WHERE v IS NOT NULL ORDER BY v LIMIT 50"
    return [r[0] for r in con.execute(sql).fetchall()]


def resolve_binary_classes(
    values: list[str], positive: str | None, negative: str | None, *, source: str
) -> tuple[str, str | None]:
    """Decide the positive and negative class names of a binary task."""
    vs = set(values)
    if positive is None:
        for pos, pair in (("true", {"true", "false"}), ("1", {"0", "1"}), ("yes", {"yes", "no"})):
            if vs and vs <= pair:
                positive = pos
                break
        else:
            shown = ", ".join(repr(v) for v in values[:10]) or "none"
            raise ConfigError(
                f"{source}: set positive_label in [project]: the class values are {shown}."
            )
    others = sorted(vs - {positive} - ({negative} if negative else set()))
    if negative is None and len(others) == 1:
        negative = others[0]
    return positive, negative


def binary_expr(value_sql: str, positive: str, negative: str | None) -> _Expr:
    if negative is None:
        return _Expr(f"CASE WHEN {value_sql} = ? THEN TRUE END", [positive])
    return _Expr(f"CASE WHEN {value_sql} = ? THEN TRUE WHEN {value_sql} = ? THEN FALSE END", [positive, negative])


def class_label_expr(
    src: Source, column: str, task: str, positive: str | None, negative: str | None
) -> tuple[_Expr, cv.Check]:
    """Stored prediction/label value for a column, and the check that it converts."""
    fam = _family(src, column)
    raw = cv.col(column)
    if task == "regression":
        e = _Expr(cv.to_double(raw, fam))
        problem = "are not numbers"
    elif task == "multiclass":
        e = _Expr(cv.to_class_value(raw, fam))
        problem = "are not valid class labels"
    else:
        e = binary_expr(cv.to_class_value(raw, fam), positive, negative)
        names = ", ".join(repr(v) for v in (positive, negative) if v is not None)
        problem = f"are not one of the classes {names}"
    check = cv.Check(
        column, problem, f"{cv.present(raw, fam)} AND ({e.sql}) IS NULL", list(e.params),
        value_sql=f"CAST({raw} AS VARCHAR)",
    )
    return e, check


def _feature_plan(con, src: Source, mapping: Mapping, warnings: list[str]) -> list[tuple[str, str, str]]:
    """[(name, dtype, kind)] for the features of a new project."""
    mapped = set(mapping.role_columns().values()) | set(mapping.outcomes)
    explicit = mapping.features is not None
    names = list(mapping.features) if explicit else [c for c in src.columns if c not in mapped]
    if explicit:
        _require_columns(src, [("feature", c) for c in names])
    plan: list[tuple[str, str, str]] = []
    for name in names:
        if name in RESERVED_NAMES:
            raise IngestError(
                f"column {name!r} would be a feature, but {name!r} is a reserved column name "
                "in Sliceboard. Map it to its role or rename it in the input.",
                source=src.name, column=name,
            )
        storage = cv.feature_storage(_detected_family(src, name), mapping.kinds.get(name))
        if storage is None:
            if explicit:
                raise IngestError(
                    f"feature {name!r} has type {src.types[name]}, which Sliceboard cannot slice "
                    "on; convert it to text, a number, a boolean or a timestamp.",
                    source=src.name, column=name,
                )
            warnings.append(f"column {name!r} ({src.types[name]}) was not ingested: unsupported type")
            continue
        plan.append((name, storage[0], storage[1]))
    lowered: dict[str, str] = {}
    for name, _, _ in plan + [(o, "", "") for o in mapping.outcomes]:
        key = name.lower()
        if key in lowered:
            raise IngestError(
                f"columns {lowered[key]!r} and {name!r} differ only in case; DuckDB treats them "
                "as the same name. Rename one of them.",
                source=src.name, column=name,
            )
        lowered[key] = name
    # Strings with long values or very many distinct values are free text.
    text_candidates = [n for n, dtype, kind in plan if kind == "categorical" and n not in mapping.kinds]
    if text_candidates:
        sel = ", ".join(
            f"approx_count_distinct({cv.col(n)}), avg(length(CAST({cv.col(n)} AS VARCHAR)))"
            for n in text_candidates
        )
        stats = con.execute(f"SELECT {sel} FROM {quote_ident(src.view)}").fetchall()[0]
        kinds = {}
        for i, n in enumerate(text_candidates):
            distinct, avg_len = stats[2 * i], stats[2 * i + 1]
            if (avg_len or 0) >= _TEXT_MIN_AVG_LENGTH or (distinct or 0) >= _TEXT_MIN_DISTINCT:
                kinds[n] = "text"
        plan = [(n, d, kinds.get(n, k)) for n, d, k in plan]
    return plan


def _register_project(con, name: str, task: str, positive, negative, mapping: Mapping,
                      features: list[tuple[str, str, str]], outcomes: list[str]) -> int:
    pid = con.execute("SELECT coalesce(max(project_id), 0) + 1 FROM sb_projects").fetchall()[0][0]
    stored = mapping.with_(name=name, task=task, positive_label=positive)
    con.execute(
        "INSERT INTO sb_projects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [pid, name, task, positive, negative, mapping.threshold, mapping_to_toml(stored), utc_now()],
    )
    position = 0
    for fname, dtype, kind in features:
        con.execute("INSERT INTO sb_columns VALUES (?, ?, 'feature', ?, ?, ?)", [pid, fname, dtype, kind, position])
        position += 1
    for oname in outcomes:
        con.execute("INSERT INTO sb_columns VALUES (?, ?, 'outcome', 'DOUBLE', 'outcome', ?)", [pid, oname, position])
        position += 1
    create_project_tables(con, pid, task, [(f, d) for f, d, _ in features], outcomes)
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


def ingest_predictions(
    con: duckdb.DuckDBPyConnection,
    source,
    *,
    project: str,
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
    if on_duplicate not in DUPLICATE_POLICIES:
        raise ConfigError(f"on_duplicate must be one of {', '.join(DUPLICATE_POLICIES)}, got {on_duplicate!r}.")
    if not project or not str(project).strip():
        raise ConfigError("A project name is required.")
    if stage is not None and stage.strip().lower() not in STAGES:
        raise ConfigError(f"stage {stage!r} is not one of {', '.join(STAGES)}.")
    src = open_source(con, source, name=source_name)
    try:
        return _ingest(con, src, project, mapping, on_duplicate, version, stage, started)
    finally:
        close_source(con, src)


def _ingest(con, src: Source, project_name: str, mapping: Mapping | None, on_duplicate: str,
            version: str | None, stage: str | None, started: float) -> IngestReport:
    warnings: list[str] = []
    existing = find_project(con, project_name)
    if existing is not None:
        if mapping is None:
            mapping = parse_mapping(existing.mapping_toml, origin=f"stored mapping of {project_name!r}")
        task = existing.task
        if mapping.task and mapping.task != task:
            raise ConfigError(
                f"Project {project_name!r} is a {task} task; the mapping says {mapping.task}."
            )
    else:
        mapping = guess_mapping(src.columns) if mapping is None else mapping
        mapping.validate()
        task = mapping.task
    if mapping.name and mapping.name != project_name:
        warnings.append(f"the mapping names project {mapping.name!r}; ingested into {project_name!r}")

    roles = mapping.role_columns()
    if version is not None:
        roles.pop("version", None)
    if stage is not None:
        roles.pop("stage", None)
    # Labels and outcomes may arrive later, in their own files.
    for role in LATE_ROLES:
        if role in roles and roles[role] not in src.columns:
            roles.pop(role)
    if "id" not in roles:
        raise ConfigError(
            f"{src.name}: no id column. Map one with [columns] id = \"...\" "
            f"(columns: {', '.join(src.columns)})."
        )
    if "version" not in roles and version is None:
        raise ConfigError(
            f"{src.name}: no model version. Map a column with [columns] version = \"...\" "
            "or give a constant version (--version)."
        )
    if "prediction" not in roles and "score" not in roles:
        raise ConfigError(f"{src.name}: map a prediction column (or, for binary tasks, a score column).")
    _require_columns(src, roles)
    outcomes_in_input = [o for o in mapping.outcomes if o in src.columns]

    total = count_rows(con, src)
    if total == 0:
        warnings.append("the input has no rows; nothing was written")
        return IngestReport(project_name, src.name, task or "", 0, 0, warnings=warnings,
                            seconds=time.perf_counter() - started)

    if task is None:
        task, why = _infer_task(con, src, mapping.with_(**{k: roles.get(k) for k in ("prediction", "label", "score")}))
        warnings.append(f"task not given; inferred {task!r} because {why}")
    if task == "regression" and "prediction" not in roles:
        raise ConfigError(f"{src.name}: a regression project needs a prediction column.")

    positive = existing.positive_label if existing else mapping.positive_label
    negative = existing.negative_label if existing else None
    if task == "binary":
        class_cols = [roles[r] for r in ("prediction", "label") if r in roles]
        values = _class_values(con, src, class_cols) if class_cols else []
        positive, negative = resolve_binary_classes(values, positive, negative, source=src.name)

    # Features
    if existing is None:
        features = _feature_plan(con, src, mapping.with_(**{}), warnings)
        feature_specs = [(n, d) for n, d, _ in features]
    else:
        features = [(c.name, c.dtype, c.kind) for c in existing.features]
        feature_specs = [(n, d) for n, d, _ in features]
        missing = [n for n, _ in feature_specs if n not in src.columns]
        if missing:
            raise IngestError(
                "rejected, nothing was written.\n- "
                + "\n- ".join(
                    f"feature column {m!r} of project {project_name!r} is not in the input{_suggest(src, m)}"
                    for m in missing
                ),
                source=src.name, column=missing[0],
            )
        known = set(roles.values()) | {n for n, _ in feature_specs} | {c.name for c in existing.outcomes} | set(mapping.outcomes)
        extra = [c for c in src.columns if c not in known and c not in mapping.role_columns().values()]
        if extra:
            warnings.append(f"columns not in the project were ignored: {', '.join(extra)}")
        outcomes_in_input = [c.name for c in existing.outcomes if c.name in src.columns] + [
            o for o in mapping.outcomes if o in src.columns and existing.column(o) is None
        ]

    ingest_now = utc_now()
    exprs: dict[str, _Expr] = {}
    checks: list[cv.Check] = []

    def add_required_check(column: str, problem: str, e: _Expr, fam: str) -> None:
        raw = cv.col(column)
        checks.append(cv.Check(column, "are empty" if problem == "" else problem,
                               f"NOT ({cv.present(raw, fam)})", []))

    # id and example id
    id_col = roles["id"]
    id_fam = _family(src, id_col)
    exprs["prediction_id"] = _Expr(cv.to_text(cv.col(id_col), id_fam))
    add_required_check(id_col, "have no id", exprs["prediction_id"], id_fam)
    if "example" in roles:
        ex_col = roles["example"]
        ex_fam = _family(src, ex_col)
        exprs["example_id"] = _Expr(cv.to_text(cv.col(ex_col), ex_fam))
        add_required_check(ex_col, "have no example id", exprs["example_id"], ex_fam)
    else:
        exprs["example_id"] = exprs["prediction_id"]
    # timestamp
    if "timestamp" in roles:
        ts_col = roles["timestamp"]
        fam = _family(src, ts_col)
        e = _Expr(cv.to_timestamp(cv.col(ts_col), fam))
        exprs["timestamp"] = e
        add_required_check(ts_col, "have no timestamp", e, fam)
        checks.append(cv.Check(ts_col, "are not timestamps",
                               f"{cv.present(cv.col(ts_col), fam)} AND ({e.sql}) IS NULL",
                               value_sql=f"CAST({cv.col(ts_col)} AS VARCHAR)"))
    else:
        exprs["timestamp"] = _Expr("CAST(? AS TIMESTAMP)", [ingest_now])
    # version
    if version is not None:
        exprs["model_version"] = _Expr("CAST(? AS VARCHAR)", [str(version)])
    else:
        v_col = roles["version"]
        fam = _family(src, v_col)
        exprs["model_version"] = _Expr(cv.to_text(cv.col(v_col), fam))
        add_required_check(v_col, "have no model version", exprs["model_version"], fam)
    # stage
    if stage is not None:
        exprs["stage"] = _Expr("CAST(? AS VARCHAR)", [stage.strip().lower()])
    elif "stage" in roles:
        s_col = roles["stage"]
        norm = f"lower(trim(CAST({cv.col(s_col)} AS VARCHAR)))"
        exprs["stage"] = _Expr(f"coalesce(NULLIF({norm}, ''), ?)", [DEFAULT_STAGE])
        placeholders = ", ".join("?" for _ in STAGES)
        checks.append(cv.Check(
            s_col, f"are not a stage ({', '.join(STAGES)})",
            f"NULLIF({norm}, '') IS NOT NULL AND {norm} NOT IN ({placeholders})", list(STAGES),
            value_sql=f"CAST({cv.col(s_col)} AS VARCHAR)",
        ))
    else:
        exprs["stage"] = _Expr("CAST(? AS VARCHAR)", [DEFAULT_STAGE])
    # score
    if "score" in roles:
        sc_col = roles["score"]
        fam = _family(src, sc_col)
        e = _Expr(cv.to_double(cv.col(sc_col), fam))
        exprs["score"] = e
        checks.append(cv.Check(sc_col, "are not numbers",
                               f"{cv.present(cv.col(sc_col), fam)} AND ({e.sql}) IS NULL",
                               value_sql=f"CAST({cv.col(sc_col)} AS VARCHAR)"))
        if task in ("binary", "multiclass"):
            checks.append(cv.Check(sc_col, "are outside [0, 1]",
                                   f"({e.sql}) < 0 OR ({e.sql}) > 1",
                                   value_sql=f"CAST({cv.col(sc_col)} AS VARCHAR)"))
    else:
        exprs["score"] = _Expr("CAST(NULL AS DOUBLE)")
    # prediction
    if "prediction" in roles:
        e, check = class_label_expr(src, roles["prediction"], task, positive, negative)
        exprs["prediction"] = e
        checks.append(check)
        add_required_check(roles["prediction"], "have no prediction", e, _family(src, roles["prediction"]))
    else:
        sc = exprs["score"]
        exprs["prediction"] = _Expr(f"({sc.sql}) >= ?", [*sc.params, mapping.threshold])
        add_required_check(roles["score"], "have no score (needed to derive the prediction)", sc,
                           _family(src, roles["score"]))
    # label
    if "label" in roles:
        e, check = class_label_expr(src, roles["label"], task, positive, negative)
        exprs["label"] = e
        checks.append(check)
    else:
        exprs["label"] = _Expr(f"CAST(NULL AS {existing.label_type if existing else _label_type(task)})")
    # label timestamp
    if "label_timestamp" in roles:
        lt_col = roles["label_timestamp"]
        fam = _family(src, lt_col)
        e = _Expr(cv.to_timestamp(cv.col(lt_col), fam))
        exprs["label_timestamp"] = e
        checks.append(cv.Check(lt_col, "are not timestamps",
                               f"{cv.present(cv.col(lt_col), fam)} AND ({e.sql}) IS NULL",
                               value_sql=f"CAST({cv.col(lt_col)} AS VARCHAR)"))
    elif "label" in roles:
        lab = exprs["label"]
        exprs["label_timestamp"] = _Expr(f"CASE WHEN ({lab.sql}) IS NOT NULL THEN CAST(? AS TIMESTAMP) END",
                                         [*lab.params, ingest_now])
    else:
        exprs["label_timestamp"] = _Expr("CAST(NULL AS TIMESTAMP)")
    # features
    for name, dtype, _kind in features:
        fam = _family(src, name)
        e = _Expr(cv.to_storage(cv.col(name), fam, dtype))
        exprs[name] = e
        checks.append(cv.Check(name, f"do not convert to {dtype}",
                               f"{cv.present(cv.col(name), fam)} AND ({e.sql}) IS NULL",
                               value_sql=f"CAST({cv.col(name)} AS VARCHAR)"))
    # outcomes
    for name in outcomes_in_input:
        fam = _family(src, name)
        e = _Expr(cv.to_double(cv.col(name), fam))
        exprs[name] = e
        checks.append(cv.Check(name, "are not numbers",
                               f"{cv.present(cv.col(name), fam)} AND ({e.sql}) IS NULL",
                               value_sql=f"CAST({cv.col(name)} AS VARCHAR)"))

    cv.run_checks(con, src, checks)
    view = quote_ident(src.view)
    pid_expr = exprs["prediction_id"]
    _check_unique_ids(con, src, id_col, pid_expr)

    con.execute("BEGIN TRANSACTION")
    try:
        created = False
        if existing is None:
            pid = _register_project(con, project_name, task, positive, negative, mapping,
                                    features, list(mapping.outcomes))
            created = True
        else:
            pid = existing.project_id
            if negative != existing.negative_label:
                con.execute("UPDATE sb_projects SET negative_label = ? WHERE project_id = ?", [negative, pid])
            register_outcomes(con, existing, outcomes_in_input)
        proj = get_project(con, project_name)
        log = quote_ident(proj.log_table)
        ingest_id = next_ingest_id(con)
        exprs["ingest_id"] = _Expr("CAST(? AS INTEGER)", [ingest_id])

        skipped = replaced = 0
        where = ""
        where_params: list = []
        dup_count = 0
        if not created:
            dup_count = con.execute(
                f"SELECT count(*) FROM {view} WHERE ({pid_expr.sql}) IN (SELECT prediction_id FROM {log})",
                pid_expr.params,
            ).fetchall()[0][0]
        if dup_count and on_duplicate == "error":
            sample = [r[0] for r in con.execute(
                f"SELECT ({pid_expr.sql}) AS i FROM {view} WHERE ({pid_expr.sql}) IN "
                f"(SELECT prediction_id FROM {log}) ORDER BY i LIMIT 5",
                pid_expr.params * 2,
            ).fetchall()]
            raise IngestError(
                f"{dup_count} of {total} prediction ids are already stored in project "
                f"{project_name!r} (for example {', '.join(repr(s) for s in sample)}); "
                "nothing was written. If this file was ingested before, nothing needs doing; "
                "to add only the new rows use --on-duplicate skip, to overwrite the stored rows "
                "--on-duplicate replace.",
                source=src.name, column=id_col, count=dup_count,
            )
        target_cols = list(exprs)
        select_sql = ", ".join(f"({exprs[c].sql})" for c in target_cols)
        select_params = [p for c in target_cols for p in exprs[c].params]
        col_list = ", ".join(quote_ident(c) for c in target_cols)
        if dup_count and on_duplicate == "skip":
            where = f" WHERE ({pid_expr.sql}) NOT IN (SELECT prediction_id FROM {log})"
            where_params = list(pid_expr.params)
            skipped = dup_count
        if dup_count and on_duplicate == "replace":
            replaced = dup_count
            _replace_rows(con, proj, view, exprs, target_cols)
        else:
            con.execute(
                f"INSERT INTO {log} ({col_list}) SELECT {select_sql} FROM {view}{where}",
                select_params + where_params,
            )
        inserted = total - skipped
        applied, conflicts = apply_pending(con, proj, ingest_id)
        report = IngestReport(
            project=project_name, source=src.name, task=task, rows_read=total, inserted=inserted,
            skipped_duplicates=skipped, replaced=replaced, labels_applied_from_pending=applied,
            pending_conflicts=conflicts, created_project=created, ingest_id=ingest_id,
            warnings=warnings,
        )
        if conflicts:
            warnings.append(
                f"{conflicts} waiting labels disagreed with labels in this input; the input's labels were kept"
            )
        record_ingest(con, ingest_id, pid, "predictions", src.name, total, report.to_dict())
        bump_data_version(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    report.seconds = time.perf_counter() - started
    return report


def _label_type(task: str) -> str:
    from .schema import label_type

    return label_type(task)


def _check_unique_ids(con, src: Source, id_col: str, pid_expr: _Expr) -> None:
    view = quote_ident(src.view)
    dup = con.execute(
        f"SELECT count(*) - count(DISTINCT ({pid_expr.sql})) FROM {view}", pid_expr.params
    ).fetchall()[0][0]
    if not dup:
        return
    sample = con.execute(
        f"SELECT ({pid_expr.sql}) AS i, count(*) AS n FROM {view} GROUP BY 1 HAVING count(*) > 1 "
        "ORDER BY i LIMIT 5",
        pid_expr.params,
    ).fetchall()
    shown = ", ".join(f"{i!r} ({n} times)" for i, n in sample)
    raise IngestError(
        f"rejected, nothing was written.\n- column {id_col!r}: {dup} rows repeat an id that "
        f"appears earlier in the input (for example {shown}); prediction ids must be unique.",
        source=src.name, column=id_col, count=int(dup),
    )


def _replace_rows(con, proj: Project, view: str, exprs: dict[str, _Expr], target_cols: list[str]) -> None:
    """Overwrite stored rows whose ids the input repeats; keep fields the input lacks."""
    log = quote_ident(proj.log_table)
    select_sql = ", ".join(f"({exprs[c].sql}) AS {quote_ident(c)}" for c in target_cols)
    params = [p for c in target_cols for p in exprs[c].params]
    con.execute("DROP TABLE IF EXISTS sb_new")
    con.execute("DROP TABLE IF EXISTS sb_replaced")
    con.execute(f"CREATE TEMP TABLE sb_new AS SELECT {select_sql} FROM {view}", params)
    con.execute(
        f"CREATE TEMP TABLE sb_replaced AS SELECT * FROM {log} "
        "WHERE prediction_id IN (SELECT prediction_id FROM sb_new)"
    )
    con.execute(f"DELETE FROM {log} WHERE prediction_id IN (SELECT prediction_id FROM sb_new)")
    all_cols = [r[0] for r in con.execute(f"DESCRIBE {log}").fetchall()]
    late = {"label", "label_timestamp"} | {c.name for c in proj.outcomes}
    selects = []
    for c in all_cols:
        q = quote_ident(c)
        if c in exprs and c in late:
            selects.append(f"coalesce(n.{q}, o.{q})")
        elif c in exprs:
            selects.append(f"n.{q}")
        else:
            selects.append(f"o.{q}")
    con.execute(
        f"INSERT INTO {log} ({', '.join(quote_ident(c) for c in all_cols)}) "
        f"SELECT {', '.join(selects)} FROM sb_new n "
        "LEFT JOIN sb_replaced o ON o.prediction_id = n.prediction_id"
    )
    con.execute("DROP TABLE sb_new")
    con.execute("DROP TABLE sb_replaced")


def _disagree(a: str, b: str, fields: list[str]) -> str:
    """SQL: some field is set on both sides to different values."""
    return " OR ".join(
        f"({a}.{quote_ident(f)} IS NOT NULL AND {b}.{quote_ident(f)} IS NOT NULL "
        f"AND {a}.{quote_ident(f)} <> {b}.{quote_ident(f)})"
        for f in fields
    ) or "FALSE"


def _fills(a: str, b: str, fields: list[str]) -> str:
    """SQL: ``b`` has a value for some field that ``a`` lacks."""
    return " OR ".join(
        f"({a}.{quote_ident(f)} IS NULL AND {b}.{quote_ident(f)} IS NOT NULL)" for f in fields
    ) or "FALSE"


def apply_pending(con, proj: Project, ingest_id: int) -> tuple[int, int]:
    """Apply waiting labels/outcomes to the rows of ``ingest_id``.

    Returns (rows that received a label or outcome, conflicts). Prediction-keyed
    entries are removed once applied; example-keyed entries stay, so that later
    predictions of the same example receive them too. Values already in the row
    win over waiting ones; disagreements are counted as conflicts.
    """
    pending = quote_ident(proj.pending_table)
    n = con.execute(f"SELECT count(*) FROM {pending}").fetchall()[0][0]
    if not n:
        return 0, 0
    log = quote_ident(proj.log_table)
    values = ["label"] + [c.name for c in proj.outcomes]
    fields = ["label", "label_timestamp"] + [c.name for c in proj.outcomes]
    applied = conflicts = 0
    for key_kind, key_col in (("prediction", "prediction_id"), ("example", "example_id")):
        conflicts += con.execute(
            f"SELECT count(*) FROM {log} l JOIN {pending} p ON p.key_kind = ? "
            f"AND l.{key_col} = p.key AND l.ingest_id = ? WHERE {_disagree('l', 'p', values)}",
            [key_kind, ingest_id],
        ).fetchall()[0][0]
        sets = ", ".join(
            f"{quote_ident(f)} = coalesce({log}.{quote_ident(f)}, p.{quote_ident(f)})" for f in fields
        )
        applied += con.execute(
            f"UPDATE {log} SET {sets} FROM {pending} p WHERE p.key_kind = ? AND "
            f"{log}.{key_col} = p.key AND {log}.ingest_id = ? AND ({_fills(log, 'p', fields)})",
            [key_kind, ingest_id],
        ).fetchall()[0][0]
        if key_kind == "prediction":
            con.execute(
                f"DELETE FROM {pending} WHERE key_kind = 'prediction' AND key IN "
                f"(SELECT prediction_id FROM {log} WHERE ingest_id = ?)",
                [ingest_id],
            )
    return applied, conflicts

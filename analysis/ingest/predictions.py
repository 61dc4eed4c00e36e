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
import re
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

import duckdb

from analysis.engines.settings import settings_from_mapping, store_settings
from analysis.errors import ConfigError, IngestError
from analysis.ingest import convert as cv
from analysis.ingest.class_labels import (
    MAX_MAPPED_VALUES,
    distinct_raw_values,
    mapped_case,
    normalized,
    resolve_binary_classes,
    settled_classes,
    stored_classes,
)
from analysis.ingest.key_repeats import note_ingest
from analysis.ingest.mapping import LATE_ROLES, Mapping, guess_mapping, mapping_to_toml, parse_mapping
from analysis.ingest.sources import FILE_COLUMN, Source, close_source, count_rows, open_source
from analysis.metrics.product import metrics_from_mapping, store_metrics
from analysis.metrics.rollup import days_of_rows, rebuild_days
from analysis.store.example_key import example_key_sql
from analysis.store.project import Project, find_project, get_project, project_name, require_stored
from analysis.store.schema import (
    DEFAULT_STAGE,
    RESERVED_NAMES,
    STAGES,
    add_outcome_column,
    bump_data_version,
    create_project_tables,
    label_type,
)
from analysis.store.sql import quote_ident
from analysis.wording import agree, count, counted

DUPLICATE_POLICIES = ("error", "skip", "replace")
IGNORED_COLUMNS = ("__index_level_0__", "example_key")  # pandas' index in Parquet; a key Sliceboard computes itself
_TEXT_MIN_AVG_LENGTH = 40
_TEXT_MIN_DISTINCT = 1000
_MAX_BINARY_VALUES = 50


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
class SourceValue:
    """A stored column's value from the source: ``sql`` yields NULL where the value
    is bad, ``fail`` (if any) is true exactly there."""

    sql: str
    params: list = field(default_factory=list)
    fail: str | None = None
    fail_params: list = field(default_factory=list)

    def strict(self) -> tuple[str, list]:
        """The value, raising inside DuckDB where it is bad (checked again slowly on failure)."""
        if self.fail is None:
            return self.sql, list(self.params)
        return (
            f"CASE WHEN {self.fail} THEN error('sliceboard: invalid value') ELSE {self.sql} END",
            list(self.fail_params) + list(self.params),
        )


def _suggest(src: Source, name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, src.columns, n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def require_columns(src: Source, required) -> None:
    """``required``: {role: column} or [(role, column)]; every column must be in the input."""
    pairs = list(required.items()) if isinstance(required, dict) else list(required)
    missing = [(role, col) for role, col in pairs if col not in src.columns]
    if missing:
        problems = [
            f"column {col!r} (mapped as {role}) is not in the input{_suggest(src, col)}" for role, col in missing
        ]
        raise IngestError(
            "rejected, nothing was written.\n- "
            + "\n- ".join(problems)
            + f"\nColumns in the input: {', '.join(src.columns)}",
            source=src.name,
            column=missing[0][1],
        )


def next_ingest_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM sb_ingests").fetchall()[0][0]


def record_ingest(con, ingest_id: int, project_id: int, kind: str, source: str, rows: int, details: dict) -> None:
    con.execute(
        "INSERT INTO sb_ingests VALUES (?, ?, ?, ?, ?, ?, ?)",
        [ingest_id, project_id, kind, source, utc_now(), rows, json.dumps(details, default=str)],
    )


# --- classes --------------------------------------------------------------------------


class ClassColumns:
    """Distinct raw values of the class columns of one input, read once."""

    def __init__(self, con, src: Source, columns: list[str], task: str) -> None:
        self.src = src
        self.task = task
        limit = _MAX_BINARY_VALUES if task == "binary" else MAX_MAPPED_VALUES
        self.raw = {c: distinct_raw_values(con, src, c, limit) for c in columns}
        if task == "binary":
            for c, values in self.raw.items():
                if values is None:
                    raise IngestError(
                        f"column {c!r} holds more than {limit} distinct values; a binary task has two "
                        "classes. Is this the right column, or the right task?",
                        source=src.name,
                        column=c,
                    )

    def values(self) -> list[str]:
        out = {normalized(r) for vals in self.raw.values() for r in (vals or [])}
        return sorted(v for v in out if v is not None)

    def resolve(self, positive: str | None, negative: str | None) -> tuple[str | None, str | None]:
        """The binary task's (positive, negative) classes, given what is known and this input."""
        return resolve_binary_classes(self.values(), positive, negative, source=self.src.name, columns=list(self.raw))

    def expr(self, column: str, positive: str | None, negative: str | None) -> SourceValue:
        """Stored prediction/label for ``column``; unknown classes make ``fail`` true."""
        raw, fam = cv.col(column), cv.source_family(self.src, column)
        present = cv.present(raw, fam, number=self.task == "regression")
        values = self.raw[column]
        if self.task == "regression":
            sql = cv.to_double(raw, fam)
            return SourceValue(sql, [], f"{present} AND ({sql}) IS NULL{_not_infinite(raw, fam)}")
        if self.task == "multiclass":
            if values is None:
                sql, params = cv.to_class_value(raw, fam), []
            else:
                sql, params = mapped_case(column, {r: normalized(r) for r in values}, "VARCHAR")
            return SourceValue(sql, params)
        classes = {positive: True}
        if negative is not None:
            classes[negative] = False
        mapping = {r: classes.get(normalized(r)) for r in values}
        sql, params = mapped_case(column, mapping, "BOOLEAN")
        bad = [r for r in values if normalized(r) is not None and normalized(r) not in classes]
        if not bad:
            return SourceValue(sql, params)
        return SourceValue(sql, params, f"{raw} IN ({', '.join('?' for _ in bad)})", bad)

    def problem(self, positive: str | None, negative: str | None) -> str:
        if self.task != "binary":
            return "are not numbers" if self.task == "regression" else "are not valid class labels"
        if positive is None or negative is None:
            known, role, other = (
                (positive, "positive", "negative") if negative is None else (negative, "negative", "positive")
            )
            return f"are not a class of this binary task ({role}: {known!r}; name the {other} class with {other}_label)"
        return f"are not one of the two classes {positive!r} (positive) and {negative!r} (negative)"


def class_check(column: str, e: SourceValue, problem: str) -> cv.Check | None:
    if e.fail is None:
        return None
    return cv.Check(column, problem, e.fail, list(e.fail_params), value_sql=f"CAST({cv.col(column)} AS VARCHAR)")


# --- plan -------------------------------------------------------------------------------


def _feature_plan(con, src: Source, mapping: Mapping, warnings: list[str]) -> list[tuple[str, str, str]]:
    """[(name, dtype, kind)] for the features of a new project."""
    mapped = set(mapping.role_columns().values()) | set(mapping.outcomes)
    explicit = mapping.features is not None
    if explicit:
        require_columns(src, [("feature", c) for c in mapping.features])
        names = list(mapping.features)
    else:
        names = [c for c in src.columns if c not in mapped and c not in IGNORED_COLUMNS]
    plan: list[tuple[str, str, str]] = []
    for name in names:
        if name in RESERVED_NAMES:
            raise IngestError(
                f"column {name!r} would be a feature, but {name!r} is a reserved column name in "
                "Sliceboard. Map it to its role or rename it in the input.",
                source=src.name,
                column=name,
            )
        storage = cv.feature_storage(cv.type_family(src.types[name]), mapping.kinds.get(name))
        if storage is None:
            if explicit:
                raise IngestError(
                    f"feature {name!r} has type {src.types[name]}, which Sliceboard cannot slice on; "
                    "convert it to text, a number, a boolean or a timestamp.",
                    source=src.name,
                    column=name,
                )
            warnings.append(f"column {name!r} ({src.types[name]}) was not ingested: unsupported type")
            continue
        plan.append((name, storage[0], storage[1]))
    lowered: dict[str, str] = {}
    for name in [n for n, _, _ in plan] + list(mapping.outcomes):
        if name.lower() in lowered:
            raise IngestError(
                f"columns {lowered[name.lower()]!r} and {name!r} differ only in case; DuckDB treats "
                "them as the same name. Rename one of them.",
                source=src.name,
                column=name,
            )
        lowered[name.lower()] = name
    # Strings with long values or very many distinct values are free text (judged on a sample).
    candidates = [n for n, _, kind in plan if kind == "categorical" and n not in mapping.kinds]
    if candidates:
        sel = ", ".join(
            f"approx_count_distinct({cv.col(n)}), avg(length(CAST({cv.col(n)} AS VARCHAR)))" for n in candidates
        )
        stats = con.execute(f"SELECT {sel} FROM (SELECT * FROM {quote_ident(src.view)} LIMIT 200000)").fetchall()[0]
        text = {
            n
            for i, n in enumerate(candidates)
            if (stats[2 * i + 1] or 0) >= _TEXT_MIN_AVG_LENGTH or (stats[2 * i] or 0) >= _TEXT_MIN_DISTINCT
        }
        plan = [(n, d, "text" if n in text else k) for n, d, k in plan]
    return plan


def value_expr(src: Source, column: str, dtype: str) -> SourceValue:
    """Convert a feature or outcome column to its storage type."""
    raw, fam = cv.col(column), cv.source_family(src, column)
    passthrough = {
        ("integer", "BIGINT"): f"CAST({raw} AS BIGINT)",
        ("float", "DOUBLE"): cv.to_double(raw, "float"),
        ("integer", "DOUBLE"): f"CAST({raw} AS DOUBLE)",
        ("boolean", "BOOLEAN"): raw,
        ("boolean", "DOUBLE"): f"CAST({raw} AS DOUBLE)",
        ("string", "VARCHAR"): f"CAST({raw} AS VARCHAR)",
        ("timestamp", "TIMESTAMP"): f"CAST({raw} AS TIMESTAMP)",
        ("timestamptz", "TIMESTAMP"): f"CAST({raw} AS TIMESTAMP)",
        ("date", "DATE"): raw,
        ("date", "TIMESTAMP"): f"CAST({raw} AS TIMESTAMP)",
    }.get((fam, dtype))
    if passthrough is not None:
        return SourceValue(passthrough)
    sql = cv.to_storage(raw, fam, dtype)
    inf = _not_infinite(raw, fam) if dtype == "DOUBLE" else ""
    return SourceValue(sql, [], f"{cv.present(raw, fam, number=dtype == 'DOUBLE')} AND ({sql}) IS NULL{inf}")


def _not_infinite(raw: str, family: str) -> str:
    """`` AND NOT <infinite>``: an infinity is not a conversion failure (it has rules of its own)."""
    inf = cv.infinite(raw, family)
    return f" AND NOT coalesce({inf}, FALSE)" if inf else ""


def must_be_finite(src: Source, column: str, e: SourceValue) -> tuple[SourceValue, cv.Check | None]:
    """A score, label or prediction must be finite: +-inf fails ``e`` and is named by the check."""
    check = cv.finite_check(src, column)
    if check is None:
        return e, None
    fail = f"({e.fail}) OR {check.condition}" if e.fail else check.condition
    return SourceValue(e.sql, e.params, fail, list(e.fail_params)), check


def numeric_class(task: str, src: Source, column: str) -> bool:
    """Labels and predictions that are numbers (regression, or numeric classes) must be finite."""
    return task == "regression" or (task == "multiclass" and cv.source_family(src, column) == "float")


def _conversion_check(column: str, e: SourceValue, problem: str) -> cv.Check | None:
    if e.fail is None:
        return None
    return cv.Check(column, problem, e.fail, list(e.fail_params), value_sql=f"CAST({cv.col(column)} AS VARCHAR)")


# C0 and C1 control characters (NUL, tab, line breaks, escape...), as RE2 escapes: the SQL
# text itself holds none. An id or version with one cannot be typed on a command line.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f]"


def has_control_character(text: str) -> bool:
    return re.search(CONTROL_CHARACTERS, text) is not None


def clean_text(column: str, e: SourceValue, what: str) -> tuple[SourceValue, cv.Check]:
    """``e`` (text) refusing control characters, and the check that names the rows."""
    bad = f"regexp_matches(coalesce(({e.sql}), ''), '{CONTROL_CHARACTERS}')"
    check = cv.Check(
        column,
        f"have a control character in their {what} (such as NUL, a tab or a line break)",
        bad,
        list(e.params),
        value_sql=f"CAST({cv.col(column)} AS VARCHAR)",
    )
    fail = f"({e.fail}) OR {bad}" if e.fail else bad
    return SourceValue(e.sql, e.params, fail, list(e.fail_params) + list(e.params)), check


def _required_check(src: Source, column: str, problem: str, *, number: bool = False) -> cv.Check:
    raw = cv.col(column)
    return cv.Check(column, problem, f"NOT ({cv.present(raw, cv.source_family(src, column), number=number)})")


@dataclass
class _Plan:
    task: str
    positive: str | None
    negative: str | None
    features: list[tuple[str, str, str]]
    outcomes_in_input: list[str]
    exprs: dict[str, SourceValue]
    checks: list[cv.Check]
    id_column: str
    warnings: list[str]


def _plan(
    con,
    src: Source,
    project_name: str,
    existing: Project | None,
    mapping: Mapping | None,
    version: str | None,
    stage: str | None,
    now: datetime,
) -> _Plan:
    """How each column of ``src`` becomes a stored value, and the checks every row must
    pass, in steps: the mapping and task, the roles present, the project's columns, the
    keys (ids, time, version, stage), the model's outputs and labels, then features and
    outcomes. Nothing is written."""
    warnings: list[str] = []
    mapping, task = _mapping_and_task(src, project_name, existing, mapping, warnings)
    roles = _roles(src, mapping, version, stage)
    class_cols = [roles[r] for r in ("prediction", "label") if r in roles]
    if task is None:
        task = _infer_task(con, src, roles)
        warnings.append(
            f"task not given; inferred {task!r} from the values of {class_cols[0] if class_cols else roles['score']!r}"
        )
    if task == "regression" and "prediction" not in roles:
        raise ConfigError(f"{src.name}: a regression project needs a prediction column.")
    classes = ClassColumns(con, src, class_cols, task)
    positive, negative = settled_classes(
        stored_classes(con, existing) if existing else (None, None),
        (mapping.positive_label, mapping.negative_label),
        project=project_name,
    )
    if task == "binary":
        positive, negative = classes.resolve(positive, negative)
    features, outcomes_in_input = _project_columns(con, src, project_name, existing, mapping, roles, warnings)

    exprs: dict[str, SourceValue] = {}
    checks: list[cv.Check | None] = []
    checks += _key_values(con, src, roles, version, stage, now, exprs)
    checks += _model_values(src, roles, task, classes, positive, negative, mapping.threshold, now, exprs)
    for name, dtype, _kind in features:
        e = value_expr(src, name, dtype)
        exprs[name] = e
        checks.append(_conversion_check(name, e, f"do not convert to {dtype}"))
    for name in outcomes_in_input:
        e = value_expr(src, name, "DOUBLE")
        exprs[name] = e
        checks.append(_conversion_check(name, e, "are not numbers"))
    warnings += cv.infinite_warnings(con, src, [n for n, dtype, _ in features if dtype == "DOUBLE"] + outcomes_in_input)
    return _Plan(
        task,
        positive,
        negative,
        features,
        outcomes_in_input,
        exprs,
        [c for c in checks if c is not None],
        roles["id"],
        warnings,
    )


def _mapping_and_task(
    src: Source, project_name: str, existing: Project | None, mapping: Mapping | None, warnings: list[str]
) -> tuple[Mapping, str | None]:
    """The mapping that applies (a new project's given or guessed one, an existing one's
    stored one unless given) and the task it names (None: to be inferred)."""
    if existing is not None:
        if mapping is None:
            mapping = parse_mapping(existing.mapping_toml, origin=f"stored mapping of {project_name!r}")
        task = existing.task
        if mapping.task and mapping.task != task:
            raise ConfigError(f"Project {project_name!r} is a {task} task; the mapping says {mapping.task}.")
    else:
        mapping = guess_mapping(src.columns) if mapping is None else mapping
        mapping.validate()
        task = mapping.task
    if mapping.name and mapping.name != project_name:
        warnings.append(f"the mapping names project {mapping.name!r}; ingested into {project_name!r}")

    return mapping, task


def _roles(src: Source, mapping: Mapping, version: str | None, stage: str | None) -> dict[str, str]:
    """Role -> column of the input, for the roles it has (a constant version or stage
    replaces its column; labels may arrive later, in their own files)."""
    roles = mapping.role_columns()
    if version is not None:
        roles.pop("version", None)
    if stage is not None:
        roles.pop("stage", None)
    for role in LATE_ROLES:  # labels may arrive later, in their own files
        if role in roles and roles[role] not in src.columns:
            roles.pop(role)
    if "id" not in roles:
        raise ConfigError(
            f'{src.name}: no id column. Map one with [columns] id = "..." (columns: {", ".join(src.columns)}).'
        )
    if "version" not in roles and version is None:
        raise ConfigError(
            f'{src.name}: no model version. Map a column with [columns] version = "..." '
            "or give a constant version (--version)."
        )
    if "prediction" not in roles and "score" not in roles:
        raise ConfigError(f"{src.name}: map a prediction column (or, for binary tasks, a score column).")
    require_columns(src, roles)

    return roles


def _project_columns(
    con, src: Source, project_name: str, existing: Project | None, mapping: Mapping, roles: dict, warnings: list[str]
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The features (name, stored type, kind) and the outcome columns this input brings:
    a new project's from the mapping and the values, an existing one's as stored."""
    if existing is None:
        features = _feature_plan(con, src, mapping, warnings)
        outcomes_in_input = [o for o in mapping.outcomes if o in src.columns]
    else:
        features = [(c.name, c.dtype, c.kind) for c in existing.features]
        missing = [n for n, _, _ in features if n not in src.columns]
        if missing:
            raise IngestError(
                "rejected, nothing was written.\n- "
                + "\n- ".join(
                    f"feature column {m!r} of project {project_name!r} is not in the input{_suggest(src, m)}"
                    for m in missing
                ),
                source=src.name,
                column=missing[0],
            )
        outcomes_in_input = [c.name for c in existing.outcomes if c.name in src.columns] + [
            o for o in mapping.outcomes if o in src.columns and existing.column(o) is None
        ]
        known = set(roles.values()) | {n for n, _, _ in features} | set(outcomes_in_input) | set(IGNORED_COLUMNS)
        extra = [c for c in src.columns if c not in known and c not in mapping.role_columns().values()]
        if extra:
            warnings.append(f"columns not in the project were ignored: {', '.join(extra)}")

    return features, outcomes_in_input


def _key_values(
    con, src: Source, roles: dict, version: str | None, stage: str | None, now: datetime, exprs: dict
) -> list[cv.Check | None]:
    """Into ``exprs``: the prediction and example ids, the example key, the timestamp, the
    model version and the stage; returns their checks."""
    checks: list[cv.Check | None] = []
    id_col = roles["id"]
    exprs["prediction_id"], check = clean_text(
        id_col, SourceValue(f"NULLIF({cv.to_text(cv.col(id_col), cv.source_family(src, id_col))}, '')"), "id"
    )
    checks += [_required_check(src, id_col, "have no id"), check]
    if "example" in roles:
        ex = roles["example"]
        exprs["example_id"], check = clean_text(
            ex, SourceValue(f"NULLIF({cv.to_text(cv.col(ex), cv.source_family(src, ex))}, '')"), "example id"
        )
        checks += [_required_check(src, ex, "have no example id"), check]
    else:
        exprs["example_id"] = exprs["prediction_id"]
    exprs["example_key"] = SourceValue(
        example_key_sql(f"({exprs['example_id'].sql})"), list(exprs["example_id"].params)
    )
    if "timestamp" in roles:
        ts = roles["timestamp"]
        e = value_expr(src, ts, "TIMESTAMP")
        exprs["timestamp"] = e
        checks += [_required_check(src, ts, "have no timestamp"), _conversion_check(ts, e, "are not timestamps")]
    else:
        exprs["timestamp"] = SourceValue("CAST(? AS TIMESTAMP)", [now])
    if version is not None:
        if has_control_character(str(version)):
            raise ConfigError(f"version {str(version)!r} has a control character (such as NUL, a tab or a line break).")
        exprs["model_version"] = SourceValue("CAST(? AS VARCHAR)", [str(version)])
    else:
        v = roles["version"]
        exprs["model_version"], check = clean_text(
            v, SourceValue(f"NULLIF({cv.to_text(cv.col(v), cv.source_family(src, v))}, '')"), "model version"
        )
        checks += [_required_check(src, v, "have no model version"), check]
    if stage is not None:
        exprs["stage"] = SourceValue("CAST(? AS VARCHAR)", [stage.strip().lower()])
    elif "stage" in roles:
        exprs["stage"], check = _stage_expr(con, src, roles["stage"])
        checks.append(check)
    else:
        exprs["stage"] = SourceValue("CAST(? AS VARCHAR)", [DEFAULT_STAGE])
    return checks


def _model_values(
    src: Source, roles: dict, task: str, classes, positive, negative, threshold, now: datetime, exprs: dict
) -> list[cv.Check | None]:
    """Into ``exprs``: the score, the prediction (or its derivation from the score), the
    label and its timestamp; returns their checks."""
    checks: list[cv.Check | None] = []
    if "score" in roles:
        sc = roles["score"]
        e = value_expr(src, sc, "DOUBLE")
        checks.append(_conversion_check(sc, e, "are not numbers"))
        e, finite = must_be_finite(src, sc, e)
        checks.append(finite)
        if task in ("binary", "multiclass"):
            out_of_range = f"({e.sql}) < 0 OR ({e.sql}) > 1"
            checks.append(
                cv.Check(
                    sc, "are outside [0, 1]", out_of_range, e.params * 2, value_sql=f"CAST({cv.col(sc)} AS VARCHAR)"
                )
            )
            fail = f"({e.fail}) OR {out_of_range}" if e.fail else out_of_range
            e = SourceValue(e.sql, e.params, fail, list(e.fail_params) + e.params * 2)
        exprs["score"] = e
    else:
        exprs["score"] = SourceValue("CAST(NULL AS DOUBLE)")
    problem = classes.problem(positive, negative)
    if "prediction" in roles:
        p = roles["prediction"]
        e = classes.expr(p, positive, negative)
        checks += [
            class_check(p, e, problem),
            _required_check(src, p, "have no prediction", number=task == "regression"),
        ]
        if numeric_class(task, src, p):
            e, finite = must_be_finite(src, p, e)
            checks.append(finite)
        missing = f"({e.sql}) IS NULL"
        fail = f"({e.fail}) OR {missing}" if e.fail else missing
        exprs["prediction"] = SourceValue(e.sql, e.params, fail, list(e.fail_params) + e.params)
    else:
        # Derived from the score: a row without a score would have no prediction (and
        # could not be evaluated), so an ingest refuses it like a row without a prediction
        # (found after the fast pass, see _write). An attached dataset's view gives such a
        # row (in a file added later) no prediction, and every metric leaves it out.
        sc = exprs["score"]
        exprs["prediction"] = SourceValue(f"({sc.sql}) >= ?", [*sc.params, threshold])
        checks.append(
            _required_check(src, roles["score"], "have no score (needed to derive the prediction)", number=True)
        )
    if "label" in roles:
        lab = roles["label"]
        e = classes.expr(lab, positive, negative)
        checks.append(class_check(lab, e, problem))
        if numeric_class(task, src, lab):
            e, finite = must_be_finite(src, lab, e)
            checks.append(finite)
        exprs["label"] = e
    else:
        exprs["label"] = SourceValue(f"CAST(NULL AS {label_type(task)})")
    if "label_timestamp" in roles:
        lt = roles["label_timestamp"]
        e = value_expr(src, lt, "TIMESTAMP")
        checks.append(_conversion_check(lt, e, "are not timestamps"))
        exprs["label_timestamp"] = e
    elif "label" in roles:
        lab = exprs["label"]
        exprs["label_timestamp"] = SourceValue(
            f"CASE WHEN ({lab.sql}) IS NOT NULL THEN CAST(? AS TIMESTAMP) END", [*lab.params, now]
        )
    else:
        exprs["label_timestamp"] = SourceValue("CAST(NULL AS TIMESTAMP)")
    return checks


def _stage_expr(con, src: Source, column: str) -> tuple[SourceValue, cv.Check]:
    values = distinct_raw_values(con, src, column) or []
    mapping = {}
    for raw in values:
        text = str(raw).strip().lower()
        mapping[raw] = text if text else DEFAULT_STAGE
    sql, params = mapped_case(column, mapping, "VARCHAR")
    bad = [r for r, s in mapping.items() if s not in STAGES]
    fail = f"{cv.col(column)} IN ({', '.join('?' for _ in bad)})" if bad else None
    e = SourceValue(f"coalesce({sql}, ?)", params + [DEFAULT_STAGE], fail, bad)
    check = cv.Check(
        column,
        f"are not a stage ({', '.join(STAGES)})",
        fail or "FALSE",
        bad,
        value_sql=f"CAST({cv.col(column)} AS VARCHAR)",
    )
    return e, check


def _infer_task(con, src: Source, roles: dict[str, str]) -> str:
    column = roles.get("prediction") or roles.get("label")
    if column is None:
        return "binary"
    raw = distinct_raw_values(con, src, column, limit=50)
    if raw is None:
        return "regression" if cv.type_family(src.types[column]) in ("float", "integer") else "multiclass"
    values = {normalized(r) for r in raw} - {None}
    return "binary" if len(values) <= 2 else "multiclass"


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


def plan_ingest(
    con,
    src: Source,
    project_name: str,
    existing: Project | None,
    mapping: Mapping | None,
    version: str | None,
    stage: str | None,
) -> _Plan:
    """How each stored column is computed from ``src`` and checked (nothing is written)."""
    return _plan(con, src, project_name, existing, mapping, version, stage, utc_now())


def empty_report(project_name: str, src: Source, plan: _Plan) -> IngestReport:
    plan.warnings.append("the input has no rows; nothing was written")
    return IngestReport(project_name, src.name, plan.task, 0, 0, warnings=plan.warnings)


def staged_plan(plan: _Plan, columns: list[str]) -> _Plan:
    """The plan for rows already converted by ``plan`` into ``columns`` (a staged copy):
    every stored column is read as it is, and there is nothing left to check."""
    return replace(plan, exprs={c: SourceValue(quote_ident(c)) for c in columns}, checks=[])


def write_planned(
    con,
    src: Source,
    project_name: str,
    existing: Project | None,
    plan: _Plan,
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
    plan: _Plan,
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


def _explain_failure(con, src: Source, plan: _Plan, exc: duckdb.Error | None) -> None:
    """The fast pass failed: find every offending column and row for the message."""
    con.execute("ROLLBACK")
    con.execute("BEGIN TRANSACTION")  # the caller rolls this one back
    explain_rejected_input(con, src, plan, exc)


def explain_rejected_input(con, src: Source, plan: _Plan, exc: duckdb.Error | None) -> NoReturn:
    """Converting ``src`` failed with ``exc`` (or its ids repeat): raise the error that
    names every offending column, its first rows and how many rows fail."""
    cv.run_checks(con, src, plan.checks)
    check_unique_ids(con, src, plan.id_column, plan.exprs["prediction_id"])
    why = str(exc).splitlines()[0] if exc is not None else "rows without a prediction"
    raise IngestError(f"could not be ingested: {why}", source=src.name) from None


def register_project(con, name: str, plan: _Plan, mapping: Mapping) -> int:
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


# --- waiting labels ------------------------------------------------------------------------


def disagree_sql(a: str, b: str, fields: list[str]) -> str:
    """SQL: some field is set on both sides to different values."""
    return (
        " OR ".join(
            f"({a}.{quote_ident(f)} IS NOT NULL AND {b}.{quote_ident(f)} IS NOT NULL "
            f"AND {a}.{quote_ident(f)} <> {b}.{quote_ident(f)})"
            for f in fields
        )
        or "FALSE"
    )


def fills_sql(a: str, b: str, fields: list[str]) -> str:
    """SQL: ``b`` has a value for some field that ``a`` lacks."""
    return (
        " OR ".join(f"({a}.{quote_ident(f)} IS NULL AND {b}.{quote_ident(f)} IS NOT NULL)" for f in fields) or "FALSE"
    )


def apply_pending(con, proj: Project, ingest_id: int) -> tuple[int, int]:
    """Apply waiting labels/outcomes to the rows of ``ingest_id``.

    Returns (rows that received a label or outcome, conflicts). Prediction-keyed
    entries are removed once applied; example-keyed entries stay, so that later
    predictions of the same example receive them too. Values already in the row
    win over waiting ones; disagreements are counted as conflicts.
    """
    pending = quote_ident(proj.pending_table)
    if not con.execute(f"SELECT count(*) FROM {pending}").fetchall()[0][0]:
        return 0, 0
    log = quote_ident(proj.log_table)
    values = ["label"] + [c.name for c in proj.outcomes]
    fields = ["label", "label_timestamp"] + [c.name for c in proj.outcomes]
    applied = conflicts = 0
    for key_kind, key_col in (("prediction", "prediction_id"), ("example", "example_id")):
        conflicts += con.execute(
            f"SELECT count(*) FROM {log} l JOIN {pending} p ON p.key_kind = ? "
            f"AND l.{key_col} = p.key AND l.ingest_id = ? WHERE {disagree_sql('l', 'p', values)}",
            [key_kind, ingest_id],
        ).fetchall()[0][0]
        sets = ", ".join(f"{quote_ident(f)} = coalesce({log}.{quote_ident(f)}, p.{quote_ident(f)})" for f in fields)
        applied += con.execute(
            f"UPDATE {log} SET {sets} FROM {pending} p WHERE p.key_kind = ? AND "
            f"{log}.{key_col} = p.key AND {log}.ingest_id = ? AND ({fills_sql(log, 'p', fields)})",
            [key_kind, ingest_id],
        ).fetchall()[0][0]
        if key_kind == "prediction":
            con.execute(
                f"DELETE FROM {pending} WHERE key_kind = 'prediction' AND key IN "
                f"(SELECT prediction_id FROM {log} WHERE ingest_id = ?)",
                [ingest_id],
            )
    return applied, conflicts

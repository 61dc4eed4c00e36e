"""The plan of a predictions ingest, before anything is written: the mapping and task, the
roles present, the project's columns, the keys, the model's outputs and labels, each value's
expression and the checks that refuse bad rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from analysis.errors import ConfigError, IngestError
from analysis.ingest import convert as cv
from analysis.ingest.class_labels import (
    distinct_raw_values,
    mapped_case,
    normalized,
    settled_classes,
    stored_classes,
)
from analysis.ingest.mapping import LATE_ROLES, Mapping, guess_mapping, parse_mapping
from analysis.ingest.sources import Source
from analysis.ingest.values import (
    ClassColumns,
    SourceValue,
    class_check,
    clean_text,
    conversion_check,
    has_control_character,
    must_be_finite,
    numeric_class,
    require_columns,
    required_check,
    suggest_column,
    value_expr,
)
from analysis.store.clock import utc_now
from analysis.store.example_key import example_key_sql
from analysis.store.project import Project
from analysis.store.schema import (
    DEFAULT_STAGE,
    RESERVED_NAMES,
    STAGES,
    label_type,
)
from analysis.store.sql import quote_ident

IGNORED_COLUMNS = ("__index_level_0__", "example_key")  # pandas' index in Parquet; a key Sliceboard computes itself
TEXT_MIN_AVG_LENGTH = 40
TEXT_MIN_DISTINCT = 1000


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
            if (stats[2 * i + 1] or 0) >= TEXT_MIN_AVG_LENGTH or (stats[2 * i] or 0) >= TEXT_MIN_DISTINCT
        }
        plan = [(n, d, "text" if n in text else k) for n, d, k in plan]
    return plan


@dataclass
class Plan:
    task: str
    positive: str | None
    negative: str | None
    features: list[tuple[str, str, str]]
    outcomes_in_input: list[str]
    exprs: dict[str, SourceValue]
    checks: list[cv.Check]
    id_column: str
    warnings: list[str]


def plan_rows(
    con,
    src: Source,
    project_name: str,
    existing: Project | None,
    mapping: Mapping | None,
    version: str | None,
    stage: str | None,
    now: datetime,
) -> Plan:
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
        checks.append(conversion_check(name, e, f"do not convert to {dtype}"))
    for name in outcomes_in_input:
        e = value_expr(src, name, "DOUBLE")
        exprs[name] = e
        checks.append(conversion_check(name, e, "are not numbers"))
    warnings += cv.infinite_warnings(con, src, [n for n, dtype, _ in features if dtype == "DOUBLE"] + outcomes_in_input)
    return Plan(
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
                    f"feature column {m!r} of project {project_name!r} is not in the input{suggest_column(src, m)}"
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
    checks += [required_check(src, id_col, "have no id"), check]
    if "example" in roles:
        ex = roles["example"]
        exprs["example_id"], check = clean_text(
            ex, SourceValue(f"NULLIF({cv.to_text(cv.col(ex), cv.source_family(src, ex))}, '')"), "example id"
        )
        checks += [required_check(src, ex, "have no example id"), check]
    else:
        exprs["example_id"] = exprs["prediction_id"]
    exprs["example_key"] = SourceValue(
        example_key_sql(f"({exprs['example_id'].sql})"), list(exprs["example_id"].params)
    )
    if "timestamp" in roles:
        ts = roles["timestamp"]
        e = value_expr(src, ts, "TIMESTAMP")
        exprs["timestamp"] = e
        checks += [required_check(src, ts, "have no timestamp"), conversion_check(ts, e, "are not timestamps")]
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
        checks += [required_check(src, v, "have no model version"), check]
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
        checks.append(conversion_check(sc, e, "are not numbers"))
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
            required_check(src, p, "have no prediction", number=task == "regression"),
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
            required_check(src, roles["score"], "have no score (needed to derive the prediction)", number=True)
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
        checks.append(conversion_check(lt, e, "are not timestamps"))
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


def plan_ingest(
    con,
    src: Source,
    project_name: str,
    existing: Project | None,
    mapping: Mapping | None,
    version: str | None,
    stage: str | None,
) -> Plan:
    """How each stored column is computed from ``src`` and checked (nothing is written)."""
    return plan_rows(con, src, project_name, existing, mapping, version, stage, utc_now())


def staged_plan(plan: Plan, columns: list[str]) -> Plan:
    """The plan for rows already converted by ``plan`` into ``columns`` (a staged copy):
    every stored column is read as it is, and there is nothing left to check."""
    return replace(plan, exprs={c: SourceValue(quote_ident(c)) for c in columns}, checks=[])

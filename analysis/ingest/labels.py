"""Late labels and outcomes: attach them to logged predictions.

Labels and product outcomes (revenue, loss, clicks...) usually arrive days
after the prediction, in their own files, keyed by prediction id (or by example
id, when one label belongs to a request that several model versions scored).
Attaching is one transaction. Labels for predictions that are not logged yet
wait in the project's pending table and are applied when the predictions
arrive. A label that disagrees with a stored one is reported, never silently
overwritten, unless ``overwrite=True``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import duckdb

from analysis.errors import ConfigError
from analysis.ingest import convert as cv
from analysis.ingest.class_labels import settled_classes, stored_classes
from analysis.ingest.mapping import normalize_class_value, parse_mapping
from analysis.ingest.pending import disagree_sql, fills_sql
from analysis.ingest.plan import IGNORED_COLUMNS
from analysis.ingest.predictions import check_unique_ids, next_ingest_id, record_ingest, register_outcomes
from analysis.ingest.sources import Source, close_source, count_rows, open_source
from analysis.ingest.values import (
    ClassColumns,
    SourceValue,
    class_check,
    clean_text,
    numeric_class,
    require_columns,
    value_expr,
)
from analysis.metrics.rollup import rebuild_days
from analysis.store.clock import utc_now
from analysis.store.project import Project, get_project, project_name, require_stored
from analysis.store.schema import bump_data_version
from analysis.store.sql import quote_ident
from analysis.wording import agree, count

KEYS = ("prediction", "example")


@dataclass
class LabelReport:
    """What attaching a labels file did. ``to_dict()`` is the stable JSON form."""

    project: str
    source: str
    key: str
    rows_read: int
    matched_predictions: int = 0
    applied: int = 0
    unchanged: int = 0
    conflicting: int = 0
    overwritten: int = 0
    pending: int = 0
    outcomes: list[str] = field(default_factory=list)
    conflict_examples: list[dict] = field(default_factory=list)
    ingest_id: int | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def guess_label_columns(project, columns: list[str], key: str = "prediction") -> dict:
    """Default id, label, label timestamp and outcome columns for a labels file."""
    stored = parse_mapping(project.mapping_toml, origin="stored mapping")

    def first(cands):
        return next((c for c in cands if c and c in columns), None)

    id_cands = [stored.id, "prediction_id", "id"] if key == "prediction" else [stored.example, "example_id"]
    return {
        "id_column": first(id_cands),
        "label_column": first([stored.label, "label"]),
        "label_timestamp_column": first([stored.label_timestamp, "label_timestamp"]),
        "outcomes": [c.name for c in project.outcomes if c.name in columns],
    }


def _pick(src: Source, explicit: str | None, candidates: list[str | None], what: str) -> str | None:
    if explicit:
        if explicit not in src.columns:
            require_columns(src, [(what, explicit)])
        return explicit
    for c in candidates:
        if c and c in src.columns:
            return c
    return None


def check_label_options(
    con: duckdb.DuckDBPyConnection, project: str | Project, key: str, positive_label=None, negative_label=None
):
    """Refuse bad options before any input is read: the project and the classes it
    knows (settled with the ones named)."""
    if key not in KEYS:
        raise ConfigError(f"key must be one of {', '.join(KEYS)}, got {key!r}.")
    proj = get_project(con, project_name(project))
    require_stored(proj, "attaching labels")
    named = tuple(normalize_class_value(v) for v in (positive_label, negative_label))
    if any(v is not None for v in named) and proj.task != "binary":
        raise ConfigError(
            f"positive and negative labels name the classes of a binary task; project "
            f"{proj.name!r} is a {proj.task} task."
        )
    if "" in named:
        raise ConfigError("an empty positive or negative label; name the class as it appears in the data.")
    return proj, settled_classes(stored_classes(con, proj), named, project=proj.name)


def attach_labels(
    con: duckdb.DuckDBPyConnection,
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
    """Attach labels and outcomes from ``source`` to ``project``'s predictions.

    ``key`` is ``"prediction"`` (rows name a prediction id) or ``"example"``
    (rows name an example id; the label applies to every prediction of that
    example, including ones logged later). Columns default to the names in the
    project's mapping; ``outcomes`` lists outcome columns to attach (default: the
    project's outcome columns present in the file). ``positive_label`` and
    ``negative_label`` name a binary project's classes when it does not know them
    yet (a project created from scores alone); they must agree with known ones.
    """
    started = time.perf_counter()
    proj, classes = check_label_options(con, project, key, positive_label, negative_label)
    src = open_source(con, source, name=source_name)
    try:
        return _attach(
            con, src, proj, key, id_column, label_column, label_timestamp_column, outcomes, overwrite, started, classes
        )
    finally:
        close_source(con, src)


@dataclass
class LabelPlan:
    """How each row of a labels input becomes the values stored (nothing written yet):
    the columns used, the classes, and ``exprs`` from the input to ``key``, ``label``,
    ``label_timestamp`` and each outcome. ``report`` counts the input's rows."""

    key: str
    key_column: str
    label_column: str | None
    outcome_columns: list[str]
    positive: str | None
    negative: str | None
    exprs: dict
    report: LabelReport
    now: datetime

    def converted(self) -> "LabelPlan":
        """The plan for rows already converted by this one (a staged copy)."""
        return replace(self, exprs={c: SourceValue(quote_ident(c)) for c in self.exprs})


def _attach(con, src, proj, key, id_column, label_column, lt_column, outcome_names, overwrite, started, known_classes):
    plan = plan_labels(con, src, proj, key, id_column, label_column, lt_column, outcome_names, known_classes)
    if not plan.report.rows_read:
        return plan.report
    return apply_labels(con, src, proj, plan, overwrite, started)


def plan_labels(
    con,
    src: Source,
    proj,
    key: str,
    id_column: str | None,
    label_column: str | None,
    lt_column: str | None,
    outcome_names: list[str] | None,
    known_classes,
) -> LabelPlan:
    """Read and check the whole input (every failing column and row named at once)."""
    warnings: list[str] = []
    stored = parse_mapping(proj.mapping_toml, origin="stored mapping")
    looked_for = [stored.id, "prediction_id", "id"] if key == "prediction" else [stored.example, "example_id"]
    key_col = _pick(src, id_column, looked_for, f"{key} id")
    if key_col is None:
        raise ConfigError(
            f"{src.name}: no {key} id column found (looked for "
            f"{', '.join(repr(c) for c in looked_for if c)}); "
            f"name it with --id-column. Columns: {', '.join(src.columns)}."
        )
    lab_col = _pick(src, label_column, [stored.label, "label"], "label")
    lt_col = _pick(src, lt_column, [stored.label_timestamp, "label_timestamp"], "label timestamp")
    if outcome_names is None:
        outcome_cols = [c.name for c in proj.outcomes if c.name in src.columns]
    else:
        require_columns(src, [("outcome", o) for o in outcome_names])
        outcome_cols = list(outcome_names)
    used = {key_col, lab_col, lt_col, *outcome_cols}
    ignored = [c for c in src.columns if c not in used and c not in IGNORED_COLUMNS]
    if ignored:
        warnings.append(f"columns ignored (not a key, label or known outcome): {', '.join(ignored)}")
    if lab_col is None and not outcome_cols:
        raise ConfigError(
            f"{src.name}: nothing to attach: no label column (looked for "
            f"{', '.join(repr(c) for c in (stored.label, 'label') if c)}) and no outcome columns."
        )

    total = count_rows(con, src)
    report = LabelReport(proj.name, src.name, key, total, outcomes=outcome_cols, warnings=warnings)
    if total == 0:
        warnings.append("the input has no rows; nothing was written")
        return LabelPlan(key, key_col, lab_col, outcome_cols, None, None, {}, report, utc_now())

    positive, negative = known_classes
    classes = ClassColumns(con, src, [lab_col] if lab_col else [], proj.task)
    if proj.task == "binary":
        positive, negative = classes.resolve(positive, negative)

    exprs: dict[str, SourceValue] = {}
    checks: list[cv.Check] = []
    kfam = cv.source_family(src, key_col)
    exprs["key"], check = clean_text(
        key_col, SourceValue(f"NULLIF({cv.to_text(cv.col(key_col), kfam)}, '')"), f"{key} id"
    )
    exprs["key"] = SourceValue(exprs["key"].sql, exprs["key"].params)  # checked below, with the rows named
    checks += [cv.Check(key_col, f"have no {key} id", f"NOT ({cv.present(cv.col(key_col), kfam)})"), check]
    now = utc_now()
    if lab_col:
        e = classes.expr(lab_col, positive, negative)
        check = class_check(lab_col, e, classes.problem(positive, negative))
        if check is not None:
            checks.append(check)
        if numeric_class(proj.task, src, lab_col):
            checks.append(cv.finite_check(src, lab_col))
        exprs["label"] = SourceValue(e.sql, e.params)
    else:
        exprs["label"] = SourceValue(f"CAST(NULL AS {proj.label_type})")
    lab = exprs["label"]
    if lt_col:
        e = value_expr(src, lt_col, "TIMESTAMP")
        if e.fail:
            checks.append(
                cv.Check(
                    lt_col,
                    "are not timestamps",
                    e.fail,
                    list(e.fail_params),
                    value_sql=f"CAST({cv.col(lt_col)} AS VARCHAR)",
                )
            )
        exprs["label_timestamp"] = SourceValue(
            f"CASE WHEN ({lab.sql}) IS NOT NULL THEN coalesce(({e.sql}), CAST(? AS TIMESTAMP)) END",
            [*lab.params, *e.params, now],
        )
    else:
        exprs["label_timestamp"] = SourceValue(
            f"CASE WHEN ({lab.sql}) IS NOT NULL THEN CAST(? AS TIMESTAMP) END", [*lab.params, now]
        )
    for name in outcome_cols:
        e = value_expr(src, name, "DOUBLE")
        exprs[name] = SourceValue(e.sql, e.params)
        if e.fail:
            checks.append(
                cv.Check(
                    name, "are not numbers", e.fail, list(e.fail_params), value_sql=f"CAST({cv.col(name)} AS VARCHAR)"
                )
            )
    cv.run_checks(con, src, [c for c in checks if c is not None])
    warnings += cv.infinite_warnings(con, src, outcome_cols)
    return LabelPlan(key, key_col, lab_col, outcome_cols, positive, negative, exprs, report, now)


def convert_labels(con, src: Source, plan: LabelPlan, table: str) -> LabelPlan:
    """Write the input's converted rows into ``table`` (checked already by
    :func:`plan_labels`; a repeated id is named here); the plan that reads them."""
    cols = list(plan.exprs)
    con.execute(
        f"CREATE TABLE {quote_ident(table)} AS SELECT "
        + ", ".join(f"({plan.exprs[c].sql}) AS {quote_ident(c)}" for c in cols)
        + f" FROM {quote_ident(src.view)}",
        [p for c in cols for p in plan.exprs[c].params],
    )
    if con.execute(f"SELECT count(*) - count(DISTINCT key) FROM {quote_ident(table)}").fetchall()[0][0]:
        check_unique_ids(con, src, plan.key_column, plan.exprs["key"])
    return plan.converted()


def apply_labels(con, src: Source, proj, plan: LabelPlan, overwrite: bool, started: float) -> LabelReport:
    """Attach the rows of ``src`` as ``plan`` says, in one transaction."""
    key, key_col, lab_col, outcome_cols = plan.key, plan.key_column, plan.label_column, plan.outcome_columns
    positive, negative, exprs, report, now = plan.positive, plan.negative, plan.exprs, plan.report, plan.now
    total, warnings = report.rows_read, report.warnings
    log = quote_ident(proj.log_table)
    pending = quote_ident(proj.pending_table)
    log_key = "prediction_id" if key == "prediction" else "example_id"
    con.execute("BEGIN TRANSACTION")
    try:
        if (positive, negative) != (proj.positive_label, proj.negative_label):
            con.execute(
                "UPDATE sb_projects SET positive_label = ?, negative_label = ? WHERE project_id = ?",
                [positive, negative, proj.project_id],
            )
        register_outcomes(con, proj, outcome_cols)
        ingest_id = next_ingest_id(con)
        cols = list(exprs)
        con.execute("DROP TABLE IF EXISTS sb_labels")
        con.execute(
            "CREATE TEMP TABLE sb_labels AS SELECT "
            + ", ".join(f"({exprs[c].sql}) AS {quote_ident(c)}" for c in cols)
            + f" FROM {quote_ident(src.view)}",
            [p for c in cols for p in exprs[c].params],
        )
        # Repeated ids are counted on the typed copy; the message comes from the input.
        if con.execute("SELECT count(*) - count(DISTINCT key) FROM sb_labels").fetchall()[0][0]:
            check_unique_ids(con, src, key_col, exprs["key"])
        values = (["label"] if lab_col else []) + outcome_cols
        fields = (["label", "label_timestamp"] if lab_col else []) + outcome_cols
        match = f"l.{log_key} = n.key"
        changes = f"({fills_sql('l', 'n', fields)})" + (f" OR ({disagree_sql('l', 'n', values)})" if overwrite else "")
        # The log is joined once; counts, touched days and waiting labels come from this.
        con.execute("DROP TABLE IF EXISTS sb_matched")
        con.execute(
            f"CREATE TEMP TABLE sb_matched AS SELECT l.rowid AS rid, n.key AS key, "
            f'CAST(l."timestamp" AS DATE) AS day, '
            f"CASE WHEN {disagree_sql('l', 'n', values)} THEN 1 ELSE 0 END AS disagrees, "
            f"CASE WHEN {fills_sql('l', 'n', fields)} THEN 1 ELSE 0 END AS fills, "
            f"CASE WHEN {changes} THEN 1 ELSE 0 END AS changes"
            + "".join(f", n.{quote_ident(f)} AS {quote_ident('new_' + f)}" for f in fields)
            + f" FROM {log} l JOIN sb_labels n ON {match}"
        )
        stats = con.execute(
            "SELECT count(*), sum(disagrees), sum(fills), "
            "sum(CASE WHEN fills = 1 OR disagrees = 1 THEN 1 ELSE 0 END) FROM sb_matched"
        ).fetchall()[0]
        report.matched_predictions = int(stats[0] or 0)
        report.conflicting = int(stats[1] or 0)
        if report.conflicting:
            shown = ", ".join(
                f"l.{quote_ident(v)} AS {quote_ident('stored_' + v)}, n.{quote_ident(v)} AS {quote_ident('new_' + v)}"
                for v in values
            )
            rows = con.execute(
                f"SELECT l.prediction_id, {shown} FROM {log} l JOIN sb_labels n ON {match} "
                f"WHERE {disagree_sql('l', 'n', values)} ORDER BY l.prediction_id LIMIT 5"
            ).fetchall()
            names = ["prediction_id"] + [x for v in values for x in ("stored_" + v, "new_" + v)]
            report.conflict_examples = [dict(zip(names, r)) for r in rows]
        pairs = [(f"{log}.{quote_ident(f)}", f"m.{quote_ident('new_' + f)}") for f in fields]
        sets = ", ".join(
            f"{quote_ident(f)} = coalesce({new}, {old})" if overwrite else f"{quote_ident(f)} = coalesce({old}, {new})"
            for f, (old, new) in zip(fields, pairs)
        )
        # Rows are addressed by rowid (stable inside this transaction): no second key join.
        report.applied = (
            con.execute(
                f"UPDATE {log} SET {sets} FROM sb_matched m WHERE m.changes = 1 AND {log}.rowid = m.rid"
            ).fetchall()[0][0]
            if fields
            else 0
        )
        report.overwritten = report.conflicting if overwrite else 0
        report.unchanged = report.matched_predictions - int(stats[3] or 0)
        rebuild_days(con, proj, "SELECT DISTINCT day FROM sb_matched WHERE changes = 1", [])
        # Labels waiting for predictions; example-keyed labels always stay as standing labels.
        if key == "prediction":  # prediction ids are unique: one matched row per matched label
            report.pending = total - report.matched_predictions
        else:
            report.pending = con.execute(
                "SELECT count(*) FROM sb_labels n WHERE n.key NOT IN (SELECT key FROM sb_matched)"
            ).fetchall()[0][0]
        has_pending = con.execute(f"SELECT count(*) FROM {pending} WHERE key_kind = ?", [key]).fetchall()[0][0]
        if key == "prediction":
            waiting = "n.key NOT IN (SELECT key FROM sb_matched)"
        else:
            waiting = "TRUE"
        if has_pending and fields:
            pmatch = "p.key_kind = ? AND p.key = n.key"
            pconf = con.execute(
                f"SELECT count(*) FROM {pending} p JOIN sb_labels n ON {pmatch} "
                f"WHERE {waiting} AND ({disagree_sql('p', 'n', values)})",
                [key],
            ).fetchall()[0][0]
            report.conflicting += pconf
            if overwrite:
                report.overwritten += pconf
                psets = ", ".join(
                    f"{quote_ident(f)} = coalesce(n.{quote_ident(f)}, {pending}.{quote_ident(f)})" for f in fields
                )
            else:
                psets = ", ".join(
                    f"{quote_ident(f)} = coalesce({pending}.{quote_ident(f)}, n.{quote_ident(f)})" for f in fields
                )
            con.execute(
                f"UPDATE {pending} SET {psets} FROM sb_labels n WHERE {pending}.key_kind = ? "
                f"AND {pending}.key = n.key AND {waiting}",
                [key],
            )
            new_only = f"AND n.key NOT IN (SELECT key FROM {pending} WHERE key_kind = ?)"
            new_params = [key]
        else:
            new_only, new_params = "", []
        if fields and (report.pending or key == "example"):
            pcols = ["key_kind", "key", "received_at", "ingest_id"] + fields
            con.execute(
                f"INSERT INTO {pending} ({', '.join(quote_ident(c) for c in pcols)}) "
                f"SELECT ?, n.key, CAST(? AS TIMESTAMP), ?, "
                + ", ".join(f"n.{quote_ident(f)}" for f in fields)
                + f" FROM sb_labels n WHERE {waiting} {new_only}",
                [key, now, ingest_id] + new_params,
            )
        con.execute("DROP TABLE sb_labels")
        con.execute("DROP TABLE sb_matched")
        report.ingest_id = ingest_id
        if report.conflicting and not overwrite:
            warnings.append(
                f"{count(report.conflicting, 'label or outcome', 'labels or outcomes')} "
                f"{agree(report.conflicting, 'disagree')} with stored values and "
                f"{agree(report.conflicting, 'were')} not changed; rerun with --overwrite to replace them"
            )
        record_ingest(con, ingest_id, proj.project_id, "labels", src.name, total, report.to_dict())
        bump_data_version(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    report.seconds = time.perf_counter() - started
    return report

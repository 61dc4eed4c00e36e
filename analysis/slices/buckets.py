"""Error buckets and the examples behind them.

Every logged prediction falls in exactly one bucket:

* binary: ``TP``, ``TN``, ``FP``, ``FN``, with ``FP confident`` (a false positive
  scored at or above ``confidence``) and ``FN confident`` (a false negative
  scored at or below ``1 - confidence``) split out; ``unlabeled``;
* multiclass: ``correct``, ``wrong``, ``unlabeled``;
* regression: residual bands in units of the scope's mean absolute error
  (``under > 2 MAE``, ``under 1-2 MAE``, ``within 1 MAE``, ``over 1-2 MAE``,
  ``over > 2 MAE``), ``unlabeled``.

``near threshold`` (binary: the score within ``margin`` of the decision
threshold) is a filter on the examples, not a bucket: it cuts across the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.slices.breakdown import BREAKDOWN_LIMIT
from analysis.slices.compile import compile_slice, slice_columns
from analysis.slices.grouping import capped_grouping, grouping
from analysis.slices.model import Condition, Not, Or, Slice
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, and_all, quote_ident

BINARY_BUCKETS = ("TP", "TN", "FP confident", "FP", "FN confident", "FN", "unlabeled")
MULTICLASS_BUCKETS = ("correct", "wrong", "unlabeled")
REGRESSION_BUCKETS = ("under > 2 MAE", "under 1-2 MAE", "within 1 MAE", "over 1-2 MAE", "over > 2 MAE", "unlabeled")
SORTABLE_EXTRA = (
    "prediction_id",
    "example_id",
    "timestamp",
    "model_version",
    "stage",
    "score",
    "label",
    "prediction",
    "label_timestamp",
)


def buckets_for(task: str) -> tuple[str, ...]:
    return {"binary": BINARY_BUCKETS, "multiclass": MULTICLASS_BUCKETS, "regression": REGRESSION_BUCKETS}[task]


def _mae(con, project: Project, where: tuple[str, list]) -> float:
    value = con.execute(
        f"SELECT avg(abs(label - prediction)) FROM {quote_ident(project.labeled_table)} WHERE {where[0]}", where[1]
    ).fetchall()[0][0]
    return float(value) if value else 1.0


def bucket_sql(project: Project, *, confidence: float = 0.9, mae: float = 1.0) -> tuple[str, list]:
    """``(CASE expression, params)`` naming each row's bucket."""
    if not 0.5 <= confidence <= 1:
        raise ConfigError("The confidence of a confident mistake is between 0.5 and 1.")
    if project.task == "binary":
        return (
            "CASE WHEN label IS NULL OR prediction IS NULL THEN 'unlabeled' "
            "WHEN label AND prediction THEN 'TP' WHEN NOT label AND NOT prediction THEN 'TN' "
            "WHEN prediction THEN CASE WHEN score >= ? THEN 'FP confident' ELSE 'FP' END "
            "ELSE CASE WHEN score <= ? THEN 'FN confident' ELSE 'FN' END END",
            [confidence, 1 - confidence],
        )
    if project.task == "multiclass":
        return (
            "CASE WHEN label IS NULL OR prediction IS NULL THEN 'unlabeled' "
            "WHEN label = prediction THEN 'correct' ELSE 'wrong' END",
            [],
        )
    residual = "(prediction - label)"
    return (
        f"CASE WHEN label IS NULL OR prediction IS NULL THEN 'unlabeled' "
        f"WHEN {residual} < -2 * ? THEN 'under > 2 MAE' WHEN {residual} < -1 * ? THEN 'under 1-2 MAE' "
        f"WHEN {residual} <= ? THEN 'within 1 MAE' WHEN {residual} <= 2 * ? THEN 'over 1-2 MAE' "
        f"ELSE 'over > 2 MAE' END",
        [mae, mae, mae, mae],
    )


def bucket_filter(project: Project, bucket: str, *, confidence: float = 0.9, mae: float = 1.0) -> tuple[str, list]:
    """``(predicate, params)`` selecting one bucket's rows, exactly those
    :func:`bucket_sql` names ``bucket``. A binary task's bucket is a slice (see
    :func:`_binary_bucket`); the others compare label with prediction, which no slice
    condition does, so they select by the bucket's name."""
    if bucket not in buckets_for(project.task):
        raise ConfigError(f"Unknown bucket {bucket!r}; buckets are {', '.join(buckets_for(project.task))}.")
    if project.task == "binary":
        return compile_slice(_binary_bucket(bucket, confidence), project)
    b_sql, b_params = bucket_sql(project, confidence=confidence, mae=mae)
    return f"({b_sql}) = ?", [*b_params, bucket]


def _binary_bucket(bucket: str, confidence: float) -> Slice:
    """A binary task's bucket as a slice of label, prediction and score (a plain
    condition DuckDB can push into the scan)."""
    label, prediction = Condition("label", "is_true"), Condition("prediction", "is_true")
    wrong_label, wrong_prediction = Condition("label", "is_false"), Condition("prediction", "is_false")
    confident_fp = Condition("score", "between", low=confidence, low_inclusive=True)
    confident_fn = Condition("score", "between", high=1 - confidence, high_inclusive=True)
    return {
        "unlabeled": Slice.of(Or((Condition("label", "is_null"), Condition("prediction", "is_null")))),
        "TP": Slice.of(label, prediction),
        "TN": Slice.of(wrong_label, wrong_prediction),
        "FP confident": Slice.of(wrong_label, prediction, confident_fp),
        "FP": Slice.of(wrong_label, prediction, Not(confident_fp)),
        "FN confident": Slice.of(label, wrong_prediction, confident_fn),
        "FN": Slice.of(label, wrong_prediction, Not(confident_fn)),
    }[bucket]


def _scoped(project: Project, scope: Scope, slice_: Slice) -> tuple[str, list]:
    return and_all([scope.to_sql(), compile_slice(slice_, project)])


def _buckets(con, project: Project, where, confidence: float) -> tuple[str, list]:
    mae = _mae(con, project, where) if project.task == "regression" else 1.0
    return bucket_sql(project, confidence=confidence, mae=mae)


def bucket_counts(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    column: str,
    scope: Scope = Scope(),
    slice_: Slice = Slice(),
    confidence: float = 0.9,
    bins: int = 5,
) -> pd.DataFrame:
    """Rows per (group of ``column``, bucket) within the slice: ``value``, ``bucket``, ``n``
    (every pair present, zeros included), ordered as the groups and buckets."""
    where = _scoped(project, scope, slice_)
    g = grouping(con, project, column, scope, slice_, bins)
    other = None
    if not g.order and g.kind == "categorical":  # very many values: the largest, and one group for the rest
        g, other = capped_grouping(con, project, g, where, BREAKDOWN_LIMIT)
    query = Sql.compose(
        "SELECT {value} AS value, {bucket} AS bucket, count(*) AS n FROM {log} WHERE {where} GROUP BY 1, 2",
        value=(g.sql, g.params),
        bucket=_buckets(con, project, where, confidence),
        log=quote_ident(project.log_table),
        where=where,
    )
    frame = con.execute(*query).df()
    values = list(g.order) if g.order else list(frame.groupby("value")["n"].sum().sort_values(ascending=False).index)
    present = set(frame["value"])
    values = [v for v in values if v in present and not (other and v == other["value"])]
    values += [other["value"]] if other and other["value"] in present else []
    full = pd.MultiIndex.from_product([values, list(buckets_for(project.task))], names=["value", "bucket"])
    out = frame.set_index(["value", "bucket"])["n"].reindex(full, fill_value=0).reset_index()
    out.insert(0, "column", column)
    out.attrs["other"] = other  # the group summarizing the values beyond the largest (not a value to drill into)
    return out


@dataclass
class ExamplePage:
    rows: pd.DataFrame
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def examples(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    scope: Scope = Scope(),
    slice_: Slice = Slice(),
    *,
    bucket: str | None = None,
    confidence: float = 0.9,
    near_threshold: float | None = None,
    sort_by: str = "timestamp",
    descending: bool = True,
    page: int = 1,
    page_size: int = 50,
) -> ExamplePage:
    """One page of the slice's rows (optionally one bucket, or only rows scored
    within ``near_threshold`` of the decision threshold), sorted by any column."""
    if not 1 <= page_size <= 1000:
        raise ConfigError("A page holds 1 to 1,000 rows.")
    sortable = set(slice_columns(project)) | set(SORTABLE_EXTRA) | {"bucket"}
    if sort_by not in sortable:
        raise ConfigError(f"Cannot sort by {sort_by!r}; sort by one of {', '.join(sorted(sortable))}.")
    where = _scoped(project, scope, slice_)
    b_sql, b_params = _buckets(con, project, where, confidence)
    filters = [where]
    if bucket is not None:
        mae = b_params[0] if project.task == "regression" else 1.0
        filters.append(bucket_filter(project, bucket, confidence=confidence, mae=mae))
    if near_threshold is not None:
        if project.task != "binary":
            raise ConfigError("Near-threshold rows exist for binary tasks only.")
        filters.append(("abs(score - ?) < ?", [project.threshold, float(near_threshold)]))
    where = and_all(filters)
    # Every bucket but "unlabeled" holds labeled rows only: those have a table of their own.
    labeled_only = bucket is not None and bucket != "unlabeled"
    table = quote_ident(project.labeled_table if labeled_only else project.log_table)
    total = con.execute(
        *Sql.compose("SELECT count(*) FROM {table} WHERE {where}", table=table, where=where)
    ).fetchall()[0][0]
    columns = (
        [
            "prediction_id",
            "example_id",
            "timestamp",
            "model_version",
            "stage",
            "prediction",
            "score",
            "label",
            "label_timestamp",
        ]
        + [c.name for c in project.features]
        + [c.name for c in project.outcomes]
    )
    select = ", ".join(quote_ident(c) for c in columns)
    page = max(1, int(page))
    order = "bucket" if sort_by == "bucket" else quote_ident(sort_by)
    query = Sql.compose(
        "SELECT {select}, {bucket} AS bucket FROM {table} WHERE {where} "
        "ORDER BY {order} NULLS LAST, prediction_id LIMIT {limit}",
        select=select,
        bucket=(b_sql, b_params),
        table=table,
        where=where,
        order=f"{order} {'DESC' if descending else 'ASC'}",
        limit=("? OFFSET ?", [int(page_size), (page - 1) * int(page_size)]),
    )
    rows = con.execute(*query).df()
    return ExamplePage(rows, int(total), page, int(page_size))

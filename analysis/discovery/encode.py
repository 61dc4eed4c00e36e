"""A project's features as small integer codes and a per-row error, ready for
slice finding.

* Categorical features keep their values: the ``MAX_CATEGORIES`` most frequent
  get codes 0, 1, ... (most frequent first; equal counts in natural order,
  numbers by value and then text by text, so the choice is the same on every
  run) and any others share one more code, ``(other)``, which a reported slice
  names for what it is: "any of 93 less frequent values of uid".
* Id-like categorical features (nearly every value unique, see
  :func:`analysis.slices.breakdown.is_id_like`) are left out unless ``keep_id_like``;
  :attr:`Encoding.skipped` says which, and why.
* Booleans: ``false`` is 0, ``true`` is 1.
* Numbers and timestamps: quantile bins (cut points from
  :func:`analysis.slices.breakdown.groupings`), bin ``i`` being ``[edge(i-1), edge(i))``.
* Missing values stay SQL NULL, which slice finding treats as a value of its own.

Every code maps back to slice conditions (:attr:`EncodedFeature.conditions`),
so a discovered slice opens in the Slices page as an ordinary slice.

Error measures (:data:`ERRORS`): ``misclassification`` (classification),
``logloss`` and ``brier`` (binary), ``abs_residual`` and ``sq_residual``
(regression), the name of any numeric outcome column (a product cost, such
as money lost), or a per-row expression over the log's columns (checked by
:mod:`analysis.metrics.expressions`), for example
``CASE WHEN prediction AND NOT label THEN loss ELSE 0 END``. Costs must not be
negative. Rows where the measure is undefined (no label yet, no score, no
outcome value, an expression that is NULL or reads a label or outcome not known
yet) are left out.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterator

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.metrics.expressions import RowExpression, cost_expression, parse_row_expression, row_columns
from analysis.metrics.sql import binary_terms
from analysis.slices import Condition, Or, Slice, SliceColumns, Term, compile_slice, slice_columns
from analysis.slices.grouping import GROUPABLE, CategoryCounts, category_counts, check_groupable, groupings
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, and_all, quote_ident

MAX_CATEGORIES = 100
OTHER = "(other)"
ERROR_COLUMN = "sb_error"

ERRORS = {
    "misclassification": ("binary", "multiclass"),
    "logloss": ("binary",),
    "brier": ("binary",),
    "abs_residual": ("regression",),
    "sq_residual": ("regression",),
}
BINARY_ERROR = ("misclassification",)  # 0/1 per row: intervals and tests for proportions


def is_range(code) -> bool:
    """Whether a code is a run of a number's bins, ``("lt", k)`` (bins below ``k``) or
    ``("ge", k)`` (bin ``k`` and above), rather than one code or None (missing)."""
    return isinstance(code, tuple)


def code_term(column: str, codes) -> Term:
    """The condition that one encoded column's code is one of ``codes``: a code, None
    (missing) or a run of bins (see :func:`is_range`), or a collection of them (any of them)."""
    if codes is None or is_range(codes) or not isinstance(codes, (set, frozenset, list, tuple)):
        codes = [codes]
    terms: list[Term] = []
    plain = sorted(int(c) for c in codes if c is not None and not is_range(c))
    if plain:
        terms.append(Condition(column, "in", values=tuple(plain)))
    for op, k in (c for c in codes if is_range(c)):
        low, high = (None, int(k)) if op == "lt" else (int(k), None)
        terms.append(Condition(column, "between", low=low, high=high))
    if any(c is None for c in codes):
        terms.append(Condition(column, "is_null"))
    return terms[0] if len(terms) == 1 else Or(tuple(terms))


def codes_sql(codes: dict) -> Sql:
    """The predicate over encoded rows that each column's code is the one given
    (``{column: code or codes}``), compiled by the one slice compiler; TRUE for ``{}``."""
    conditions = Slice(tuple(code_term(column, c) for column, c in codes.items()))
    return compile_slice(conditions, SliceColumns.codes(codes))


@dataclass(frozen=True)
class EncodedFeature:
    """One feature's codes: ``labels[code]`` to show, ``conditions[code]`` to select its rows."""

    column: str
    kind: str
    labels: tuple[str, ...]
    conditions: tuple[tuple[Condition, ...], ...]
    null_conditions: tuple[Condition, ...]
    lumped: int = 0  # how many less frequent values share the (other) code

    def describe(self, code) -> str:
        """The readable condition of a code; the (other) lump named for what it is."""
        if code is not None and not is_range(code) and self.lumped and int(code) == len(self.labels) - 1:
            return f"any of {self.lumped:,} less frequent values of {self.column}"
        return Slice(self.condition(code)).readable()

    def label(self, code) -> str:
        if is_range(code):
            return Slice(self.condition(code)).readable()
        return "(missing)" if code is None else self.labels[int(code)]

    def condition(self, code) -> tuple[Condition, ...]:
        if is_range(code):  # a run of a number's bins: below bin k's low edge, or from it on
            op, k = code
            edge = self.conditions[int(k)][0].low
            low, high = (None, edge) if op == "lt" else (edge, None)
            return (Condition(self.column, "between", low=low, high=high),)
        return self.null_conditions if code is None else self.conditions[int(code)]

    def predicate(self, code):
        """The value a code stands for, as plain data: a category, ``True`` /
        ``False``, ``{"low": .., "high": ..}`` (a half-open range; an open end
        is None), ``"(other)"``, or None for a missing value."""
        if code is None:
            return None
        cond = self.condition(code)[0]
        if cond.op == "in":
            return cond.values[0]
        if cond.op in ("is_true", "is_false"):
            return cond.op == "is_true"
        if cond.op == "between":
            return {"low": cond.low, "high": cond.high}
        if cond.op == "not_null":  # one bin covering every value
            return {"low": None, "high": None}
        return OTHER


@dataclass(frozen=True)
class Encoding:
    """``(sql, params)`` yielding one row per example: each feature's code under
    its own name, and the error in :data:`ERROR_COLUMN`."""

    sql: str
    params: list
    features: list[EncodedFeature]
    error: str
    binary_error: bool
    totals: tuple[str, list] = ("", [])  # (sql, params): rows, error sum, sum of squared errors
    skipped: tuple[CategoryCounts, ...] = ()  # id-like features left out

    def notes(self) -> list[str]:
        return [c.note() + " (keep_id_like / --keep-id-like to search it)" for c in self.skipped]

    def feature(self, column: str) -> EncodedFeature:
        return next(f for f in self.features if f.column == column)

    def slice_of(self, predicates: dict) -> Slice:
        """The slice selecting ``{column: code}`` (a code of None: the column is missing)."""
        conditions: list[Condition] = []
        for column, code in predicates.items():
            conditions += self.feature(column).condition(code)
        return Slice(tuple(conditions))

    def describe(self, predicates: dict) -> str:
        """The readable form of :meth:`slice_of`, with an (other) lump named for what it is."""
        return " AND ".join(self.feature(c).describe(v) for c, v in predicates.items()) or "all rows"


@contextmanager
def materialized(con: duckdb.DuckDBPyConnection, enc: Encoding) -> Iterator[Encoding]:
    """The encoding computed once into a temporary table (dropped afterwards):
    slice finding reads its source several times, and the encoding's CASE
    expressions and filters are then paid once. Temporary tables live in
    memory, so this works on a read-only connection too."""
    name = quote_ident(f"sb_encoded_{uuid.uuid4().hex}")
    con.execute(f"CREATE TEMP TABLE {name} AS {enc.sql}", enc.params)
    try:
        e = quote_ident(ERROR_COLUMN)
        yield replace(
            enc,
            sql=f"SELECT * FROM {name}",
            params=[],
            totals=(f"SELECT count(*), coalesce(sum({e}), 0), coalesce(sum({e} * {e}), 0) FROM {name}", []),
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {name}")


def error_choices(project: Project) -> list[str]:
    """The error measures this project can use."""
    measures = [name for name, tasks in ERRORS.items() if project.task in tasks]
    return measures + [o.name for o in project.outcomes]


def error_sql(project: Project, error: str) -> tuple[str, str]:
    """``(per-row error, filter of the rows where it is defined)`` for ``error``."""
    if error not in error_choices(project):
        expr = _cost_expression(project, error)
        # Like a model error, a cost is unknown until what it reads is known.
        later = {"label", *(o.name for o in project.outcomes)}
        known = [f"{quote_ident(c)} IS NOT NULL" for c in expr.columns if c in later]
        return f"CAST(({expr.sql}) AS DOUBLE)", " AND ".join([f"({expr.sql}) IS NOT NULL", *known])
    labeled = "label IS NOT NULL AND prediction IS NOT NULL"
    scored = "label IS NOT NULL AND score IS NOT NULL"
    if error == "misclassification":
        return "CASE WHEN label = prediction THEN 0 ELSE 1 END", labeled
    if error in ("logloss", "brier"):
        terms = dict(binary_terms())
        return terms["ll_sum" if error == "logloss" else "brier_sum"], scored
    if error == "abs_residual":
        return "abs(label - prediction)", labeled
    if error == "sq_residual":
        return "(label - prediction) * (label - prediction)", labeled
    col = quote_ident(error)
    return f"CAST({col} AS DOUBLE)", f"{col} IS NOT NULL"


def _cost_expression(project: Project, error: str) -> RowExpression:
    try:
        return parse_row_expression(error, row_columns(project))
    except ConfigError:
        if str(error).strip().isidentifier():
            raise ConfigError(
                f"Unknown error measure {error!r} for a {project.task} project; choose one of "
                f"{', '.join(error_choices(project))}, or write a per-row cost such as "
                "'CASE WHEN prediction AND NOT label THEN loss ELSE 0 END'."
            ) from None
        raise


def is_cost(project: Project, error: str) -> bool:
    """Whether ``error`` is a product cost (an outcome column or an expression), not a model error."""
    return error not in ERRORS


@dataclass(frozen=True)
class RowsError:
    """Slice finding over other rows than the log's: ``rows`` is ``(sql, params)`` of a
    subquery with the project's feature columns, ``error`` a 0/1 (``binary``) or
    non-negative per-row term over its columns, ``defined`` where that term counts.
    Sliceboard's own code builds these (a comparison's pairs); users never write them."""

    name: str
    rows: tuple[str, list]
    error: str
    defined: str = "TRUE"
    binary: bool = True


def encode(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    scope: Scope = Scope(),
    *,
    columns: list[str] | None = None,
    error: str | RowsError = "misclassification",
    bins: int = 5,
    slice_: Slice = Slice(),
    more_errors: dict[str, str] | None = None,
    cuts: list | None = None,
    keep_id_like: bool = False,
) -> Encoding:
    """Encode ``columns`` (default: every categorical, boolean, numeric and
    timestamp feature) of the rows in ``scope`` (and ``slice_``) where
    ``error`` is defined; with a :class:`RowsError`, of its rows (cut points still
    come from ``scope``), and ``more_errors`` (column name -> term over the same
    rows) as more columns beside the error. ``cuts`` are groupings the caller already
    has for this scope, slice and number of bins (a comparison's): not computed again.
    Id-like categorical columns are left out (see :attr:`Encoding.skipped`) unless ``keep_id_like``."""
    kinds = slice_columns(project)
    if columns is None:
        columns = [c.name for c in project.features if c.kind in GROUPABLE]
    if not columns:
        raise ConfigError(f"{project.name} has no feature to find slices on.")
    check_groupable(project, columns, "find slices on")
    if isinstance(error, RowsError):
        err, defined = error.error, error.defined
        table = f"({error.rows[0]}) AS sb_rows"
        where, params = and_all([compile_slice(slice_, project), (defined, [])])
        params = [*error.rows[1], *params]
    else:
        err, defined = error_sql(project, error)
        if error not in error_choices(project):
            cost_expression(con, project, error)  # the expression's type, before any scan
        where, params = and_all([scope.to_sql(), compile_slice(slice_, project), (defined, [])])
        table = quote_ident(project.log_table)
    if not isinstance(error, RowsError) and is_cost(project, error):
        lowest = con.execute(f"SELECT min({err}) FROM {table} WHERE {where}", params).fetchall()[0][0]
        if lowest is not None and lowest < 0:
            raise ConfigError(
                f"{error} has negative values (as low as {lowest:g}); slice finding ranks "
                "non-negative costs. Choose a cost that is zero or more per row."
            )
    categorical = [c for c in columns if kinds[c] == "categorical"]
    counts = category_counts(con, table, categorical, (where, params), MAX_CATEGORIES)
    skipped = tuple(counts[c] for c in categorical if counts[c].id_like and not keep_id_like)
    if skipped:
        columns = [c for c in columns if c not in {s.column for s in skipped}]
        if not columns:
            raise ConfigError(
                "; ".join(s.note() for s in skipped) + ". Nothing else to find slices on: choose "
                "other features, or keep id-like columns (keep_id_like, --keep-id-like)."
            )
    top = {c: counts[c].top for c in categorical}
    numeric = [c for c in columns if kinds[c] in ("numeric", "timestamp")]
    known = {g.column: g for g in cuts or []}
    missing = [c for c in numeric if c not in known]
    binned = {
        **known,
        **({g.column: g for g in groupings(con, project, missing, scope, slice_, bins)} if missing else {}),
    }
    selects, sel_params, features = [], [], []
    for column in columns:
        kind, col = kinds[column], quote_ident(column)
        if kind == "categorical":
            values = top[column]
            if not values:  # no row in scope has a value: nothing to encode (and CASE needs a WHEN)
                selects.append(f"CAST(NULL AS INTEGER) AS {col}")
                features.append(EncodedFeature(column, kind, (), (), (Condition(column, "is_null"),)))
                continue
            cases = " ".join("WHEN ? THEN ?" for _ in values)
            lumped = max(counts[column].distinct - len(values), 0)  # the less frequent values beyond the top
            other = f" ELSE {len(values)}" if lumped else ""
            selects.append(f"CASE WHEN {col} IS NULL THEN NULL ELSE (CASE {col} {cases}{other} END) END AS {col}")
            for i, v in enumerate(values):
                sel_params += [v, i]
            labels = [str(v) for v in values]
            conds = [(Condition(column, "in", values=(v,)),) for v in values]
            if lumped:
                labels.append(OTHER)
                conds.append((Condition(column, "not_in", values=tuple(values)), Condition(column, "not_null")))
            features.append(
                EncodedFeature(column, kind, tuple(labels), tuple(conds), (Condition(column, "is_null"),), lumped)
            )
        elif kind == "boolean":
            selects.append(f"CASE WHEN {col} THEN 1 WHEN NOT {col} THEN 0 END AS {col}")
            features.append(
                EncodedFeature(
                    column,
                    kind,
                    ("false", "true"),
                    ((Condition(column, "is_false"),), (Condition(column, "is_true"),)),
                    (Condition(column, "is_null"),),
                )
            )
        else:
            g = binned[column]
            edges = list(g.edges)
            value = f"epoch({col})" if kind == "timestamp" else f"CAST({col} AS DOUBLE)"
            cases = " ".join(f"WHEN {value} < ? THEN {i}" for i in range(len(edges)))
            selects.append(f"CASE WHEN {col} IS NULL THEN NULL {cases} ELSE {len(edges)} END AS {col}")
            sel_params += edges
            features.append(
                EncodedFeature(
                    column,
                    kind,
                    tuple(g.order[:-1]),
                    tuple((_bin_condition(column, kind, edges, i),) for i in range(len(edges) + 1)),
                    (Condition(column, "is_null"),),
                )
            )
    extra = "".join(f", {term} AS {quote_ident(name)}" for name, term in (more_errors or {}).items())
    sql = f"SELECT {', '.join(selects)}, {err} AS {ERROR_COLUMN}{extra} FROM {table} WHERE {where}"
    totals = (
        f"SELECT count(*), coalesce(sum({err}), 0), coalesce(sum(({err}) * ({err})), 0) FROM {table} WHERE {where}",
        list(params),
    )
    if isinstance(error, RowsError):
        return Encoding(sql, sel_params + params, features, error.name, error.binary, totals, skipped)
    return Encoding(sql, sel_params + params, features, error, error in BINARY_ERROR, totals, skipped)


def _bin_condition(column: str, kind: str, edges: list[float], i: int) -> Condition:
    low = edges[i - 1] if i > 0 else None
    high = edges[i] if i < len(edges) else None
    if kind == "timestamp":
        low, high = (None if x is None else pd.Timestamp(x, unit="s").isoformat() for x in (low, high))
    if low is None and high is None:
        return Condition(column, "not_null")
    return Condition(column, "between", low=low, high=high)

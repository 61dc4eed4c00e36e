"""Expressions users write over a project's columns, checked before anything runs.

A *row expression* gives one number per prediction, for example the money lost on
a false approval::

    CASE WHEN prediction AND NOT label THEN loss ELSE 0 END

Discovery can rank slices by it as a product cost. An *aggregate expression*
gives one number per group of rows: a product metric such as
``sum(loss) FILTER (WHERE NOT prediction AND label)`` or ``avg(prediction::int)``.
It may also use ``sum``, ``avg``, ``count`` (with ``*`` or ``DISTINCT``), ``min``,
``max`` and ``FILTER (WHERE ...)``; every column must sit inside an aggregate,
and aggregates do not nest. The text is parsed with
sqlglot (DuckDB dialect) and accepted only if every node is on a short list:
column references to the project's own columns, literals, arithmetic,
comparisons, ``AND``/``OR``/``NOT``, ``CASE``/``IF``, casts to plain types and a
few scalar functions (``abs``, ``coalesce``, ``least``, ``ln``, ...). Anything
else — subqueries, table functions such as ``read_csv``, aggregates, window
functions, settings, unknown functions, parameters, several statements — is
refused with a message naming it. What runs is not the user's text but SQL
generated from the checked tree, with every column quoted, so the text cannot
reach anything the tree does not show. String literals stay in that SQL as
literals: they are nodes of the checked tree, escaped by the generator.

Before an expression is accepted, :func:`result_type` runs it on an empty table
with the project's columns in a separate in-memory DuckDB whose external access
(files, URLs, extensions) is off and locked: a second wall behind the whitelist,
and the check of its columns and result type. Then :func:`check_on_rows` runs it
over every row of the project's log (all rows, not a sample; per model version and
stage for an aggregate), under the time bound of :mod:`analysis.store.time_bound`, so an
expression that fails on the data (a text that does not cast to a number, a
remainder of a division by zero) is refused with DuckDB's reason before it is
stored or searched with, and one that runs too long is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from analysis.errors import ConfigError
from analysis.store.project import Project
from analysis.store.sql import quote_ident
from analysis.store.time_bound import CHECK_SECONDS, local_connection, run_bounded

_ROW_NODES: dict[type, str] = {
    exp.Column: "column",
    exp.Identifier: "name",
    exp.Literal: "literal",
    exp.Boolean: "true/false",
    exp.Null: "null",
    exp.Paren: "parentheses",
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.IntDiv: "//",
    exp.Mod: "%",
    exp.Neg: "-",
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.Is: "IS",
    exp.In: "IN",
    exp.Between: "BETWEEN",
    exp.And: "AND",
    exp.Or: "OR",
    exp.Not: "NOT",
    exp.Case: "CASE",
    exp.If: "IF",
    exp.Cast: "CAST",
    exp.TryCast: "TRY_CAST",
    exp.DataType: "type",
    exp.Coalesce: "coalesce",
    exp.Nullif: "nullif",
    exp.Abs: "abs",
    exp.Least: "least",
    exp.Greatest: "greatest",
    exp.Round: "round",
    exp.Floor: "floor",
    exp.Ceil: "ceil",
    exp.Sign: "sign",
    exp.Ln: "ln",
    exp.Log: "log",
    exp.Exp: "exp",
    exp.Sqrt: "sqrt",
    exp.Pow: "power",
}
_AGGREGATES: dict[type, str] = {exp.Sum: "sum", exp.Avg: "avg", exp.Count: "count", exp.Min: "min", exp.Max: "max"}
_AGGREGATE_NODES: dict[type, str] = {
    exp.Filter: "FILTER",
    exp.Where: "WHERE",
    exp.Star: "*",
    exp.Distinct: "DISTINCT",
    **_AGGREGATES,
}
_CAST_TYPES = {*exp.DataType.NUMERIC_TYPES, exp.DataType.Type.BOOLEAN, *exp.DataType.TEXT_TYPES}
_NUMERIC_RESULT = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "BOOLEAN",
)
MAX_LENGTH = 2000
MAX_DEPTH = 100  # levels of the parsed tree (a sum of 100 terms is 100 levels deep)
_TOO_DEEP = (
    "The expression nests too deeply to be read ({}); write it with fewer nested parentheses, functions or operators."
)


@dataclass(frozen=True)
class RowExpression:
    """A checked row expression: ``text`` as written, ``sql`` as it runs."""

    text: str
    sql: str
    columns: tuple[str, ...]


def parse_row_expression(text: str, columns: Iterable[str]) -> RowExpression:
    """Check ``text`` against the node list and ``columns`` (matched without
    regard to case, as DuckDB does); raise :class:`ConfigError` naming what is wrong."""
    return _parse(text, columns, aggregate=False)


def parse_aggregate_expression(text: str, columns: Iterable[str]) -> RowExpression:
    """Like :func:`parse_row_expression`, for an expression over groups of rows."""
    return _parse(text, columns, aggregate=True)


def _parse(text: str, columns: Iterable[str], *, aggregate: bool) -> RowExpression:
    kind = "an aggregate expression" if aggregate else "a row expression"
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("The expression is empty.")
    if len(text) > MAX_LENGTH:
        raise ConfigError(f"The expression is {len(text):,} characters long; the limit is {MAX_LENGTH:,}.")
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except (ParseError, sqlglot.errors.TokenError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"The expression {text!r} is not valid SQL: {first}") from None
    except RecursionError:  # the parser recurses per level: a few dozen nested calls exhaust Python's stack
        raise ConfigError(_TOO_DEEP.format("the parser ran out of stack")) from None
    if len(trees) != 1:
        raise ConfigError(f"Write one expression, not {len(trees)} statements: {text!r}.")
    tree = trees[0]
    depth = max(node.depth for node in tree.walk())  # walk and depth are iterative
    if depth > MAX_DEPTH:
        raise ConfigError(_TOO_DEEP.format(f"{depth} levels; the limit is {MAX_DEPTH}"))
    allowed = {**_ROW_NODES, **(_AGGREGATE_NODES if aggregate else {})}
    by_lower = {c.lower(): c for c in columns}
    used: list[str] = []
    n_aggregates = 0
    for node in tree.walk():
        # Inside an aggregate: under one, or in the WHERE of its FILTER clause.
        inside = node.find_ancestor(*_AGGREGATES) or node.find_ancestor(exp.Where)
        if isinstance(node, exp.Column):
            if node.table or node.args.get("db") or node.args.get("catalog"):
                raise ConfigError(f"Refer to columns by their name alone, not {node.sql('duckdb')!r}.")
            name = by_lower.get(node.name.lower())
            if name is None:
                raise ConfigError(
                    f"Unknown column {node.name!r} in {text!r}. Columns: {', '.join(sorted(by_lower.values()))}."
                )
            if aggregate and inside is None:
                raise ConfigError(
                    f"{node.name} is outside any aggregate in {text!r}: a product metric sums, "
                    f"averages or counts rows, as in sum({node.name})."
                )
            used.append(name)
        elif isinstance(node, exp.DataType):
            if node.this not in _CAST_TYPES or node.expressions:
                raise ConfigError(f"Cast to a plain number, boolean or text type, not {node.sql('duckdb')}.")
        elif type(node) not in allowed:
            raise ConfigError(
                f"{_describe(node)} is not allowed in {kind} ({text!r}); use columns, numbers, "
                "arithmetic, comparisons, CASE and scalar functions such as abs, coalesce, least, "
                "greatest, round, ln, exp, sqrt"
                + ("; aggregates sum, avg, count, min, max with FILTER (WHERE ...)." if aggregate else ".")
            )
        elif isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            raise ConfigError(f"* belongs in count(*) only ({text!r}).")
        elif type(node) in _AGGREGATES:
            n_aggregates += 1
            if inside is not None:
                raise ConfigError(f"Aggregates do not nest: {node.sql('duckdb')} inside {inside.sql('duckdb')}.")
    if aggregate and not n_aggregates:
        raise ConfigError(
            f"{text!r} aggregates nothing: a product metric sums, averages or counts rows, "
            "as in sum(revenue) or avg(prediction::int)."
        )
    try:
        quoted = tree.transform(
            lambda n: exp.column(by_lower[n.name.lower()], quoted=True) if isinstance(n, exp.Column) else n
        )
        sql = quoted.sql(dialect="duckdb")
    except RecursionError:
        raise ConfigError(_TOO_DEEP.format(f"{depth} levels")) from None
    return RowExpression(text, sql, tuple(dict.fromkeys(used)))


def _describe(node: exp.Expression) -> str:
    if isinstance(node, (exp.Select, exp.Subquery, exp.Query)):
        return "A subquery"
    if isinstance(node, exp.AggFunc):
        return f"The aggregate {node.sql_name().lower()}()"
    if isinstance(node, exp.Window):
        return "A window function"
    if isinstance(node, exp.Placeholder):
        return "A parameter placeholder"
    if isinstance(node, exp.Anonymous):
        return f"The function {node.name.lower()}()"
    if isinstance(node, exp.Func):
        return f"The function {node.sql_name().lower()}()"
    return f"{type(node).__name__} ({node.sql('duckdb')[:40]})"


def row_columns(project: Project) -> list[str]:
    """The columns a row expression may use: prediction, score, label and the project's own."""
    return ["prediction", "score", "label", *(c.name for c in project.columns)]


def result_type(con: duckdb.DuckDBPyConnection, project: Project, select_sql: str) -> str:
    """The type of ``select_sql`` over the project's log, found by running it on an
    empty copy of the log's columns in an in-memory DuckDB with external access
    disabled (raises ``duckdb.Error`` where it does not apply)."""
    # The log's columns as the local store types them (another engine names its types its own way).
    local = getattr(con, "local", None) or con
    columns = local.execute(f"DESCRIBE {quote_ident(project.log_table)}").fetchall()
    sandbox = duckdb.connect(":memory:", config={"enable_external_access": False, "lock_configuration": True})
    try:
        table = quote_ident(project.log_table)
        sandbox.execute(f"CREATE TABLE {table} ({', '.join(f'{quote_ident(c[0])} {c[1]}' for c in columns)})")
        sandbox.execute(f"SELECT {select_sql} AS value FROM {table}").fetchall()
        return str(sandbox.execute(f"DESCRIBE SELECT {select_sql} AS value FROM {table}").fetchall()[0][1])
    finally:
        sandbox.close()


def first_line(exc: BaseException) -> str:
    """DuckDB's reason, without its error class prefix and the SQL it quotes."""
    lines = str(exc).strip().splitlines()
    return lines[0].split(": ", 1)[-1] if lines else type(exc).__name__


def check_on_rows(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    expr: RowExpression,
    what: str,
    *,
    aggregate: bool,
    seconds: float = CHECK_SECONDS,
) -> None:
    """Evaluate a checked expression over every row of ``project``'s log (an aggregate
    per model version and stage, as it is reported); raise :class:`ConfigError` with
    DuckDB's reason if it fails there, or if it runs longer than ``seconds``."""
    local = local_connection(con)
    table = quote_ident(project.log_table)
    if aggregate:
        sql = f"SELECT CAST(({expr.sql}) AS DOUBLE) FROM {table} GROUP BY model_version, stage"
    else:
        sql = f"SELECT sum(CAST(({expr.sql}) AS DOUBLE)) FROM {table}"
    try:
        run_bounded(local, sql, seconds=seconds, what=f"Checking {what} on {project.name}'s rows")
    except duckdb.Error as exc:
        raise ConfigError(f"{what} fails on {project.name}'s rows: {first_line(exc)}") from None


def cost_expression(con: duckdb.DuckDBPyConnection, project: Project, text: str) -> RowExpression:
    """A row expression of ``project`` that gives a number (a boolean counts as 0/1)
    on every row of its log."""
    expr = parse_row_expression(text, row_columns(project))
    try:
        kind = result_type(con, project, expr.sql)
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0].split(": ", 1)[-1]
        raise ConfigError(f"The expression {text!r} does not apply to {project.name}'s columns: {first}") from None
    if not str(kind).upper().startswith(_NUMERIC_RESULT):
        raise ConfigError(f"The expression {text!r} gives {kind} values; a cost must be a number.")
    check_on_rows(con, project, expr, f"The cost {text!r}", aggregate=False)
    return expr

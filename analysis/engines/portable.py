"""The engine's DuckDB SQL, translated for Spark: SQLGlot (pinned) and the few rewrites
it needs here. Each rewrite names the construct; see docs/portable-sql.md."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark


class ExactPercentile(exp.Expression, exp.Func):
    """One exact quantile, ``PERCENTILE_DISC(fraction) WITHIN GROUP (ORDER BY column)`` in
    Spark (SQLGlot's Spark generator writes PercentileDisc as the approximate
    PERCENTILE_APPROX)."""

    arg_types = {"this": True, "expression": True}  # the fraction, the column


class SampledSource(exp.Expression):
    """A table or aliased subquery sampled by percent with a seed: Spark writes the sample
    after the source and before its alias, a form SQLGlot does not write."""

    arg_types = {"this": True, "percent": True, "seed": True, "alias": False}


def _exact_percentile(self, e: ExactPercentile) -> str:
    return f"PERCENTILE_DISC({self.sql(e, 'this')}) WITHIN GROUP (ORDER BY {self.sql(e, 'expression')})"


def _sampled_source(self, e: SampledSource) -> str:
    alias = f" AS {self.sql(e, 'alias')}" if e.args.get("alias") else ""
    sample = f"TABLESAMPLE ({self.sql(e, 'percent')} PERCENT) REPEATABLE ({self.sql(e, 'seed')})"
    return f"{self.sql(e, 'this')} {sample}{alias}"


class SparkForSliceboard(Spark):
    """Spark SQL as SQLGlot writes it, plus the two forms above."""

    class Generator(Spark.Generator):
        TRANSFORMS = {**Spark.Generator.TRANSFORMS, ExactPercentile: _exact_percentile, SampledSource: _sampled_source}


def _rewrite(node: exp.Expression) -> exp.Expression:
    # quantile_disc(x, [p1, p2, ...]): Spark's percentile_disc takes one fraction, in
    # WITHIN GROUP form; both follow the SQL standard (the smallest value whose
    # cumulative share reaches p).
    if isinstance(node, exp.PercentileDisc) and isinstance(node.expression, exp.Array):
        return exp.Array(
            expressions=[
                ExactPercentile(this=p.copy(), expression=node.this.copy()) for p in node.expression.expressions
            ]
        )
    # GROUPING(a, b, ...) with several arguments: Spark's grouping() takes one.
    if isinstance(node, exp.Grouping) and len(node.expressions) > 1:
        terms = [
            exp.Mul(this=exp.Grouping(expressions=[e.copy()]), expression=exp.Literal.number(2**k))
            for k, e in enumerate(reversed(node.expressions))
        ]
        out = terms[0]
        for t in terms[1:]:
            out = exp.Add(this=out, expression=t)
        return exp.Paren(this=out)
    # CAST('0x' || hex AS BIGINT), how the example key reads hexadecimal digits
    # (analysis.store.example_key): Spark reads hexadecimal with conv().
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.BIGINT:
        inner = node.this.unnest()
        if isinstance(inner, exp.DPipe) and isinstance(inner.this, exp.Literal) and inner.this.this == "0x":
            digits = exp.Anonymous(
                this="CONV", expressions=[inner.expression.copy(), exp.Literal.number(16), exp.Literal.number(10)]
            )
            return exp.Cast(this=digits, to=exp.DataType.build("BIGINT"))
    # error('message') inside a CASE (an attached dataset's checked conversions): raise_error.
    if isinstance(node, exp.Anonymous) and node.name.lower() == "error":
        return exp.Anonymous(this="RAISE_ERROR", expressions=[e.copy() for e in node.expressions])
    return node


def _samples(tree: exp.Expression) -> None:
    """``SELECT … FROM (subquery) AS a USING SAMPLE p% (system, seed)`` or ``… FROM t
    USING SAMPLE …``: the source becomes a :class:`SampledSource`, which Spark writes as
    ``(subquery) TABLESAMPLE (p PERCENT) REPEATABLE (seed) AS a``."""
    for select in list(tree.find_all(exp.Select)):
        sample, source = select.args.get("sample"), select.args.get("from_")
        if sample is None:
            continue
        sub = source.this if source is not None else None
        aliased = isinstance(sub, exp.Subquery) and sub.alias
        if not (aliased or isinstance(sub, exp.Table)) or sample.args.get("percent") is None:
            raise ValueError("a sample is taken only of a table or an aliased subquery, by percent")
        seed = sample.args.get("seed")
        alias = sub.args.get("alias")
        bare = sub.copy()
        bare.set("alias", None)
        source.set(
            "this",
            SampledSource(
                this=bare,
                percent=exp.Literal.number(sample.args["percent"].name),
                seed=seed.copy() if seed is not None else exp.Literal.number(0),
                alias=alias.copy() if alias is not None else None,
            ),
        )
        select.set("sample", None)


def to_spark(sql: str) -> str:
    """One DuckDB statement as Spark SQL, rewritten on SQLGlot's tree and written by
    :class:`SparkForSliceboard`."""
    tree = sqlglot.parse_one(sql, read="duckdb").transform(_rewrite)
    _samples(tree)
    return tree.sql(dialect=SparkForSliceboard)


# Constructs the engine must not send to Spark: DuckDB functions Spark lacks (or that
# SQLGlot translates to something else), and approximate forms of exact statistics.
DUCKDB_ONLY_FUNCTIONS = {
    "HASH",
    "QUANTILE_CONT",
    "TIME_BUCKET",
    "STRING_AGG",
    "LIST",
    "ARRAY_AGG",
    "EPOCH",
    "READ_PARQUET",
    "READ_CSV",
    "READ_CSV_AUTO",
    "SHA256",
    "APPROX_QUANTILE",
    "MD5_NUMBER",
    "REGEXP_FULL_MATCH",
    "LIST_VALUE",
    "STRUCT_PACK",
    "GLOB",
    "DATE_BIN",
}
_APPROXIMATE = ("PERCENTILE_APPROX", "APPROX_PERCENTILE", "APPROX_COUNT_DISTINCT")


def spark_problems(sql: str) -> list[str]:
    """What in ``sql`` (DuckDB) has no faithful Spark translation here; empty when it has one."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        return [f"not parsed: {str(exc).splitlines()[0]}"]
    problems = []
    for node in tree.walk():
        name = (
            node.name.upper()
            if isinstance(node, exp.Anonymous)
            else (node.sql_name().upper() if isinstance(node, exp.Func) else "")
        )
        if name in DUCKDB_ONLY_FUNCTIONS:
            problems.append(f"DuckDB-only function {name.lower()}()")
        if isinstance(node, exp.Qualify):
            problems.append("QUALIFY (SQLGlot's rewrite loses the ordering)")
        if isinstance(node, exp.Unpivot) if hasattr(exp, "Unpivot") else False:
            problems.append("UNPIVOT")
        if isinstance(node, exp.Pivot) and node.args.get("unpivot"):
            problems.append("UNPIVOT")
        if isinstance(node, exp.Bracket) and any(isinstance(e, exp.Slice) for e in node.expressions):
            problems.append("string or list slicing x[a:b]")
        if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
            problems.append("CTE MATERIALIZED hint")
    try:
        spark = to_spark(sql)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return problems + [f"not translated: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"]
    upper = spark.upper()
    problems += [f"approximate {f}" for f in _APPROXIMATE if f in upper]
    if re.search(r"\bGROUPING\([^(),]*,", upper):
        problems.append("grouping() of several columns")
    if "PERCENTILE_CONT(" in upper and "WITHIN GROUP" not in upper:
        problems.append("PERCENTILE_CONT(x, q), not a Spark form")
    if "USING SAMPLE" in upper:
        problems.append("DuckDB's USING SAMPLE")
    return problems

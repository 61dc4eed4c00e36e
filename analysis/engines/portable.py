"""The engine's DuckDB SQL, translated for Spark: SQLGlot (pinned) and the few rewrites
it needs here. Each rewrite names the construct; see docs/portable-sql.md."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

# A marker function for a rewrite SQLGlot's Spark generator would otherwise change:
# it turns PERCENTILE_DISC ... WITHIN GROUP into the approximate PERCENTILE_APPROX.
_DISC = "SB_PERCENTILE_DISC"


def _rewrite(node: exp.Expression) -> exp.Expression:
    # quantile_disc(x, [p1, p2, ...]): Spark's percentile_disc takes one fraction, in
    # WITHIN GROUP form; both follow the SQL standard (the smallest value whose
    # cumulative share reaches p).
    if isinstance(node, exp.PercentileDisc) and isinstance(node.expression, exp.Array):
        return exp.Array(
            expressions=[
                exp.Anonymous(this=_DISC, expressions=[p.copy(), node.this.copy()]) for p in node.expression.expressions
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


def _split_call(sql: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose '(' is at ``start``, and the index after ')'."""
    depth, args, begin, i, quote = 0, [], start + 1, start, None
    while i < len(sql):
        ch = sql[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[begin:i].strip())
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append(sql[begin:i].strip())
            begin = i + 1
        i += 1
    raise ValueError("unbalanced parentheses")


def _percentile_disc(sql: str) -> str:
    out, i = [], 0
    while True:
        at = sql.find(_DISC + "(", i)
        if at < 0:
            return "".join(out) + sql[i:]
        (fraction, column), end = _split_call(sql, at + len(_DISC))
        out += [sql[i:at], f"PERCENTILE_DISC({fraction}) WITHIN GROUP (ORDER BY {column})"]
        i = end


_SAMPLE = "SB_SAMPLE_"


def _samples(tree: exp.Expression) -> list[tuple[str, str, str]]:
    """``SELECT … FROM (subquery) AS a USING SAMPLE p% (system, seed)`` or ``… FROM t
    USING SAMPLE …``: Spark samples with ``(subquery) TABLESAMPLE (p PERCENT) REPEATABLE
    (seed) AS a`` (``t TABLESAMPLE …``), a form SQLGlot does not write. The source gets
    a marker for an alias, replaced in the text after."""
    found = []
    for select in list(tree.find_all(exp.Select)):
        sample, source = select.args.get("sample"), select.args.get("from_")
        if sample is None:
            continue
        sub = source.this if source is not None else None
        aliased = isinstance(sub, exp.Subquery) and sub.alias
        if not (aliased or isinstance(sub, exp.Table)) or sample.args.get("percent") is None:
            raise ValueError("a sample is taken only of a table or an aliased subquery, by percent")
        seed = sample.args.get("seed")
        found.append((sub.alias, sample.args["percent"].name, seed.name if seed is not None else "0"))
        sub.set("alias", exp.TableAlias(this=exp.to_identifier(f"{_SAMPLE}{len(found) - 1}")))
        select.set("sample", None)
    return found


def to_spark(sql: str) -> str:
    """One DuckDB statement as Spark SQL."""
    tree = sqlglot.parse_one(sql, read="duckdb").transform(_rewrite)
    samples = _samples(tree)
    out = _percentile_disc(tree.sql(dialect="spark"))
    for i, (alias, percent, seed) in enumerate(samples):
        out = out.replace(
            f"AS {_SAMPLE}{i}",
            f"TABLESAMPLE ({percent} PERCENT) REPEATABLE ({seed})" + (f" AS {alias}" if alias else ""),
        )
    return out


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

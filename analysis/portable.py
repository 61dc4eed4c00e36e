"""The engine's DuckDB SQL, translated for Spark: SQLGlot (pinned) and the few rewrites
it needs here. Each rewrite names the construct; see docs/portable-sql.md."""

from __future__ import annotations

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
        return exp.Array(expressions=[exp.Anonymous(this=_DISC, expressions=[p.copy(), node.this.copy()])
                                      for p in node.expression.expressions])
    # GROUPING(a, b, ...) with several arguments: Spark's grouping() takes one.
    if isinstance(node, exp.Grouping) and len(node.expressions) > 1:
        terms = [exp.Mul(this=exp.Grouping(expressions=[e.copy()]), expression=exp.Literal.number(2 ** k))
                 for k, e in enumerate(reversed(node.expressions))]
        out = terms[0]
        for t in terms[1:]:
            out = exp.Add(this=out, expression=t)
        return exp.Paren(this=out)
    # CAST('0x' || hex AS BIGINT), how the example key reads hexadecimal digits
    # (analysis.example_key): Spark reads hexadecimal with conv().
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.BIGINT:
        inner = node.this.unnest()
        if isinstance(inner, exp.DPipe) and isinstance(inner.this, exp.Literal) and inner.this.this == "0x":
            digits = exp.Anonymous(this="CONV", expressions=[inner.expression.copy(), exp.Literal.number(16),
                                                             exp.Literal.number(10)])
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


def to_spark(sql: str) -> str:
    """One DuckDB statement as Spark SQL."""
    tree = sqlglot.parse_one(sql, read="duckdb").transform(_rewrite)
    return _percentile_disc(tree.sql(dialect="spark"))

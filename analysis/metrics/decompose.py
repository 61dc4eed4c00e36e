"""A comparison's product metrics: each decomposed into additive aggregates (summed
per bucket, so the bootstrap can resample them), and classified by how it grows with
traffic, which decides how two versions that served different traffic are compared.

**Normalisation.** From the expression's tree, with each aggregate as a variable:

* a *total* (degree 1: a sum or a count, or a sum of them, such as ``sum(revenue)``,
  ``count(*) FILTER (WHERE ...)`` or ``sum(revenue) - sum(loss)``) doubles when the
  traffic doubles. Between versions that served different traffic (an unpaired
  comparison: 85% of the traffic against a 15% canary) its total says how much
  traffic each served, not how good it is: it is compared **per prediction** (the
  total over the compared rows divided by their number, with a bootstrap interval of
  that ratio). Paired, both versions scored the same examples and the total is
  compared as it is. This holds for a loss (lower is better) as for revenue;
* a *rate* (degree 0: ``avg(x)``, ``sum(a) / count(*)``) is compared as defined;
* anything else (``min``, ``max``, ``count(DISTINCT ...)``, a product of sums) is
  compared as defined, and the comparison says it is neither a total nor a rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from analysis.metrics.expressions import parse_aggregate_expression, row_columns
from analysis.metrics.product import ProductMetric
from analysis.store.project import Project

PER_PREDICTION = "per prediction"
TOTAL = "total over the same examples"
AS_DEFINED = "as defined (a rate)"
ML_DEFINED = "as defined"  # an ML metric (accuracy, mean absolute error, ROC AUC): neither a total nor a rate
NEITHER = "as defined (neither a total nor a rate)"


@dataclass(frozen=True)
class Decomposed:
    """A product metric as additive aggregates and an outer expression over them."""

    metric: ProductMetric
    sql: str  # the whole expression, checked
    parts: tuple[str, ...]  # aggregate SQL, summed per bucket
    outer: str | None  # SQL over columns p0, p1, ... (None: not decomposable)
    terms: tuple[str, ...] = ()  # per part, the per-row term whose sum it is
    degree: int | None = None  # 1: a total, 0: a rate, None: neither

    def part_names(self, index: int) -> list[str]:
        return [f"m{index}_p{j}" for j in range(len(self.parts))]

    @property
    def additive(self) -> bool:
        return self.outer is not None and self.degree == 1

    def normalisation(self, paired: bool) -> str:
        if self.additive:
            return TOTAL if paired else PER_PREDICTION
        return AS_DEFINED if self.degree == 0 and self.outer is not None else NEITHER


def decompose(metric: ProductMetric, project: Project, index: int) -> Decomposed:
    checked = parse_aggregate_expression(metric.expression, row_columns(project))
    tree = sqlglot.parse_one(checked.sql, read="duckdb")
    parts: list[str] = []
    ok = True

    def part(node: exp.Expression) -> exp.Expression:
        parts.append(node.sql(dialect="duckdb"))
        return exp.column(f"m{index}_p{len(parts) - 1}", quoted=True)

    def replace(node: exp.Expression):
        nonlocal ok
        agg, filt = (node.this, node) if isinstance(node, exp.Filter) else (node, None)
        if not isinstance(agg, (exp.Sum, exp.Count, exp.Avg, exp.Min, exp.Max)) or isinstance(node.parent, exp.Filter):
            return node
        if isinstance(agg, (exp.Min, exp.Max)) or isinstance(agg.this, exp.Distinct):
            ok = False
            return node
        if isinstance(agg, exp.Avg):
            where = filt.expression.copy() if filt else None
            total, count = exp.Sum(this=agg.this.copy()), exp.Count(this=agg.this.copy())
            if where is not None:
                total, count = exp.Filter(this=total, expression=where), exp.Filter(this=count, expression=where.copy())
            return exp.Div(this=part(total), expression=exp.Nullif(this=part(count), expression=exp.Literal.number(0)))
        return part(node)

    outer = tree.transform(replace)
    if not ok:
        return Decomposed(metric, checked.sql, tuple(parts), None)
    names = {f"m{index}_p{j}" for j in range(len(parts))}
    return Decomposed(
        metric,
        checked.sql,
        tuple(parts),
        outer.sql(dialect="duckdb"),
        tuple(row_term(p) for p in parts),
        degree(outer, names),
    )


def degree(node: exp.Expression, parts: set[str]) -> int | None:
    """How the expression scales when every aggregate in ``parts`` is multiplied by the
    same factor: 1 (a total), 0 (a rate), another whole number, or None (not by a power)."""
    if isinstance(node, exp.Column):
        return 1 if node.name in parts else None
    if isinstance(node, (exp.Literal, exp.Boolean, exp.Null)):
        return 0
    if isinstance(node, (exp.Paren, exp.Neg, exp.Cast, exp.TryCast, exp.Abs)):
        return degree(node.this, parts)
    if isinstance(node, exp.Nullif):  # nullif(x, 0): x where it is defined
        other = degree(node.expression, parts)
        return degree(node.this, parts) if other == 0 else None
    if isinstance(node, exp.Coalesce):  # coalesce(sum(x), 0): the sum where there is one
        args = [node.this, *node.expressions]
        found = {degree(a, parts) for a in args if not (isinstance(a, exp.Literal) and a.this in ("0", "0.0"))}
        return found.pop() if len(found) == 1 else None
    if isinstance(node, (exp.Add, exp.Sub)):
        left, right = degree(node.this, parts), degree(node.expression, parts)
        if left is None or right is None:
            return None
        if left == right:
            return left
        return None
    if isinstance(node, (exp.Mul, exp.Div)):
        left, right = degree(node.this, parts), degree(node.expression, parts)
        if left is None or right is None:
            return None
        return left + right if isinstance(node, exp.Mul) else left - right
    children = [c for c in node.iter_expressions() if not isinstance(c, exp.DataType)]
    return 0 if all(degree(c, parts) == 0 for c in children) else None


def row_term(part: str) -> str:
    """The per-row term whose sum is the aggregate ``part`` (sum, count, with a FILTER)."""
    node = sqlglot.parse_one(part, read="duckdb")
    agg, cond = (node.this, node.expression.this) if isinstance(node, exp.Filter) else (node, None)
    if isinstance(agg, exp.Count):
        value = (
            "1"
            if isinstance(agg.this, exp.Star)
            else f"CASE WHEN {agg.this.sql('duckdb')} IS NOT NULL THEN 1 ELSE 0 END"
        )
        return f"CASE WHEN {cond.sql('duckdb')} THEN {value} ELSE 0 END" if cond is not None else value
    value = agg.this.sql("duckdb")
    return f"CASE WHEN {cond.sql('duckdb')} THEN {value} END" if cond is not None else value

"""ML metrics computed in DuckDB, in portable SQL.

One query per call, whatever the grouping: rows are first reduced to a small
histogram (per group, label, prediction and score), and every metric is derived
from that histogram, so ten million rows cost one hash aggregation. Metrics use
labeled rows only; ``n_labeled`` (and ``n_scored`` for score-based metrics) say
how many rows that is. The definitions match scikit-learn:

* ROC AUC is the Mann-Whitney statistic with ties counted half
  (``roc_auc_score``);
* PR AUC is average precision, sum over score thresholds of
  (recall step) x precision (``average_precision_score``);
* log loss clips scores to [eps, 1 - eps] with float64 eps (``log_loss``);
* precision, recall and F1 are NULL when undefined (``zero_division=nan``);
* macro F1 averages over the classes seen in labels or predictions.

The SQL avoids DuckDB-only constructs (no QUALIFY, FILTER, GROUPING SETS,
``::`` casts or list functions) so that it translates to Spark SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from .project import Project
from .sql import quote_ident

EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    higher_is_better: bool
    needs_score: bool = False
    fmt: str = ".3f"


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("accuracy", "Accuracy", True),
        MetricInfo("precision", "Precision", True),
        MetricInfo("recall", "Recall", True),
        MetricInfo("f1", "F1", True),
        MetricInfo("roc_auc", "ROC AUC", True, needs_score=True),
        MetricInfo("pr_auc", "PR AUC (average precision)", True, needs_score=True),
        MetricInfo("log_loss", "Log loss", False, needs_score=True, fmt=".4f"),
        MetricInfo("brier", "Brier score", False, needs_score=True, fmt=".4f"),
        MetricInfo("macro_f1", "Macro F1", True),
        MetricInfo("mae", "MAE", False, fmt=".4g"),
        MetricInfo("rmse", "RMSE", False, fmt=".4g"),
        MetricInfo("r2", "R²", True),
    )
}

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier"),
    "multiclass": ("accuracy", "macro_f1"),
    "regression": ("mae", "rmse", "r2"),
}


def metrics_for(task: str) -> tuple[str, ...]:
    return TASK_METRICS[task]


def _ratio(num: str, den: str) -> str:
    return f"CASE WHEN {den} > 0 THEN CAST({num} AS DOUBLE) / CAST({den} AS DOUBLE) END"


def _dbl(expr: str) -> str:
    return f"CAST({expr} AS DOUBLE)"


@dataclass(frozen=True)
class GroupKey:
    """One grouping column: ``alias`` in the output, ``sql`` over log columns."""

    alias: str
    sql: str


def _groups(group_by: list[GroupKey]) -> list[GroupKey]:
    return group_by or [GroupKey("all_rows", "'all'")]


def metrics_query(
    project: Project,
    *,
    group_by: list[GroupKey],
    where: tuple[str, list] = ("TRUE", []),
    include_outcomes: bool = True,
) -> tuple[str, list]:
    """SQL and parameters for every metric of the project's task, per group."""
    groups = _groups(group_by)
    outcomes = [c.name for c in project.outcomes] if include_outcomes else []
    builder = {"binary": _binary_sql, "multiclass": _multiclass_sql, "regression": _regression_sql}
    return builder[project.task](project, groups, where, outcomes)


def _outcome_hist_cols(outcomes: list[str]) -> str:
    parts = []
    for i, o in enumerate(outcomes):
        q = quote_ident(o)
        parts.append(f", sum({q}) AS o{i}_sum, count({q}) AS o{i}_n")
    return "".join(parts)


def _outcome_total_cols(outcomes: list[str]) -> str:
    parts = []
    for i, o in enumerate(outcomes):
        parts.append(
            f", sum(o{i}_sum) AS {quote_ident(o + '_sum')}, "
            f"sum(o{i}_n) AS {quote_ident(o + '_count')}, "
            f"{_ratio(f'sum(o{i}_sum)', f'sum(o{i}_n)')} AS {quote_ident(o + '_mean')}"
        )
    return "".join(parts)


def _binary_sql(project: Project, groups: list[GroupKey], where, outcomes):
    log = quote_ident(project.log_table)
    gsel = ", ".join(f"{g.sql} AS {quote_ident(g.alias)}" for g in groups)
    gcols = ", ".join(quote_ident(g.alias) for g in groups)
    gjoin = " AND ".join(f"t.{quote_ident(g.alias)} = c.{quote_ident(g.alias)}" for g in groups)
    tcols = ", ".join(f"t.{quote_ident(g.alias)}" for g in groups)
    where_sql, params = where
    clip = f"greatest(least(s, {1 - EPS!r}), {EPS!r})"
    labeled_scored = "y IS NOT NULL AND s IS NOT NULL"
    sql = f"""
WITH hist AS (
    SELECT {gsel}, label AS y, prediction AS p, score AS s, count(*) AS n{_outcome_hist_cols(outcomes)}
    FROM {log}
    WHERE {where_sql}
    GROUP BY {", ".join(g.sql for g in groups)}, label, prediction, score
),
totals AS (
    SELECT {gcols},
        sum(n) AS n_rows,
        sum(CASE WHEN y IS NOT NULL THEN n ELSE 0 END) AS n_labeled,
        sum(CASE WHEN {labeled_scored} THEN n ELSE 0 END) AS n_scored,
        sum(CASE WHEN y AND p THEN n ELSE 0 END) AS tp,
        sum(CASE WHEN NOT y AND p THEN n ELSE 0 END) AS fp,
        sum(CASE WHEN y AND NOT p THEN n ELSE 0 END) AS fn,
        sum(CASE WHEN NOT y AND NOT p THEN n ELSE 0 END) AS tn,
        sum(CASE WHEN {labeled_scored} THEN n * (CASE WHEN y THEN -ln({clip}) ELSE -ln(1 - {clip}) END) ELSE 0 END) AS ll_sum,
        sum(CASE WHEN {labeled_scored} THEN n * (s - CASE WHEN y THEN 1 ELSE 0 END) * (s - CASE WHEN y THEN 1 ELSE 0 END) ELSE 0 END) AS brier_sum
        {_outcome_total_cols(outcomes)}
    FROM hist
    GROUP BY {gcols}
),
scores AS (
    SELECT {gcols}, s,
        {_dbl("sum(CASE WHEN y THEN n ELSE 0 END)")} AS pos,
        {_dbl("sum(CASE WHEN NOT y THEN n ELSE 0 END)")} AS neg
    FROM hist
    WHERE {labeled_scored}
    GROUP BY {gcols}, s
),
ranked AS (
    SELECT {gcols}, pos, neg,
        coalesce(sum(neg) OVER (PARTITION BY {gcols} ORDER BY s ASC
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS neg_below,
        sum(pos) OVER (PARTITION BY {gcols} ORDER BY s DESC
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS tp_at,
        sum(neg) OVER (PARTITION BY {gcols} ORDER BY s DESC
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS fp_at
    FROM scores
),
curve AS (
    SELECT {gcols},
        sum(pos * (neg_below + 0.5 * neg)) AS auc_num,
        sum(pos) AS n_pos,
        sum(neg) AS n_neg,
        sum(CASE WHEN pos > 0 THEN pos * tp_at / (tp_at + fp_at) ELSE 0 END) AS ap_num
    FROM ranked
    GROUP BY {gcols}
)
SELECT {tcols}, t.n_rows, t.n_labeled, t.n_scored,
    {_ratio("t.n_labeled", "t.n_rows")} AS labeled_share,
    {_ratio("t.tp + t.tn", "t.n_labeled")} AS accuracy,
    {_ratio("t.tp", "t.tp + t.fp")} AS precision,
    {_ratio("t.tp", "t.tp + t.fn")} AS recall,
    {_ratio("2 * t.tp", "2 * t.tp + t.fp + t.fn")} AS f1,
    CASE WHEN c.n_pos > 0 AND c.n_neg > 0 THEN c.auc_num / (c.n_pos * c.n_neg) END AS roc_auc,
    CASE WHEN c.n_pos > 0 THEN c.ap_num / c.n_pos END AS pr_auc,
    {_ratio("t.ll_sum", "t.n_scored")} AS log_loss,
    {_ratio("t.brier_sum", "t.n_scored")} AS brier,
    t.tp, t.fp, t.fn, t.tn
    {"".join(f", t.{quote_ident(o + s)}" for o in outcomes for s in ("_sum", "_count", "_mean"))}
FROM totals t
LEFT JOIN curve c ON {gjoin}
ORDER BY {tcols}
"""
    return sql, list(params)


def _multiclass_sql(project: Project, groups: list[GroupKey], where, outcomes):
    log = quote_ident(project.log_table)
    gsel = ", ".join(f"{g.sql} AS {quote_ident(g.alias)}" for g in groups)
    gcols = ", ".join(quote_ident(g.alias) for g in groups)
    gjoin = " AND ".join(f"t.{quote_ident(g.alias)} = f.{quote_ident(g.alias)}" for g in groups)
    tcols = ", ".join(f"t.{quote_ident(g.alias)}" for g in groups)
    where_sql, params = where
    sql = f"""
WITH hist AS (
    SELECT {gsel}, label AS y, prediction AS p, count(*) AS n{_outcome_hist_cols(outcomes)}
    FROM {log}
    WHERE {where_sql}
    GROUP BY {", ".join(g.sql for g in groups)}, label, prediction
),
totals AS (
    SELECT {gcols},
        sum(n) AS n_rows,
        sum(CASE WHEN y IS NOT NULL THEN n ELSE 0 END) AS n_labeled,
        sum(CASE WHEN y IS NOT NULL AND y = p THEN n ELSE 0 END) AS n_correct
        {_outcome_total_cols(outcomes)}
    FROM hist
    GROUP BY {gcols}
),
per_class AS (
    SELECT {gcols}, cls, sum(tp) AS tp, sum(fp) AS fp, sum(fn) AS fn
    FROM (
        SELECT {gcols}, y AS cls,
            CASE WHEN y = p THEN n ELSE 0 END AS tp, 0 AS fp,
            CASE WHEN p IS NULL OR y <> p THEN n ELSE 0 END AS fn
        FROM hist WHERE y IS NOT NULL
        UNION ALL
        SELECT {gcols}, p AS cls, 0 AS tp, CASE WHEN y <> p THEN n ELSE 0 END AS fp, 0 AS fn
        FROM hist WHERE y IS NOT NULL AND p IS NOT NULL
    ) AS sides
    GROUP BY {gcols}, cls
),
f AS (
    SELECT {gcols}, avg({_ratio("2 * tp", "2 * tp + fp + fn")}) AS macro_f1
    FROM per_class
    GROUP BY {gcols}
)
SELECT {tcols}, t.n_rows, t.n_labeled,
    {_ratio("t.n_labeled", "t.n_rows")} AS labeled_share,
    {_ratio("t.n_correct", "t.n_labeled")} AS accuracy,
    f.macro_f1
    {"".join(f", t.{quote_ident(o + s)}" for o in outcomes for s in ("_sum", "_count", "_mean"))}
FROM totals t
LEFT JOIN f ON {gjoin}
ORDER BY {tcols}
"""
    return sql, list(params)


def _regression_sql(project: Project, groups: list[GroupKey], where, outcomes):
    log = quote_ident(project.log_table)
    gsel = ", ".join(f"{g.sql} AS {quote_ident(g.alias)}" for g in groups)
    where_sql, params = where
    lab = "label IS NOT NULL AND prediction IS NOT NULL"
    err = "(label - prediction)"
    outcome_cols = "".join(
        f", sum({quote_ident(o)}) AS {quote_ident(o + '_sum')}, count({quote_ident(o)}) AS "
        f"{quote_ident(o + '_count')}, avg({quote_ident(o)}) AS {quote_ident(o + '_mean')}"
        for o in outcomes
    )
    sql = f"""
SELECT {gsel},
    count(*) AS n_rows,
    sum(CASE WHEN {lab} THEN 1 ELSE 0 END) AS n_labeled,
    {_ratio(f"sum(CASE WHEN {lab} THEN 1 ELSE 0 END)", "count(*)")} AS labeled_share,
    avg(CASE WHEN {lab} THEN abs{err} END) AS mae,
    sqrt(avg(CASE WHEN {lab} THEN {err} * {err} END)) AS rmse,
    CASE WHEN var_pop(CASE WHEN {lab} THEN label END) > 0
        THEN 1 - sum(CASE WHEN {lab} THEN {err} * {err} END)
            / (var_pop(CASE WHEN {lab} THEN label END) * sum(CASE WHEN {lab} THEN 1 ELSE 0 END))
    END AS r2
    {outcome_cols}
FROM {log}
WHERE {where_sql}
GROUP BY {", ".join(g.sql for g in groups)}
ORDER BY {", ".join(g.sql for g in groups)}
"""
    return sql, list(params)


def compute_metrics(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    *,
    group_by: list[GroupKey] | None = None,
    where: tuple[str, list] = ("TRUE", []),
    include_outcomes: bool = True,
) -> pd.DataFrame:
    """Every metric of the task, per group (one row per group)."""
    sql, params = metrics_query(
        project, group_by=group_by or [], where=where, include_outcomes=include_outcomes
    )
    frame = con.execute(sql, params).df()
    for c in ("n_rows", "n_labeled", "n_scored", "tp", "fp", "fn", "tn"):
        if c in frame:
            frame[c] = frame[c].fillna(0).astype("int64")
    for o in project.outcomes if include_outcomes else ():
        frame[o.name + "_count"] = frame[o.name + "_count"].fillna(0).astype("int64")
    if not group_by and "all_rows" in frame:
        frame = frame.drop(columns=["all_rows"])
    return frame

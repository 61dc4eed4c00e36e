"""ML metrics computed in DuckDB, in portable SQL.

One query per call, whatever the grouping. Rows are first reduced to
sufficient statistics per group (binary: confusion counts, log-loss and Brier
sums, and the ranking statistics of :func:`curve_sql`; multiclass: counts per
label and prediction; regression: sums of errors and labels), either from the
raw log or from the per-day rollup (``analysis.metrics.rollup``), and every metric is
derived from those. Metrics
use labeled rows that have a prediction only (a row without one cannot be evaluated:
every metric leaves it out); ``n_labeled`` (and ``n_scored`` for score-based metrics)
say how many rows that is. The definitions match scikit-learn:

* ROC AUC is the Mann-Whitney statistic with ties counted half (``roc_auc_score``);
* PR AUC is average precision: the sum over score thresholds of
  (recall step) x precision (``average_precision_score``);
* log loss clips scores to [eps, 1 - eps] with float64 eps (``log_loss``);
* precision, recall and F1 are NULL when undefined (``zero_division=nan``);
* macro F1 averages over the classes seen in labels or predictions;
* R² is NULL when the labels are constant.

The SQL avoids DuckDB-only constructs (no QUALIFY, FILTER, GROUPING SETS,
``::`` casts or list functions) so that it translates to Spark SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from analysis.store.project import Project
from analysis.store.schema import outcome_count, outcome_sum
from analysis.store.sql import Sql, quote_ident

EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class GroupKey:
    """One grouping column: ``alias`` in the output, ``sql`` over the log's columns,
    and ``rollup_sql`` over the rollup's columns when the rollup can answer it."""

    alias: str
    sql: str
    rollup_sql: str | None = None


VERSION = GroupKey("model_version", "model_version", "model_version")
STAGE = GroupKey("stage", "stage", "stage")
DAY = GroupKey("day", 'CAST("timestamp" AS DATE)', "day")
ALL_ROWS = GroupKey("all_rows", "'all'", "'all'")


def _ratio(num: str, den: str) -> str:
    return f"CASE WHEN {den} > 0 THEN CAST({num} AS DOUBLE) / CAST({den} AS DOUBLE) END"


def hist_query(
    project: Project,
    groups: list[GroupKey],
    where: tuple[str, list],
    source: str,
    outcomes: list[str],
    rows: tuple[str, list] | None = None,
) -> Sql:
    """Multiclass and regression: sufficient statistics per group (and per
    label x prediction for multiclass), from the log or the rollup."""
    rollup = source == "rollup"
    table = _rows(project, rollup, rows)
    gexpr = [g.rollup_sql if rollup else g.sql for g in groups]
    sel = [f"{e} AS {quote_ident(g.alias)}" for e, g in zip(gexpr, groups)]
    keys = [("label", "y"), ("prediction", "p")] if project.task == "multiclass" else []
    sel += [f"{col} AS {alias}" for col, alias in keys]
    if project.task == "regression":
        if rollup:
            sel += [
                "sum(n) AS n",
                "sum(n_labeled) AS n_lab",
                "sum(sum_abs_error) AS sae",
                "sum(sum_sq_error) AS sse",
                "sum(sum_label) AS sy",
                "sum(sum_label_sq) AS sy2",
            ]
        else:
            short = {
                "n_labeled": "n_lab",
                "sum_abs_error": "sae",
                "sum_sq_error": "sse",
                "sum_label": "sy",
                "sum_label_sq": "sy2",
            }
            sel += ["count(*) AS n"] + [f"{expr} AS {short[name]}" for name, expr in regression_sums()]
    else:
        sel.append("sum(n) AS n" if rollup else "count(*) AS n")
    sel += _outcome_sums(outcomes, rollup, prefix=True)
    group = ", ".join(gexpr + [col for col, _ in keys])
    return Sql.compose(
        "SELECT {sel} FROM {table} WHERE {where} GROUP BY {group}",
        sel=", ".join(sel),
        table=table,
        where=where,
        group=group,
    )


def _rows(project: Project, rollup: bool, rows: tuple[str, list] | None) -> Sql:
    """The table a query reads: the rollup, the log, or ``rows``, a subquery over
    the log that adds derived columns (such as a slice flag) to group by."""
    if rollup:
        return Sql(quote_ident(project.rollup_table))
    if rows is not None:
        return Sql.compose("({rows}) AS sb_rows", rows=rows)
    return Sql(quote_ident(project.log_table))


def regression_sums() -> list[tuple[str, str]]:
    """``[(rollup column, aggregate over log rows)]`` of the additive regression statistics."""
    lab = "label IS NOT NULL AND prediction IS NOT NULL"
    err = "(label - prediction)"
    return [
        ("n_labeled", f"sum(CASE WHEN {lab} THEN 1 ELSE 0 END)"),
        ("sum_abs_error", f"sum(CASE WHEN {lab} THEN abs{err} END)"),
        ("sum_sq_error", f"sum(CASE WHEN {lab} THEN {err} * {err} END)"),
        ("sum_label", f"sum(CASE WHEN {lab} THEN label END)"),
        ("sum_label_sq", f"sum(CASE WHEN {lab} THEN label * label END)"),
    ]


def _outcome_sums(outcomes: list[str], rollup: bool, prefix: bool = False) -> list[str]:
    """Sum and count of each outcome; named ``o<i>_sum`` (prefix) or ``<name>_sum``."""
    out = []
    for i, o in enumerate(outcomes):
        names = (f"o{i}_sum", f"o{i}_n") if prefix else (quote_ident(o + "_sum"), quote_ident(o + "_count"))
        if rollup:
            out += [f"sum({outcome_sum(o)}) AS {names[0]}", f"sum({outcome_count(o)}) AS {names[1]}"]
        else:
            out += [f"sum({quote_ident(o)}) AS {names[0]}", f"count({quote_ident(o)}) AS {names[1]}"]
    return out


def _outcome_totals(outcomes: list[str]) -> str:
    return "".join(
        f", sum(o{i}_sum) AS {quote_ident(o + '_sum')}, sum(o{i}_n) AS {quote_ident(o + '_count')}, "
        f"{_ratio(f'sum(o{i}_sum)', f'sum(o{i}_n)')} AS {quote_ident(o + '_mean')}"
        for i, o in enumerate(outcomes)
    )


def _outcome_out(outcomes: list[str], alias: str = "t") -> str:
    return "".join(f", {alias}.{quote_ident(o + s)}" for o in outcomes for s in ("_sum", "_count", "_mean"))


def _join(groups: list[GroupKey], a: str, b: str) -> str:
    return " AND ".join(f"{a}.{quote_ident(g.alias)} IS NOT DISTINCT FROM {b}.{quote_ident(g.alias)}" for g in groups)


# --- binary -----------------------------------------------------------------------------


def binary_terms() -> list[tuple[str, str]]:
    """``[(name, per-row term)]`` whose sums are the additive binary statistics."""
    clip = f"greatest(least(score, {1 - EPS!r}), {EPS!r})"
    scored = "label IS NOT NULL AND score IS NOT NULL"
    y = "(CASE WHEN label THEN 1.0 ELSE 0.0 END)"
    return [
        ("n_labeled", "CASE WHEN label IS NOT NULL AND prediction IS NOT NULL THEN 1 ELSE 0 END"),
        ("n_scored", f"CASE WHEN {scored} THEN 1 ELSE 0 END"),
        ("tp", "CASE WHEN label AND prediction THEN 1 ELSE 0 END"),
        ("fp", "CASE WHEN NOT label AND prediction THEN 1 ELSE 0 END"),
        ("fn", "CASE WHEN label AND NOT prediction THEN 1 ELSE 0 END"),
        ("tn", "CASE WHEN NOT label AND NOT prediction THEN 1 ELSE 0 END"),
        ("ll_sum", f"CASE WHEN {scored} THEN (CASE WHEN label THEN -ln({clip}) ELSE -ln(1 - {clip}) END) ELSE 0 END"),
        ("brier_sum", f"CASE WHEN {scored} THEN (score - {y}) * (score - {y}) ELSE 0 END"),
    ]


def binary_sums(weight: str | None = None) -> list[tuple[str, str]]:
    """``[(name, aggregate over log rows)]`` of the additive binary statistics.

    The rollup stores exactly these per version x stage x day (see
    ``analysis.store.schema.BINARY_SUMS``); summing them over days gives the figures
    of any window. With ``weight``, each row counts ``weight`` times (rows
    pre-grouped with their count).
    """
    if weight is None:
        return [(name, f"sum({term})") for name, term in binary_terms()]
    return [(name, f"sum({weight} * ({term}))") for name, term in binary_terms()]


def score_counts_sql(table: str, groups: list[tuple[str, str]], where_sql: str) -> str:
    """Positives and negatives per group and distinct score, over labeled scored rows.

    ``groups`` are ``(alias, expression)`` pairs over ``table``'s columns.
    """
    sel = ", ".join(f"{e} AS {quote_ident(a)}" for a, e in groups)
    by = ", ".join(e for _, e in groups)
    return (
        f"SELECT {sel}, score AS s, sum(CASE WHEN label THEN 1 ELSE 0 END) AS pos, "
        f"sum(CASE WHEN label THEN 0 ELSE 1 END) AS neg FROM {table} "
        f"WHERE ({where_sql}) AND label IS NOT NULL AND score IS NOT NULL GROUP BY {by}, score"
    )


def curve_sql(score_counts: str, aliases: list[str]) -> str:
    """Exact ranking statistics per group, with one sort.

    From rows ``(group..., s, pos, neg)`` with one row per distinct score:
    ``n_pos``, ``n_neg``; ``auc_num``, the number of positive/negative pairs
    ordered correctly with ties counted half (ROC AUC = auc_num / (n_pos n_neg));
    and ``ap_num``, the sum over thresholds of positives x precision (average
    precision = ap_num / n_pos). Every term is a multiple of one half below
    2^53, so the sums are exact in doubles.
    """
    part = ", ".join(quote_ident(a) for a in aliases)
    window = f"OVER (PARTITION BY {part} ORDER BY s DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    # fp_at: negatives scored at or above s. Pairs ordered wrongly or tied:
    # each positive at s against fp_at negatives, the neg tied ones counting half.
    return f"""
SELECT {part}, sum(pos) AS n_pos, sum(neg) AS n_neg,
    sum(pos) * sum(neg) - sum(pos * (fp_at - 0.5 * neg)) AS auc_num,
    sum(CASE WHEN pos > 0 THEN pos * tp_at / (tp_at + fp_at) ELSE 0 END) AS ap_num
FROM (
    SELECT {part}, pos, neg, sum(pos) {window} AS tp_at, sum(neg) {window} AS fp_at
    FROM (SELECT {part}, s, CAST(pos AS DOUBLE) AS pos, CAST(neg AS DOUBLE) AS neg
          FROM ({score_counts}) AS counted) AS sc
) AS ranked
GROUP BY {part}"""


def _binary_totals(
    project: Project,
    groups: list[GroupKey],
    where: tuple[str, list],
    source: str,
    outcomes: list[str],
    rows: tuple[str, list] | None = None,
    labeled_only: bool = False,
) -> Sql:
    rollup = source == "rollup"
    table = _rows(project, rollup, rows)
    gexpr = [g.rollup_sql if rollup else g.sql for g in groups]
    sel = [f"{e} AS {quote_ident(g.alias)}" for e, g in zip(gexpr, groups)]
    grouped = "SELECT {sel} FROM {table} WHERE {where} GROUP BY {group}"
    if rollup:
        sel += ["sum(n) AS n_rows"] + [f"sum({name}) AS {name}" for name, _ in binary_sums()]
        sel += _outcome_sums(outcomes, rollup)
        return Sql.compose(grouped, sel=", ".join(sel), table=table, where=where, group=", ".join(gexpr))
    # From the log: counts and outcome sums over all rows; the binary statistics
    # from the labeled rows grouped by label, prediction and score (the CTE
    # LABELED_CTE, see labeled_cte), so the per-row terms (logarithms included)
    # are evaluated once per distinct combination rather than once per row.
    aliases = [quote_ident(g.alias) for g in groups]
    if labeled_only and not outcomes:  # every row is in the labeled rows' CTE: count them there
        counts = Sql(f"SELECT {', '.join(aliases)}, sum(n) AS n_rows FROM {LABELED_CTE} GROUP BY {', '.join(aliases)}")
    else:
        counts = Sql.compose(
            grouped,
            sel=", ".join(sel + ["count(*) AS n_rows"] + _outcome_sums(outcomes, rollup)),
            table=table,
            where=where,
            group=", ".join(gexpr),
        )
    lab_sums = (
        f"SELECT {', '.join(aliases)}, "
        + ", ".join(f"{expr} AS {name}" for name, expr in binary_sums(weight="n"))
        + f" FROM {LABELED_CTE} GROUP BY {', '.join(aliases)}"
    )
    names = [name for name, _ in binary_sums()]
    return Sql.compose(
        "SELECT a.*, {sums} FROM ({counts}) AS a LEFT JOIN ({lab_sums}) AS l ON {on}",
        sums=", ".join(f"coalesce(l.{n}, 0) AS {n}" for n in names),
        counts=counts,
        lab_sums=lab_sums,
        on=_join(groups, "a", "l"),
    )


LABELED_CTE = "sb_labeled"


def labeled_cte(
    project: Project, groups: list[GroupKey], where: tuple[str, list], rows: tuple[str, list] | None = None
) -> Sql:
    """Labeled rows counted per group, label, prediction and score: what every
    binary statistic and the ranking curves of the log are computed from."""
    table = _rows(project, False, rows) if rows is not None else Sql(quote_ident(project.labeled_table))
    return Sql.compose(
        "{name} AS (SELECT {sel}, label, prediction, score, count(*) AS n FROM {table} "
        "WHERE ({where}) AND label IS NOT NULL GROUP BY ALL)",
        name=LABELED_CTE,
        sel=", ".join(f"{g.sql} AS {quote_ident(g.alias)}" for g in groups),
        table=table,
        where=where,
    )


def _binary_curve(project: Project, groups: list[GroupKey], curve: tuple, rows: tuple[str, list] | None = None) -> Sql:
    """Ranking statistics per group from ``curve``:

    * ``("log", (where, params))``: computed from the log's rows;
    * ``("rollup", (where, params))``: the rollup's per-day figures (every group
      must be one version x stage x day);
    * ``("ranks", (where, params))``: each version x stage's all-time figures
      (groups must be version and stage; ``where`` over those two columns).
    """
    kind, where = curve
    aliases = [g.alias for g in groups]
    if kind == "log":  # from the labeled rows' CTE (see labeled_cte), same filter as the totals
        keys = ", ".join(quote_ident(a) for a in aliases)
        counts = (
            f"SELECT {keys}, score AS s, sum(CASE WHEN label THEN n ELSE 0 END) AS pos, "
            f"sum(CASE WHEN label THEN 0 ELSE n END) AS neg FROM {LABELED_CTE} "
            f"WHERE score IS NOT NULL GROUP BY {keys}, score"
        )
        return Sql(curve_sql(counts, aliases))
    table = quote_ident(project.rollup_table if kind == "rollup" else project.ranks_table)
    gexpr = [g.rollup_sql for g in groups]
    sel = ", ".join(f"{e} AS {quote_ident(g.alias)}" for e, g in zip(gexpr, groups))
    sums = ", ".join(f"sum({c}) AS {c}" for c in ("n_pos", "n_neg", "auc_num", "ap_num"))
    return Sql.compose(
        "SELECT {sel}, {sums} FROM {table} WHERE {where} GROUP BY {group}",
        sel=sel,
        sums=sums,
        table=table,
        where=where,
        group=", ".join(gexpr),
    )


def binary_sql(
    totals: Sql | str,
    curve: Sql | str,
    groups: list[GroupKey],
    outcomes: list[str],
    extra: tuple[str, ...] = (),
    ctes: Sql | str = "",
) -> Sql:
    """The metrics from ``totals`` and ``curve`` (after the common table
    expressions ``ctes``, if any); ``extra`` totals columns pass through."""
    tcols = ", ".join(f"t.{quote_ident(g.alias)}" for g in groups)
    outs = "".join(f", t.{quote_ident(e)}" for e in extra)
    for o in outcomes:
        total, count = f"t.{quote_ident(o + '_sum')}", f"t.{quote_ident(o + '_count')}"
        outs += f", {total}, {count}, {_ratio(total, count)} AS {quote_ident(o + '_mean')}"
    select = f"""
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
    t.tp, t.fp, t.fn, t.tn, coalesce(c.n_pos, 0) AS n_pos, coalesce(c.n_neg, 0) AS n_neg
    {outs}
FROM totals t
LEFT JOIN curve c ON {_join(groups, "t", "c")}
ORDER BY {tcols}
"""
    head = (
        "WITH {ctes}, totals AS ({totals}),\ncurve AS ({curve})"
        if ctes
        else "WITH totals AS ({totals}),\ncurve AS ({curve})"
    )
    return Sql.compose(head + "{select}", **({"ctes": ctes} if ctes else {}), totals=totals, curve=curve, select=select)


def _multiclass_sql(hist: Sql, groups: list[GroupKey], outcomes: list[str]) -> Sql:
    gcols = ", ".join(quote_ident(g.alias) for g in groups)
    tcols = ", ".join(f"t.{quote_ident(g.alias)}" for g in groups)
    rest = f""",
totals AS (
    SELECT {gcols},
        sum(n) AS n_rows,
        sum(CASE WHEN y IS NOT NULL AND p IS NOT NULL THEN n ELSE 0 END) AS n_labeled,
        sum(CASE WHEN y IS NOT NULL AND y = p THEN n ELSE 0 END) AS n_correct
        {_outcome_totals(outcomes)}
    FROM hist
    GROUP BY {gcols}
),
per_class AS (
    SELECT {gcols}, cls, sum(tp) AS tp, sum(fp) AS fp, sum(fn) AS fn
    FROM (
        SELECT {gcols}, y AS cls,
            CASE WHEN y = p THEN n ELSE 0 END AS tp, 0 AS fp,
            CASE WHEN y <> p THEN n ELSE 0 END AS fn
        FROM hist WHERE y IS NOT NULL AND p IS NOT NULL
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
    {_outcome_out(outcomes)}
FROM totals t
LEFT JOIN f ON {_join(groups, "t", "f")}
ORDER BY {tcols}
"""
    return Sql.compose("\nWITH hist AS ({hist}){rest}", hist=hist, rest=rest)


def _regression_sql(hist: Sql, groups: list[GroupKey], outcomes: list[str]) -> Sql:
    gcols = ", ".join(quote_ident(g.alias) for g in groups)
    ss_tot = "(sum(sy2) - sum(sy) * sum(sy) / sum(n_lab))"
    rest = f"""
SELECT {gcols},
    sum(n) AS n_rows,
    sum(n_lab) AS n_labeled,
    {_ratio("sum(n_lab)", "sum(n)")} AS labeled_share,
    {_ratio("sum(sae)", "sum(n_lab)")} AS mae,
    sqrt({_ratio("sum(sse)", "sum(n_lab)")}) AS rmse,
    CASE WHEN sum(n_lab) > 0 AND {ss_tot} > 0 THEN 1 - sum(sse) / {ss_tot} END AS r2
    {_outcome_totals(outcomes)}
FROM hist
GROUP BY {gcols}
ORDER BY {gcols}
"""
    return Sql.compose("\nWITH hist AS ({hist}){rest}", hist=hist, rest=rest)


def metrics_query(
    project: Project,
    *,
    group_by: list[GroupKey],
    where: tuple[str, list] = ("TRUE", []),
    source: str = "log",
    curve: tuple | None = None,
    include_outcomes: bool = True,
    rows: tuple[str, list] | None = None,
    labeled_only: bool = False,
) -> Sql:
    """SQL and parameters for every metric of the project's task, per group.

    ``where`` is over the log's columns (``source="log"``) or the rollup's
    (``source="rollup"``; every group key then needs a ``rollup_sql``). For a
    binary task read from the rollup, ``curve`` says where ROC and PR AUC come
    from (see :func:`_binary_curve`); by default from the log with the same
    filter, so ``source="log"`` needs no ``curve``.
    """
    groups = group_by or [ALL_ROWS]
    outcomes = [c.name for c in project.outcomes] if include_outcomes else []
    if project.task == "binary":
        if curve is None:
            if source != "log":
                raise ValueError("a binary task read from the rollup needs curve=")
            curve = ("log", where)
        ctes: Sql | str = ""
        if source == "log" or curve[0] == "log":
            ctes = labeled_cte(project, groups, where if source == "log" else curve[1], rows)
        totals = _binary_totals(
            project, groups, where, source, outcomes, rows, labeled_only=labeled_only and source == "log"
        )
        return binary_sql(totals, _binary_curve(project, groups, curve, rows), groups, outcomes, ctes=ctes)
    hist = hist_query(project, groups, where, source, outcomes, rows)
    builder = {"multiclass": _multiclass_sql, "regression": _regression_sql}
    return builder[project.task](hist, groups, outcomes)


def compute_metrics(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    *,
    group_by: list[GroupKey] | None = None,
    where: tuple[str, list] = ("TRUE", []),
    source: str = "log",
    curve: tuple | None = None,
    include_outcomes: bool = True,
    rows: tuple[str, list] | None = None,
    labeled_only: bool = False,
) -> pd.DataFrame:
    """Every metric of the task, per group (one row per group).

    ``rows`` replaces the log with a subquery over it (``(sql, params)``) whose
    extra columns the groups may use; ``where`` then applies to its rows.
    ``labeled_only`` says every row is labeled (``rows`` reads the labeled rows):
    without outcomes, a binary task then counts rows from the labeled rows'
    groups, with no second scan.
    """
    sql, params = metrics_query(
        project,
        group_by=group_by or [],
        where=where,
        source=source,
        curve=curve,
        include_outcomes=include_outcomes,
        rows=rows,
        labeled_only=labeled_only,
    )
    frame = con.execute(sql, params).df()
    for c in ("n_rows", "n_labeled", "n_scored", "tp", "fp", "fn", "tn", "n_pos", "n_neg"):
        if c in frame:
            frame[c] = frame[c].fillna(0).astype("int64")
    for o in project.outcomes if include_outcomes else ():
        frame[o.name + "_count"] = frame[o.name + "_count"].fillna(0).astype("int64")
    if not group_by and "all_rows" in frame:
        frame = frame.drop(columns=["all_rows"])
    return frame

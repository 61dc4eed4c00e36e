"""Metrics of one slice, of the rest of the scope, and overall, with 95% intervals
and a test of the difference slice vs rest.

Every metric gets an interval and a test except macro F1 and R² (see
:mod:`analysis.stats.intervals` for the methods): proportions (shares, accuracy,
error rate, precision, recall) Wilson and two-proportion z; F1 through
tp / (tp + fp + fn); ROC AUC Hanley-McNeil on the logit scale; average precision
Boyd's logit interval; means of a per-row value (outcomes, log loss, Brier, MAE,
and MSE for RMSE) Welch's test, and the log-scale interval of a non-negative
mean (log loss, Brier, MAE, MSE, an outcome with no negative value in the
scope), else Student t.

Everything is aggregated in DuckDB; Python only turns the per-part sums into
intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from analysis.metrics.registry import metrics_for
from analysis.metrics.sql import ALL_ROWS, GroupKey, binary_sql, binary_sums, binary_terms, compute_metrics
from analysis.slices.compile import compile_slice
from analysis.slices.model import Slice
from analysis.stats.intervals import (
    auc_interval,
    average_precision_interval,
    average_precision_se,
    f1_test,
    mean_intervals,
    positive_mean_intervals,
    proportion_test,
    welch_test,
    wilson_bounds,
    z_test,
)
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, quote_ident

PART = GroupKey("part", "sb_part")
PART_ALIAS = GroupKey("part", "part")
PARTS = ("slice", "rest", "overall")

# Proportion metrics: name -> (successes, trials) over the metrics frame's counts.
PROPORTIONS = {
    "binary": {
        "accuracy": ("tp + tn", "n_labeled"),
        "error_rate": ("fp + fn", "n_labeled"),
        "precision": ("tp", "tp + fp"),
        "recall": ("tp", "tp + fn"),
    },
    "multiclass": {"accuracy": ("n_correct", "n_labeled"), "error_rate": ("n_wrong", "n_labeled")},
    "regression": {},
}


@dataclass
class SliceMetrics:
    """``table``: one row per part (slice, rest, overall) with counts, every
    metric and ``<metric>_low`` / ``<metric>_high``; ``comparison``: one row per
    metric with slice, rest, difference and p-value."""

    project: str
    slice: Slice
    scope: Scope
    table: pd.DataFrame
    comparison: pd.DataFrame
    metrics: list[str] = field(default_factory=list)

    def row(self, part: str) -> pd.Series:
        return self.table.set_index("part").loc[part]

    def to_dict(self) -> dict:
        return {
            "project": self.project,
            "slice": self.slice.to_dict(),
            "where": self.slice.readable(),
            "metrics": self.metrics,
            "parts": self.table.to_dict(orient="records"),
            "comparison": self.comparison.to_dict(orient="records"),
        }


def _rows_with_flag(project: Project, slice_: Slice, scope: Scope) -> Sql:
    # A NULL predicate (e.g. a comparison with a null value) is outside the slice.
    return Sql.compose(
        "SELECT *, CASE WHEN {slice} THEN 'slice' ELSE 'rest' END AS sb_part FROM {log} WHERE {scope}",
        slice=compile_slice(slice_, project),
        log=quote_ident(project.log_table),
        scope=scope.to_sql(),
    )


def _binary_parts_query(project: Project, slice_: Slice, scope: Scope) -> Sql:
    """Slice, rest and overall of a binary task, with three scans and no sort of rows.

    * All rows of the scope and the slice's rows: counts and outcome sums (the
      rest is their difference, so the slice predicate filters rather than
      being evaluated on every row).
    * Labeled rows, grouped by part, label, prediction and score: every binary
      statistic is a weighted sum over these groups, and the ranking metrics
      need only the counts per distinct score, ordered by one window over the
      distinct scores (see :func:`analysis.metrics.sql.curve_sql` for the
      formulas). Log loss and Brier also get their sums of squares, for their
      intervals.
    """
    table = quote_ident(project.log_table)
    outcomes = [c.name for c in project.outcomes]
    o_cols = [o + suffix for o in outcomes for suffix in ("_sum", "_count", "__sq")]
    o_aggs = "".join(
        f", sum({quote_ident(o)}) AS {quote_ident(o + '_sum')}, count({quote_ident(o)}) AS {quote_ident(o + '_count')}"
        f", sum({quote_ident(o)} * {quote_ident(o)}) AS {quote_ident(o + '__sq')}"
        for o in outcomes
    )
    in_scope, in_slice = scope.to_sql(), compile_slice(slice_, project)
    all_rows = Sql.join(
        "",
        [
            f"SELECT 'overall' AS part, count(*) AS n_rows{o_aggs} FROM {table} WHERE ",
            in_scope,
            f" UNION ALL SELECT 'slice' AS part, count(*) AS n_rows{o_aggs} FROM {table} WHERE (",
            in_scope,
            ") AND (",
            in_slice,
            ")",
        ],
    )
    # An empty slice sums to NULL: count it as zero before taking the difference.
    rest_cols = ", ".join(
        f"coalesce(o.{quote_ident(c)}, 0) - coalesce(s.{quote_ident(c)}, 0) AS {quote_ident(c)}"
        for c in ["n_rows", *o_cols]
    )
    # Grouping by a boolean is much cheaper than by a string.
    labeled = Sql.join(
        "",
        [
            "SELECT (",
            in_slice,
            ") IS TRUE AS sb_in, label, prediction, score, count(*) AS n "
            f"FROM {quote_ident(project.labeled_table)} WHERE (",
            in_scope,
            ") AND label IS NOT NULL GROUP BY ALL",
        ],
    )
    terms = dict(binary_terms())
    squares = {
        "ll_sq": f"n * ({terms['ll_sum']}) * ({terms['ll_sum']})",
        "brier_sq": f"n * ({terms['brier_sum']}) * ({terms['brier_sum']})",
    }
    lab_aggs = ", ".join(
        [f"{expr} AS {name}" for name, expr in binary_sums(weight="n")]
        + [f"sum({expr}) AS {name}" for name, expr in squares.items()]
    )
    lab_names = [name for name, _ in binary_sums()] + list(squares)
    lab_total = ", ".join(f"sum({name}) AS {name}" for name in lab_names)
    flags = {
        "ps": "sb_in AND label",
        "ns": "sb_in AND NOT label",
        "pr": "NOT sb_in AND label",
        "nr": "NOT sb_in AND NOT label",
    }
    counted = ", ".join(f"CAST(sum(CASE WHEN {cond} THEN n ELSE 0 END) AS DOUBLE) AS {k}" for k, cond in flags.items())
    window = "OVER (ORDER BY s DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    cums = ", ".join(f"sum({k}) {window} AS c_{k}" for k in flags)

    def curve(part: str, pos: str, neg: str, tp_at: str, fp_at: str) -> str:
        return (
            f"SELECT '{part}' AS part, sum({pos}) AS n_pos, sum({neg}) AS n_neg, "
            f"sum({pos}) * sum({neg}) - sum({pos} * (({fp_at}) - 0.5 * ({neg}))) AS auc_num, "
            f"sum(CASE WHEN {pos} > 0 THEN {pos} * ({tp_at}) / (({tp_at}) + ({fp_at})) ELSE 0 END) AS ap_num "
            "FROM ranked"
        )

    curves = " UNION ALL ".join(
        [
            curve("slice", "ps", "ns", "c_ps", "c_ns"),
            curve("rest", "pr", "nr", "c_pr", "c_nr"),
            curve("overall", "(ps + pr)", "(ns + nr)", "c_ps + c_pr", "c_ns + c_nr"),
        ]
    )
    totals = (
        "SELECT a.*, "
        + ", ".join(f"coalesce(l.{n}, 0) AS {n}" for n in lab_names)
        + " FROM counts_all a LEFT JOIN lab_all l ON a.part = l.part"
    )
    ctes = Sql.join(
        "",
        [
            "all_rows AS (",
            all_rows,
            f"), counts_all AS (SELECT * FROM all_rows UNION ALL SELECT 'rest' AS part, {rest_cols} "
            "FROM all_rows o, all_rows s WHERE o.part = 'overall' AND s.part = 'slice'), lab AS (",
            labeled,
            f"), lab_parts AS (SELECT CASE WHEN sb_in THEN 'slice' ELSE 'rest' END AS part, {lab_aggs} "
            "FROM lab GROUP BY sb_in), "
            f"lab_all AS (SELECT * FROM lab_parts UNION ALL SELECT 'overall' AS part, {lab_total} FROM lab_parts), "
            f"scored AS (SELECT score AS s, {counted} FROM lab WHERE score IS NOT NULL GROUP BY score), "
            f"ranked AS (SELECT *, {cums} FROM scored)",
        ],
    )
    extra = (*o_cols[2::3], "ll_sum", "brier_sum", *squares)
    return binary_sql(totals, curves, [PART_ALIAS], outcomes, extra, ctes=ctes)


def _part_sums(con, project: Project, rows: tuple[str, list]) -> pd.DataFrame:
    """Per part (slice, rest, overall): count, sum and sum of squares of each
    per-row value whose mean is reported (outcomes; for regression, absolute
    and squared errors)."""
    sel = []
    for o in project.outcomes:
        c = quote_ident(o.name)
        sel += [
            f"count({c}) AS {quote_ident(o.name + '_count')}",
            f"sum({c}) AS {quote_ident(o.name + '_sum')}",
            f"sum({c} * {c}) AS {quote_ident(o.name + '__sq')}",
        ]
    if project.task == "regression":
        err = "CASE WHEN label IS NOT NULL AND prediction IS NOT NULL THEN label - prediction END"
        sel += [
            f"count({err}) AS n_err",
            f"sum(abs({err})) AS sae",
            f"sum(({err}) * ({err})) AS sse",
            f"sum(({err}) * ({err}) * ({err}) * ({err})) AS se4",
        ]
    if not sel:
        return pd.DataFrame(index=pd.Index(PARTS, name="part"))
    sql = f"SELECT sb_part AS part, {', '.join(sel)} FROM ({rows[0]}) AS r GROUP BY sb_part"
    sums = con.execute(sql, rows[1]).df().set_index("part").reindex(["slice", "rest"]).fillna(0)
    sums.loc["overall"] = sums.sum()
    return sums


def _mean_specs(project: Project) -> dict[str, tuple[str, str, str]]:
    """Metrics that are means of a per-row value: name -> (count, sum, sum of squares) columns."""
    specs = {f"{o.name}_mean": (f"{o.name}_count", f"{o.name}_sum", f"{o.name}__sq") for o in project.outcomes}
    if project.task == "binary":
        specs["log_loss"] = ("n_scored", "ll_sum", "ll_sq")
        specs["brier"] = ("n_scored", "brier_sum", "brier_sq")
    elif project.task == "regression":
        specs["mae"] = ("n_err", "sae", "sse")
        specs["mse"] = ("n_err", "sse", "se4")  # RMSE's interval is the square root of MSE's
    return specs


def slice_metrics(
    con: duckdb.DuckDBPyConnection, project: Project, slice_: Slice, scope: Scope = Scope()
) -> SliceMetrics:
    """Metrics with intervals for the slice, the rest of ``scope``, and all of it."""
    if project.task == "binary":
        sql, params = _binary_parts_query(project, slice_, scope)
        frame = con.execute(sql, params).df()
    else:
        rows = _rows_with_flag(project, slice_, scope)
        parts = compute_metrics(con, project, group_by=[PART], rows=rows)
        overall = compute_metrics(con, project, group_by=[ALL_ROWS], where=scope.to_sql())
        overall = overall.drop(columns=["all_rows"], errors="ignore").assign(part="overall")
        frame = pd.concat([parts, overall], ignore_index=True)
    # Every part is present, empty ones with zero counts. Columns are built as
    # arrays and joined once: inserting them one by one costs more than the statistics.
    frame = frame.set_index("part").reindex(list(PARTS))
    columns = {"part": np.array(PARTS, dtype=object)}
    for c in frame.columns:
        values = frame[c].to_numpy()
        if c.startswith("n_") or c in ("tp", "fp", "fn", "tn") or c.endswith("_count"):
            values = np.nan_to_num(values.astype("float64")).astype("int64")
        columns[c] = values
    frame = pd.DataFrame(columns)
    total = int(frame["n_rows"].iloc[2])
    frame["share"] = frame["n_rows"] / total if total else np.nan
    add_counts(frame, project)
    frame = with_intervals(frame, project, total)
    # The binary query summed the squares already; other tasks take one more pass.
    sums = frame.set_index("part") if project.task == "binary" else _part_sums(con, project, rows)
    means = _mean_interval_columns(frame, project, sums, _non_negative_outcomes(con, project, scope))
    frame = frame.drop(
        columns=[c for c in frame.columns if c in means or c.endswith("__sq") or c in ("ll_sq", "brier_sq")]
    )
    frame = pd.concat([frame, pd.DataFrame(means, index=frame.index)], axis=1)
    metric_names = ["share", "labeled_share", *_metric_names(project)]
    comparison = _compare(frame, project, metric_names)
    return SliceMetrics(project.name, slice_, scope, frame, comparison, metric_names)


def _metric_names(project: Project) -> list[str]:
    names = list(metrics_for(project.task))
    if project.task in ("binary", "multiclass"):
        names.insert(1, "error_rate")
    return names


def add_counts(frame: pd.DataFrame, project: Project) -> None:
    """``error_rate`` (and multiclass correct / wrong counts) from accuracy."""
    if project.task == "binary":
        frame["error_rate"] = 1 - frame["accuracy"]
    elif project.task == "multiclass":
        frame["n_correct"] = (frame["accuracy"] * frame["n_labeled"]).round().fillna(0).astype("int64")
        frame["n_wrong"] = frame["n_labeled"] - frame["n_correct"]
        frame["error_rate"] = 1 - frame["accuracy"]


def _count(frame: pd.DataFrame, expr: str) -> np.ndarray:
    """A sum of count columns such as ``"tp + fn"`` (the forms in PROPORTIONS), per row."""
    columns = [frame[name.strip()].to_numpy(dtype="float64", na_value=0.0) for name in expr.split("+")]
    return np.sum(columns, axis=0).astype(np.int64)


def with_intervals(frame: pd.DataFrame, project: Project, total: int | None = None) -> pd.DataFrame:
    """``frame`` with ``<metric>_low`` / ``_high`` (95%) for every proportion and
    AUC of a metrics frame with its count columns; ``share`` too when ``total``
    rows are given."""
    new: dict[str, object] = {}
    props = dict(PROPORTIONS[project.task])
    props["labeled_share"] = ("n_labeled", "n_rows")
    for name, (k_expr, n_expr) in props.items():
        new[f"{name}_low"], new[f"{name}_high"] = wilson_bounds(_count(frame, k_expr), _count(frame, n_expr))
    if total is not None:
        new["share_low"], new["share_high"] = wilson_bounds(frame["n_rows"].to_numpy(), np.full(len(frame), total))
    if project.task == "binary":
        aucs = [auc_interval(a, p, n) for a, p, n in zip(frame["roc_auc"], frame["n_pos"], frame["n_neg"])]
        new["roc_auc_se"] = [a[0] for a in aucs]
        new["roc_auc_low"], new["roc_auc_high"] = [a[1] for a in aucs], [a[2] for a in aucs]
        q = _count(frame, "tp + fp + fn")
        low, high = wilson_bounds(frame["tp"].to_numpy(), q)
        new["f1_low"], new["f1_high"] = 2 * low / (1 + low), 2 * high / (1 + high)
        new["pr_auc_se"] = [average_precision_se(a, p) for a, p in zip(frame["pr_auc"], frame["n_pos"])]
        bounds = [average_precision_interval(a, p) for a, p in zip(frame["pr_auc"], frame["n_pos"])]
        new["pr_auc_low"], new["pr_auc_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    kept = frame.drop(columns=[c for c in new if c in frame.columns])
    return pd.concat([kept, pd.DataFrame(new, index=frame.index)], axis=1)


def _non_negative_outcomes(con, project: Project, scope: Scope) -> set[str]:
    """The outcomes with no negative value in ``scope``: their means get the log-scale interval."""
    if not project.outcomes:
        return set()
    where, params = scope.to_sql()
    lows = con.execute(
        f"SELECT {', '.join(f'min({quote_ident(o.name)})' for o in project.outcomes)} "
        f"FROM {quote_ident(project.log_table)} WHERE {where}",
        params,
    ).fetchall()[0]
    return {o.name for o, low in zip(project.outcomes, lows) if low is None or low >= 0}


# Means of values that are never negative, and their ceiling (Brier is at most 1).
NON_NEGATIVE = {"log_loss": None, "brier": 1.0, "mae": None, "mse": None}


def _mean_interval_columns(
    frame: pd.DataFrame, project: Project, sums: pd.DataFrame, non_negative: set[str] = frozenset()
) -> dict[str, object]:
    """Intervals (and the sd Welch's test needs) of every metric that is a mean: on the
    log scale for a mean of non-negative values, else Student t (see analysis.stats.intervals)."""
    parts = list(frame["part"])
    by_part = sums.reindex(parts)

    def column(name: str) -> np.ndarray:
        return (
            by_part[name].to_numpy(dtype="float64", na_value=0.0) if name in by_part.columns else np.zeros(len(parts))
        )

    new: dict[str, object] = {}
    for name, (n_col, s_col, q_col) in _mean_specs(project).items():
        n = column(n_col)
        if name in NON_NEGATIVE or name[: -len("_mean")] in non_negative:
            mean, sd, low, high = positive_mean_intervals(n, column(s_col), column(q_col), NON_NEGATIVE.get(name))
        else:
            mean, sd, low, high = mean_intervals(n, column(s_col), column(q_col))
        if name == "mse":  # reported as RMSE: the interval's bounds are square roots
            new["rmse_sd"] = sd
            new["rmse_low"], new["rmse_high"] = np.sqrt(np.maximum(low, 0.0)), np.sqrt(high)
            new["mse"], new["mse_n"] = mean, n.astype("int64")
            continue
        if name.endswith("_mean"):  # outcome means are computed here; metrics came from SQL
            new[name] = mean
        new[f"{name}_sd"], new[f"{name}_n"] = sd, n.astype("int64")
        new[f"{name}_low"], new[f"{name}_high"] = low, high
    return new


def _compare(frame: pd.DataFrame, project: Project, metric_names: list[str]) -> pd.DataFrame:
    """Slice vs rest, one row per metric: values, difference, p-value and the test used."""
    at = {part: i for i, part in enumerate(frame["part"])}
    i_s, i_r = at["slice"], at["rest"]

    def pair(column: str) -> tuple:
        values = frame[column].to_numpy()
        return values[i_s], values[i_r]

    props = dict(PROPORTIONS[project.task])
    props["labeled_share"] = ("n_labeled", "n_rows")
    specs = _mean_specs(project)
    out = []
    for name in metric_names + [f"{o.name}_mean" for o in project.outcomes]:
        if name == "share":
            continue
        a, b = (float(v) for v in pair(name))
        p, test = math.nan, ""
        if name in props:
            ks, ns = _count(frame, props[name][0]), _count(frame, props[name][1])
            p = proportion_test((int(ks[i_s]), int(ks[i_r])), (int(ns[i_s]), int(ns[i_r])))
            test = "two-proportion z-test"
        elif name == "f1":
            cells = [tuple(int(frame[c].iloc[i]) for c in ("tp", "fp", "fn")) for i in (i_s, i_r)]
            p, test = f1_test(*cells), "z-test on tp / (tp + fp + fn)"
        elif name in ("roc_auc", "pr_auc"):
            se_s, se_r = pair(f"{name}_se")
            p = z_test(a, se_s, b, se_r)
            test = "z-test on AUCs (Hanley-McNeil SE)" if name == "roc_auc" else "z-test on average precisions"
        elif name in specs or (name == "rmse" and "mse" in specs):
            key, sd = (name, f"{name}_sd") if name != "rmse" else ("mse", "rmse_sd")
            (m_s, m_r), (sd_s, sd_r), (n_s, n_r) = pair(key), pair(sd), pair(f"{key}_n")
            p = welch_test((float(m_s), float(sd_s), int(n_s)), (float(m_r), float(sd_r), int(n_r)))
            test = "Welch t-test" + (" on squared errors" if name == "rmse" else "")
        if math.isnan(p):
            test = ""
        out.append({"metric": name, "slice": a, "rest": b, "difference": a - b, "p_value": p, "test": test})
    return pd.DataFrame(out, columns=["metric", "slice", "rest", "difference", "p_value", "test"])

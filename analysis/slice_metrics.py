"""Metrics of one slice, of the rest of the scope, and overall, with 95% intervals
and a test of the difference slice vs rest.

Intervals (all two-sided, 95%):

* proportions (share of rows, labeled share, accuracy and error rate, precision,
  recall): Wilson score interval (``statsmodels`` ``proportion_confint``);
  slice vs rest: two-proportion z-test (``proportions_ztest``);
* ROC AUC: Hanley & McNeil (1982) standard error from the AUC and the numbers
  of positives and negatives, normal interval clipped to [0, 1]; slice vs rest:
  z-test on the two independent AUCs;
* outcome means: Student t interval from the sum and sum of squares; slice vs
  rest: Welch's t-test (``scipy.stats.ttest_ind_from_stats``).

Metrics without a closed-form interval (F1, PR AUC, log loss, Brier, regression
errors) are reported without one here.

Everything is aggregated in DuckDB: one pass computes the slice and the rest
(grouped by a slice flag), one pass the whole scope.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from .metrics import ALL_ROWS, GroupKey, _binary_sql, binary_sums, compute_metrics, metrics_for
from .project import Project
from .scope import Scope
from .slices import Slice, compile_slice
from .sql import quote_ident

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


def _rows_with_flag(project: Project, slice_: Slice, scope: Scope) -> tuple[str, list]:
    pred, pred_params = compile_slice(slice_, project)
    where, where_params = scope.to_sql()
    # A NULL predicate (e.g. a comparison with a null value) is outside the slice.
    sql = (f"SELECT *, CASE WHEN {pred} THEN 'slice' ELSE 'rest' END AS sb_part "
           f"FROM {quote_ident(project.log_table)} WHERE {where}")
    return sql, pred_params + where_params


def _binary_parts_query(project: Project, rows: tuple[str, list]) -> tuple[str, list]:
    """Slice, rest and overall of a binary task in one pass and one sort.

    The additive sums are taken per part and added up for overall. For the
    ranking metrics, labeled scored rows are counted per distinct score and
    part, and one cumulative window in score order gives, for each part and for
    both together, the negatives (and positives) scored at or above each score,
    which is all ROC AUC and average precision need (see
    :func:`analysis.metrics.curve_sql` for the formulas).
    """
    outcomes = [c.name for c in project.outcomes]
    sums = [name for name, _ in binary_sums()]
    o_cols = [quote_ident(o + suffix) for o in outcomes for suffix in ("_sum", "_count")]
    per_part = ", ".join(
        ["count(*) AS n_rows"] + [f"{expr} AS {name}" for name, expr in binary_sums()]
        + [f"sum({quote_ident(o)}) AS {quote_ident(o + '_sum')}" for o in outcomes]
        + [f"count({quote_ident(o)}) AS {quote_ident(o + '_count')}" for o in outcomes]
    )
    added = ", ".join(f"sum({c}) AS {c}" for c in ["n_rows", *sums, *o_cols])
    window = "OVER (ORDER BY s DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    flags = {"ps": "sb_part = 'slice' AND label", "ns": "sb_part = 'slice' AND NOT label",
             "pr": "sb_part = 'rest' AND label", "nr": "sb_part = 'rest' AND NOT label"}
    counted = ", ".join(f"CAST(sum(CASE WHEN {cond} THEN 1 ELSE 0 END) AS DOUBLE) AS {k}" for k, cond in flags.items())
    cums = ", ".join(f"sum({k}) {window} AS c_{k}" for k in flags)

    def curve(part: str, pos: str, neg: str, tp_at: str, fp_at: str) -> str:
        return (f"SELECT '{part}' AS part, sum({pos}) AS n_pos, sum({neg}) AS n_neg, "
                f"sum({pos}) * sum({neg}) - sum({pos} * (({fp_at}) - 0.5 * ({neg}))) AS auc_num, "
                f"sum(CASE WHEN {pos} > 0 THEN {pos} * ({tp_at}) / (({tp_at}) + ({fp_at})) ELSE 0 END) AS ap_num "
                "FROM ranked")

    curves = " UNION ALL ".join([
        curve("slice", "ps", "ns", "c_ps", "c_ns"),
        curve("rest", "pr", "nr", "c_pr", "c_nr"),
        curve("overall", "(ps + pr)", "(ns + nr)", "c_ps + c_pr", "c_ns + c_nr"),
    ])
    body = _binary_sql("SELECT * FROM totals_all", curves, [PART_ALIAS], outcomes)
    sql = (f"WITH r AS ({rows[0]}), by_part AS (SELECT sb_part AS part, {per_part} FROM r GROUP BY sb_part), "
           f"totals_all AS (SELECT * FROM by_part UNION ALL SELECT 'overall' AS part, {added} FROM by_part), "
           f"scored AS (SELECT score AS s, {counted} FROM r WHERE label IS NOT NULL AND score IS NOT NULL "
           f"GROUP BY score), ranked AS (SELECT *, {cums} FROM scored), "
           + body.strip()[len("WITH "):])
    return sql, list(rows[1])


def _outcome_stats(con, project: Project, rows: tuple[str, list]) -> pd.DataFrame:
    """Per part and overall: count, sum and sum of squares of each outcome."""
    if not project.outcomes:
        return pd.DataFrame()
    sel = []
    for i, o in enumerate(project.outcomes):
        c = quote_ident(o.name)
        sel += [f"count({c}) AS n{i}", f"sum({c}) AS s{i}", f"sum({c} * {c}) AS q{i}"]
    sql = (f"SELECT sb_part AS part, {', '.join(sel)} FROM ({rows[0]}) AS r GROUP BY sb_part")
    return con.execute(sql, rows[1]).df()


def slice_metrics(con: duckdb.DuckDBPyConnection, project: Project, slice_: Slice,
                  scope: Scope = Scope()) -> SliceMetrics:
    """Metrics with intervals for the slice, the rest of ``scope``, and all of it."""
    rows = _rows_with_flag(project, slice_, scope)
    if project.task == "binary":
        sql, params = _binary_parts_query(project, rows)
        frame = con.execute(sql, params).df()
    else:
        parts = compute_metrics(con, project, group_by=[PART], rows=rows)
        overall = compute_metrics(con, project, group_by=[ALL_ROWS], where=scope.to_sql())
        overall = overall.drop(columns=["all_rows"], errors="ignore").assign(part="overall")
        frame = pd.concat([parts, overall], ignore_index=True)
    # Every part is present, empty ones with zero counts.
    frame = frame.set_index("part").reindex(list(PARTS)).reset_index()
    for c in frame.columns:
        if c.startswith("n_") or c in ("tp", "fp", "fn", "tn") or c.endswith("_count"):
            frame[c] = frame[c].fillna(0).astype("int64")
    total = int(frame.loc[frame.part == "overall", "n_rows"].iloc[0])
    frame["share"] = frame["n_rows"] / total if total else np.nan
    _add_counts(frame, project)
    _add_intervals(frame, project, total)
    _add_outcome_intervals(frame, project, _outcome_stats(con, project, rows))
    metric_names = ["share", "labeled_share", *_metric_names(project)]
    comparison = _compare(frame, project, metric_names)
    return SliceMetrics(project.name, slice_, scope, frame, comparison, metric_names)


def _metric_names(project: Project) -> list[str]:
    names = list(metrics_for(project.task))
    if project.task in ("binary", "multiclass"):
        names.insert(1, "error_rate")
    return names


def _add_counts(frame: pd.DataFrame, project: Project) -> None:
    if project.task == "binary":
        frame["error_rate"] = 1 - frame["accuracy"]
    elif project.task == "multiclass":
        frame["n_correct"] = (frame["accuracy"] * frame["n_labeled"]).round().fillna(0).astype("int64")
        frame["n_wrong"] = frame["n_labeled"] - frame["n_correct"]
        frame["error_rate"] = 1 - frame["accuracy"]


def _count(frame: pd.DataFrame, expr: str) -> pd.Series:
    return frame.eval(expr).astype("int64")


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval; NaN for no trials."""
    if trials <= 0:
        return (math.nan, math.nan)
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    return float(low), float(high)


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of ROC AUC (Hanley & McNeil, Radiology 1982)."""
    if not (n_pos > 0 and n_neg > 0) or auc != auc:
        return math.nan
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def _add_intervals(frame: pd.DataFrame, project: Project, total: int) -> None:
    props = dict(PROPORTIONS[project.task])
    props["labeled_share"] = ("n_labeled", "n_rows")
    for name, (k_expr, n_expr) in props.items():
        ks, ns = _count(frame, k_expr), _count(frame, n_expr)
        bounds = [wilson(int(k), int(n)) for k, n in zip(ks, ns)]
        frame[f"{name}_low"] = [b[0] for b in bounds]
        frame[f"{name}_high"] = [b[1] for b in bounds]
    bounds = [wilson(int(n), total) for n in frame["n_rows"]]
    frame["share_low"] = [b[0] for b in bounds]
    frame["share_high"] = [b[1] for b in bounds]
    if project.task == "binary":
        se = [hanley_mcneil_se(a, p, n) for a, p, n in zip(frame["roc_auc"], frame["n_pos"], frame["n_neg"])]
        frame["roc_auc_se"] = se
        frame["roc_auc_low"] = np.clip(frame["roc_auc"] - 1.959963984540054 * np.array(se), 0, 1)
        frame["roc_auc_high"] = np.clip(frame["roc_auc"] + 1.959963984540054 * np.array(se), 0, 1)


def _mean_interval(n: int, total: float, squares: float) -> tuple[float, float, float, float]:
    """(mean, sd, low, high) of a mean from its count, sum and sum of squares."""
    if n <= 0:
        return (math.nan,) * 4
    mean = total / n
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    var = max((squares - n * mean * mean) / (n - 1), 0.0)
    sd = math.sqrt(var)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


def _add_outcome_intervals(frame, project: Project, per_part: pd.DataFrame) -> None:
    if not project.outcomes:
        return
    # Counts, sums and sums of squares add up: overall = slice + rest.
    overall = {i: tuple(per_part[f"{k}{i}"].fillna(0).sum() for k in "nsq") for i in range(len(project.outcomes))}
    by_part = per_part.set_index("part") if len(per_part) else None
    for i, o in enumerate(project.outcomes):
        means, sds, lows, highs = [], [], [], []
        for part in frame["part"]:
            if part == "overall":
                n, s, q = overall[i]
            elif by_part is not None and part in by_part.index:
                n, s, q = by_part.loc[part, [f"n{i}", f"s{i}", f"q{i}"]]
            else:
                n, s, q = 0, 0.0, 0.0
            m, sd, lo, hi = _mean_interval(int(n or 0), float(s or 0), float(q or 0))
            means.append(m), sds.append(sd), lows.append(lo), highs.append(hi)
        frame[f"{o.name}_mean"] = means
        frame[f"{o.name}_sd"] = sds
        frame[f"{o.name}_mean_low"] = lows
        frame[f"{o.name}_mean_high"] = highs


def _compare(frame: pd.DataFrame, project: Project, metric_names: list[str]) -> pd.DataFrame:
    s = frame.set_index("part").loc["slice"]
    r = frame.set_index("part").loc["rest"]
    props = dict(PROPORTIONS[project.task])
    props["labeled_share"] = ("n_labeled", "n_rows")
    out = []
    for name in metric_names:
        if name == "share":
            continue
        a, b = float(s[name]), float(r[name])
        p, test = math.nan, ""
        if name in props:
            k_expr, n_expr = props[name]
            k = [int(pd.eval(k_expr, local_dict=row.to_dict())) for row in (s, r)]
            n = [int(pd.eval(n_expr, local_dict=row.to_dict())) for row in (s, r)]
            if min(n) > 0 and 0 < sum(k) < sum(n):
                p = float(proportions_ztest(k, n)[1])
                test = "two-proportion z-test"
        elif name == "roc_auc":
            se = math.hypot(s["roc_auc_se"], r["roc_auc_se"])
            if se > 0 and not math.isnan(se):
                p = float(2 * stats.norm.sf(abs(a - b) / se))
                test = "z-test on AUCs (Hanley-McNeil SE)"
        out.append({"metric": name, "slice": a, "rest": b, "difference": a - b, "p_value": p, "test": test})
    for o in project.outcomes:
        name = f"{o.name}_mean"
        n1, n2 = int(s[f"{o.name}_count"]), int(r[f"{o.name}_count"])
        p, test = math.nan, ""
        if n1 >= 2 and n2 >= 2 and (s[f"{o.name}_sd"] > 0 or r[f"{o.name}_sd"] > 0):
            p = float(stats.ttest_ind_from_stats(s[name], s[f"{o.name}_sd"], n1, r[name], r[f"{o.name}_sd"], n2,
                                                 equal_var=False).pvalue)
            test = "Welch t-test"
        out.append({"metric": name, "slice": float(s[name]), "rest": float(r[name]),
                    "difference": float(s[name]) - float(r[name]), "p_value": p, "test": test})
    return pd.DataFrame(out, columns=["metric", "slice", "rest", "difference", "p_value", "test"])

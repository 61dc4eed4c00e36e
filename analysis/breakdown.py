"""Metrics by every value of a feature, and a leaderboard of all features' values.

A *group* is one value of one column: a category (missing values form their own
group), ``true`` / ``false``, or for numbers and timestamps a quantile bin
``[low, high)``. Groups are computed in DuckDB within the scope and, optionally,
within a slice.

The leaderboard ranks groups by how much they hurt: error rate (misclassified
share of labeled rows; regression: mean absolute error), lift over the overall
error, and *impact*, the excess errors ``n_labeled x (error - overall error)``.
Groups with fewer than ``min_labeled`` labeled rows are flagged ``unreliable``
and ranked after every reliable group, so a handful of unlucky rows never tops
the list.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from .errors import ConfigError
from .metrics import GroupKey, compute_metrics
from .project import Project
from .scope import Scope
from .slice_metrics import wilson
from .slices import Condition, Slice, compile_slice, slice_columns
from .sql import and_all, quote_ident

MISSING = "(missing)"
SORTS = ("impact", "error_rate", "lift", "size")
GROUPABLE = ("categorical", "boolean", "numeric", "timestamp")
QUANTILE_SAMPLE = 100_000


@dataclass(frozen=True)
class Grouping:
    """How one column is cut into groups: ``(sql, params)`` giving each row's group label."""

    column: str
    kind: str
    sql: str
    params: tuple
    order: tuple[str, ...]  # group labels in display order


def _where(project: Project, scope: Scope, slice_: Slice) -> tuple[str, list]:
    return and_all([scope.to_sql(), compile_slice(slice_, project)])


def groupings(con: duckdb.DuckDBPyConnection, project: Project, columns: list[str], scope: Scope = Scope(),
              slice_: Slice = Slice(), bins: int = 10) -> list[Grouping]:
    """How each column is cut; the quantile edges of every numeric column in one pass."""
    kinds = slice_columns(project)
    for column in columns:
        if column not in kinds:
            raise ConfigError(f"Unknown column {column!r}. Columns of {project.name}: {', '.join(sorted(kinds))}.")
        if kinds[column] not in GROUPABLE:
            raise ConfigError(f"{column} is a {kinds[column]} column; break down by a categorical, boolean, "
                              "numeric or timestamp column.")
    if not 1 <= int(bins) <= 100:
        raise ConfigError("Use between 1 and 100 bins.")
    qs = [i / bins for i in range(1, bins)]
    binned = [c for c in columns if kinds[c] in ("numeric", "timestamp")]
    cuts: dict[str, list[float]] = {}
    if binned and qs:
        where, params = _where(project, scope, slice_)
        # Cut points come from a fixed-seed sample of the rows (deterministic, and
        # milliseconds at any size); which bin a row falls in is then exact.
        # quantile_disc keeps cut points at values that occur (integers stay integers).
        exprs = [f"quantile_disc({_numeric(c, kinds[c])}, ?)" for c in binned for q in qs]
        q_params = [q for _ in binned for q in qs]
        cols = ", ".join(quote_ident(c) for c in binned)
        row = con.execute(
            f"SELECT {', '.join(exprs)} FROM (SELECT {cols} FROM {quote_ident(project.log_table)} "
            f"WHERE {where}) AS scoped USING SAMPLE reservoir({QUANTILE_SAMPLE} ROWS) REPEATABLE (7)",
            [*q_params, *params]).fetchall()[0]
        for i, c in enumerate(binned):
            cuts[c] = sorted({float(x) for x in row[i * len(qs):(i + 1) * len(qs)] if x is not None})
    out = []
    for column in columns:
        kind, col = kinds[column], quote_ident(column)
        if kind in ("categorical", "boolean"):
            out.append(Grouping(column, kind, f"coalesce(CAST({col} AS VARCHAR), ?)", (MISSING,), ()))
            continue
        edges = cuts.get(column, [])
        labels = _bin_labels(edges, kind)
        value = _numeric(column, kind)
        cases = " ".join(f"WHEN {value} < ? THEN ?" for _ in edges)
        params: list = [MISSING]
        for edge, label in zip(edges, labels):
            params += [edge, label]
        params.append(labels[-1])
        out.append(Grouping(column, kind, f"CASE WHEN {col} IS NULL THEN ? {cases} ELSE ? END", tuple(params),
                            tuple(labels) + (MISSING,)))
    return out


def grouping(con: duckdb.DuckDBPyConnection, project: Project, column: str, scope: Scope = Scope(),
             slice_: Slice = Slice(), bins: int = 10) -> Grouping:
    return groupings(con, project, [column], scope, slice_, bins)[0]


def _numeric(column: str, kind: str) -> str:
    col = quote_ident(column)
    return f"epoch({col})" if kind == "timestamp" else f"CAST({col} AS DOUBLE)"


def _bin_labels(edges: list[float], kind: str) -> list[str]:
    def show(x: float) -> str:
        if kind == "timestamp":
            return pd.Timestamp(x, unit="s").strftime("%Y-%m-%d")
        return f"{x:.4g}"

    bounds = [None, *edges, None]
    labels = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        left = "(-inf" if lo is None else f"[{show(lo)}"
        right = "inf)" if hi is None else f"{show(hi)})"
        labels.append(f"{i + 1:02d} {left}, {right}")
    return labels


def breakdown(con: duckdb.DuckDBPyConnection, project: Project, column: str, scope: Scope = Scope(),
              slice_: Slice = Slice(), bins: int = 10, min_labeled: int = 30) -> pd.DataFrame:
    """Every metric of the task per group of ``column`` (one row per group), with
    the error rate's 95% Wilson interval, lift, impact and an ``unreliable`` flag."""
    g = grouping(con, project, column, scope, slice_, bins)
    where, params = _where(project, scope, slice_)
    rows = (f"SELECT *, {g.sql} AS sb_group FROM {quote_ident(project.log_table)} WHERE {where}",
            [*g.params, *params])
    frame = compute_metrics(con, project, group_by=[GroupKey("value", "sb_group")], rows=rows)
    frame.insert(0, "column", column)
    overall = _error_columns(frame, project)
    _rank_columns(frame, overall, min_labeled)
    if g.order:
        order = {label: i for i, label in enumerate(g.order)}
        frame = frame.sort_values("value", key=lambda s: s.map(order)).reset_index(drop=True)
    else:
        frame = frame.sort_values("n_rows", ascending=False).reset_index(drop=True)
    return frame


def _error_columns(frame: pd.DataFrame, project: Project) -> float:
    """Add ``errors`` and ``error_rate`` (regression: absolute error sum and MAE); return the overall rate."""
    if project.task == "binary":
        frame["errors"] = frame["fp"] + frame["fn"]
        frame["error_rate"] = frame["errors"] / frame["n_labeled"].where(frame["n_labeled"] > 0)
    elif project.task == "multiclass":
        frame["errors"] = (frame["n_labeled"] * (1 - frame["accuracy"])).round().fillna(0).astype("int64")
        frame["error_rate"] = 1 - frame["accuracy"]
    else:
        frame["errors"] = frame["mae"] * frame["n_labeled"]
        frame["error_rate"] = frame["mae"]
    labeled = frame["n_labeled"].sum()
    return float(frame["errors"].sum() / labeled) if labeled else float("nan")


def _rank_columns(frame: pd.DataFrame, overall: float, min_labeled: int) -> None:
    total = frame["n_rows"].sum()
    frame["share"] = frame["n_rows"] / total if total else np.nan
    frame["lift"] = frame["error_rate"] / overall if overall else np.nan
    frame["impact"] = frame["n_labeled"] * (frame["error_rate"] - overall)
    if "fp" in frame or "accuracy" in frame:
        bounds = [wilson(int(e), int(n)) for e, n in zip(frame["errors"].fillna(0), frame["n_labeled"])]
        frame["error_rate_low"] = [b[0] for b in bounds]
        frame["error_rate_high"] = [b[1] for b in bounds]
    frame["unreliable"] = frame["n_labeled"] < min_labeled
    frame.attrs["overall_error_rate"] = overall


def leaderboard(con: duckdb.DuckDBPyConnection, project: Project, scope: Scope = Scope(),
                slice_: Slice = Slice(), columns: list[str] | None = None, bins: int = 5,
                sort_by: str = "impact", min_labeled: int = 30, limit: int | None = None) -> pd.DataFrame:
    """Groups of every feature at once, most harmful first (see the module docstring)."""
    if sort_by not in SORTS:
        raise ConfigError(f"Sort by one of {', '.join(SORTS)}, not {sort_by!r}.")
    if columns is None:
        columns = [c.name for c in project.features if c.kind in GROUPABLE]
    if not columns:
        return pd.DataFrame(columns=["column", "value", "n_rows", "n_labeled", "errors"])
    where, params = _where(project, scope, slice_)
    error = ("CASE WHEN label IS NOT NULL AND prediction IS NOT NULL THEN "
             + ("abs(label - prediction)" if project.task == "regression"
                else "CASE WHEN label = prediction THEN 0 ELSE 1 END") + " END")
    cuts = groupings(con, project, columns, scope, slice_, bins)
    # One aggregation per column over the same filtered rows (GROUPING SETS over
    # all columns at once needs several GB at ten million rows).
    selects, all_params = [], []
    for g in cuts:
        selects.append(f"SELECT ? AS \"column\", {g.sql} AS value, count(*) AS n_rows, "
                       f"count({error}) AS n_labeled, sum({error}) AS errors "
                       f"FROM {quote_ident(project.log_table)} WHERE {where} GROUP BY 2")
        all_params += [g.column, *g.params, *params]
    frame = con.execute(" UNION ALL ".join(selects), all_params).df()
    frame["errors"] = frame["errors"].fillna(0)
    frame["error_rate"] = frame["errors"] / frame["n_labeled"].where(frame["n_labeled"] > 0)
    # Each column's groups partition the same rows: overall error from the first column.
    first = frame[frame["column"] == columns[0]]
    labeled = first["n_labeled"].sum()
    overall = float(first["errors"].sum() / labeled) if labeled else float("nan")
    total = first["n_rows"].sum()
    frame["share"] = frame["n_rows"] / total if total else np.nan
    frame["lift"] = frame["error_rate"] / overall if overall else np.nan
    frame["impact"] = frame["n_labeled"] * (frame["error_rate"] - overall)
    if project.task != "regression":
        bounds = [wilson(int(e), int(n)) for e, n in zip(frame["errors"], frame["n_labeled"])]
        frame["error_rate_low"] = [b[0] for b in bounds]
        frame["error_rate_high"] = [b[1] for b in bounds]
    frame["unreliable"] = frame["n_labeled"] < min_labeled
    key = {"impact": "impact", "error_rate": "error_rate", "lift": "lift", "size": "n_rows"}[sort_by]
    frame = frame.sort_values(["unreliable", key], ascending=[True, False], na_position="last")
    frame = frame.reset_index(drop=True)
    frame.attrs["overall_error_rate"] = overall
    return frame.head(limit) if limit else frame


def group_condition(g: Grouping, value: str) -> Condition:
    """The slice condition selecting one group of a grouping (for drilling into it)."""
    if value == MISSING:
        return Condition(g.column, "is_null")
    if not g.order:  # categories and booleans: the value itself
        return Condition(g.column, "in", values=(value,))
    labels = list(g.order[:-1])
    if value not in labels:
        raise ConfigError(f"{value!r} is not a group of {g.column}.")
    edges = list(g.params[1:-1:2])
    i = labels.index(value)
    low = edges[i - 1] if i > 0 else None
    high = edges[i] if i < len(edges) else None
    if g.kind == "timestamp":
        low, high = (None if x is None else pd.Timestamp(x, unit="s").isoformat() for x in (low, high))
    if low is None and high is None:
        return Condition(g.column, "not_null")
    return Condition(g.column, "between", low=low, high=high)

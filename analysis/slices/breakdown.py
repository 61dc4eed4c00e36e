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

import duckdb
import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.metrics.sql import GroupKey, compute_metrics
from analysis.slices.grouping import (
    CUT_SAMPLE,
    GROUPABLE,
    CategoryCounts,
    CutSample,
    Grouping,
    capped_grouping,
    category_counts,
    check_groupable,
    grouping,
    groupings,
    scoped_where,
)
from analysis.slices.model import Slice
from analysis.stats.intervals import wilson_bounds
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, quote_ident

SORTS = ("impact", "error_rate", "lift", "size")


BREAKDOWN_LIMIT = 50  # groups of a category shown by default; the rest summarized in one row


def breakdown(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    column: str,
    scope: Scope = Scope(),
    slice_: Slice = Slice(),
    bins: int = 10,
    min_labeled: int = 30,
    limit: int | None = BREAKDOWN_LIMIT,
    sample: CutSample = CUT_SAMPLE,
) -> pd.DataFrame:
    """Every metric of the task per group of ``column`` (one row per group), with
    the error rate's 95% Wilson interval, lift, impact and an ``unreliable`` flag.
    A number's bins are cut at quantiles of its rows (of a sample beyond a million rows,
    ``sample``).

    A category with more than ``limit`` groups (None or 0: no cap) shows the ``limit``
    groups with the most rows (equal counts in natural order) and one more row, last,
    summarizing all the others ("199,950 other values"); ``attrs["other"]`` describes it
    and ``attrs["notes"]`` says so. Groups are ranked and cut in the database: only
    ``limit`` + 1 groups reach Python. (Numbers and timestamps have at most 100 bins.)"""
    _check_limit(limit)
    g = grouping(con, project, column, scope, slice_, bins, sample=sample)
    where, params = scoped_where(project, scope, slice_)
    other = None
    if not g.order and g.kind == "categorical" and limit:
        g, other = capped_grouping(con, project, g, (where, params), int(limit))
    # The metrics need only the labeled rows: group those. Rows and outcomes per
    # group come from all rows, grouped by the value itself where it repeats
    # (then binned), so the bin is not worked out for every row.
    key, key_params = g.key_for()
    rows = (
        f"SELECT *, {key} AS sb_group FROM {quote_ident(project.labeled_table)} WHERE ({where}) AND label IS NOT NULL",
        [*key_params, *params],
    )
    labeled = compute_metrics(
        con, project, group_by=[GroupKey("value", "sb_group")], rows=rows, include_outcomes=False, labeled_only=True
    )
    labeled["value"] = g.label_of(labeled["value"])
    counts = _group_counts(con, project, g, (where, params))
    frame = _with_counts(labeled, counts, project)
    frame.insert(0, "column", column)
    overall = _error_columns(frame, project)
    _rank_columns(frame, overall, min_labeled)
    if g.order:
        order = {label: i for i, label in enumerate(g.order)}
        frame = frame.sort_values("value", key=lambda s: s.map(order)).reset_index(drop=True)
    else:
        frame = frame.sort_values("n_rows", ascending=False, kind="stable").reset_index(drop=True)
    frame.attrs["notes"] = []
    if other:
        last = frame["value"] == other["value"]
        frame = pd.concat([frame[~last], frame[last]], ignore_index=True)
        row = frame.iloc[-1]
        other.update(rows=int(row["n_rows"]), labeled=int(row["n_labeled"]), error_rate=_plain(row["error_rate"]))
        frame.attrs["other"] = other
        frame.attrs["notes"] = [
            f"{other['groups']:,} groups: the {other['shown']:,} with the most rows are shown; the last row "
            f"summarizes the other {other['values']:,} values ({other['rows']:,} rows"
            + (", missing values included)" if other["missing"] else ")")
        ]
    frame.attrs["overall_error_rate"] = overall
    return frame


def _check_limit(limit) -> None:
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 0):
        raise ConfigError(f"The limit of groups must be a whole number, 0 or more (0: all), not {limit!r}.")


def _plain(x) -> float | None:
    return None if x is None or x != x else float(x)


def _group_counts(con, project: Project, g: Grouping, where: tuple[str, list]) -> pd.DataFrame:
    """Rows, and each outcome's sum and count, per group of ``g`` over all rows in ``where``."""
    sums = "".join(
        f", sum({quote_ident(o.name)}) AS {quote_ident(o.name + '_sum')}, "
        f"count({quote_ident(o.name)}) AS {quote_ident(o.name + '_count')}"
        for o in project.outcomes
    )
    totals = "".join(
        f", sum({quote_ident(o.name + s)}) AS {quote_ident(o.name + s)}"
        for o in project.outcomes
        for s in ("_sum", "_count")
    )
    table = quote_ident(project.log_table)
    if g.raw:
        sql = Sql.compose(
            "SELECT {key} AS value, sum(n_rows) AS n_rows{totals} FROM (SELECT {column} AS sb_value, "
            "count(*) AS n_rows{sums} FROM {table} WHERE {where} GROUP BY 1) AS by_value GROUP BY 1",
            key=g.key_for("sb_value"),
            totals=totals,
            column=quote_ident(g.column),
            sums=sums,
            table=table,
            where=where,
        )
    else:
        sql = Sql.compose(
            "SELECT {key} AS value, count(*) AS n_rows{sums} FROM {table} WHERE {where} GROUP BY 1",
            key=g.key_for(),
            sums=sums,
            table=table,
            where=where,
        )
    frame = con.execute(*sql).df()
    frame["value"] = g.label_of(frame["value"])
    return frame


def _with_counts(labeled: pd.DataFrame, counts: pd.DataFrame, project: Project) -> pd.DataFrame:
    """The labeled rows' metrics per group, with every group's rows and outcomes from ``counts``."""
    replaced = ["n_rows", "labeled_share"] + [o.name + s for o in project.outcomes for s in ("_sum", "_count", "_mean")]
    frame = counts.merge(labeled.drop(columns=[c for c in replaced if c in labeled]), on="value", how="left")
    for c in ("n_labeled", "n_scored", "tp", "fp", "fn", "tn", "n_pos", "n_neg"):
        if c in frame:
            frame[c] = frame[c].fillna(0).astype("int64")
    frame["n_rows"] = frame["n_rows"].astype("int64")
    frame["labeled_share"] = frame["n_labeled"] / frame["n_rows"].where(frame["n_rows"] > 0)
    for o in project.outcomes:
        frame[o.name + "_count"] = frame[o.name + "_count"].fillna(0).astype("int64")
        frame[o.name + "_mean"] = frame[o.name + "_sum"] / frame[o.name + "_count"].where(frame[o.name + "_count"] > 0)
    return frame[[c for c in labeled.columns if c in frame] + [c for c in frame if c not in labeled.columns]]


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
        frame["error_rate_low"], frame["error_rate_high"] = wilson_bounds(
            frame["errors"].fillna(0).round(), frame["n_labeled"]
        )
    frame["unreliable"] = frame["n_labeled"] < min_labeled
    frame.attrs["overall_error_rate"] = overall


def leaderboard(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    scope: Scope = Scope(),
    slice_: Slice = Slice(),
    columns: list[str] | None = None,
    bins: int = 5,
    sort_by: str = "impact",
    min_labeled: int = 30,
    limit: int | None = None,
    keep_id_like: bool = False,
) -> pd.DataFrame:
    """Groups of every feature at once, most harmful first (see the module docstring).
    Id-like categorical features are left out unless ``keep_id_like``: ``attrs["notes"]``
    and ``attrs["skipped_features"]`` say which."""
    if sort_by not in SORTS:
        raise ConfigError(f"Sort by one of {', '.join(SORTS)}, not {sort_by!r}.")
    _check_limit(limit)
    if columns is None:
        columns = [c.name for c in project.features if c.kind in GROUPABLE]
    where, params = scoped_where(project, scope, slice_)
    kinds = check_groupable(project, columns)
    skipped: list[CategoryCounts] = []
    if not keep_id_like:
        categorical = [c for c in columns if kinds[c] == "categorical"]
        counts = category_counts(con, quote_ident(project.log_table), categorical, (where, params), 0)
        skipped = [counts[c] for c in categorical if counts[c].id_like]
        columns = [c for c in columns if c not in {k.column for k in skipped}]
    notes = [k.note() + " (keep_id_like to include it)" for k in skipped]
    if not columns:
        empty = pd.DataFrame(columns=["column", "value", "n_rows", "n_labeled", "errors"])
        empty.attrs.update(
            notes=notes,
            skipped_features=[{"column": k.column, "distinct": k.distinct, "rows": k.rows} for k in skipped],
        )
        return empty
    error = (
        "CASE WHEN label IS NOT NULL AND prediction IS NOT NULL THEN "
        + (
            "abs(label - prediction)"
            if project.task == "regression"
            else "CASE WHEN label = prediction THEN 0 ELSE 1 END"
        )
        + " END"
    )
    cuts = groupings(con, project, columns, scope, slice_, bins)
    frame = con.execute(*_leaderboard_query(project, cuts, (where, params), error)).df()
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
        frame["error_rate_low"], frame["error_rate_high"] = wilson_bounds(frame["errors"].round(), frame["n_labeled"])
    frame["unreliable"] = frame["n_labeled"] < min_labeled
    key = {"impact": "impact", "error_rate": "error_rate", "lift": "lift", "size": "n_rows"}[sort_by]
    frame = frame.sort_values(["unreliable", key], ascending=[True, False], na_position="last")
    frame = frame.reset_index(drop=True)
    frame.attrs["overall_error_rate"] = overall
    frame.attrs["notes"] = notes
    frame.attrs["skipped_features"] = [{"column": k.column, "distinct": k.distinct, "rows": k.rows} for k in skipped]
    return frame.head(limit) if limit else frame


def _leaderboard_query(project: Project, cuts: list[Grouping], where: tuple[str, list], error: str) -> tuple[str, list]:
    """Rows, labeled rows and errors per group of every grouping, in one scan.

    One single-column grouping set per feature, over the value itself where a
    column has few distinct values (categories, most numbers: their bins are
    taken afterwards over the grouped values, which is exact), or over the
    bin where it has many.
    """
    keys, params, labels = [], [], []
    for i, g in enumerate(cuts):
        key = f"k{i}"
        if g.raw:
            keys.append(f"{quote_ident(g.column)} AS {key}")
            labels.append(g.label_sql(key))
        else:
            keys.append(f"{g.sql} AS {key}")
            params += g.params
            labels.append((key, ()))
    sets = ", ".join(f"(k{i})" for i in range(len(cuts)))
    flags = ", ".join(f"grouping(k{i}) AS g{i}" for i in range(len(cuts)))
    grouped = (
        f"SELECT {', '.join(f'k{i}' for i in range(len(cuts)))}, {flags}, count(*) AS n_rows, "
        f"count(sb_error) AS n_labeled, sum(sb_error) AS errors "
        f"FROM (SELECT {', '.join(keys)}, {error} AS sb_error FROM {quote_ident(project.log_table)} "
        f"WHERE {where[0]}) AS scoped GROUP BY GROUPING SETS ({sets})"
    )
    params += list(where[1])
    selects = []
    for i, (g, (label, label_params)) in enumerate(zip(cuts, labels)):
        selects.append(
            f'SELECT ? AS "column", {label} AS value, sum(n_rows) AS n_rows, '
            f"sum(n_labeled) AS n_labeled, sum(errors) AS errors FROM grouped WHERE g{i} = 0 GROUP BY 2"
        )
        params += [g.column, *label_params]
    return f"WITH grouped AS ({grouped}) " + " UNION ALL ".join(selects), params

"""The error tree: a shallow decision tree that predicts a row's error from its
features; each leaf is a slice with its path, size and error rate.

The tree (scikit-learn ``DecisionTreeRegressor``, squared error, which for a
0/1 error splits as the Gini criterion does) is fit on the encoded features of
all rows, or of a fixed-seed block sample of about ``sample`` rows beyond that. Categories are
ordered by their mean error in the sample before fitting, so a threshold split
on the order is the best split of the categories into two groups (Breiman et
al., 1984); numeric bins keep their order; a missing value is a value of its
own. The leaves' sizes and errors are then counted exactly, in DuckDB, over all
rows of the scope: the leaves partition the rows, each row in exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeRegressor

from analysis.discovery.encode import ERROR_COLUMN, EncodedFeature, codes_sql, encode, materialized
from analysis.errors import ConfigError
from analysis.slices import And, Condition, Or, Slice, Term
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, quote_ident

MISSING = -1  # the tree's code for a missing value
LONGEST_WHERE = 200  # characters of a leaf's readable slice shown as its name


@dataclass
class ErrorTree:
    """``nodes``: one row per node (``id``, ``parent`` (None for the root),
    ``depth``, ``split`` (the condition on the edge from the parent), ``size``,
    ``errors``, ``error_rate``, ``leaf``); ``leaves``: one row per leaf, worst
    first, with ``id``, ``where`` (readable path), ``slice`` (exactly the leaf's rows,
    to open in Slices), ``size``,
    ``errors``, ``error_rate``. Counts are over all rows; the tree was fit on
    ``fit_rows`` of them."""

    nodes: pd.DataFrame
    leaves: pd.DataFrame
    n_rows: int
    total_errors: float
    fit_rows: int
    max_depth: int
    min_leaf: int
    features: list[str] = field(default_factory=list)

    @property
    def mean_error(self) -> float:
        return self.total_errors / self.n_rows if self.n_rows else float("nan")


def error_tree(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    scope: Scope = Scope(),
    *,
    error: str = "misclassification",
    columns: list[str] | None = None,
    bins: int = 5,
    max_depth: int = 3,
    min_leaf: int | None = None,
    sample: int = 500_000,
    slice_: Slice = Slice(),
) -> ErrorTree:
    """Fit the error tree (see the module docstring). ``min_leaf`` defaults to 1% of the rows."""
    if not 1 <= int(max_depth) <= 8:
        raise ConfigError("The tree's depth must be between 1 and 8.")
    encoding = encode(con, project, scope, columns=columns, error=error, bins=bins, slice_=slice_)
    with materialized(con, encoding) as enc:
        n, total, _ = con.execute(*enc.totals).fetchall()[0]
        if not n:
            raise ConfigError(f"No rows with a defined {error} in this scope: nothing to fit.")
        min_leaf = int(min_leaf) if min_leaf else max(1, int(n) // 100)
        source = f"SELECT * FROM ({enc.sql}) AS encoded"
        if n > sample:  # whole vectors of rows: fast, and the same rows on every run over the same file
            source += f" USING SAMPLE {100 * sample / n:.6f}% (system, 7)"
        data = con.execute(source, enc.params).df()
        if data.empty:  # a tiny share of whole vectors can draw none of them
            data = con.execute(*Sql.compose("SELECT * FROM ({rows}) AS encoded", rows=(enc.sql, enc.params))).df()
        names = [f.column for f in enc.features]
        orders = {f.column: _order(f, data) for f in enc.features}
        x = np.column_stack([data[c].map(orders[c]).to_numpy(dtype=float) for c in names])
        y = data[ERROR_COLUMN].to_numpy(dtype=float)
        leaf_in_sample = max(1, round(min_leaf * len(data) / n))
        model = DecisionTreeRegressor(max_depth=int(max_depth), min_samples_leaf=leaf_in_sample, random_state=0)
        model.fit(x, y)
        # Codes no row has (a missing value in a column without any) are left out of paths.
        nulls = con.execute(
            "SELECT "
            + ", ".join(f"count(*) - count({quote_ident(c)})" for c in names)
            + f" FROM ({enc.sql}) AS encoded",
            enc.params,
        ).fetchall()[0]
        start = {c: set(orders[c]) - (set() if missing else {None}) for c, missing in zip(names, nulls)}
        nodes = _paths(model, enc.features, orders, start)
        counted = _count_leaves(con, enc, nodes)
    return _assemble(nodes, counted, enc, int(n), float(total), len(data), int(max_depth), min_leaf, names)


def _order(feature: EncodedFeature, data: pd.DataFrame) -> dict:
    """Code -> position on the tree's axis (missing included as code None)."""
    codes = [None, *range(len(feature.labels))]
    if feature.kind == "categorical":  # by mean error in the sample; unseen codes last
        means = data.groupby(data[feature.column].fillna(MISSING))[ERROR_COLUMN].mean()
        key = {c: means.get(MISSING if c is None else c, np.inf) for c in codes}
        ranked = sorted(codes, key=lambda c: (key[c], -2 if c is None else c))
        return {c: float(i) for i, c in enumerate(ranked)}
    return {c: float(MISSING if c is None else c) for c in codes}


def _paths(model: DecisionTreeRegressor, features: list[EncodedFeature], orders: dict, start: dict) -> list[dict]:
    """Every node with its parent, the edge's split, and the codes each feature may still take."""
    t = model.tree_
    out: list[dict] = []

    def walk(node: int, parent, depth: int, allowed: dict, split: str) -> None:
        leaf = t.children_left[node] == -1
        out.append({"id": node, "parent": parent, "depth": depth, "split": split, "leaf": leaf, "allowed": allowed})
        if leaf:
            return
        f = features[t.feature[node]]
        threshold = t.threshold[node]
        left = {c for c in allowed[f.column] if orders[f.column][c] <= threshold}
        right = allowed[f.column] - left
        for child, codes in ((t.children_left[node], left), (t.children_right[node], right)):
            walk(child, node, depth + 1, {**allowed, f.column: codes}, _describe(f, codes))

    walk(0, None, 0, start, "all rows")
    return out


def _describe(feature: EncodedFeature, codes: set) -> str:
    labels = [feature.label(c) for c in sorted(codes, key=lambda c: -1 if c is None else c)]
    return f"{feature.column} in ({', '.join(labels)})" if len(labels) > 1 else f"{feature.column} = {labels[0]}"


def _leaf_sql(enc, allowed: dict, start: dict) -> Sql:
    """A leaf's rows: each feature's codes where the path narrowed them."""
    return codes_sql({f.column: allowed[f.column] for f in enc.features if allowed[f.column] != start[f.column]})


def _count_leaves(con, enc, nodes: list[dict]) -> pd.DataFrame:
    """Rows and errors per leaf over all rows (one pass; a row matching no leaf would show as NULL)."""
    cases = Sql.join(
        " ",
        [
            Sql.compose(
                "WHEN {leaf} THEN {id}",
                leaf=_leaf_sql(enc, node["allowed"], nodes[0]["allowed"]),
                id=str(int(node["id"])),
            )
            for node in nodes
            if node["leaf"]
        ],
    )
    query = Sql.compose(
        "SELECT CASE {cases} END AS id, count(*) AS size, coalesce(sum({e}), 0) AS errors "
        "FROM ({rows}) AS encoded GROUP BY 1",
        cases=cases,
        e=quote_ident(ERROR_COLUMN),
        rows=(enc.sql, enc.params),
    )
    return con.execute(*query).df()


def _any_code(f: EncodedFeature, codes: set) -> Term:
    """The rows whose code is one of ``codes``: an OR of each code's conditions."""
    parts = []
    for c in sorted(codes, key=lambda c: -1 if c is None else c):
        conds = f.null_conditions if c is None else f.conditions[c]
        parts.append(conds[0] if len(conds) == 1 else And(tuple(conds)))
    return parts[0] if len(parts) == 1 else Or(tuple(parts))


def _feature_terms(f: EncodedFeature, codes: set) -> list[Term]:
    """A leaf's constraint on one feature, in the plainest form that says it exactly."""
    n_values = len(f.labels)
    present = sorted(c for c in codes if c is not None)
    with_null = None in codes
    if not present:
        return [Condition(f.column, "is_null")]
    if f.kind in ("numeric", "timestamp") and present == list(range(present[0], present[-1] + 1)):
        if present[0] == 0 and present[-1] == n_values - 1:
            run = Condition(f.column, "not_null")
        else:
            low, high = f.conditions[present[0]][0], f.conditions[present[-1]][0]
            run = Condition(
                f.column,
                "between",
                low=low.low if low.op == "between" else None,
                high=high.high if high.op == "between" else None,
            )
        return [Or((run, Condition(f.column, "is_null")))] if with_null else [run]
    if f.kind == "categorical":
        tops = [c for c in range(n_values) if f.conditions[c][0].op == "in"]
        left_out = tuple(f.conditions[c][0].values[0] for c in tops if c not in codes)
        if len(present) == n_values:  # every value: the leaf is about missing values only
            return [] if with_null else [Condition(f.column, "not_null")]
        if len(tops) == n_values or n_values - 1 in codes:  # no lump, or the lump is in the leaf
            if not with_null and all(c in tops for c in present):
                return [Condition(f.column, "in", values=tuple(f.conditions[c][0].values[0] for c in present))]
            rest = [Condition(f.column, "not_in", values=left_out)] if left_out else []
            return rest + ([] if with_null else [Condition(f.column, "not_null")])
    if f.kind == "boolean" and not with_null:
        return list(f.conditions[present[0]]) if len(present) == 1 else [Condition(f.column, "not_null")]
    return [_any_code(f, codes)]


def _leaf_slice(enc, allowed: dict, start: dict) -> Slice:
    """The path to a leaf as a slice: exactly the leaf's rows (an OR where a branch keeps a
    value and the missing ones, or bins that are not next to each other)."""
    terms: list[Term] = []
    for f in enc.features:
        if allowed[f.column] != start[f.column]:
            terms += _feature_terms(f, allowed[f.column])
    return Slice(tuple(terms))


def _assemble(nodes, counted, enc, n, total, fit_rows, max_depth, min_leaf, names) -> ErrorTree:
    by_leaf = counted.set_index("id")
    frame = pd.DataFrame([{k: v for k, v in node.items() if k != "allowed"} for node in nodes])
    sizes = {int(i): (int(r["size"]), float(r["errors"])) for i, r in by_leaf.iterrows() if pd.notna(i)}
    children: dict = {}
    for node in nodes:
        if node["parent"] is not None:
            children.setdefault(node["parent"], []).append(node["id"])

    def totals(node_id: int) -> tuple[int, float]:
        if node_id not in children:
            return sizes.get(node_id, (0, 0.0))
        parts = [totals(c) for c in children[node_id]]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    frame["size"] = [totals(i)[0] for i in frame["id"]]
    frame["errors"] = [totals(i)[1] for i in frame["id"]]
    frame["error_rate"] = frame["errors"] / frame["size"].where(frame["size"] > 0)
    leaves = []
    for node in nodes:
        if not node["leaf"]:
            continue
        slice_ = _leaf_slice(enc, node["allowed"], nodes[0]["allowed"])
        where = slice_.readable()
        if len(where) > LONGEST_WHERE:  # a list of many values: the leaf told by its codes' labels
            where = " AND ".join(
                _describe(f, node["allowed"][f.column])
                for f in enc.features
                if node["allowed"][f.column] != nodes[0]["allowed"][f.column]
            )
        size, errors = sizes.get(node["id"], (0, 0.0))
        leaves.append(
            {
                "id": node["id"],
                "where": where,
                "slice": slice_,
                "size": size,
                "errors": errors,
                "error_rate": errors / size if size else float("nan"),
            }
        )
    leaf_frame = pd.DataFrame(leaves).sort_values(["error_rate", "size"], ascending=[False, False])
    return ErrorTree(frame, leaf_frame.reset_index(drop=True), n, total, fit_rows, max_depth, min_leaf, names)

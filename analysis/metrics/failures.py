"""Product metrics that fail on the compared rows, kept out of the comparison's
arithmetic and reported with their reason.

A metric is checked on all rows when it is defined, but data changes: rows that
arrive later may hold a text its cast cannot take, or a group whose divisor is
zero. :func:`split` evaluates every metric on each side's rows first (one query
per side; each metric alone only when that query fails); the comparison then runs
with the metrics that work, and :func:`with_failures` adds one row per failing
metric to its overall table: values NaN and ``error`` the engine's reason. The
gate counts such a metric as a failed check naming the reason; the CLI, the
Compare page and reports show the reason.
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.metrics.product import ProductMetric, product_metrics
from analysis.store.project import Project
from analysis.store.scope import Scope


def split(
    con, project: Project, metrics: list[ProductMetric], scopes: list[Scope]
) -> tuple[list[ProductMetric], dict[str, str]]:
    """``(metrics that evaluate on every scope's rows, {name: reason} for the others)``."""
    failed: dict[str, str] = {}
    for scope in scopes:
        if not [m for m in metrics if m.name not in failed]:
            break
        values = product_metrics(con, project, scope, group_by=(), metrics=[m for m in metrics if m.name not in failed])
        failed.update(values.attrs.get("failed", {}))
    return [m for m in metrics if m.name not in failed], failed


def with_failures(overall: pd.DataFrame, metrics: list[ProductMetric], failed: dict[str, str]) -> pd.DataFrame:
    """The overall table with an ``error`` column (None where the metric was computed)
    and a row for each failing metric, in the order the metrics are defined."""
    overall = overall.assign(error=None)
    if not failed:
        return overall
    nan = math.nan
    extra = pd.DataFrame(
        [
            {
                "metric": m.name,
                "kind": "product",
                "direction": m.direction,
                "baseline": nan,
                "candidate": nan,
                "delta": nan,
                "ci_low": nan,
                "ci_high": nan,
                "p_value": nan,
                "test": "",
                "error": failed[m.name],
            }
            for m in metrics
            if m.name in failed
        ]
    )
    frames = [overall[overall["kind"] != "product"], overall[overall["kind"] == "product"], extra]
    out = pd.concat([f for f in frames if len(f)], ignore_index=True)
    order = {m.name: i for i, m in enumerate(metrics)}
    rank = [order.get(name, -1) if kind == "product" else -1 for name, kind in zip(out["metric"], out["kind"])]
    out = out.assign(_rank=rank).sort_values("_rank", kind="stable").drop(columns="_rank").reset_index(drop=True)
    out["error"] = out["error"].astype(object).where(out["error"].notna(), None)
    return out


def failure_lines(overall: pd.DataFrame) -> list[str]:
    """One line per failing metric, for a person to read."""
    if "error" not in overall:
        return []
    rows = overall[overall["error"].notna()]
    return [f"product metric {r.metric} could not be computed: {r.error}" for r in rows.itertuples()]

"""Headline numbers: every metric of the task, with intervals, and the product metrics,
per version (or version and stage)."""

from __future__ import annotations

from analysis.metrics.product import product_metrics
from analysis.metrics.registry import HEADLINES, headline_metrics, metrics_for
from analysis.metrics.sql import ALL_ROWS, compute_metrics
from analysis.numbers import format_value, metric_title
from analysis.reports.kinds.base import (
    BlockKind,
    Card,
    metric_defs,
    metrics_of,
    pinned_scope,
    plain_side,
    records,
    side_label,
)
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident


class Headline(BlockKind):
    name = "headline"
    title = "Headline numbers"
    summary_first = False  # one line per version, none above the others

    def pin(self, con, project, view: dict) -> dict:
        view = dict(view)
        days = pinned_scope(con, project, view)
        sides = view.get("sides") or [
            {"version": v, "stage": None}
            for (v,) in con.execute(
                f"SELECT DISTINCT model_version FROM {quote_ident(project.log_table)} ORDER BY 1"
            ).fetchall()
        ]
        return {
            "sides": [plain_side(s) for s in sides],
            "start": days["start"],
            "end": days["end"],
            "metrics": metric_defs(con, project),
        }

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        from analysis.slices.metrics import add_counts, with_intervals  # engine: see kinds/__init__

        metrics = metrics_of(params)
        rows = []
        for side in params["sides"]:
            scope = Scope.of(
                versions=side["version"], stages=side.get("stage"), start=params["start"], end=params["end"]
            )
            frame = compute_metrics(con, project, group_by=[ALL_ROWS], where=scope.to_sql(), include_outcomes=False)
            add_counts(frame, project)
            frame = with_intervals(frame, project)
            row = {"side": side_label(side), **records(frame)[0]}
            if metrics:
                values = product_metrics(con, project, scope, group_by=(), metrics=metrics)
                row.update(records(values)[0] if len(values) else {})
            rows.append(row)
        names = [m for m in ("accuracy", "error_rate", *metrics_for(project.task)) if any(m in r for r in rows)]
        return {
            "task": project.task,
            "metrics": list(dict.fromkeys(names)),
            "rows": rows,
            "product_metrics": params.get("metrics", []),
        }

    def numbers(self, snapshot: dict) -> dict[str, object]:
        out: dict[str, object] = {}
        for r in snapshot["rows"]:
            for key in ("n_rows", "n_labeled", *snapshot["metrics"], *(m["name"] for m in snapshot["product_metrics"])):
                out[f"{r['side']}: {key}"] = r.get(key)
        return out

    def cards(self, snapshot: dict) -> list[Card]:
        """Each version's headline metric (the task's, as on the Overview's cards)."""
        metric = headline_metrics(snapshot["task"])[0] if snapshot.get("task") in HEADLINES else None
        if metric not in snapshot["metrics"]:
            metric = next((m for m in snapshot["metrics"] if m != "error_rate"), None)
        return [
            Card(f"{r['side']}: {metric_title(metric)}", format_value(metric, r.get(metric)))
            for r in snapshot["rows"][:4]
        ]

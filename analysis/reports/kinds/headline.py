"""Headline numbers: every metric of the task, with intervals, and the product metrics,
per version (or version and stage)."""

from __future__ import annotations

from analysis.metrics.product import product_metrics
from analysis.metrics.registry import HEADLINES, headline_metrics, metrics_for
from analysis.metrics.sql import ALL_ROWS, compute_metrics
from analysis.numbers import format_value, metric_name, metric_title, missing
from analysis.numbers import format_value as show
from analysis.palette import BASELINE as BASE
from analysis.reports.kinds.base import (
    BlockKind,
    Card,
    Rows,
    Snapshot,
    metric_defs,
    metrics_of,
    pinned_scope,
    plain_side,
    records,
    side_label,
)
from analysis.reports.tables import Table, count, interval, text, value
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident


class HeadlineSnapshot(Snapshot):
    task: str | None = None
    metrics: list[str] = []
    rows: Rows
    product_metrics: Rows = []


class Headline(BlockKind):
    name = "headline"
    title = "Headline numbers"
    snapshot_model = HeadlineSnapshot
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

    def lines(self, s: dict) -> list:
        products = s.get("product_metrics", [])
        lines = []
        first = next((m for m in s["metrics"] if m not in ("error_rate",)), None)
        for r in s["rows"]:
            parts = [f"{int(r.get('n_rows') or 0):,} predictions, {int(r.get('n_labeled') or 0):,} labeled"]
            if first:
                interval = ""
                if not missing(r.get(f"{first}_low")):
                    interval = f" [{show(first, r[f'{first}_low'])}, {show(first, r[f'{first}_high'])}]"
                parts.append(f"{metric_name(first)} {show(first, r.get(first))}{interval}")
            parts += [f"{metric_name(d['name'])} {show(d['name'], r.get(d['name']), products)}" for d in products]
            lines.append(f"{r['side']}: " + "; ".join(parts) + ".")
        return lines

    def tables(self, s: dict) -> list:
        products = s.get("product_metrics", [])
        heads = ["version", "predictions", "labeled"]
        for m in s["metrics"]:
            heads += [metric_name(m), f"{metric_name(m)}, 95% interval"]
        heads += [metric_name(d["name"], products) for d in products]
        rows = []
        for r in s["rows"]:
            row = [text(r["side"]), count(r.get("n_rows")), count(r.get("n_labeled"))]
            for m in s["metrics"]:
                row += [value(m, r.get(m)), interval(m, r.get(f"{m}_low"), r.get(f"{m}_high"))]
            row += [value(d["name"], r.get(d["name"]), products) for d in products]
            rows.append(row)
        return [Table(heads, rows)]

    def figures(self, s: dict) -> list:
        import plotly.graph_objects as go  # plotly: loaded when a chart is drawn

        from analysis.reports.charts import error_bars, layout, value_axis  # plotly too

        metric = next((m for m in s["metrics"] if m != "error_rate"), None)
        if metric is None or not s["rows"]:
            return []
        values = [r.get(metric) for r in s["rows"]]
        highs = [r.get(f"{metric}_high") for r in s["rows"]]
        fig = go.Figure(
            go.Bar(
                x=[r["side"] for r in s["rows"]],
                y=values,
                marker_color=BASE,
                text=[format_value(metric, v) for v in values],
                textposition="inside",
                insidetextanchor="middle",
                error_y=error_bars(values, [r.get(f"{metric}_low") for r in s["rows"]], highs),
            )
        )
        value_axis(fig, metric)
        return [layout(fig, f"{metric_name(metric)} per version (95% interval)")]

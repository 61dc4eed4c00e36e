"""Over time: the task's headline metric and every product metric of two versions, per day."""

from __future__ import annotations

import pandas as pd

from analysis.metrics.registry import headline_metrics
from analysis.numbers import metric_name
from analysis.palette import BASELINE as BASE
from analysis.palette import CANDIDATE as CAND
from analysis.reports.kinds.base import (
    BlockKind,
    Rows,
    Snapshot,
    compared_title,
    pinned_sides,
    records,
    side_label,
    side_of,
)

BEFORE_PINNED = {"binary": "accuracy", "multiclass": "accuracy", "regression": "mae"}


class SeriesSnapshot(Snapshot):
    headline: str = "accuracy"  # a block pinned before the headline was stored showed accuracy
    rows: Rows
    product_metrics: Rows = []
    baseline: str = ""
    candidate: str = ""


class Series(BlockKind):
    name = "series"
    title = "Over time"
    snapshot_model = SeriesSnapshot

    def pin(self, con, project, view: dict) -> dict:
        view = dict(view)
        return {**pinned_sides(con, project, view), "metric": view.get("metric") or headline_metrics(project.task)[0]}

    def default_title(self, params: dict) -> str:
        return compared_title(self, params)

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        from analysis.compare.comparison import daily  # engine: see kinds/__init__

        frame = daily(
            con,
            project,
            side_of(params["baseline"]),
            side_of(params["candidate"]),
            start=params["start"],
            end=params["end"],
            # a block pinned before the metric was: the one it showed then
            metric=params.get("metric") or BEFORE_PINNED[project.task],
        )
        frame = frame.assign(day=pd.to_datetime(frame["day"]).dt.date.astype(str))
        names = [m["name"] for m in params.get("metrics", [])]
        headline = frame.attrs["headline"]
        return {
            "headline": headline,
            "rows": records(frame, ["day", "side", "version", "n_rows", headline, *names]),
            "product_metrics": params.get("metrics", []),
            "baseline": side_label(params["baseline"]),
            "candidate": side_label(params["candidate"]),
        }

    def numbers(self, snapshot: dict) -> dict[str, object]:
        return {
            f"{r['day']} {r['version']}: {snapshot['headline']}": r.get(snapshot["headline"]) for r in snapshot["rows"]
        }

    def lines(self, s: dict) -> list:
        days = sorted({r["day"] for r in s["rows"]})
        if not days:
            return ["No predictions in the window."]
        return [
            f"Daily {metric_name(s['headline'])} and product metrics of {s['candidate']} and {s['baseline']}, "
            f"{days[0]} to {days[-1]}."
        ]

    def tables(self, s: dict) -> list:
        return []

    def figures(self, s: dict) -> list:
        import plotly.graph_objects as go  # plotly: loaded when a chart is drawn

        from analysis.reports.charts import layout, value_axis  # plotly too

        figs = []
        names = [s["headline"], *(m["name"] for m in s.get("product_metrics", []))]
        for name in names[:3]:
            fig = go.Figure()
            for side, color in (("baseline", BASE), ("candidate", CAND)):
                rows = [r for r in s["rows"] if r["side"] == side]
                if rows:
                    fig.add_trace(
                        go.Scatter(
                            x=[r["day"] for r in rows],
                            y=[r.get(name) for r in rows],
                            mode="lines",
                            name=rows[0]["version"],
                            line=dict(color=color),
                        )
                    )
            value_axis(fig, name, s.get("product_metrics", []))
            figs.append(layout(fig, f"{metric_name(name)} per day", 300))
        return figs

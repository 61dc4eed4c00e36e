"""One slice's metrics with intervals: the slice, the rest of the scope and all rows."""

from __future__ import annotations

from typing import Any

from analysis.numbers import format_value, metric_name, metric_title, p_words
from analysis.numbers import format_value as show
from analysis.palette import BASELINE as BASE
from analysis.palette import CANDIDATE as CAND
from analysis.palette import NEUTRAL
from analysis.reports.kinds.base import BlockKind, Rows, Snapshot, pinned_scope, records, scope_of
from analysis.reports.tables import Table, count, delta, interval, p_value, text, value
from analysis.slices import Slice


class SliceSnapshot(Snapshot):
    where: str = ""
    name: str = ""
    metrics: list[str] = []
    parts: Rows
    comparison: Rows = []
    scope: dict[str, Any] = {}


class SliceBlock(BlockKind):
    name = "slice"
    title = "Slice"
    snapshot_model = SliceSnapshot

    def pin(self, con, project, view: dict) -> dict:
        view = dict(view)
        slice_ = view["slice"]
        slice_ = slice_ if isinstance(slice_, Slice) else Slice.from_dict(slice_)
        return {
            **pinned_scope(con, project, view),
            "slice": slice_.to_dict(),
            "where": slice_.readable(),
            "name": view.get("name") or "",
        }

    def default_title(self, params: dict) -> str:
        return params.get("name") or params["where"] or "All rows"

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        from analysis.slices.metrics import slice_metrics  # engine: see kinds/__init__

        result = slice_metrics(con, project, Slice.from_dict(params["slice"]), scope_of(params))
        keep = ["part", "n_rows", "n_labeled", "share", "share_low", "share_high"]
        for m in result.metrics:
            keep += [m, f"{m}_low", f"{m}_high"]
        keep += [c for c in result.table.columns if c.endswith("_mean") and not c.startswith(("log_loss", "brier"))]
        return {
            "where": params["where"],
            "name": params.get("name", ""),
            "metrics": result.metrics,
            "parts": records(result.table, list(dict.fromkeys(keep))),
            "comparison": records(result.comparison),
            "scope": {k: params[k] for k in ("versions", "stages", "start", "end")},
        }

    def numbers(self, snapshot: dict) -> dict[str, object]:
        out: dict[str, object] = {}
        for part in snapshot["parts"]:
            for key in ("n_rows", "n_labeled", *snapshot["metrics"]):
                out[f"{part['part']}: {key}"] = part.get(key)
        return out

    def lines(self, s: dict) -> list:
        parts = {p["part"]: p for p in s["parts"]}
        sl, rest = parts.get("slice", {}), parts.get("rest", {})
        metric = "error_rate" if "error_rate" in s["metrics"] else s["metrics"][2] if len(s["metrics"]) > 2 else None
        lines = [
            f"{s['name'] + ': ' if s['name'] else ''}{s['where']}: {int(sl.get('n_rows') or 0):,} predictions "
            f"({show('share', sl.get('share'))} of the scope)."
        ]
        if metric:
            test = next((c for c in s["comparison"] if c["metric"] == metric), {})
            lines.append(
                f"{metric_title(metric)} {show(metric, sl.get(metric))} against {show(metric, rest.get(metric))} "
                f"for the rest"
                + (f" ({p_words(test.get('p_value'))})" if test.get("p_value") is not None else "")
                + "."
            )
        return lines

    def tables(self, s: dict) -> list:
        metrics = [m for m in s["metrics"] if m != "share"]
        heads = ["part", "predictions", "share"]
        for m in metrics:
            heads += [metric_name(m), f"{metric_name(m)}, 95% interval"]
        parts = Table(heads)
        for p in s["parts"]:
            row = [text(p["part"]), count(p.get("n_rows")), value("share", p.get("share"))]
            for m in metrics:
                row += [value(m, p.get(m)), interval(m, p.get(f"{m}_low"), p.get(f"{m}_high"))]
            parts.rows.append(row)
        tests = Table(["metric", "slice", "rest", "difference", "p-value", "test"])
        for c in s["comparison"]:
            m = c["metric"]
            tests.rows.append(
                [
                    text(metric_name(m)),
                    value(m, c.get("slice")),
                    value(m, c.get("rest")),
                    delta(m, c.get("difference")),
                    p_value(c.get("p_value")),
                    text(c.get("test")),
                ]
            )
        return [parts, tests]

    def figures(self, s: dict) -> list:
        import plotly.graph_objects as go  # plotly: loaded when a chart is drawn

        from analysis.reports.charts import error_bars, layout, value_axis  # plotly too

        metric = (
            "error_rate"
            if "error_rate" in s["metrics"]
            else next((m for m in s["metrics"] if m not in ("share", "labeled_share")), None)
        )
        if metric is None:
            return []
        parts = [p for p in s["parts"] if p["part"] in ("slice", "rest", "overall")]
        values = [p.get(metric) for p in parts]
        highs = [p.get(f"{metric}_high") for p in parts]
        colour = {"slice": CAND, "rest": NEUTRAL, "overall": BASE}
        fig = go.Figure(
            go.Bar(
                x=[p["part"] for p in parts],
                y=values,
                marker_color=[colour[p["part"]] for p in parts],
                text=[format_value(metric, v) for v in values],
                textposition="inside",
                insidetextanchor="middle",
                error_y=error_bars(values, [p.get(f"{metric}_low") for p in parts], highs),
            )
        )
        value_axis(fig, metric)
        return [layout(fig, f"{metric_name(metric)}: {s['where']} (95% interval)")]

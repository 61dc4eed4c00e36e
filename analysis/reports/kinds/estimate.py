"""An estimate timeline: a version's metric per period on a slice, estimated from its scores
before the labels arrive, with the combined and realized figures (the Monitor page's view)."""

from __future__ import annotations

from typing import Any

from analysis.metrics.registry import headline_metrics
from analysis.numbers import format_percent, format_value, metric_name, metric_title
from analysis.reports.kinds.base import BlockKind, Card, Rows, Snapshot, plain
from analysis.reports.tables import Table, count, interval, text, value
from analysis.slices import Slice

KEPT = (
    "period",
    "start",
    "rows",
    "labeled",
    "labeled_share",
    "realized",
    "estimated",
    "low",
    "high",
    "combined",
    "combined_low",
    "combined_high",
    "labels_disagree",
    "notes",
)


class EstimateSnapshot(Snapshot):
    version: str
    stage: str
    where: str = ""
    by: str = "day"
    metric: str
    reference: dict[str, Any] = {}
    rows: Rows


class EstimateBlock(BlockKind):
    name = "estimate"
    title = "Estimated before the labels"
    snapshot_model = EstimateSnapshot

    def pin(self, con, project, view: dict) -> dict:
        from analysis.estimation.reference import resolve_reference, version_stage  # engine: see kinds/__init__

        view = dict(view)
        slice_ = view.get("slice") or Slice()
        slice_ = slice_ if isinstance(slice_, Slice) else Slice.from_dict(slice_)
        stage = version_stage(con, project, view["version"], view.get("stage"))
        # The window as dates: "the most recent 14 fully labeled days" moves as labels arrive.
        window = resolve_reference(con, project, view["version"], stage, view.get("choice"))
        return {
            "version": view["version"],
            "stage": stage,
            "slice": slice_.to_dict(),
            "where": slice_.readable() if slice_.conditions else "",
            "by": view.get("by", "day"),
            "metric": view.get("metric") or headline_metrics(project.task)[0],
            "reference_start": window.start.isoformat(),
            "reference_end": window.end.isoformat(),
        }

    def default_title(self, params: dict) -> str:
        where = params["where"] or "every row"
        return f"{metric_title(params['metric'])} of {params['version']} on {where}, estimated per {params['by']}"

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        from analysis.estimation.reference import ReferenceChoice  # engine: see kinds/__init__
        from analysis.estimation.run import estimate  # engine: see kinds/__init__

        choice = ReferenceChoice.of(params["reference_start"], params["reference_end"])
        timeline = estimate(
            con,
            project,
            params["version"],
            params["stage"],
            Slice.from_dict(params["slice"]),
            params["by"],
            choice,
            [params["metric"]],
        )
        frame = timeline.frame()
        frame["start"] = frame["start"].dt.date.astype(str)
        return {
            "version": params["version"],
            "stage": params["stage"],
            "where": params["where"],
            "by": params["by"],
            "metric": params["metric"],
            "reference": plain(timeline.fit.to_dict()),
            "rows": plain(frame[list(KEPT)].to_dict(orient="records")),
        }

    def numbers(self, snapshot: dict) -> dict[str, object]:
        m = snapshot["metric"]
        out: dict[str, object] = {}
        for r in snapshot["rows"]:
            out[f"{r['period']}: {m} estimated"] = r.get("estimated")
            out[f"{r['period']}: {m} combined"] = r.get("combined")
        return out

    def cards(self, s: dict) -> list[Card]:
        if not s["rows"]:
            return []
        last, m = s["rows"][-1], s["metric"]
        return [
            Card(f"{metric_title(m)}, {last['period']} (estimated)", format_value(m, last.get("estimated"))),
            Card("95% interval", f"{format_value(m, last.get('low'))} to {format_value(m, last.get('high'))}"),
            Card("Labeled so far", format_percent(last.get("labeled_share"), 0)),
        ]

    def lines(self, s: dict) -> list:
        m, ref = s["metric"], s.get("reference", {})
        where = s["where"] or "every row"
        if not s["rows"]:
            return [f"No whole {s['by']} after the reference window has predictions of {s['version']} yet."]
        last = s["rows"][-1]
        lines = [
            f"{metric_title(m)} of {s['version']} ({s['stage']}) on {where} in {last['period']}: estimated "
            f"{format_value(m, last.get('estimated'))} (95% interval {format_value(m, last.get('low'))} to "
            f"{format_value(m, last.get('high'))}) from the model's scores, with "
            f"{format_percent(last.get('labeled_share'), 0)} of its labels in.",
            f"Calibrated on {ref.get('start')} to {ref.get('end')}: {ref.get('calibration_words', '')}.",
        ]
        off = [r["period"] for r in s["rows"] if r.get("labels_disagree")]
        if off:
            lines.append(
                f"In {', '.join(off)} the labels that arrived disagree with the estimate of {metric_name(m)}: the "
                "scores no longer mean what they meant on the reference, so trust the realized figures there."
            )
        return lines

    def tables(self, s: dict) -> list:
        m = s["metric"]
        table = Table(["period", "predictions", "labeled", "realized", "estimated", "95% interval", "combined", "95%"])
        for r in s["rows"]:
            table.rows.append(
                [
                    text(r["period"]),
                    count(r.get("rows")),
                    value("labeled_share", r.get("labeled_share")),
                    value(m, r.get("realized")),
                    value(m, r.get("estimated")),
                    interval(m, r.get("low"), r.get("high")),
                    value(m, r.get("combined")),
                    interval(m, r.get("combined_low"), r.get("combined_high")),
                ]
            )
        return [table]

    def figures(self, s: dict) -> list:
        from analysis.reports.charts import estimate_figure  # plotly: loaded when a chart is drawn

        return [estimate_figure(s["rows"], s["metric"], f"{metric_title(s['metric'])} per {s['by']}", 340)]

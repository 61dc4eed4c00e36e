"""Discovered slices: where the model errs beyond what it should, ranked, with the
test of each."""

from __future__ import annotations

from typing import Any

from analysis.discovery.shown import error_words, format_error
from analysis.numbers import format_p, missing
from analysis.palette import NEUTRAL, WORSE
from analysis.reports.kinds.base import BlockKind, Rows, Snapshot, pinned_scope, records, scope_of
from analysis.reports.tables import Table, count, error_measure, interval, number, p_value, text, value
from analysis.slices import parse_slice

SLICE_COLUMNS = [
    "rank",
    "where",
    "size",
    "errors",
    "error_rate",
    "ci_low",
    "ci_high",
    "rest_error_rate",
    "impact",
    "p_value",
    "q_value",
    "significant",
    "folded_under",
    "expected_rate",
    "excess",
    "z",
]


class DiscoverySnapshot(Snapshot):
    error: str
    n_rows: int
    mean_error: float | None = None
    slices: Rows
    features: list[str] = []
    ranking: str = "error"
    ranking_words: str | None = None
    other_version: str | None = None
    scope: dict[str, Any] = {}


def _within(view: dict) -> str | None:
    """The slice a search was kept within, as text (a block pins what reads back)."""
    slice_ = view.get("slice_")
    if slice_ is not None and slice_.conditions:
        return slice_.readable()
    return view.get("within") or None


class Discovery(BlockKind):
    name = "discovery"
    title = "Discovered slices"
    snapshot_model = DiscoverySnapshot

    def pin(self, con, project, view: dict) -> dict:
        view = dict(view)
        return {
            **pinned_scope(con, project, view),
            "error": str(view.get("error", "misclassification")),
            "top_k": int(view.get("top_k", 10)),
            "max_level": int(view.get("max_level", 3)),
            "alpha": float(view.get("alpha", 0.95)),
            "bins": None if view.get("bins") is None else int(view["bins"]),
            "min_support": view.get("min_support"),
            "rank_by": str(view.get("rank_by", "score")),
            "columns": list(view.get("columns") or []),
            "ranking": str(view.get("ranking", "expected")),
            "other_version": view.get("other_version") or None,
            "within": _within(view),
        }

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        from analysis.discovery.run import discover  # engine: see kinds/__init__

        found = discover(
            con,
            project,
            scope_of(params),
            error=params["error"],
            columns=params["columns"] or None,
            bins=params["bins"],
            alpha=params["alpha"],
            min_support=params["min_support"],
            max_level=params["max_level"],
            top_k=params["top_k"],
            rank_by=params.get("rank_by", "score"),
            # a block saved before the rankings against a baseline keeps its plain-error ranking
            ranking=params.get("ranking", "error"),
            other_version=params.get("other_version"),
            slice_=parse_slice(params.get("within") or ""),
        )
        slices = records(found.slices, SLICE_COLUMNS)
        for row, variants in zip(slices, found.slices["variants"]):
            row["variants"] = [v["where"] for v in variants]
        return {
            "error": found.error,
            "n_rows": found.n_rows,
            "mean_error": found.mean_error,
            "slices": slices,
            "features": found.features,
            "ranking": found.ranking,
            "ranking_words": found.ranking_words,
            "other_version": found.other_version,
            "scope": {k: params[k] for k in ("versions", "stages", "start", "end")},
        }

    def numbers(self, snapshot: dict) -> dict[str, object]:
        out: dict[str, object] = {"ranked by": snapshot.get("ranking_words", "plain error")}
        for r in snapshot["slices"]:
            out[f"#{r['rank']}"] = r["where"]
            out[f"#{r['rank']} error rate"] = r["error_rate"]
            out[f"#{r['rank']} size"] = r["size"]
            if r.get("excess") is not None:
                out[f"#{r['rank']} excess"] = r["excess"]
        return out

    def lines(self, s: dict) -> list:
        kept = [r for r in s["slices"] if r["folded_under"] is None]
        ranking = s.get("ranking", "error")  # a snapshot from before the rankings: plain error
        words = s.get("ranking_words", "plain error")
        if not kept:
            return [f"Ranked by: {words}. No slice stands out."]
        what, error = error_words(s["error"]), s["error"]
        head = (
            f"{len(kept)} slices with the most {what}" if ranking == "error" else f"{len(kept)} slices ranked {words}"
        )
        # A ranked slice is a finding only when its test says so (q-values across every slice tried).
        significant = sum(1 for r in kept if r.get("significant"))
        head += f", {significant or 'none'} of them significant (q < 0.05)" if "significant" in kept[0] else ""
        lines = [
            f"Ranked by: {words}. {head} "
            f"(average {what} {format_error(error, s['mean_error'])} over {s['n_rows']:,} rows):"
        ]
        baseline = "its scores predict" if ranking == "expected" else f"{s.get('other_version')} has"
        for r in kept[:3]:
            versus = (
                f" where {baseline} {format_error(error, r['expected_rate'])}"
                if ranking != "error" and not missing(r.get("expected_rate"))
                else ""
            )
            folded = f"; {len(r['variants'])} near-duplicates folded in" if r.get("variants") else ""
            lines.append(
                f"{r['where']}: {what} {format_error(error, r['error_rate'])}{versus} on {r['size']:,} rows"
                + (f" (q {format_p(r['q_value'])}{folded})" if not missing(r["q_value"]) else "")
                + "."
            )
        return lines

    def tables(self, s: dict) -> list:
        rows = []
        e = error_measure(s["error"])
        for r in s["slices"]:
            rows.append(
                [
                    count(r["rank"]),
                    text(r["where"]),
                    count(r["size"]),
                    value(e, r["error_rate"]),
                    interval(e, r["ci_low"], r["ci_high"]),
                    number(r["impact"]),
                    p_value(r["q_value"]),
                    text(r["folded_under"]),
                ]
            )
        return [
            Table(
                ["#", "slice", "rows", "error", "95% interval", "excess errors", "q-value", "near-duplicate of"], rows
            )
        ]

    def figures(self, s: dict) -> list:
        import plotly.graph_objects as go  # plotly: loaded when a chart is drawn

        from analysis.reports.charts import error_bars, layout, value_axis  # plotly too

        rows = [r for r in s["slices"] if r["folded_under"] is None]
        if not rows:
            return []
        values = [r["error_rate"] for r in rows]
        fig = go.Figure(
            go.Bar(
                y=[r["where"] for r in rows],
                x=values,
                orientation="h",
                marker_color=[WORSE if r["significant"] else NEUTRAL for r in rows],
                error_x=error_bars(values, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows]),
            )
        )
        if not missing(s["mean_error"]):
            fig.add_vline(x=s["mean_error"], line_dash="dash", annotation_text="average")
        fig.update_yaxes(autorange="reversed", automargin=True)
        fig.update_xaxes(title=f"{s['error']} (95% interval)")
        value_axis(fig, error_measure(s["error"]), axis="x")
        title = (
            "Slices with the most errors" if s.get("ranking", "error") == "error" else f"Slices {s['ranking_words']}"
        )
        return [layout(fig, f"{title} (grey: not significant)", 100 + 40 * len(rows))]

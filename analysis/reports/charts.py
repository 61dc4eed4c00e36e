"""Plotly figures of a block's snapshot, shared by the Reports and Present pages and
the exported file (so a chart looks the same everywhere). Built from the snapshot's
aggregates only."""

from __future__ import annotations

import plotly.graph_objects as go

from analysis.numbers import format_delta, format_value, is_share
from analysis.palette import BASELINE as BASE
from analysis.palette import BETTER, NEUTRAL, VERDICT_LEVEL, VERDICT_WORDS, WORSE, verdict_scale
from analysis.palette import CANDIDATE as CAND
from analysis.reports.tables import error_measure
from analysis.reports.words import metric_name, missing, slice_measure


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=50, b=10),
        template="plotly_white",
        font=dict(size=14),
        legend=dict(orientation="h", y=-0.15),
    )
    return fig


def value_axis(fig: go.Figure, metric: str, products=(), axis: str = "y") -> None:
    """An axis of a metric's values from zero, scaled to the largest value or interval end
    (never a fixed 0–1, which would cut off a log loss of 1.07); a share reads in percent."""
    update = fig.update_yaxes if axis == "y" else fig.update_xaxes
    update(rangemode="tozero", autorange=True, tickformat=".0%" if is_share(metric, products) else None)


def _errors(values, lows, highs) -> dict:
    return dict(
        type="data",
        symmetric=False,
        array=[None if missing(h) or missing(v) else h - v for v, h in zip(values, highs)],
        arrayminus=[None if missing(lo) or missing(v) else v - lo for v, lo in zip(values, lows)],
    )


def headline_figures(s: dict) -> list[go.Figure]:
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
            error_y=_errors(values, [r.get(f"{metric}_low") for r in s["rows"]], highs),
        )
    )
    value_axis(fig, metric)
    return [_layout(fig, f"{metric_name(metric)} per version (95% interval)")]


def comparison_figures(s: dict) -> list[go.Figure]:
    figs = []
    rows = [r for r in s["overall"] if not missing(r["delta"])]
    if rows:
        # Relative change of each metric, so ML and product metrics share an axis.
        def rel(x, base):
            return None if missing(x) or missing(base) or not base else 100 * x / abs(base)

        names = [metric_name(r["metric"]) for r in rows]
        deltas = [rel(r["delta"], r["baseline"]) for r in rows]
        # Better or worse only where the interval excludes no change; grey otherwise.
        colors = [
            NEUTRAL
            if missing(r.get("ci_low")) or missing(r.get("ci_high")) or r["ci_low"] <= 0 <= r["ci_high"]
            else BETTER
            if (r["delta"] > 0) == (r["direction"] == "higher")
            else WORSE
            for r in rows
        ]
        fig = go.Figure(
            go.Bar(
                y=names,
                x=deltas,
                orientation="h",
                marker_color=colors,
                hovertext=[format_delta(r["metric"], r["delta"], s.get("product_metrics", [])) for r in rows],
                error_x=_errors(
                    deltas,
                    [rel(r["ci_low"], r["baseline"]) for r in rows],
                    [rel(r["ci_high"], r["baseline"]) for r in rows],
                ),
            )
        )
        fig.update_xaxes(title="change, % of the baseline (95% interval)", zeroline=True)
        fig.update_yaxes(autorange="reversed")
        figs.append(_layout(fig, f"{s['candidate']} vs {s['baseline']} (grey: not significant)", 130 + 40 * len(rows)))
    slices = [r for r in s["slices"] if r["verdict"]]
    if slices:
        rate = slice_measure(s)  # a rate's change in points; a mean absolute error's as it is
        scale = 100 if rate == "error_rate" else 1
        deltas = [scale * r["delta"] for r in slices]
        fig = go.Figure(
            go.Bar(
                y=[r["where"] for r in slices],
                x=deltas,
                orientation="h",
                hovertext=[format_delta(rate, r["delta"]) for r in slices],
                marker_color=[WORSE if r["verdict"] == "regression" else BETTER for r in slices],
                error_x=_errors(
                    deltas,
                    [scale * r["ci_low"] if not missing(r["ci_low"]) else None for r in slices],
                    [scale * r["ci_high"] if not missing(r["ci_high"]) else None for r in slices],
                ),
            )
        )
        unit = "change, points" if rate == "error_rate" else "change"
        fig.update_xaxes(title=f"{metric_name(rate).lower()} {unit} (candidate − baseline)")
        fig.update_yaxes(autorange="reversed", automargin=True)
        figs.append(_layout(fig, "Slices that changed significantly", 100 + 40 * len(slices)))
    return figs


def slice_figures(s: dict) -> list[go.Figure]:
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
            error_y=_errors(values, [p.get(f"{metric}_low") for p in parts], highs),
        )
    )
    value_axis(fig, metric)
    return [_layout(fig, f"{metric_name(metric)}: {s['where']} (95% interval)")]


def discovery_figures(s: dict) -> list[go.Figure]:
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
            error_x=_errors(values, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows]),
        )
    )
    if not missing(s["mean_error"]):
        fig.add_vline(x=s["mean_error"], line_dash="dash", annotation_text="average")
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title=f"{s['error']} (95% interval)")
    value_axis(fig, error_measure(s["error"]), axis="x")
    return [_layout(fig, "Slices with the most errors", 100 + 40 * len(rows))]


def valsets_figures(s: dict) -> list[go.Figure]:
    """Sets × model versions, each cell coloured by its verdict (blue pass, vermillion
    fail, grey not judged) and labelled with the metric's value, the verdict in words and
    how many members were scored."""
    rows = s["rows"]
    if not rows:
        return []
    sets = list(dict.fromkeys(f"{r['set']} v{r['set_version']}" for r in rows))
    versions = list(dict.fromkeys(f"{r['model_version']} ({r['stage']})" for r in rows))
    cell = {(f"{r['set']} v{r['set_version']}", f"{r['model_version']} ({r['stage']})"): r for r in rows}
    metric = s["metric"]
    z, text = [], []
    for a in sets:
        z.append([VERDICT_LEVEL.get((cell.get((a, b)) or {}).get("verdict"), 0) for b in versions])
        text.append([_valset_cell(cell.get((a, b)), metric) for b in versions])
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=versions,
            y=sets,
            text=text,
            texttemplate="%{text}",
            hoverinfo="text",
            colorscale=verdict_scale(),
            zmin=0,
            zmax=max(VERDICT_LEVEL.values()),
            showscale=False,
            xgap=2,
            ygap=2,
        )
    )
    fig.update_yaxes(autorange="reversed")
    return [_layout(fig, f"Validation sets × versions: verdict, and {metric_name(metric)}", 120 + 70 * len(sets))]


def _valset_cell(r: dict | None, metric: str) -> str:
    if not r:
        return ""
    scored = f"{int(r.get('scored') or 0):,}/{int(r.get('members') or 0):,} scored"
    return f"{format_value(metric, r.get(metric))}<br>{VERDICT_WORDS.get(r['verdict'], r['verdict'])}<br>{scored}"


def series_figures(s: dict) -> list[go.Figure]:
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
        figs.append(_layout(fig, f"{metric_name(name)} per day", 300))
    return figs


FIGURES = {
    "headline": headline_figures,
    "comparison": comparison_figures,
    "slice": slice_figures,
    "discovery": discovery_figures,
    "valsets": valsets_figures,
    "series": series_figures,
    "gate": lambda s: [],
    "note": lambda s: [],
}


def figures(kind: str, snapshot: dict) -> list[go.Figure]:
    return FIGURES[kind](snapshot)

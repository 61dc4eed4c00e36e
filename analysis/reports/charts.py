"""What the kinds' plotly figures share (each kind draws its own, from its snapshot's
aggregates only): the layout, the value axis, error bars, so that a chart looks the same
on the Reports and Present pages and in the exported file."""

from __future__ import annotations

import plotly.graph_objects as go

from analysis.numbers import format_value, is_share, missing
from analysis.palette import VERDICT_WORDS


def layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
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


def error_bars(values, lows, highs) -> dict:
    return dict(
        type="data",
        symmetric=False,
        array=[None if missing(h) or missing(v) else h - v for v, h in zip(values, highs)],
        arrayminus=[None if missing(lo) or missing(v) else v - lo for v, lo in zip(values, lows)],
    )


def valset_cell(r: dict | None, metric: str) -> str:
    if not r:
        return ""
    scored = f"{int(r.get('scored') or 0):,}/{int(r.get('members') or 0):,} scored"
    return f"{format_value(metric, r.get(metric))}<br>{VERDICT_WORDS.get(r['verdict'], r['verdict'])}<br>{scored}"

"""What the kinds' plotly figures share (each kind draws its own, from its snapshot's
aggregates only): the layout, the value axis, error bars, so that a chart looks the same
on the Reports and Present pages and in the exported file."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.numbers import format_value, is_share, missing
from analysis.palette import NEUTRAL, SERIES, VERDICT_WORDS


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


def estimate_figure(rows: list[dict], metric: str, title: str, height: int = 380) -> go.Figure:
    """A slice's estimate timeline for one metric: the estimate (no label of the period
    used) as a dashed line in its 95% band, the estimate combined with the labels that
    arrived as a solid line in its band, the realized figure on the labeled rows as
    points, and each period's labeled share as grey bars on a second axis. ``rows``: one
    record per period (``period``, ``start``, ``labeled_share`` and the figures of
    :meth:`analysis.estimation.timeline.EstimateTimeline.frame`). A point's
    ``customdata`` is its period, for a click to open it."""
    x = [_middle(r) for r in rows]  # each period drawn at its middle: its bar covers it
    period = [[r["period"]] for r in rows]
    shown = "%{y:.1%}" if is_share(metric) else "%{y:.3f}"  # hover figures as the page writes them

    def column(name):
        # The combined figure is drawn only where labels arrived: elsewhere it is the estimate,
        # and its solid line would hide the dashed one as if labels were in.
        unlabeled = name.startswith("combined")
        return [
            None if missing(r.get(name)) or (unlabeled and not r.get("labeled_share")) else r.get(name) for r in rows
        ]

    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=x,
            y=column("labeled_share"),
            name="labeled share",
            marker=dict(color=NEUTRAL, opacity=0.18),
            yaxis="y2",
            customdata=period,
            hovertemplate="%{customdata[0]}: %{y:.0%} labeled<extra></extra>",
        )
    )
    for kind, colour, dash in (("", SERIES[1], "dash"), ("combined", SERIES[0], "solid")):
        value = kind or "estimated"
        low, high = (f"{kind}_low", f"{kind}_high") if kind else ("low", "high")
        for i, (xs, ys) in enumerate(_bands(x, column(low), column(high))):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line=dict(width=0),
                    fill="toself",
                    fillcolor=_transparent(colour, 0.18),
                    name=f"{'combined' if kind else 'estimate'}: 95% interval",
                    legendgroup=f"band {value}",
                    showlegend=i == 0,
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=column(value),
                mode="lines+markers",
                line=dict(color=colour, dash=dash),
                marker=dict(size=5),
                name="combined with the labels that arrived" if kind else "estimate from scores alone",
                customdata=period,
                hovertemplate=f"%{{customdata[0]}}: {shown}<extra>{'combined' if kind else 'estimate'}</extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=column("realized"),
            mode="markers",
            marker=dict(color="black", size=7, symbol="circle-open"),
            name="realized (labeled rows)",
            customdata=period,
            hovertemplate="%{customdata[0]}: " + shown + "<extra>realized</extra>",
        )
    )
    layout(fig, title, height)
    fig.update_layout(
        yaxis2=dict(
            overlaying="y",
            side="right",
            range=[0, 1],
            tickvals=[0, 0.25, 0.5, 0.75, 1],
            tickformat=".0%",
            showgrid=False,
            title="labeled",
        ),
        hovermode="closest",
        barmode="overlay",
    )
    fig.update_yaxes(tickformat=_share_format(rows) if is_share(metric) else None, selector=dict(overlaying=None))
    _period_axis(fig, rows)
    return fig


def _middle(row: dict):
    start = pd.Timestamp(row["start"])
    return start + (pd.Timestamp(row["end"]) - start) / 2 if row.get("end") is not None else start


def _bands(x: list, lows: list, highs: list) -> list[tuple[list, list]]:
    """Each run of periods with both ends of the interval as one closed shape (along the
    highs, back along the lows): a fill to the next trace would bridge the periods without
    one with a wedge."""
    runs, current = [], []
    for point, low, high in zip(x, lows, highs):
        if low is None or high is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((point, low, high))
    if current:
        runs.append(current)
    return [
        (
            [p for p, _, _ in run] + [p for p, _, _ in reversed(run)],
            [h for _, _, h in run] + [lo for _, lo, _ in reversed(run)],
        )
        for run in runs
    ]


def _share_format(rows: list[dict]) -> str:
    """Whole percents, or one decimal when the figures span less than ten points (whole
    percents would repeat along the axis: 81%, 81%, 80%)."""
    values = [r.get(k) for r in rows for k in ("low", "high", "combined_low", "combined_high", "realized")]
    values = [v for v in values if not missing(v)]
    narrow = values and max(values) - min(values) < 0.1
    return ".1%" if narrow else ".0%"


def _period_axis(fig: go.Figure, rows: list[dict]) -> None:
    """Bars a period wide; one period alone gets room around it (plotly would zoom to a
    millisecond around a single date)."""
    spans = [pd.Timestamp(r["end"]) - pd.Timestamp(r["start"]) for r in rows if r.get("end") is not None]
    if not spans:
        return
    width = min(spans).total_seconds() * 1000 * 0.8
    fig.update_traces(width=width, selector=dict(type="bar"))
    if len(rows) == 1:
        middle = _middle(rows[0])
        fig.update_xaxes(range=[middle - spans[0] * 0.6, middle + spans[0] * 0.6])


def _transparent(colour: str, alpha: float) -> str:
    """``#RRGGBB`` as ``rgba(r, g, b, alpha)``."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"

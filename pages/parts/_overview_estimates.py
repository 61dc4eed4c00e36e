"""The Overview's label-free estimates: on a version's card, the latest week estimated from
the model's scores while its labels are still arriving; on the daily chart, the estimate
and its band beside the realized line. Both marked as estimates, both from the engine the
Monitor page shows in full.

The Overview is a fresh server's first page, which must not wait for scipy and
scikit-learn (see tests/test_first_page_imports.py): the estimation engine is imported
where an estimate is drawn, and only once the warm-up has brought those libraries in; the
very first view says where the estimate is instead."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from analysis import SliceboardError
from analysis.metrics.registry import metrics_for
from analysis.numbers import format_percent, format_value, metric_title
from pages.parts import _ui, _warm_up

# The card shows the estimate while the latest week has fewer labels than this share.
FEW_LABELS = 0.9


def _timeline(project_name: str, version: str, stage: str, by: str):
    from analysis.estimation.run import estimate  # scipy, scikit-learn: not on a fresh server's first view

    try:
        return _ui.query(estimate, project_name, version=version, stage=stage, by=by)
    except SliceboardError as exc:
        return str(exc)


def _estimable(project, metric: str) -> bool:
    from analysis.estimation.timeline import estimable_metrics  # as above

    return metric in metrics_for(project.task) and metric in estimable_metrics(project)


def card(project_name: str, project, version: str, stage: str, metric: str) -> None:
    """The latest week's estimate of ``metric`` on a version's card, while labels are few."""
    if not _warm_up.done():
        st.caption("The latest week estimated from the scores: on the Monitor page.")
        return
    if not _estimable(project, metric):
        return
    timeline = _timeline(project_name, version, stage, "week")
    if isinstance(timeline, str) or not timeline.periods:  # the engine's reason, whatever it is
        reason = timeline if isinstance(timeline, str) else "no whole week after the reference window yet."
        st.caption(_ui.plain(f"No estimate yet (see Monitor). {reason}"))
        return
    last = timeline.periods[-1]
    share = last.labeled / last.rows if last.rows else 0.0
    if share >= FEW_LABELS:
        return
    figures = last.metrics[metric]
    st.metric(
        f"{metric_title(metric)}, {last.period.label} · estimated",
        format_value(metric, figures.estimated),
        help="Estimated from the model's scores, calibrated on a labeled reference window: "
        "no label of this week is used. The Monitor page shows every week and slice.",
    )
    st.caption(
        f"95%: {format_value(metric, figures.low)} to {format_value(metric, figures.high)} · "
        f"{format_percent(share, 0)} labeled so far"
    )


def line_chart(daily, y: str, title: str, share: bool, key: str, estimates: list | None = None) -> None:
    """A daily line per version and stage; with ``estimates`` (``(series, timeline)``), each
    series' daily estimate as a dashed line in its band after its reference window."""
    fig = px.line(
        daily, x="day", y=y, color="series", title=title, markers=False, labels={"day": "", y: "", "series": ""}
    )
    for series, timeline in estimates or []:
        _add_estimate(fig, series, timeline, y)
    fig.update_layout(legend=dict(orientation="h", y=-0.2), margin=dict(t=40, l=10, r=10, b=10), height=340)
    if share:  # a share of rows: 0 to 100%, never more, whatever the line does
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    else:  # anything else on its own scale, from zero for counts
        fig.update_yaxes(rangemode="tozero" if y == "n_rows" else "normal")
    st.plotly_chart(fig, key=key)


def daily_estimates(project_name: str, project, pairs, metric: str) -> list:
    """``(series, timeline)`` of each version and stage that has an estimate of ``metric``."""
    if not _warm_up.done() or not _estimable(project, metric):
        return []
    out = []
    for version, stage, series in pairs:
        timeline = _timeline(project_name, version, stage, "day")
        if not isinstance(timeline, str) and timeline.periods:
            out.append((series, timeline))
    return out


def _add_estimate(fig: go.Figure, series: str, timeline, metric: str) -> None:
    colour = next((t.line.color for t in fig.data if t.name == series), None)
    x = [p.period.start for p in timeline.periods]
    figures = [p.metrics[metric] for p in timeline.periods]
    fig.add_trace(
        go.Scatter(
            x=x, y=[f.high for f in figures], mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[f.low for f in figures],
            mode="lines",
            line=dict(width=0),
            fill="tonexty",
            fillcolor="rgba(128, 128, 128, 0.15)",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[f.estimated for f in figures],
            mode="lines",
            line=dict(color=colour, dash="dot"),
            name=f"{series} (estimated from scores)",
        )
    )

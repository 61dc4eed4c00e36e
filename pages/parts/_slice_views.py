"""The Slices page's views of one slice: metrics with intervals, a breakdown by
one column, and the leaderboard of every feature's values. Every figure is shown
through analysis.numbers (readable names, values by meaning, p-values by format_p)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.numbers import (
    MISSING,
    PROPORTIONS,
    format_count,
    format_delta,
    format_p,
    format_value,
    metric_title,
    missing,
)
from analysis.slices import slice_columns
from analysis.slices.breakdown import SORTS, breakdown, leaderboard
from analysis.slices.grouping import GROUPABLE
from pages.parts import _ui

PART_COLORS = (("slice", "#e45756"), ("rest", "#4c78a8"), ("overall", "#9d9d9d"))
# The card beside the error: the first of these the task has (never the error again).
SECOND_CARD = ("roc_auc", "macro_f1", "r2", "rmse", "accuracy", "log_loss")
HEADERS = {
    "value": "Value",
    "column": "Column",
    "n_rows": "Rows",
    "n_labeled": "Labeled rows",
    "n_scored": "Scored rows",
    "errors": "Errors",
    "lift": "Lift",
    "impact": "Impact (excess errors)",
    "unreliable": "Under 30 labeled",
    "error_rate_low": "Error rate, 95% low",
    "error_rate_high": "Error rate, 95% high",
    "share": "Share of the scope",
    "part": "Part",
    "tp": "True positives",
    "fp": "False positives",
    "fn": "False negatives",
    "tn": "True negatives",
    "n_pos": "Positive labels",
    "n_neg": "Negative labels",
    "n_correct": "Correct",
    "n_wrong": "Wrong",
    "model_version": "Model version",
    "stage": "Stage",
    "day": "Day",
}


def header(name: str) -> str:
    """A column's header: words, not the engine's name (``error_rate_low`` → ``Error rate, 95% low``)."""
    if name in HEADERS:
        return HEADERS[name]
    for suffix, words in (
        ("_low", ", 95% low"),
        ("_high", ", 95% high"),
        ("_mean", " (mean)"),
        ("_sum", " (sum)"),
        ("_count", " (rows with a value)"),
        ("_sd", " (SD)"),
    ):
        if name.endswith(suffix):
            return metric_title(name[: -len(suffix)]) + words
    return metric_title(name)


def number_columns(frame: pd.DataFrame, regression: bool = False) -> dict:
    """Readable headers and formats for a table of the engine's figures (the values stay
    numbers, so the table sorts by them); missing values show as the placeholder. In a
    regression the "error rate" of a group is its mean absolute error."""
    config = {}
    for name in frame.columns:
        base = name.removesuffix("_low").removesuffix("_high")
        if regression and base == "error_rate":
            config[name] = st.column_config.NumberColumn(header(name.replace("error_rate", "mae")), format="%.3f")
        elif regression and name in ("errors", "impact"):  # sums of absolute errors, in the label's unit
            words = {"errors": "Absolute error (sum)", "impact": "Impact (excess absolute error)"}[name]
            config[name] = st.column_config.NumberColumn(words, format="%.1f")
        elif name == "impact":
            config[name] = st.column_config.NumberColumn(header(name), format="%.1f")
        elif not pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name]):
            config[name] = st.column_config.Column(header(name))
        elif base in PROPORTIONS:
            config[name] = st.column_config.NumberColumn(header(name), format="percent")
        elif (
            name.startswith("n_")
            or name in ("errors", "tp", "fp", "fn", "tn", "n_pos", "n_neg")
            or name.endswith("_count")
        ):
            config[name] = st.column_config.NumberColumn(header(name), format="localized")
        elif name in ("lift",):
            config[name] = st.column_config.NumberColumn(header(name), format="%.2f")
        else:
            config[name] = st.column_config.NumberColumn(header(name), format="localized")
    return config


def table(frame: pd.DataFrame, key: str, regression: bool = False, **kwargs):
    """``st.dataframe`` of engine figures with readable headers; no "None" for a missing value."""
    return st.dataframe(
        frame, hide_index=True, key=key, column_config=number_columns(frame, regression), placeholder=MISSING, **kwargs
    )


def card_metrics(metrics: list[str]) -> tuple[str, str]:
    """The two metric cards: the error (or the task's first metric), and a second, distinct one."""
    shown = [m for m in metrics if m not in ("share", "labeled_share")]
    headline = next((m for m in ("error_rate", "mae") if m in shown), shown[0])
    second = next(
        (m for m in SECOND_CARD if m in shown and m != headline), next((m for m in shown if m != headline), headline)
    )
    return headline, second


def interval_text(row, name: str) -> str:
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    if missing(low) or missing(high):
        return ""
    return f"95% CI {format_value(name, low)}–{format_value(name, high)}"


def metrics_view(result) -> None:
    frame = result.table.set_index("part")
    s, r = frame.loc["slice"], frame.loc["rest"]
    cols = st.columns(4)
    # Cards show figures, not changes: no arrows, no colour.
    plain = dict(delta_color="off", delta_arrow="off")
    cols[0].metric(
        "Rows in the slice", format_count(s.n_rows), f"{format_value('share', s.share)} of the scope", **plain
    )
    cols[1].metric(
        "Labeled", format_count(s.n_labeled), f"{format_value('labeled_share', s.labeled_share)} of its rows", **plain
    )
    for col, name in zip(cols[2:], card_metrics(result.metrics)):
        note = " · ".join(t for t in (interval_text(s, name), f"rest {format_value(name, r[name])}") if t)
        col.metric(metric_title(name), format_value(name, s[name]), note, **plain)
    shown = [m for m in result.metrics if m in frame and f"{m}_low" in frame]
    shares = [m for m in shown if m in PROPORTIONS]
    others = [m for m in shown if m not in PROPORTIONS]
    charts = [
        (names, title)
        for names, title in (
            (shares, "Shares of rows, with 95% intervals"),
            (others, "Other metrics, with 95% intervals"),
        )
        if names
    ]
    for column, (names, title) in zip(st.columns(len(charts)) if charts else [], charts):
        with column:
            metrics_chart(frame, names, title, share=names is shares)
    st.markdown("##### Slice vs rest")
    st.dataframe(comparison_table(result.comparison), hide_index=True, key="sl_comparison", placeholder=MISSING)
    with st.expander("Every figure, with intervals"):
        st.dataframe(every_figure(result.table), hide_index=True, key="sl_table", placeholder=MISSING)


def metrics_chart(frame: pd.DataFrame, names: list[str], title: str, share: bool) -> None:
    """Grouped bars of slice, rest and overall. Shares on a 0–100% axis; the other metrics
    (a log loss of 1.07, an error in the label's unit) on an axis that fits them."""
    fig = go.Figure()
    x = [metric_title(m) for m in names]
    for part, color in PART_COLORS:
        row = frame.loc[part]
        values = [row[m] for m in names]
        fig.add_bar(
            name=part,
            x=x,
            y=values,
            marker_color=color,
            customdata=[format_value(m, row[m]) for m in names],
            hovertemplate="%{x}: %{customdata}<extra>" + part + "</extra>",
            error_y=dict(
                type="data",
                symmetric=False,
                array=[row[f"{m}_high"] - row[m] for m in names],
                arrayminus=[row[m] - row[f"{m}_low"] for m in names],
            ),
        )
    layout = dict(barmode="group", height=340, margin=dict(t=40, l=10, r=10, b=10), title=title)
    if share:
        layout["yaxis"] = dict(range=[0, 1], tickformat=".0%")
    else:
        layout["yaxis"] = dict(rangemode="tozero")
    fig.update_layout(**layout)
    st.plotly_chart(fig, key=f"sl_bars_{'shares' if share else 'others'}")


def comparison_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Slice vs rest for reading: names in words, values by meaning, p-values by format_p."""
    return pd.DataFrame(
        {
            "Metric": [metric_title(m) for m in comparison["metric"]],
            "Slice": [format_value(m, v) for m, v in zip(comparison["metric"], comparison["slice"])],
            "Rest": [format_value(m, v) for m, v in zip(comparison["metric"], comparison["rest"])],
            "Difference": [format_delta(m, v) for m, v in zip(comparison["metric"], comparison["difference"])],
            "p-value": [format_p(p) for p in comparison["p_value"]],
            "Test": [t if isinstance(t, str) and t else MISSING for t in comparison["test"]],
        }
    )


def every_figure(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per figure (slice, rest, overall side by side), each formatted by what it is."""
    parts = list(frame["part"])
    rows = []
    for name in frame.columns:
        if name == "part":
            continue
        base = name.removesuffix("_low").removesuffix("_high")
        values = list(frame[name])
        if name.startswith("n_") or name.endswith("_n") or name.endswith("_count") or name in ("tp", "fp", "fn", "tn"):
            shown = [format_count(v) for v in values]
        elif name.endswith("_sd"):
            shown = [format_value(name.removesuffix("_sd"), v) for v in values]
        else:
            shown = [format_value(base, v) for v in values]
        rows.append(
            {
                "Figure": header(name.removesuffix("_n") if name.endswith("_n") else name)
                + (" (rows)" if name.endswith("_n") else ""),
                **dict(zip(parts, shown)),
            }
        )
    return pd.DataFrame(rows).rename(columns=str.capitalize)


def _error_chart(frame, title: str, key: str, share: bool) -> None:
    fig = go.Figure(
        go.Bar(
            x=[_ui.chart_text(v) for v in frame["value"]],
            y=frame["error_rate"],
            marker_color=["#bbbbbb" if u else "#e45756" for u in frame["unreliable"]],
            error_y=dict(
                type="data",
                symmetric=False,
                array=frame["error_rate_high"] - frame["error_rate"],
                arrayminus=frame["error_rate"] - frame["error_rate_low"],
            )
            if "error_rate_low" in frame
            else None,
            customdata=frame[["n_rows", "n_labeled"]],
            hovertemplate="%{x}: %{y" + (":.1%" if share else ":,.3f") + "}<br>rows %{customdata[0]:,}"
            "<br>labeled %{customdata[1]:,}<extra></extra>",
        )
    )
    overall = frame.attrs.get("overall_error_rate")
    if not missing(overall):
        fig.add_hline(y=overall, line_dash="dot", annotation_text="overall")
    fig.update_layout(
        title=title,
        height=320,
        margin=dict(t=40, l=10, r=10, b=10),
        yaxis=dict(tickformat=".0%" if share else ",", rangemode="tozero"),
    )
    st.plotly_chart(fig, key=key)


def breakdown_view(project_name: str, project, scope, current) -> None:
    kinds = slice_columns(project)
    choices = [c.name for c in project.features if c.kind in GROUPABLE] + ["model_version", "stage"]
    a, b = st.columns([3, 1])
    column = a.selectbox("Break down by", choices, key="sl_by", persist_state="page")
    bins = b.number_input(
        "Bins (numbers)",
        2,
        50,
        10,
        key="sl_bins",
        persist_state="page",
        disabled=kinds.get(column) not in ("numeric", "timestamp"),
    )
    frame = _ui.query(breakdown, project_name, column=column, scope=scope, slice_=current, bins=int(bins))
    for note in frame.attrs.get("notes", []):  # too many groups: the largest shown, the rest in the last bar
        st.caption(f"Only the largest groups are shown: {_ui.plain(note)}.")
    share = project.task != "regression"  # regression: the error is the mean absolute error
    error = metric_title("error_rate" if share else "mae")
    _error_chart(
        frame, _ui.chart_text(f"{error} by {column} (grey: under 30 labeled rows)"), "sl_breakdown_chart", share
    )
    table(frame, "sl_breakdown", regression=not share)


def leaderboard_view(project_name: str, project, scope, current) -> None:
    a, b = st.columns([3, 1])
    regression = project.task == "regression"
    words = {
        "impact": "impact (excess absolute error)" if regression else "impact (excess errors)",
        "error_rate": "mean absolute error" if regression else "error rate",
        "lift": "lift",
        "size": "size",
    }
    sort_by = a.radio("Rank by", SORTS, horizontal=True, key="sl_sort", persist_state="page", format_func=words.get)
    limit = b.number_input("Show", 5, 500, 25, key="sl_limit", persist_state="page")
    frame = _ui.query(leaderboard, project_name, scope=scope, slice_=current, sort_by=sort_by)
    for note in frame.attrs.get("notes", []):  # id-like features left out
        st.text(f"Note: {note}")
    st.caption(
        "Every value of every feature (numbers in 5 quantile bins) within the slice. Groups with "
        "fewer than 30 labeled rows are marked unreliable and listed after the others."
    )
    table(frame.head(int(limit)), "sl_leaderboard", regression=project.task == "regression")

"""The Slices page's views of one slice: metrics with intervals, a breakdown by
one column, and the leaderboard of every feature's values."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from analysis.breakdown import GROUPABLE, SORTS, breakdown, group_condition, grouping, leaderboard
from analysis.buckets import bucket_counts, buckets_for, examples
from analysis import SliceboardError
from analysis.slices import slice_columns
from pages import _ui

PART_COLORS = (("slice", "#e45756"), ("rest", "#4c78a8"), ("overall", "#9d9d9d"))


def _interval(row, name: str) -> str:
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    return "" if low is None or low != low else f"95% CI {low:.3f}–{high:.3f} · "


def metrics_view(result) -> None:
    table = result.table.set_index("part")
    s, r = table.loc["slice"], table.loc["rest"]
    cols = st.columns(4)
    cols[0].metric("Rows in the slice", _ui.fmt_int(s.n_rows), f"{_ui.fmt_pct(s.share)} of the scope",
                   delta_color="off")
    cols[1].metric("Labeled", _ui.fmt_int(s.n_labeled), _ui.fmt_pct(s.labeled_share), delta_color="off")
    headline = "error_rate" if "error_rate" in result.metrics else result.metrics[2]
    second = "roc_auc" if "roc_auc" in table else result.metrics[3]
    for col, name in zip(cols[2:], [headline, second]):
        col.metric(name.replace("_", " ").capitalize(), _ui.fmt_num(s[name]),
                   f"{_interval(s, name)}rest {_ui.fmt_num(r[name])}", delta_color="off")
    shown = [m for m in result.metrics if m in table and f"{m}_low" in table]
    if shown:
        fig = go.Figure()
        for part, color in PART_COLORS:
            row = table.loc[part]
            fig.add_bar(name=part, x=shown, y=[row[m] for m in shown], marker_color=color,
                        error_y=dict(type="data", symmetric=False,
                                     array=[row[f"{m}_high"] - row[m] for m in shown],
                                     arrayminus=[row[m] - row[f"{m}_low"] for m in shown]))
        fig.update_layout(barmode="group", height=340, margin=dict(t=30, l=10, r=10, b=10),
                          title="With 95% intervals", yaxis_range=[0, 1])
        st.plotly_chart(fig, key="sl_bars")
    st.markdown("##### Slice vs rest")
    st.dataframe(result.comparison, hide_index=True, key="sl_comparison", column_config={
        "p_value": st.column_config.NumberColumn("p-value", format="%.2e"),
        "difference": st.column_config.NumberColumn("Difference", format="%.4f"),
    })
    with st.expander("Every figure, with intervals"):
        st.dataframe(result.table, hide_index=True, key="sl_table")


def _error_chart(frame, title: str, key: str) -> None:
    fig = go.Figure(go.Bar(
        x=[_ui.chart_text(v) for v in frame["value"]], y=frame["error_rate"],
        marker_color=["#bbbbbb" if u else "#e45756" for u in frame["unreliable"]],
        error_y=dict(type="data", symmetric=False, array=frame["error_rate_high"] - frame["error_rate"],
                     arrayminus=frame["error_rate"] - frame["error_rate_low"])
        if "error_rate_low" in frame else None,
        customdata=frame[["n_rows", "n_labeled"]], hovertemplate="%{x}: %{y:.3f}<br>rows %{customdata[0]:,}"
        "<br>labeled %{customdata[1]:,}<extra></extra>"))
    overall = frame.attrs.get("overall_error_rate")
    if overall == overall and overall is not None:
        fig.add_hline(y=overall, line_dash="dot", annotation_text="overall")
    fig.update_layout(title=title, height=320, margin=dict(t=40, l=10, r=10, b=10))
    st.plotly_chart(fig, key=key)


def breakdown_view(project_name: str, project, scope, current) -> None:
    kinds = slice_columns(project)
    choices = [c.name for c in project.features if c.kind in GROUPABLE] + ["model_version", "stage"]
    a, b = st.columns([3, 1])
    column = a.selectbox("Break down by", choices, key="sl_by")
    bins = b.number_input("Bins (numbers)", 2, 50, 10, key="sl_bins",
                          disabled=kinds.get(column) not in ("numeric", "timestamp"))
    frame = _ui.query(breakdown, project_name, column=column, scope=scope, slice_=current, bins=int(bins))
    for note in frame.attrs.get("notes", []):  # too many groups: the largest shown, the rest in the last bar
        st.caption(f"Only the largest groups are shown: {_ui.plain(note)}.")
    _error_chart(frame, _ui.chart_text(f"Error rate by {column} (grey: under 30 labeled rows)"), "sl_breakdown_chart")
    st.dataframe(frame, hide_index=True, key="sl_breakdown")


def leaderboard_view(project_name: str, scope, current) -> None:
    a, b = st.columns([3, 1])
    sort_by = a.radio("Rank by", SORTS, horizontal=True, key="sl_sort",
                      format_func=lambda s: {"impact": "impact (excess errors)", "error_rate": "error rate",
                                             "lift": "lift", "size": "size"}[s])
    limit = b.number_input("Show", 5, 500, 25, key="sl_limit")
    frame = _ui.query(leaderboard, project_name, scope=scope, slice_=current, sort_by=sort_by)
    for note in frame.attrs.get("notes", []):  # id-like features left out
        st.text(f"Note: {note}")
    st.caption("Every value of every feature (numbers in 5 quantile bins) within the slice. Groups with "
               "fewer than 30 labeled rows are marked unreliable and listed after the others.")
    st.dataframe(frame.head(int(limit)), hide_index=True, key="sl_leaderboard", column_config={
        "error_rate": st.column_config.NumberColumn("Error rate", format="%.3f"),
        "impact": st.column_config.NumberColumn("Impact (excess errors)", format="%.1f"),
        "lift": st.column_config.NumberColumn("Lift", format="%.2f"),
        "share": st.column_config.NumberColumn("Share", format="percent"),
    })


def errors_view(project_name: str, project, scope, current) -> None:
    """Bucket x group counts as a heatmap and stacked bars; a bar drills into its examples."""
    a, b = st.columns([3, 1])
    choices = [c.name for c in project.features if c.kind in GROUPABLE] + ["model_version", "stage"]
    column = a.selectbox("Buckets by", choices, key="sl_err_by")
    confidence = b.slider("Confident mistake at", 0.5, 1.0, 0.9, 0.01, key="sl_conf",
                          disabled=project.task != "binary")
    counts = _ui.query(bucket_counts, project_name, column=column, scope=scope, slice_=current,
                       confidence=float(confidence))
    grid = counts.pivot(index="bucket", columns="value", values="n").reindex(
        index=list(buckets_for(project.task)), columns=list(dict.fromkeys(counts["value"])))
    heat = go.Figure(go.Heatmap(z=grid.to_numpy(), x=[_ui.chart_text(v) for v in grid.columns], y=list(grid.index),
                                colorscale="Reds", hovertemplate="%{y} · %{x}: %{z:,}<extra></extra>"))
    heat.update_layout(height=320, margin=dict(t=30, l=10, r=10, b=10),
                       title=_ui.chart_text(f"Rows by bucket and {column}"))
    st.plotly_chart(heat, key="sl_heat")
    bars = go.Figure()
    for bucket in grid.index:
        bars.add_bar(name=bucket, x=list(grid.columns), y=list(grid.loc[bucket]))
    # A click is a point selection when dragmode and clickmode are left to Streamlit ("select" would
    # disable it). The values stay the bars' x (a click names the value); tick labels are shown literally.
    bars.update_layout(barmode="stack", height=320, margin=dict(t=30, l=10, r=10, b=10),
                       title="Click a bar segment to see its examples",
                       xaxis=dict(tickmode="array", tickvals=list(grid.columns),
                                  ticktext=[_ui.chart_text(v) for v in grid.columns]))
    event = st.plotly_chart(bars, key="sl_err_bars", on_select="rerun", selection_mode=("points",))
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    lumped = (counts.attrs.get("other") or {}).get("value")  # the bar of all the smaller groups: no drill
    points = [p for p in points if str(p.get("x")) != lumped]
    if points:
        point = points[0]
        bucket = grid.index[point["curve_number"]]
        drill(project, scope, current, column, str(point["x"]), bucket)
    # The same drill without the chart, for keyboards and exact picks.
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    pick_bucket = c1.selectbox("Drill into the bucket", list(grid.index), key="sl_cell_bucket")
    pick_value = c2.selectbox(f"where {_ui.plain(column)} is", [str(v) for v in grid.columns if v != lumped],
                              key=f"sl_cell_value_{column}")
    if c3.button("Show examples", key="sl_cell_go") and pick_value is not None:
        drill(project, scope, current, column, pick_value, pick_bucket)


def drill(project, scope, current, column: str, value: str, bucket: str) -> None:
    """Keep the drill target for the Examples tab."""
    st.session_state["sl_drill"] = {"column": column, "value": value, "bucket": bucket}
    st.info(f"Showing **{_ui.plain(bucket)}** rows where **{_ui.plain(column)}** is **{_ui.plain(value)}** in the "
            "Examples tab.")


def examples_view(project_name: str, project, scope, current) -> None:
    """A paged, sortable table of the slice's rows; selected rows stay selected across pages."""
    drill_target = st.session_state.get("sl_drill")
    slice_ = current
    bucket = None
    if drill_target:
        try:
            g = _ui.query(grouping, project_name, column=drill_target["column"], scope=scope, slice_=current,
                          bins=5)
            slice_ = current.and_(group_condition(g, drill_target["value"]))
        except SliceboardError:  # another project, scope or slice: the drill no longer names a group here
            st.session_state.pop("sl_drill", None)
            st.caption("The drill-down picked earlier names no group of these rows any more: cleared.")
            drill_target = None
    if drill_target:
        bucket = drill_target["bucket"]
        left, right = st.columns([4, 1])
        left.caption(f"Drilled into: {_ui.plain(bucket)} · {_ui.plain(slice_.readable())}")
        if right.button("Clear", key="sl_drill_clear"):
            st.session_state.pop("sl_drill", None)
            st.rerun()
    a, b, c, d = st.columns(4)
    options = ["all", *buckets_for(project.task)]
    picked = a.selectbox("Bucket", options, index=options.index(bucket) if bucket in options else 0,
                         key=f"sl_ex_bucket_{bucket}")
    sort_by = b.selectbox("Sort by", ["timestamp", "score", "bucket", *[f.name for f in project.features]],
                          key="sl_ex_sort")
    descending = c.toggle("Descending", True, key="sl_ex_desc")
    near = d.toggle("Near the threshold only (±0.05)", False, key="sl_ex_near",
                    disabled=project.task != "binary")
    page_no = int(st.session_state.get("sl_ex_page", 1))
    query = dict(scope=scope, slice_=slice_, bucket=None if picked == "all" else picked, sort_by=sort_by,
                 descending=descending, near_threshold=0.05 if near else None, page_size=50)
    result = _ui.query(examples, project_name, page=page_no, **query)
    if page_no > result.pages:  # the filters shrank the table: back to its first page
        page_no = 1
        result = _ui.query(examples, project_name, page=1, **query)
    st.session_state["sl_ex_page"] = page_no
    st.number_input(f"Page (of {result.pages:,}; {result.total:,} rows)", 1, result.pages, key="sl_ex_page")
    # One table widget per query and page, so a selection never points at other rows;
    # the selection itself is kept by prediction id across pages and filters.
    key = f"sl_examples_{abs(hash((repr(query), page_no)))}"
    fresh = key not in st.session_state
    event = st.dataframe(result.rows, hide_index=True, key=key, on_select="rerun", selection_mode="multi-row")
    shown = list(result.rows["prediction_id"])
    picked_rows = {shown[i] for i in event.selection.rows} if event else set()
    selected: set = st.session_state.setdefault("sl_selected", set())
    last = set() if fresh else st.session_state.get(key + "_last", set())
    selected |= picked_rows - last
    selected -= last - picked_rows
    st.session_state[key + "_last"] = picked_rows
    st.caption(f"{len(selected):,} rows selected (kept across pages and filters, ready to promote to a "
               "validation set).")

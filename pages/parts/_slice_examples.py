"""The Slices page's Errors and Examples views: error buckets by a column (a bar
segment drills into its rows) and the slice's rows, paged, with a row selection that
stays ticked across pages and belongs to the slice and scope it was made in."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from analysis import SliceboardError
from analysis.ingest.mapping import parse_mapping
from analysis.numbers import MISSING, format_count
from analysis.palette import BETTER, NOT_SCORED
from analysis.slices.buckets import bucket_counts, buckets_for, examples
from analysis.slices.grouping import GROUPABLE, group_condition, grouping
from pages.parts import _ui

# Each bucket's colour says what it is (Okabe and Ito's colour-blind-safe hues): right answers
# in blues, wrong ones in vermillion and orange (confident mistakes and large residuals the
# darker), rows without a label in grey.
SKY, ORANGE, VERMILLION, REDDISH = "#56B4E9", "#E69F00", "#D55E00", "#CC79A7"
BUCKET_COLOURS = {
    "TP": BETTER,
    "TN": SKY,
    "correct": BETTER,
    "within 1 MAE": BETTER,
    "FP confident": VERMILLION,
    "FP": ORANGE,
    "FN confident": REDDISH,
    "FN": "#F0E442",
    "wrong": VERMILLION,
    "under > 2 MAE": VERMILLION,
    "under 1-2 MAE": ORANGE,
    "over 1-2 MAE": "#F0E442",
    "over > 2 MAE": REDDISH,
    "unlabeled": NOT_SCORED,
}


# The log's own columns in the Examples table: a header in words, the user's column as help.
ROLES = {
    "prediction_id": ("id", "Prediction id"),
    "example_id": ("example", "Example id"),
    "timestamp": ("timestamp", "Scored at"),
    "model_version": ("version", "Model version"),
    "stage": ("stage", "Stage"),
    "prediction": ("prediction", "Prediction"),
    "score": ("score", "Score"),
    "label": ("label", "Label"),
    "label_timestamp": ("label_timestamp", "Labeled at"),
}


def example_columns(project) -> dict:
    """Column settings of the Examples table: readable headers naming the user's columns;
    roles the project does not map (no scores, no example id) hidden."""
    try:
        mapped = parse_mapping(project.mapping_toml, origin=f"project {project.name}").role_columns()
    except SliceboardError:  # a mapping this version cannot read: headers without the user's names
        mapped = {}
    config: dict = {"bucket": st.column_config.Column("Bucket")}
    for name, (role, words) in ROLES.items():
        if mapped and role in ("example", "score") and role not in mapped:
            config[name] = None  # a column of dashes
        else:
            config[name] = st.column_config.Column(
                words, help=f"Your column {mapped[role]}" if role in mapped else None
            )
    if config.get("score") is not None:
        config["score"] = st.column_config.NumberColumn("Score", help=config["score"]["help"], format="%.3f")
    return config


def in_words(rows, project):
    """A binary project's prediction and label as its class names (a ticked box names no class)."""
    if project.task != "binary" or not project.positive_label:
        return rows
    names = {True: project.positive_label, False: project.negative_label or f"not {project.positive_label}"}
    return rows.assign(**{c: rows[c].map(names) for c in ("prediction", "label") if c in rows})


def show_view(name: str) -> None:
    """Switch the page's view on the next run (the switcher is drawn already)."""
    st.session_state["sl_view_pending"] = name
    st.rerun()


def errors_view(project_name: str, project, scope, current) -> None:
    """Bucket x group counts as a heatmap and stacked bars; a bar drills into its examples."""
    a, b = st.columns([3, 1])
    choices = [c.name for c in project.features if c.kind in GROUPABLE] + ["model_version", "stage"]
    column = a.selectbox("Buckets by", choices, key="sl_err_by", persist_state="page")
    confidence = b.slider(
        "Confident mistake at",
        0.5,
        1.0,
        0.9,
        0.01,
        key="sl_conf",
        persist_state="page",
        disabled=project.task != "binary",
    )
    counts = _ui.query(
        bucket_counts, project_name, column=column, scope=scope, slice_=current, confidence=float(confidence)
    )
    grid = counts.pivot(index="bucket", columns="value", values="n").reindex(
        index=list(buckets_for(project.task)), columns=list(dict.fromkeys(counts["value"]))
    )
    heat = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[_ui.chart_text(v) for v in grid.columns],
            y=list(grid.index),
            colorscale="Blues",
            hovertemplate="%{y} · %{x}: %{z:,}<extra></extra>",
        )
    )
    heat.update_layout(
        height=320, margin=dict(t=30, l=10, r=10, b=10), title=_ui.chart_text(f"Rows by bucket and {column}")
    )
    st.plotly_chart(heat, key="sl_heat")
    bars = go.Figure()
    for bucket in grid.index:
        bars.add_bar(
            name=bucket,
            x=list(grid.columns),
            y=list(grid.loc[bucket]),
            marker_color=BUCKET_COLOURS.get(bucket, NOT_SCORED),
        )
    # A click is a point selection when dragmode and clickmode are left to Streamlit ("select" would
    # disable it). The values stay the bars' x (a click names the value); tick labels are shown literally.
    bars.update_layout(
        barmode="stack",
        height=320,
        margin=dict(t=30, l=10, r=10, b=10),
        title="Click a bar segment to see its examples",
        xaxis=dict(tickmode="array", tickvals=list(grid.columns), ticktext=[_ui.chart_text(v) for v in grid.columns]),
    )
    event = st.plotly_chart(bars, key="sl_err_bars", on_select="rerun", selection_mode=("points",))
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    lumped = (counts.attrs.get("other") or {}).get("value")  # the bar of all the smaller groups: no drill
    points = [p for p in points if str(p.get("x")) != lumped]
    if points:
        point = points[0]
        drill(column, str(point["x"]), grid.index[point["curve_number"]])
    # The same drill without the chart, for keyboards and exact picks.
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    pick_bucket = c1.selectbox("Drill into the bucket", list(grid.index), key="sl_cell_bucket", persist_state="page")
    pick_value = c2.selectbox(
        f"where {_ui.plain(column)} is",
        [str(v) for v in grid.columns if v != lumped],
        key=f"sl_cell_value_{column}",
        persist_state="page",
    )
    if c3.button("Show examples", key="sl_cell_go") and pick_value is not None:
        drill(column, pick_value, pick_bucket)


def drill(column: str, value: str, bucket: str) -> None:
    """Open the Examples view on one bucket of one group."""
    st.session_state["sl_drill"] = {"column": column, "value": value, "bucket": bucket}
    show_view("Examples")


def _drilled(project_name: str, scope, current):
    """The drill target as (slice, bucket), or None; a target whose group is gone from the
    slice and scope (another version, a changed slice) is cleared."""
    target = st.session_state.get("sl_drill")
    if not target:
        return None
    try:
        g = _ui.query(grouping, project_name, column=target["column"], scope=scope, slice_=current, bins=5)
        condition = group_condition(g, target["value"])
    except SliceboardError:  # the column or bin is not there any more (another project, version or slice)
        _clear_drill(target)
        return None
    return current.and_(condition), target["bucket"]


def _clear_drill(target: dict) -> None:
    st.session_state.pop("sl_drill", None)
    st.caption(
        f"The drill into {_ui.plain(target['bucket'])} rows where {_ui.plain(target['column'])} is "
        f"{_ui.plain(target['value'])} was cleared: there are no such rows in this slice and scope."
    )


def _selection_owner(scope, current) -> tuple:
    return (current.readable(), scope.versions, scope.stages)


def selected_ids(scope, current) -> tuple[str, ...]:
    """The rows ticked in Examples, if they were ticked in this slice and scope."""
    if st.session_state.get("sl_selected_in") != _selection_owner(scope, current):
        return ()
    return tuple(sorted(st.session_state.get("sl_selected", set())))


def examples_view(project_name: str, project, scope, current) -> None:
    """A paged, sortable table of the slice's rows; ticked rows stay ticked across pages."""
    owner = _selection_owner(scope, current)
    if st.session_state.get("sl_selected_in") != owner:  # another slice or scope: its ticks point elsewhere
        st.session_state["sl_selected"] = set()
        st.session_state["sl_selected_in"] = owner
    drilled = _drilled(project_name, scope, current)
    slice_, bucket = drilled if drilled else (current, None)
    if drilled:
        left, right = st.columns([4, 1])
        left.caption(f"Drilled into: {_ui.plain(bucket)} · {_ui.plain(slice_.readable())}")
        if right.button("Clear", key="sl_drill_clear"):
            st.session_state.pop("sl_drill", None)
            st.rerun()
    a, b, c, d = st.columns(4)
    options = ["all", *buckets_for(project.task)]
    picked = a.selectbox(
        "Bucket", options, index=options.index(bucket) if bucket in options else 0, key=f"sl_ex_bucket_{bucket}"
    )
    columns = example_columns(project)
    sortable = ["timestamp", "score", "bucket", *[f.name for f in project.features]]
    sort_by = b.selectbox(
        "Sort by",
        [c for c in sortable if columns.get(c, True) is not None],
        key="sl_ex_sort",
        persist_state="page",
        format_func=lambda c: ROLES.get(c, (None, c))[1],
    )
    descending = c.toggle("Descending", True, key="sl_ex_desc", persist_state="page")
    near = d.toggle(
        "Near the threshold only (±0.05)",
        False,
        key="sl_ex_near",
        persist_state="page",
        disabled=project.task != "binary",
    )
    page_no = int(st.session_state.get("sl_ex_page", 1))
    query = dict(
        scope=scope,
        slice_=slice_,
        bucket=None if picked == "all" else picked,
        sort_by=sort_by,
        descending=descending,
        near_threshold=0.05 if near else None,
        page_size=50,
    )
    result = _ui.query(examples, project_name, page=page_no, **query)
    if page_no > result.pages:  # the filters shrank the table: back to its first page
        page_no = 1
        result = _ui.query(examples, project_name, page=1, **query)
    st.session_state["sl_ex_page"] = page_no
    if drilled and result.total == 0 and picked == bucket:  # the drill points at no row any more
        _clear_drill(st.session_state["sl_drill"])
        slice_, query["slice_"], query["bucket"] = current, current, None
        result = _ui.query(examples, project_name, page=1, **query)
    st.number_input(f"Page (of {result.pages:,}; {result.total:,} rows)", 1, max(1, result.pages), key="sl_ex_page")
    # One table widget per query and page, so a selection never points at other rows; the
    # selection itself is kept by prediction id, and a page shows its kept rows ticked.
    key = f"sl_examples_{abs(hash((repr(query), page_no)))}"
    shown = list(result.rows["prediction_id"])
    selected: set = st.session_state.setdefault("sl_selected", set())
    ticked = [i for i, pid in enumerate(shown) if pid in selected]
    fresh = key not in st.session_state
    st.session_state["sl_examples_key"] = key  # the table on screen
    event = st.dataframe(
        in_words(result.rows, project),
        hide_index=True,
        key=key,
        on_select="rerun",
        selection_mode="multi-row",
        selection_default={"selection": {"rows": ticked}},
        placeholder=MISSING,
        column_config=columns,
    )
    picked_rows = {shown[i] for i in event.selection.rows if i < len(shown)} if event else set()
    last = {shown[i] for i in ticked} if fresh else st.session_state.get(key + "_last", set())
    selected |= picked_rows - last
    selected -= last - picked_rows
    st.session_state[key + "_last"] = picked_rows
    st.caption(
        f"{format_count(len(selected))} rows selected (kept across pages and filters of this slice, ready "
        "to promote to a validation set)."
    )

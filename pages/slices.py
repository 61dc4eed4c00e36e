"""Slices: build a slice from the project's columns and see its metrics with
95% intervals next to the rest and the whole scope. The URL carries the
project, version, stages and the slice (``?slice=country = NG AND age < 25``)."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis import SliceboardError, get_project
from analysis.overview import project_summary
from analysis.profile import histogram, value_counts
from analysis.scope import Scope
from analysis.slice_metrics import slice_metrics
from analysis.slices import Condition, Slice, parse_slice, slice_columns, validate_slice
from pages import _slice_views as views
from pages._promote_view import promote_view
from pages._saved_view import saved_view
from pages import _report_ui, _ui

ALL = "All versions"
MISSING = "∅ missing"

_ui.require_app()

project_name = _ui.current_project()
summary = _ui.query(project_summary, project_name)
project = _ui.query(get_project, None, name=project_name)
st.title("Slices")

# --- scope: version and stages, kept in the URL ---------------------------------------
if "sl_version" not in st.session_state:
    wanted = st.query_params.get("version")
    st.session_state["sl_version"] = wanted if wanted in summary.versions else ALL
if "sl_stages" not in st.session_state:
    wanted_stages = [x for x in st.query_params.get_all("stage") if x in summary.stages]
    st.session_state["sl_stages"] = wanted_stages or list(summary.stages)
a, b = st.columns(2)
version = a.selectbox("Model version", [ALL, *summary.versions], key="sl_version")
stages = b.multiselect("Stages", summary.stages, key="sl_stages")
if stages and set(stages) != set(summary.stages):
    st.query_params["stage"] = stages
else:
    st.query_params.pop("stage", None)
scope = Scope.of(versions=None if version == ALL else version, stages=stages or None)
if version == ALL:
    st.query_params.pop("version", None)
else:
    st.query_params["version"] = version

# --- the slice: from the URL, edited by the builder or as text --------------------------
if "sl_pending" in st.session_state:  # set by a button below, applied before the widget exists
    st.session_state["sl_text"] = st.session_state.pop("sl_pending")
if "sl_text" not in st.session_state:
    st.session_state["sl_text"] = st.query_params.get("slice", "")
text = st.text_input("Slice", key="sl_text", placeholder="country = NG AND age < 25",
                     help="Conditions joined by AND: `col = v`, `col != v`, `col in (a, b)`, `col < 5`, "
                          "`1 <= col < 5`, `col is null`, `col is true`, `col contains \"text\"`.")
try:
    current = validate_slice(parse_slice(text), project)
except SliceboardError as exc:
    _ui.show_error(exc)
    current = Slice()
readable = current.readable() if current.conditions else ""
if readable:
    st.query_params["slice"] = readable
else:
    st.query_params.pop("slice", None)


def set_slice(new: Slice) -> None:
    st.session_state["sl_pending"] = new.readable() if new.conditions else ""
    st.rerun()


with st.expander("Add a condition", expanded=not current.conditions):
    kinds = slice_columns(project)
    column = st.selectbox("Column", sorted(kinds), key="sl_column")
    kind = kinds[column]
    cond = None
    if kind in ("categorical", "boolean"):
        counts = _ui.query(value_counts, project_name, column=column, scope=scope, limit=200)
        shown = [MISSING if pd.isna(v) else v for v in counts["value"]]  # pandas 3 reads a missing value as NaN
        labels = {v: f"{v}  ·  {n:,}" for v, n in zip(shown, counts["n"])}
        picked = st.multiselect("Values", list(labels), format_func=labels.get, key=f"sl_values_{column}")
        negate = st.checkbox("Everything except these", key=f"sl_not_{column}")
        if picked:
            present = [v for v in picked if v != MISSING]
            if present:
                cond = Condition(column, "not_in" if negate else "in", values=tuple(present))
            else:
                cond = Condition(column, "not_null" if negate else "is_null")
    elif kind in ("numeric", "timestamp"):
        hist = _ui.query(histogram, project_name, column=column, scope=scope, bins=40)
        if len(hist):
            fig = go.Figure(go.Bar(x=hist["low"], y=hist["n"], marker_color="#4c78a8"))
            fig.update_layout(height=180, margin=dict(t=10, l=10, r=10, b=10), bargap=0.05)
            st.plotly_chart(fig, key=f"sl_hist_{column}")
        lo_col, hi_col = st.columns(2)
        low = lo_col.text_input("From (included)", key=f"sl_low_{column}")
        high = hi_col.text_input("Below (excluded)", key=f"sl_high_{column}")
        if low.strip() or high.strip():
            cond = Condition(column, "between", low=low.strip() or None, high=high.strip() or None)
    else:
        needle = st.text_input("Contains", key=f"sl_contains_{column}")
        if needle:
            cond = Condition(column, "contains", text=needle)
    if st.button("Add to slice", key="sl_add", disabled=cond is None, type="primary"):
        try:
            set_slice(validate_slice(current.and_(cond), project))
        except SliceboardError as exc:
            _ui.show_error(exc)

if current.conditions:
    st.caption("Conditions (click to remove)")
    chips = st.columns(min(len(current.conditions), 4))
    for i, c in enumerate(current.conditions):
        if chips[i % len(chips)].button(f"✕ {_ui.plain(c.readable())}", key=f"sl_remove_{i}"):
            set_slice(Slice(current.conditions[:i] + current.conditions[i + 1:]))

# --- views of the slice --------------------------------------------------------------------
st.subheader(_ui.plain(readable) if readable else "All rows")
_report_ui.add_to_report(project_name, [("This slice's metrics", "slice", {"slice": current, "scope": scope})],
                         key="sl_report")
tabs = st.tabs(["Metrics", "Breakdown", "Leaderboard", "Errors", "Examples", "Saved"]
               + ([] if _ui.read_only() else ["Promote"]))  # read-only mode: no promotion
metrics_tab, breakdown_tab, board_tab, errors_tab, examples_tab, saved_tab = tabs[:6]
with metrics_tab:
    views.metrics_view(_ui.query(slice_metrics, project_name, slice_=current, scope=scope))
with breakdown_tab:
    views.breakdown_view(project_name, project, scope, current)
with board_tab:
    views.leaderboard_view(project_name, scope, current)
with errors_tab:
    views.errors_view(project_name, project, scope, current)
with examples_tab:
    views.examples_view(project_name, project, scope, current)
with saved_tab:
    saved_view(project_name, project, scope, current, open_slice=lambda text: set_slice(parse_slice(text)))
for promote_tab in tabs[6:]:
    with promote_tab:
        promote_view(project_name, project, scope, current, key="sl_promote",
                     selected_ids=tuple(sorted(st.session_state.get("sl_selected", set()))))

"""The Slices page's condition builder: pick a column, then values (with their counts in
the scope), a range (over a histogram) or a text to contain, and AND it to the slice."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis import SliceboardError
from analysis.slices import Condition, Slice, slice_columns, validate_slice
from analysis.slices.column_profile import histogram, value_counts
from pages.parts import _ui

MISSING = "∅ missing"


def value_picker(column: str, counts) -> list:
    """The values of ``column`` with their counts in the scope. The picks are kept when
    the counts change (another version, stages or a write): each label is re-drawn with
    the new count, and a picked value the scope lacks stays listed with a count of 0."""
    key, labels_key = f"sl_values_{column}", f"sl_labels_{column}"
    shown = [MISSING if pd.isna(v) else v for v in counts["value"]]  # pandas 3 reads a missing value as NaN
    labels = {v: f"{v}  ·  {n:,}" for v, n in zip(shown, counts["n"])}
    previous = st.session_state.get(labels_key)
    # Read with the previous run's labels: what the browser sends is the label it shows.
    picked = list(st.session_state.get(key, []))
    picked = [v for v in picked if v in labels or (previous and v in previous)]
    for v in picked:
        labels.setdefault(v, f"{v}  ·  0")
    if previous is not None and previous != labels and key in st.session_state:
        st.session_state[key] = picked  # the browser draws the picks with their new labels
    st.session_state[labels_key] = labels
    return st.multiselect("Values", list(labels), format_func=lambda v: labels.get(v, str(v)), key=key)


def _values_condition(project_name: str, column: str, scope) -> Condition | None:
    picked = value_picker(column, _ui.query(value_counts, project_name, column=column, scope=scope, limit=200))
    negate = st.checkbox("Everything except these", key=f"sl_not_{column}")
    if not picked:
        return None
    present = [v for v in picked if v != MISSING]
    if present and len(present) < len(picked):  # "one of these or missing" is not one AND-condition
        st.warning(
            f"Pick either values or {MISSING}, not both: a slice joins its conditions with AND "
            f"and cannot yet say “one of these or missing”. To leave out missing rows as well as "
            f"these values, add “Everything except” these values, then “Everything except” "
            f"{MISSING}.",
            icon=":material/info:",
        )
        return None
    if present:
        return Condition(column, "not_in" if negate else "in", values=tuple(present))
    return Condition(column, "not_null" if negate else "is_null")


def _range_condition(project_name: str, column: str, scope) -> Condition | None:
    hist = _ui.query(histogram, project_name, column=column, scope=scope, bins=40)
    if len(hist):
        fig = go.Figure(go.Bar(x=hist["low"], y=hist["n"], marker_color="#4c78a8"))
        fig.update_layout(height=180, margin=dict(t=10, l=10, r=10, b=10), bargap=0.05)
        st.plotly_chart(fig, key=f"sl_hist_{column}")
    lo_col, hi_col = st.columns(2)
    low = lo_col.text_input("From (included)", key=f"sl_low_{column}")
    high = hi_col.text_input("Below (excluded)", key=f"sl_high_{column}")
    if low.strip() or high.strip():
        return Condition(column, "between", low=low.strip() or None, high=high.strip() or None)
    return None


def _text_condition(project_name: str, column: str, scope) -> Condition | None:
    needle = st.text_input("Contains", key=f"sl_contains_{column}")
    return Condition(column, "contains", text=needle) if needle else None


INPUTS = {
    "categorical": _values_condition,
    "boolean": _values_condition,
    "numeric": _range_condition,
    "timestamp": _range_condition,
}


def condition_builder(project_name: str, project, scope, current: Slice, set_slice) -> None:
    """The builder in an expander; "Add to slice" calls ``set_slice`` with ``current`` and
    the new condition (once, however often it is added)."""
    if st.session_state.get("sl_clear"):  # "Add to slice" empties the inputs it used
        cleared = st.session_state.pop("sl_clear")
        st.session_state[f"sl_values_{cleared}"] = []
        for prefix, empty in (("sl_not_", False), ("sl_low_", ""), ("sl_high_", ""), ("sl_contains_", "")):
            st.session_state[f"{prefix}{cleared}"] = empty
    with st.expander("Add a condition", expanded=not current.conditions):
        kinds = slice_columns(project)
        column = st.selectbox("Column", sorted(kinds), key="sl_column")
        cond = INPUTS.get(kinds[column], _text_condition)(project_name, column, scope)
        if st.button("Add to slice", key="sl_add", disabled=cond is None, type="primary"):
            try:
                wanted = validate_slice(current.and_(cond), project)
            except SliceboardError as exc:
                _ui.show_error(exc)
                return
            kept = []
            for c in wanted.conditions:
                if c not in kept:
                    kept.append(c)
            st.session_state["sl_clear"] = column  # applied before the inputs exist, on the next run
            set_slice(Slice(tuple(kept)))

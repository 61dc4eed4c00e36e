"""The Slices page's Saved tab: save the current slice, open or delete saved
ones with their history, and track the current slice over time and versions."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from analysis import SliceboardError
from analysis.saved import delete_slice, list_slices, save_slice, slice_by_version, slice_history, slice_over_time
from analysis.slices import Slice
from pages import _ui


def saved_view(project_name: str, project, scope, current: Slice, open_slice) -> None:
    left, right = st.columns(2)
    editable = not _ui.read_only()  # read-only mode: no save, no delete
    if editable:
        with left.form("sl_save_form", clear_on_submit=False):
            st.markdown("##### Save this slice")
            name = st.text_input("Name", key="sl_save_name")
            description = st.text_area("Description", key="sl_save_description", height=80)
            if st.form_submit_button("Save (a new revision if the name exists)", disabled=not current.conditions):
                try:
                    with _ui.store().write() as con:
                        saved = save_slice(con, project, name, current, description or None)
                    _ui.clear_caches()
                    st.success(f"Saved **{_ui.plain(saved.name)}**, revision {saved.revision}.")
                except SliceboardError as exc:
                    _ui.show_error(exc)
    with right if editable else left:
        st.markdown("##### Saved slices")
        saved_list = _ui.query(list_slices, project_name)
        if saved_list.empty:
            st.caption("None yet.")
        for row in saved_list.itertuples():
            a, b, c = st.columns([5, 1, 1])
            a.markdown(f"**{_ui.plain(row.name)}** · r{row.revision}  \n{_ui.plain(row.where)}"
                       + (f"  \n{_ui.plain(row.description)}" if row.description else ""))
            if b.button("Open", key=f"sl_open_{row.name}"):
                open_slice(row.where)
            if editable and c.button("Delete", key=f"sl_delete_{row.name}"):
                with _ui.store().write() as con:
                    delete_slice(con, project, row.name)
                _ui.clear_caches()
                st.rerun()
            with a.expander("History"):
                st.dataframe(_ui.query(slice_history, project_name, name=row.name), hide_index=True,
                             key=f"sl_history_{row.name}")
    if not current.conditions:
        return
    st.markdown("##### This slice over time and across versions")
    daily = _ui.query(slice_over_time, project_name, slice_=current, scope=scope)
    metric = "accuracy" if "accuracy" in daily else "mae"
    fig = px.line(daily, x="day", y=metric, color="part", title=f"{metric} per day, slice vs rest (labeled rows)",
                  color_discrete_map={"slice": "#e45756", "rest": "#4c78a8"})
    fig.update_layout(height=320, margin=dict(t=40, l=10, r=10, b=10), legend_title_text="")
    st.plotly_chart(fig, key="sl_over_time")
    st.dataframe(_ui.query(slice_by_version, project_name, slice_=current, scope=scope), hide_index=True,
                 key="sl_by_version")

"""The Slices page's Saved view: save the current slice (with the version and stages
in view), open saved ones (their version and stages come back too), delete after a
confirmation, see their history, and track the current slice over time and versions."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from analysis import SliceboardError
from analysis.numbers import MISSING, metric_title
from analysis.slices import Slice
from analysis.slices.saved import (
    delete_slice,
    list_slices,
    save_slice,
    slice_by_version,
    slice_history,
    slice_over_time,
)
from pages.parts import _ui
from pages.parts._slice_views import table
from pages.parts._writes import flash, write


def scope_words(versions, stages) -> str:
    """``credit-v1 · production``, or ``all versions · all stages``."""
    return f"{', '.join(versions) or 'all versions'} · {', '.join(stages) or 'all stages'}"


def _save(project_name: str, current: Slice, scope) -> None:
    """The Save button's callback: it runs before the page's next run, which then shows the
    new state and the confirmation (one run, not a run and a rerun)."""
    description = st.session_state.get("sl_save_description") or None
    saved = write(
        project_name,
        save_slice,
        st.session_state.get("sl_save_name", ""),
        current,
        description,
        scope=scope,
        error_key="sl_save_error",
    )
    if saved is not None:
        flash(
            f"Saved **{_ui.plain(saved.name)}**, revision {saved.revision} "
            f"({_ui.plain(scope_words(saved.versions, saved.stages))})."
        )


def _delete(project, name: str) -> None:
    try:
        with _ui.store().write() as con:
            delete_slice(con, project, name)
    except SliceboardError as exc:
        _ui.show_error(exc)
        return
    st.session_state.pop("sl_confirm_delete", None)
    _ui.clear_caches()
    flash(f"Deleted **{_ui.plain(name)}** (its history stays).", rerun=True)


def saved_view(project_name: str, project, scope, current: Slice, open_saved) -> None:
    left, right = st.columns(2)
    editable = not _ui.read_only()  # read-only mode: no save, no delete
    if editable:
        with left.form("sl_save_form", clear_on_submit=False):
            st.markdown("##### Save this slice")
            st.caption(f"For {_ui.plain(scope_words(scope.versions, scope.stages))}.")
            st.text_input("Name", key="sl_save_name")
            st.text_area("Description", key="sl_save_description", height=80)
            if not current.conditions:
                st.caption("Add a condition above to save a slice.")
            st.form_submit_button(
                "Save (a new revision if the name exists)",
                disabled=not current.conditions,
                on_click=_save,
                args=(project_name, current, scope),
            )
            if st.session_state.get("sl_save_error"):
                _ui.show_error(SliceboardError(st.session_state.pop("sl_save_error")))
    with right if editable else left:
        st.markdown("##### Saved slices")
        saved_list = _ui.query(list_slices, project_name)
        if saved_list.empty:
            st.caption("No saved slice in this project yet: build one above, name it and save it.")
        confirming = st.session_state.get("sl_confirm_delete")
        if confirming not in set(saved_list["name"]):  # deleted elsewhere: nothing to confirm
            st.session_state.pop("sl_confirm_delete", None)
            confirming = None
        for row in saved_list.itertuples():
            a, b, c = st.columns([3, 1, 1])  # room for "Open" and "Delete" whole in half the page
            a.markdown(
                f"**{_ui.plain(row.name)}** · r{row.revision} · {_ui.plain(scope_words(row.versions, row.stages))}"
                f"  \n{_ui.plain(row.where)}" + (f"  \n{_ui.plain(row.description)}" if row.description else "")
            )
            if b.button("Open", key=f"sl_open_{row.name}"):
                open_saved(row.where, row.versions, row.stages)
            if editable and c.button("Delete", key=f"sl_delete_{row.name}"):
                st.session_state["sl_confirm_delete"] = row.name
                st.rerun()
            if editable and confirming == row.name:
                with a.container(border=True):
                    st.warning(f"Delete **{_ui.plain(row.name)}**? Its history stays.", icon=":material/delete:")
                    yes, no = st.columns(2)
                    if yes.button("Delete it", key="sl_delete_yes", type="primary"):
                        _delete(project, row.name)
                    if no.button("Keep it", key="sl_delete_no"):
                        st.session_state.pop("sl_confirm_delete", None)
                        st.rerun()
            with a.expander("History"):
                history = _ui.query(slice_history, project_name, name=row.name)
                history = history.assign(
                    **{k: history[k].map(lambda v: ", ".join(v) or "all") for k in ("versions", "stages")}
                )
                st.dataframe(history, hide_index=True, key=f"sl_history_{row.name}", placeholder=MISSING)
    if not current.conditions:
        return
    st.markdown("##### This slice over time and across versions")
    daily = _ui.query(slice_over_time, project_name, slice_=current, scope=scope)
    metric = "accuracy" if "accuracy" in daily else "mae"
    fig = px.line(
        daily,
        x="day",
        y=metric,
        color="part",
        title=f"{metric_title(metric)} per day, slice vs rest (labeled rows)",
        color_discrete_map={"slice": "#e45756", "rest": "#4c78a8"},
        labels={metric: metric_title(metric), "day": "Day"},
    )
    fig.update_layout(height=320, margin=dict(t=40, l=10, r=10, b=10), legend_title_text="")
    if metric == "accuracy":
        fig.update_yaxes(tickformat=".0%")
    st.plotly_chart(fig, key="sl_over_time")
    by_version = _ui.query(slice_by_version, project_name, slice_=current, scope=scope)
    table(by_version, "sl_by_version", regression=project.task == "regression")

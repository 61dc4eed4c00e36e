""" "Add to report" on any view (a block is drawn by :mod:`pages.parts._block_view`)."""

from __future__ import annotations

import streamlit as st

from analysis import SliceboardError, get_project
from analysis.reports import add_block, list_reports
from pages.parts import _ui

NEW = "New report…"


def add_to_report(project_name: str, options: list[tuple[str, str, dict]], *, key: str) -> None:
    """A popover that pins the current view into a report: ``options`` are
    ``(label, kind, view)``, for example ``("The comparison", "comparison", {...})``.
    Not shown in read-only mode."""
    if _ui.read_only():
        return
    with st.popover("Add to report", icon=":material/post_add:"):
        labels = [o[0] for o in options]
        chosen = st.radio("What", labels, key=f"{key}_what") if len(options) > 1 else labels[0]
        _, kind, view = options[labels.index(chosen)]
        reports = list(_ui.query(list_reports, project_name)["name"])
        default = st.session_state.get("sb_report")
        choice = st.selectbox(
            "Report", [*reports, NEW], key=f"{key}_report", index=reports.index(default) if default in reports else 0
        )
        name = (
            st.text_input("New report's name", key=f"{key}_new", placeholder="Weekly model review")
            if choice == NEW
            else choice
        )
        title = st.text_input("Block title (optional)", key=f"{key}_title")
        if st.button("Add", key=f"{key}_add", type="primary", disabled=not name):
            try:
                with st.spinner("Computing and pinning the numbers…"):
                    with _ui.store().write() as con:
                        block = add_block(con, get_project(con, project_name), name, kind, view, title=title)
                _ui.clear_caches()
                st.session_state["sb_report"] = name
                done = f"Added “{_ui.plain(block.title)}” to {_ui.plain(name)}."
                st.toast(done, icon=":material/check_circle:")
                st.success(done, icon=":material/check:")
                st.page_link("pages/reports.py", label="Open Reports", icon=":material/description:")
            except SliceboardError as exc:
                _ui.show_error(exc)

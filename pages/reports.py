"""Reports: the blocks users added from the other pages, in order, with notes; re-run
against the current data, exported as one HTML file, shown in the presentation view."""

import pandas as pd
import streamlit as st

from analysis import SliceboardError, get_project
from analysis.reports import (default_report, delete_block, delete_report, edit_block, get_report, list_reports,
                              move_block, refresh, render_html, rerun)
from analysis.reports import add_block
from analysis.reports.blocks import TITLES
from pages import _report_ui, _ui

_ui.require_app()
project_name = _ui.current_project()
st.title("Reports")
listing = _ui.query(list_reports, project_name)
names = list(listing["name"])
if names:
    with st.expander(f"All reports of {_ui.plain(project_name)} ({len(names)})"):
        st.dataframe(listing, hide_index=True, key="rep_list")
if not names and _ui.read_only():
    st.info("No report yet.")
elif not names:
    st.info("No report yet. Add a view to one with **Add to report** on the Compare, Slices, Discover, "
            "Validation sets or Overview page, or export the project's default report below.")
wanted = st.query_params.get("report") or st.session_state.get("sb_report")
if names and st.session_state.get("rep_name") not in names:
    st.session_state["rep_name"] = wanted if wanted in names else names[0]
name = st.selectbox("Report", names, key="rep_name") if names else None


def write(action, *args, **kwargs):
    """One write through the engine; errors as messages, caches cleared after."""
    try:
        with _ui.store().write() as con:
            result = action(con, get_project(con, project_name), *args, **kwargs)
        _ui.clear_caches()
        return result
    except SliceboardError as exc:
        _ui.show_error(exc)
        return None


with st.expander("The project's default report (overview, latest comparison, discovered slices, validation sets)"):
    if st.button("Build it", key="rep_default"):
        bar = st.progress(0.0)
        with _ui.readable_errors():
            with _ui.store().read() as con:
                report = default_report(con, get_project(con, project_name),
                                        progress=lambda f, t: bar.progress(min(1.0, f), text=t))
            st.download_button("Download the default report (HTML)", render_html(report).encode("utf-8"),
                               file_name=f"{project_name}-report.html", mime="text/html", key="rep_default_dl")

if name is None:
    st.stop()
st.session_state["sb_report"] = name
st.query_params["report"] = name
report = _ui.query(get_report, project_name, name=name)
editable = not _ui.read_only()  # read-only mode: no control that writes
top = st.columns([2, 2, 2, 2])
top[0].download_button("Export HTML", render_html(report).encode("utf-8"), file_name=f"{name}.html",
                       mime="text/html", key="rep_export", icon=":material/download:", type="primary")
top[1].page_link("pages/present.py", label="Present", icon=":material/slideshow:")
check = top[2].button("Re-run on current data", key="rep_rerun", icon=":material/refresh:")
if editable and top[3].button("Delete report", key="rep_delete", icon=":material/delete:"):
    write(delete_report, name)
    st.session_state.pop("rep_name", None)
    st.rerun()

if check:
    with st.spinner("Computing every block again…"):
        with _ui.store().read() as con:
            results = rerun(con, get_project(con, project_name), name)
    changed = [r for r in results if not r.same]
    if not changed:
        st.success("Same numbers: nothing this report shows has changed.", icon=":material/check:")
    else:
        st.warning(f"{len(changed)} of {len(results)} blocks show different numbers now.", icon=":material/update:")
        for r in changed:
            st.markdown(f"**{_ui.plain(r.block.title)}**"
                        + (f" — data: {_ui.plain('; '.join(r.data_changes))}" if r.data_changes else ""))
            st.dataframe(pd.DataFrame(r.changes, columns=["figure", "then", "now"]).astype(str), hide_index=True,
                         key=f"rep_changes_{r.block.block_id}")
        if editable and st.button("Keep the new numbers", key="rep_refresh"):
            write(refresh, name)
            st.rerun()

if editable:
    with st.form("rep_note_form", clear_on_submit=True):
        text = st.text_area("Add a note (Markdown; images, raw HTML and links to other sites are left out)",
                            key="rep_note_text", placeholder="What we decided, and why.")
        if st.form_submit_button("Add note") and text.strip():
            write(add_block, name, "note", {"text": text})
            st.rerun()

for i, block in enumerate(report.blocks):
    with st.container(border=True):
        head = st.columns([6, 1, 1, 1])
        head[0].subheader(_ui.plain(block.title))
        head[0].caption(f"{TITLES[block.kind]} · computed {block.computed_at:%Y-%m-%d %H:%M} UTC")
        if not editable:
            _report_ui.draw_block(block.kind, block.snapshot, key=f"rep_{block.block_id}")
            continue
        if head[1].button("Up", key=f"rep_up_{block.block_id}", disabled=i == 0, icon=":material/arrow_upward:"):
            write(move_block, name, block.block_id, -1)
            st.rerun()
        if head[2].button("Down", key=f"rep_down_{block.block_id}", disabled=i == len(report.blocks) - 1,
                          icon=":material/arrow_downward:"):
            write(move_block, name, block.block_id, 1)
            st.rerun()
        if head[3].button("Remove", key=f"rep_rm_{block.block_id}", icon=":material/close:"):
            write(delete_block, name, block.block_id)
            st.rerun()
        _report_ui.draw_block(block.kind, block.snapshot, key=f"rep_{block.block_id}")
        with st.expander("Edit" if block.kind == "note" else "Rename"):
            new_title = st.text_input("Title", block.title, key=f"rep_title_{block.block_id}")
            new_text = (st.text_area("Text", block.snapshot["text"], key=f"rep_text_{block.block_id}")
                        if block.kind == "note" else None)
            if st.button("Save", key=f"rep_save_{block.block_id}"):
                write(edit_block, name, block.block_id, title=new_title, text=new_text)
                st.rerun()

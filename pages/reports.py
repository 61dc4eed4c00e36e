"""Reports: the blocks users added from the other pages, in order, with notes; re-run
against the current data, exported as one HTML file, shown in the presentation view.

Every write (a note, a move, a rename, a removal) runs in its button's callback, before
the page is drawn: the page shows the new state at once, with a short toast. Removing a
block or a report asks first."""

from functools import partial

import pandas as pd
import streamlit as st

from analysis import SliceboardError, get_project
from analysis.reports import (
    add_block,
    default_report,
    delete_report,
    get_report,
    list_reports,
    position_after,
    refresh,
    render_html,
    rerun,
)
from analysis.reports.tables import figure_text
from pages.parts import _report_blocks, _ui, _writes

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
    st.info(
        "No report yet. Add a view to one with **Add to report** on the Compare, Slices, Discover, "
        "Validation sets or Overview page, or export the project's default report below."
    )
wanted = st.query_params.get("report") or st.session_state.get("sb_report")
if names and st.session_state.get("rep_name") not in names:
    st.session_state["rep_name"] = wanted if wanted in names else names[0]
name = st.selectbox("Report", names, key="rep_name") if names else None
if st.session_state.get("rep_error"):
    _ui.show_error(SliceboardError(st.session_state.pop("rep_error")))


write = partial(_writes.write, project_name, error_key="rep_error")


def ask(what) -> None:
    """The first step of a removal: the page asks before doing it."""
    st.session_state["rep_confirm"] = what


def cancel() -> None:
    st.session_state.pop("rep_confirm", None)


def remove_report(report: str) -> None:
    cancel()
    write(delete_report, report, done=f"Deleted the report “{_ui.plain(report)}”.")
    if "rep_error" not in st.session_state:
        st.session_state.pop("rep_name", None)
        st.session_state.pop("sb_report", None)
        st.query_params.pop("report", None)


def keep_numbers(report: str) -> None:
    st.session_state.pop("rep_check", None)
    write(refresh, report, done="Kept the current numbers.")


with st.expander("The project's default report (overview, latest comparison, discovered slices, validation sets)"):
    if st.button("Build it", key="rep_default"):
        bar = st.progress(0.0)
        with _ui.readable_errors():
            with _ui.store().read() as con:
                built = default_report(
                    con, get_project(con, project_name), progress=lambda f, t: bar.progress(min(1.0, f), text=t)
                )
            st.download_button(
                "Download the default report (HTML)",
                render_html(built).encode("utf-8"),
                file_name=f"{project_name}-report.html",
                mime="text/html",
                key="rep_default_dl",
            )

if name is None:
    st.stop()
st.session_state["sb_report"] = name
st.query_params["report"] = name
report = _ui.query(get_report, project_name, name=name)
editable = not _ui.read_only()  # read-only mode: no control that writes
confirm = st.session_state.get("rep_confirm")
top = st.columns([2, 2, 2, 2])
# The file is built when the button is pressed, not on every run of the page.
top[0].download_button(
    "Export HTML",
    lambda: render_html(report).encode("utf-8"),
    file_name=f"{name}.html",
    mime="text/html",
    key="rep_export",
    icon=":material/download:",
    type="primary",
    on_click="ignore",
)
top[1].page_link("pages/present.py", label="Present", icon=":material/slideshow:")
if top[2].button("Re-run on current data", key="rep_rerun", icon=":material/refresh:"):
    st.session_state["rep_check"] = name
if editable:
    top[3].button("Delete report", key="rep_delete", icon=":material/delete:", on_click=ask, args=(("report", name),))
if editable and confirm == ("report", name):
    with st.container(border=True):
        st.warning(
            f"Delete the report “{_ui.plain(name)}” and its {len(report.blocks)} blocks? This cannot be undone.",
            icon=":material/delete:",
        )
        a, b = st.columns([1, 5])
        a.button("Delete it", key="rep_delete_yes", type="primary", on_click=remove_report, args=(name,))
        b.button("Keep it", key="rep_delete_no", on_click=cancel)

if st.session_state.get("rep_check") == name:
    with st.container(border=True):
        with st.spinner("Computing every block again…"):
            with _ui.store().read() as con:
                results = rerun(con, get_project(con, project_name), name)
        changed = [r for r in results if not r.same]
        if not changed:
            st.success("Same numbers: nothing this report shows has changed.", icon=":material/check:")
        else:
            st.warning(f"{len(changed)} of {len(results)} blocks show different numbers now.", icon=":material/update:")
            for r in changed:
                st.markdown(
                    f"**{_ui.plain(r.block.title)}**"
                    + (f" — data: {_ui.plain('; '.join(r.data_changes))}" if r.data_changes else "")
                )
                st.dataframe(
                    pd.DataFrame(
                        [(n, figure_text(a), figure_text(b)) for n, a, b in r.changes],
                        columns=["figure", "then", "now"],
                    ),
                    hide_index=True,
                    key=f"rep_changes_{r.block.block_id}",
                )
        a, b = st.columns([1, 3])
        if editable and changed:
            a.button("Keep the new numbers", key="rep_refresh", on_click=keep_numbers, args=(name,))
        b.button("Close", key="rep_check_close", on_click=lambda: st.session_state.pop("rep_check", None))

if editable:
    # Where a new note goes: a position (1 = first), None at the end.
    places = {None: "At the end", 1: "At the top"}
    for b in report.blocks[:-1]:
        places[position_after(report, b.block_id)] = f"After “{b.title}”"
    with st.form("rep_note_form", clear_on_submit=True):
        text = st.text_area(
            "Add a note (Markdown; images, raw HTML and links to other sites are left out)",
            key="rep_note_text",
            placeholder="What we decided, and why.",
        )
        place = st.selectbox("Where", list(places), format_func=places.get, key="rep_note_place")
        if st.form_submit_button("Add note") and text.strip():
            if write(add_block, name, "note", {"text": text}, position=place) is not None:
                st.toast("Added the note.", icon=":material/check_circle:")
            report = _ui.query(get_report, project_name, name=name)  # the new state, drawn below at once
            if st.session_state.get("rep_error"):
                _ui.show_error(SliceboardError(st.session_state.pop("rep_error")))

_report_blocks.draw(report, name, write, editable=editable, confirm=confirm, ask=ask, cancel=cancel)

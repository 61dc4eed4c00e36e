"""Validation sets: create sets, review and commit their drafts, history and diffs,
export for offline scoring, and every model version evaluated on every set.

Only the chosen view is computed (a view switcher kept in the URL, not tabs). Every
write (create, remove members, commit, delete) runs in its button's callback, before the
page is drawn, so the page shows the new state at once with a short toast; deleting a
set asks first."""

from functools import partial

import streamlit as st

from analysis import SliceboardError, get_project
from analysis.valsets import (
    commit,
    delete_set,
    evaluate,
    history,
    list_sets,
    members,
    remove_members,
)
from pages.parts import _report_ui, _ui, _writes
from pages.parts import _valset_views as views

MATRIX, SETS = "Sets × model versions", "Sets"
DRAFT, HISTORY, EXPORT = "Draft", "History and diff", "Export and re-score"
URL_VIEWS = {MATRIX: "matrix", SETS: "sets", DRAFT: "draft", HISTORY: "history", EXPORT: "export"}

_ui.require_app()
project_name = _ui.current_project()
project = _ui.query(get_project, None, name=project_name)
st.title("Validation sets")
st.caption(
    "Failing examples worth remembering, frozen into numbered versions that every model version is "
    "evaluated on. Promote examples from the Slices or Discover page."
)
if st.session_state.get("vs_error"):
    _ui.show_error(SliceboardError(st.session_state.pop("vs_error")))


write = partial(_writes.write, project_name, error_key="vs_error")


def switcher(label: str, options: list[str], key: str, param: str, default: str) -> str:
    """A view switcher kept in session state and in the URL (``?param=``)."""
    by_url = {URL_VIEWS[o]: o for o in options}
    if st.session_state.get(key) not in options:
        st.session_state[key] = by_url.get(st.query_params.get(param), default)
    choice = st.radio(label, options, key=key, horizontal=True, label_visibility="collapsed")
    if st.query_params.get(param) != URL_VIEWS[choice]:
        st.query_params[param] = URL_VIEWS[choice]
    return choice


def do_remove(name: str, picked: list) -> None:
    write(
        remove_members, name, picked, done=f"Removed {len(picked):,} example(s) from the draft of “{_ui.plain(name)}”."
    )
    st.session_state.pop(f"vs_draft_{name}", None)


def do_commit(name: str) -> None:
    try:
        with _ui.store().write() as con:
            done = commit(con, get_project(con, project_name), name, st.session_state.get("vs_message", ""))
    except SliceboardError as exc:
        st.session_state["vs_error"] = str(exc)
        return
    _ui.clear_caches()
    st.session_state["vs_message"] = ""
    _writes.flash(
        f"Committed version {done.version} of “{_ui.plain(name)}” ({done.n_members:,} members, hash "
        f"{done.content_hash[:12]})."
    )
    st.session_state["vs_committed"] = (name, done.version, done.n_members, done.content_hash[:12])


def do_delete(name: str) -> None:
    st.session_state.pop("vs_confirm", None)
    write(delete_set, name, done=f"Deleted the set “{_ui.plain(name)}”.")
    if "vs_error" not in st.session_state:
        st.session_state.pop("vs_open", None)
        st.query_params.pop("set", None)


sets = _ui.query(list_sets, project_name)
committed = bool(len(sets)) and bool((sets["latest_version"] > 0).any())
view = switcher("View", [MATRIX, SETS], "vs_view", "view", MATRIX if committed else SETS)

if view == MATRIX:  # only the chosen view is computed
    views.matrix_view(project_name, project, _ui.query(evaluate, project_name))
    _report_ui.add_to_report(project_name, [("The sets × versions matrix", "valsets", {})], key="vs_report")
    st.stop()

left, right = st.columns([3, 2])
with left:
    views.table(sets, key="vs_list")
if not _ui.read_only():  # read-only mode: no new set
    with right:
        views.create_form(project, write)
if sets.empty:
    st.info("No validation sets yet: create one here, or promote a slice's errors from the Slices page.")
    st.stop()
names = list(sets["name"])
if st.session_state.get("vs_open") not in names:
    wanted = st.query_params.get("set")
    st.session_state["vs_open"] = wanted if wanted in names else names[0]
chosen = st.selectbox("Open a set", names, key="vs_open")
st.query_params["set"] = chosen
info = sets.set_index("name").loc[chosen]
latest = int(info["latest_version"])
st.markdown(
    f"**{_ui.plain(chosen)}** · {_ui.plain(info['description']) or 'no description'} · latest version "
    f"**{latest or '–'}** · draft: **{int(info['draft_members']):,}** members"
    + (f" · criteria: {_ui.plain(info['criteria'])}" if info["criteria"] else "")
)
just = st.session_state.pop("vs_committed", None)
if just and just[0] == chosen:
    st.success(f"Committed version {just[1]} ({just[2]:,} members, hash `{just[3]}`).", icon=":material/check:")
if not _ui.read_only():
    if latest:
        st.caption(
            "A set with committed versions is kept: its versions are the record of what models were checked against."
        )
    elif st.session_state.get("vs_confirm") == chosen:
        with st.container(border=True):
            st.warning(
                f"Delete the set “{_ui.plain(chosen)}” and its draft of {int(info['draft_members']):,} "
                "members? This cannot be undone.",
                icon=":material/delete:",
            )
            a, b = st.columns([1, 5])
            a.button("Delete it", key="vs_delete_yes", type="primary", on_click=do_delete, args=(chosen,))
            b.button("Keep it", key="vs_delete_no", on_click=lambda: st.session_state.pop("vs_confirm", None))
    else:
        st.button(
            "Delete this set",
            key="vs_delete",
            icon=":material/delete:",
            on_click=lambda: st.session_state.update(vs_confirm=chosen),
        )

part = switcher("Part", [DRAFT, HISTORY, EXPORT], "vs_part", "part", DRAFT)
if part == DRAFT:
    draft = _ui.query(members, project_name, name=chosen, version="draft")
    event = views.table(draft, key=f"vs_draft_{chosen}", on_select="rerun", selection_mode="multi-row")
    picked = [draft["example_id"].iloc[i] for i in (event.selection.rows if event else []) if i < len(draft)]
    if not _ui.read_only():  # read-only mode: no removal, no commit
        a, b = st.columns([1, 3])
        a.button(
            f"Remove {len(picked)} selected from the draft",
            key="vs_remove",
            disabled=not picked,
            on_click=do_remove,
            args=(chosen, picked),
        )
        with b.form("vs_commit"):
            st.text_input("Commit message", key="vs_message", placeholder="what this version adds")
            st.form_submit_button(
                "Commit the draft as a new version", type="primary", on_click=do_commit, args=(chosen,)
            )
elif part == HISTORY:
    views.history_view(project_name, chosen)
else:
    versions = _ui.query(history, project_name, name=chosen)
    views.export_view(project_name, project, chosen, [int(v) for v in versions["version"]])

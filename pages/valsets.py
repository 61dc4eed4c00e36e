"""Validation sets: create sets, review and commit their drafts, history and diffs,
export for offline scoring, and every model version evaluated on every set."""

import streamlit as st

from analysis import SliceboardError, get_project
from analysis.valsets import commit, create_set, diff, evaluate, history, list_sets, members, remove_members
from pages import _report_ui, _ui
from pages import _valset_views as views

_ui.require_app()
project_name = _ui.current_project()
project = _ui.query(get_project, None, name=project_name)
st.title("Validation sets")
st.caption("Failing examples worth remembering, frozen into numbered versions that every model version is "
           "evaluated on. Promote examples from the Slices or Discover page.")

sets = _ui.query(list_sets, project_name)
matrix_tab, sets_tab = st.tabs(["Sets × model versions", "Sets"])
with matrix_tab:
    views.matrix_view(project_name, project, _ui.query(evaluate, project_name))
    _report_ui.add_to_report(project_name, [("The sets × versions matrix", "valsets", {})], key="vs_report")

with sets_tab:
    left, right = st.columns([3, 2])
    left.dataframe(sets, hide_index=True, key="vs_list")
    if not _ui.read_only():  # read-only mode: no new set
        with right.form("vs_create", clear_on_submit=True):
            st.markdown("##### New set")
            name = st.text_input("Name", key="vs_new_name")
            description = st.text_input("Description", key="vs_new_description")
            owner = st.text_input("Owner (optional)", key="vs_new_owner")
            tags = st.text_input("Tags (comma-separated)", key="vs_new_tags")
            criteria = st.text_area("Pass criteria, one per line", key="vs_new_criteria", height=68,
                                    placeholder="accuracy >= 0.9\nrecall >= 0.8")
            if st.form_submit_button("Create"):
                try:
                    with _ui.store().write() as con:
                        create_set(con, project, name, description=description, owner=owner,
                                   tags=[t for t in tags.split(",")], criteria=[c for c in criteria.splitlines() if c.strip()])
                    _ui.clear_caches()
                    st.rerun()
                except SliceboardError as exc:
                    _ui.show_error(exc)
    if sets.empty:
        st.info("No validation sets yet: create one here, or promote a slice's errors from the Slices page.")
        st.stop()
    wanted = st.query_params.get("set")
    chosen = st.selectbox("Open a set", list(sets["name"]), key="vs_open",
                          index=list(sets["name"]).index(wanted) if wanted in list(sets["name"]) else 0)
    st.query_params["set"] = chosen
    info = sets.set_index("name").loc[chosen]
    draft = _ui.query(members, project_name, name=chosen, version="draft")
    versions = _ui.query(history, project_name, name=chosen)
    st.markdown(f"**{_ui.plain(chosen)}** · {_ui.plain(info['description']) or 'no description'} · latest version "
                f"**{int(info['latest_version']) or '–'}** · draft: **{len(draft):,}** members"
                + (f" · criteria: {_ui.plain(info['criteria'])}" if info["criteria"] else ""))
    draft_tab, history_tab, export_tab = st.tabs(["Draft", "History and diff", "Export and re-score"])
    with draft_tab:
        event = st.dataframe(draft, hide_index=True, key=f"vs_draft_{chosen}", on_select="rerun",
                             selection_mode="multi-row")
        picked = [draft["example_id"].iloc[i] for i in (event.selection.rows if event else [])]
        a, b = st.columns([1, 3])
        if not _ui.read_only():  # read-only mode: no removal, no commit
            if a.button(f"Remove {len(picked)} selected from the draft", key="vs_remove", disabled=not picked):
                with _ui.store().write() as con:
                    remove_members(con, project, chosen, picked)
                _ui.clear_caches()
                st.rerun()
            with b.form("vs_commit"):
                message = st.text_input("Commit message", key="vs_message", placeholder="what this version adds")
                if st.form_submit_button("Commit the draft as a new version", type="primary"):
                    try:
                        with _ui.store().write() as con:
                            done = commit(con, project, chosen, message)
                        _ui.clear_caches()
                        st.success(f"Committed version {done.version} ({done.n_members:,} members, "
                                   f"hash `{done.content_hash[:12]}`).")
                    except SliceboardError as exc:
                        _ui.show_error(exc)
    with history_tab:
        st.dataframe(versions, hide_index=True, key=f"vs_history_{chosen}")
        options = ["draft", *[int(v) for v in sorted(versions["version"])]]
        c, d = st.columns(2)
        old = c.selectbox("From", options, index=max(0, len(options) - 1), key="vs_diff_old")
        new = d.selectbox("To", options, index=0, key="vs_diff_new")
        changes = _ui.query(diff, project_name, name=chosen, old=old, new=new)
        st.caption(f"{int((changes['change'] == 'added').sum()):,} added, "
                   f"{int((changes['change'] == 'removed').sum()):,} removed")
        st.dataframe(changes, hide_index=True, key="vs_diff")
    with export_tab:
        views.export_view(project_name, project, chosen, [int(v) for v in versions["version"]])

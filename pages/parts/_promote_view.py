"""Promote examples into a validation set: from the Slices page (the whole slice, its
errors, one bucket, a sample, or the rows selected in Examples) and from Discover."""

from __future__ import annotations

import streamlit as st

from analysis import SliceboardError
from analysis.numbers import format_count
from analysis.slices.buckets import buckets_for
from analysis.valsets import Selection, create_set, list_sets, preview_promotion, promote
from pages.parts import _ui
from pages.parts._writes import flash

NEW_SET = "+ a new set…"


def promote_view(
    project_name: str, project, scope, current, key: str, source: dict | None = None, selected_ids: tuple[str, ...] = ()
) -> None:
    """The promotion form; ``source`` overrides what each member records it came from."""
    sets = list(_ui.query(list_sets, project_name)["name"])
    if st.session_state.get(f"{key}_set_pending") in sets:  # a set just created: picked in the list
        st.session_state[f"{key}_set"] = st.session_state.pop(f"{key}_set_pending")
    a, b = st.columns([2, 3])
    target = a.selectbox("Validation set", [*sets, NEW_SET], key=f"{key}_set", persist_state="page")
    if target == NEW_SET:
        target = a.text_input("Name of the new set", key=f"{key}_new_name", persist_state="page").strip()
    whats = ["the whole slice", "only its errors", "one error bucket"]
    if selected_ids:
        whats.append(f"the {len(selected_ids):,} rows selected in Examples")
    what = b.radio("Promote", whats, horizontal=True, key=f"{key}_what", persist_state="page")
    bucket = None
    if what == "one error bucket":
        bucket = b.selectbox(
            "Bucket",
            [x for x in buckets_for(project.task) if x != "unlabeled"],
            key=f"{key}_bucket",
            persist_state="page",
        )
    c, d = st.columns([1, 4])
    sample = c.number_input(
        "Random sample of (0 = all)", 0, 1_000_000, 0, step=100, key=f"{key}_sample", persist_state="page"
    )
    reason = d.text_input(
        "Reason (kept with every example)",
        key=f"{key}_reason",
        persist_state="page",
        placeholder=f"what goes wrong on {current.readable() or 'these rows'}, and since when",
    )
    if what.startswith("the ") and what.endswith("Examples"):
        selection = Selection(prediction_ids=tuple(sorted(selected_ids)))
    else:
        selection = Selection(
            scope=scope,
            slice_=current,
            only_errors=what == "only its errors",
            bucket=bucket,
            sample=int(sample) or None,
        )
    if not target:
        st.info("Name the new set to see what would be added.")
        return
    if target in sets:
        preview = _ui.query(preview_promotion, project_name, name=target, selection=selection)
        st.caption(
            f"**{preview.new:,}** example(s) will be added to the draft of **{_ui.plain(target)}**; "
            f"{preview.already:,} of the {preview.selected:,} selected are in it already."
        )
    if st.button("Promote to the draft", key=f"{key}_go", type="primary"):
        try:
            with _ui.store().write() as con:
                if target not in sets:
                    create_set(con, project, target)
                done = promote(con, project, target, selection, reason=reason, source=source)
        except SliceboardError as exc:
            _ui.show_error(exc)
            return
        _ui.clear_caches()
        if target not in sets:  # the new set is picked in the list at once
            st.session_state[f"{key}_set_pending"] = target
        flash(
            f"Added {format_count(done.added)} example(s) to the draft of **{_ui.plain(target)}** "
            f"({format_count(done.already)} were in it already). Commit it on the Validation sets page.",
            rerun=True,
        )

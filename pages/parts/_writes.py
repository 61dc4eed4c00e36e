"""Writes from the pages: one write through the engine, then a confirmation the person sees
(a toast on the next run, shown by the app's frame on whatever page comes next)."""

from __future__ import annotations

import streamlit as st

from analysis import SliceboardError, get_project
from pages.parts import _ui, _warm_up

FLASH = "sb_flash"


def flash(message: str, *, rerun: bool = False) -> None:
    """Say ``message`` on the next run. From a callback the next run is the one about to
    happen; from the page's body ``rerun`` starts it at once, so the page shows the new state."""
    st.session_state[FLASH] = message
    if rerun:
        st.rerun()


def show_flash() -> None:
    """The confirmation a write left, once."""
    message = st.session_state.pop(FLASH, None)
    if message:
        st.toast(message, icon=":material/check_circle:")


def write(project_name: str, action, *args, done: str = "", error_key: str, **kwargs):
    """``action(con, project, *args, **kwargs)`` in one write transaction: caches cleared and
    ``done`` said after; an error kept in ``st.session_state[error_key]`` for the page to show
    (the return is then None)."""
    _warm_up.settle()  # see _warm_up.settle: no write computes while libraries are half imported
    try:
        with _ui.store().write() as con:
            result = action(con, get_project(con, project_name), *args, **kwargs)
        _ui.clear_caches()
        if done:
            flash(done)
        return result
    except SliceboardError as exc:
        st.session_state[error_key] = str(exc)
        return None

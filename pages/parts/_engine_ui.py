"""The sidebar's engine panel: which engine answers the project (DuckDB or Spark), a
form to change it, and, after the page ran, which engine answered and how long it took."""

from __future__ import annotations

import streamlit as st

from analysis.engines.settings import DEFAULT_SPARK, EngineSettings, get_settings, masked_remote, set_settings
from analysis.store.project import get_project
from pages.parts import _ui

LABELS = {"duckdb": "DuckDB (embedded)", "spark": "Spark"}


def engine_panel(project: str) -> None:
    """An expander in the sidebar with the project's engine and a form to change it.

    The stored remote is never sent to the browser: it is shown masked
    (``sc://host:443/;token=****``), and the input for a new one is a password field,
    empty by default; left empty, the stored remote is kept."""
    settings = _ui.metadata(get_settings, project)
    st.session_state["sb_answers"] = []  # this run's answers (filled by _ui.query)
    with st.sidebar.expander(f"Engine: {_ui.plain(settings.label)}", icon=":material/memory:"):
        if settings.spark_remote:
            st.caption(f"Spark remote: {_ui.plain(masked_remote(settings.spark_remote))}")
        with st.form("sb_engine_form", border=False):
            engine = st.radio(
                "Engine",
                list(LABELS),
                format_func=LABELS.get,
                key="sb_engine_choice",
                index=list(LABELS).index(settings.engine),
                horizontal=True,
            )
            remote = st.text_input(
                "Spark remote",
                value="",
                type="password",
                key="sb_engine_remote",
                placeholder="empty: keep the current one"
                if settings.spark_remote
                else f"sc://host:15002 (empty: {DEFAULT_SPARK})",
                help="A Spark Connect URL (Databricks: sc://host:443/;token=…) or a local "
                "master such as local[2]. Spark reads projects attached to a Parquet "
                "dataset. Left empty, the stored remote is kept.",
            )
            if st.form_submit_button("Use this engine"):
                with _ui.readable_errors():
                    typed = remote.strip() or None
                    wanted = EngineSettings(engine, (typed or settings.spark_remote) if engine == "spark" else None)
                    with _ui.store().write(create=False) as con:
                        set_settings(con, get_project(con, project), wanted)
                    st.toast(f"{_ui.plain(project)} is answered by {_ui.plain(wanted.check().label)} now.")
                    st.rerun()


def answered_caption() -> None:
    """Below the page's sidebar: which engine answered this page's queries, and how long they took."""
    _ui.trace_mark("run end")
    answers = st.session_state.get("sb_answers") or []
    if not answers:
        return
    engines = sorted({engine for engine, _, _ in answers})
    computed = [seconds for _, seconds, cached in answers if not cached]
    cached = sum(1 for *_, was_cached in answers if was_cached)
    text = f"Answered by {_ui.plain(', '.join(engines))}"
    if computed:
        text += f" in {sum(computed):.2f} s"
    if cached:
        text += f" ({cached} of {len(answers)} from cache)"
    st.sidebar.caption(text)

"""Present: a report for a meeting. Big numbers, plain words, charts, nothing to edit.
Opens from a deep link: ``/present?project=NAME&report=REPORT``."""

import streamlit as st

from analysis.reports import get_report, list_reports
from pages.parts import _block_view, _ui

_ui.require_app()
# A presentation shows no sidebar (no project picker, no page list): collapsed for this
# page only; the other pages keep theirs (app.py sets the sidebar's state on every run).
st.set_page_config(initial_sidebar_state="collapsed")
project_name = _ui.current_project()
names = list(_ui.query(list_reports, project_name)["name"])
wanted = st.query_params.get("report") or st.session_state.get("sb_report")
if wanted not in names:
    if not names:
        st.info("This project has no report yet: build one on the Reports page.")
        st.page_link("pages/reports.py", label="Open Reports", icon=":material/description:")
        st.stop()
    wanted = st.selectbox("Report to present", names, key="present_pick")
st.query_params["report"] = wanted
st.page_link("pages/reports.py", label="Back to Reports", icon=":material/arrow_back:")
report = _ui.query(get_report, project_name, name=wanted)
st.markdown(f"# {_ui.plain(report.title)}")
st.caption(
    f"{_ui.plain(project_name)} · {len(report.blocks)} parts · numbers as computed on "
    + ", ".join(sorted({f"{b.computed_at:%Y-%m-%d}" for b in report.blocks}))
    if report.blocks
    else ""
)
for block in report.blocks:
    st.divider()
    st.markdown(f"## {_ui.plain(block.title)}")
    _block_view.draw_block(block.kind, block.snapshot, key=f"present_{block.block_id}", big=True)

"""Compare: a candidate model version against a baseline, overall and per slice, on
ML and product metrics, with the deployment gate's verdict at the top."""

import streamlit as st

from analysis import get_project
from analysis.compare import Side, daily
from analysis.gate import run_gate
from analysis.overview import project_summary
from analysis.valsets import evaluate
from pages import _compare_views as views
from pages import _report_ui, _ui

ALL_STAGES = "all stages"

_ui.require_app()
project_name = _ui.current_project()
summary = _ui.query(project_summary, project_name)
project = _ui.query(get_project, None, name=project_name)
st.title("Compare")
versions = list(summary.versions)
if len(versions) < 2:
    st.info("Comparing needs two model versions; this project has one.")
    st.stop()
for key, param, default in (("cmp_base", "baseline", versions[0]), ("cmp_cand", "candidate", versions[-1])):
    if key not in st.session_state:
        wanted = st.query_params.get(param)
        st.session_state[key] = wanted if wanted in versions else default
a, b, c, d, e = st.columns([2, 2, 2, 2, 3])
base_version = a.selectbox("Baseline", versions, key="cmp_base")
base_stage = b.selectbox("Baseline stage", [ALL_STAGES, *summary.stages], key="cmp_base_stage")
cand_version = c.selectbox("Candidate", versions, key="cmp_cand")
cand_stage = d.selectbox("Candidate stage", [ALL_STAGES, *summary.stages], key="cmp_cand_stage")
first, last = summary.first_timestamp.date(), summary.last_timestamp.date()
window = e.date_input("Time window", value=(first, last), min_value=first, max_value=last, key="cmp_window")
st.query_params["baseline"], st.query_params["candidate"] = base_version, cand_version
start, end = (window[0], window[1]) if isinstance(window, (list, tuple)) and len(window) == 2 else (first, last)
baseline = Side(base_version, None if base_stage == ALL_STAGES else base_stage)
candidate = Side(cand_version, None if cand_stage == ALL_STAGES else cand_stage)
if baseline == candidate:
    st.info("Pick two different versions (or stages) to compare.")
    st.stop()

with st.spinner("Comparing overall, on every feature value, saved and discovered slice…"):
    verdict = _ui.query(run_gate, project_name, baseline=baseline, candidate=candidate, start=start, end=end)
comparison = verdict.comparison
views.verdict_view(verdict)
view = {"baseline": baseline, "candidate": candidate, "start": start, "end": end}
_report_ui.add_to_report(project_name, [("The comparison", "comparison", view), ("The gate's verdict", "gate", view),
                                        ("Both versions over time", "series", view)], key="cmp_report")
st.caption(f"{_ui.plain(comparison.method)}. Delta = candidate − baseline; 95% intervals.")
views.overall_view(comparison)
views.slices_view(project_name, comparison)
views.series_view(_ui.query(daily, project_name, baseline=baseline, candidate=candidate, start=start, end=end),
                  comparison)
views.sets_view(_ui.query(evaluate, project_name), baseline, candidate)
with st.expander("Product metrics of this project"):
    views.product_metrics_editor(project_name, project)
with st.expander("Gate criteria of this project"):
    views.criteria_editor(project_name, project)

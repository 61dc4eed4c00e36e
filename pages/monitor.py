"""Monitor: the alerts of the project's monitors (:mod:`pages.parts._alert_views`), then how a
model version performs on the recent past, before its labels arrive.

Each period's metrics are estimated from the model's own scores, calibrated on a labeled
reference window; as labels arrive they are combined with the estimate. A timeline per
slice (every row, saved slices, a typed slice or one opened from Slices): the estimate in
its band, the combined figure, the realized figure and the labeled share; a click on a
period opens it in Slices or Discover. Version, stage, periods, metric and slices live in
the URL (the typed slice as ``?where=``)."""

import streamlit as st

from analysis import get_project
from analysis.estimation.reference import get_reference_choice, version_stages
from analysis.estimation.timeline import estimable_metrics
from analysis.metrics.registry import headline_metrics
from analysis.numbers import metric_title
from analysis.overview import project_summary
from analysis.slices import Slice, parse_slice
from analysis.slices.saved import list_slices
from pages.parts import _alert_views as alert_views
from pages.parts import _monitor_views as views
from pages.parts import _ui, _url

EVERY_ROW = "Every row"
PERIODS = {"day": "Day", "week": "Week", "month": "Month"}

_ui.require_app()
project_name = _ui.current_project()
summary = _ui.query(project_summary, project_name)
project = _ui.query(get_project, None, name=project_name)
st.title("Monitor")
st.caption(
    "The alerts of the project's monitors, raised only within its false-alarm budget; then how the model "
    "does on recent data before the labels are in: each period's metrics estimated from the model's own "
    "scores, calibrated on a labeled reference window, with 95% intervals; combined with the labels as they "
    "arrive."
)
alert_views.alert_feed(project_name)
alert_views.monitor_list(project_name)
st.divider()

metrics = list(estimable_metrics(project))
if not metrics:
    st.info(f"Label-free estimates are made for classifiers with scores; {project_name} is a {project.task} task.")
    st.stop()

if st.session_state.get("mo_for", project_name) != project_name:  # another project: its own choices
    for key in ("mo_version", "mo_stage", "mo_saved", "mo_text", "mo_metric"):
        st.session_state.pop(key, None)
    for param in ("version", "stage", "saved", "where", "metric"):
        st.query_params.pop(param, None)
st.session_state["mo_for"] = project_name
stages_of = {v: _ui.query(version_stages, project_name, version=v) for v in summary.versions}
serving = [v for v in summary.versions if "production" in stages_of[v]]
_url.start_choice("mo_version", "version", summary.versions, (serving or summary.versions)[-1])
_url.start_choice("mo_by", "by", list(PERIODS), "day")
_url.start_choice("mo_metric", "metric", metrics, headline_metrics(project.task)[0])
saved = _ui.query(list_slices, project_name)
_url.start_choices("mo_saved", "saved", list(saved["name"]), [])

a, b, c, d = st.columns([3, 2, 3, 3])  # "Month" fits in the Periods control
version = a.selectbox("Model version", summary.versions, key="mo_version")
stages = stages_of[version]
_url.start_choice("mo_stage", "stage", stages, "production" if "production" in stages else stages[0])
stage = b.selectbox("Stage", stages, key="mo_stage")
by = c.segmented_control("Periods", list(PERIODS), format_func=PERIODS.get, key="mo_by", required=True)
metric = d.selectbox("Metric", metrics, format_func=metric_title, key="mo_metric")
e, f = st.columns(2)
picked = e.multiselect("Saved slices", list(saved["name"]), key="mo_saved")
# Its own parameter: the Slices page's ?slice= is that page's, and stays as it left it.
typed = _url.slice_input("mo_text", "where", project, "Slice", container=f)
st.query_params.update({"version": version, "stage": stage, "by": by, "metric": metric})
_url.keep("saved", picked)

choice = _ui.metadata(get_reference_choice, project_name)
if views.reference_panel(project_name, version, stage, choice) is None:
    st.info("Estimates need a labeled past to calibrate on: choose the reference window above.")
    st.stop()

# A slice typed or opened from another page first: it is what the person came to see.
shown: list[tuple[str, Slice]] = [(typed.readable(), typed)] if typed.conditions else []
where = dict(zip(saved["name"], saved["where"]))
shown += [(EVERY_ROW, Slice())] + [(name, parse_slice(where[name])) for name in picked]
for name, slice_ in shown:
    views.slice_timeline(project_name, name, slice_, version=version, stage=stage, by=by, metric=metric)

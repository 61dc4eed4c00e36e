"""Compare: a candidate model version against a baseline, overall and per slice, on
ML and product metrics, with the deployment gate's verdict at the top.

Baseline, candidate, stages, window, "only the days both served" and the view live in
the URL, so a link reproduces what is on screen. Only the chosen view is computed; the
overall figures come first and the gate's verdict (every slice, and the search of
where the candidate is worse) fills in above them, with progress."""

import streamlit as st

from analysis import SliceboardError, get_project
from analysis.compare.comparison import Side, daily
from analysis.compare.gate import run_gate
from analysis.overview import project_summary
from analysis.valsets import evaluate
from pages.parts import _compare_views as views
from pages.parts import _report_ui, _slow, _ui, _url

ALL_STAGES = "all stages"
VIEWS = {
    "overall": "Overall",
    "slices": "Slices",
    "time": "Over time",
    "sets": "Validation sets",
    "settings": "Metrics and criteria",
}

_ui.require_app()
project_name = _ui.current_project()
summary = _ui.query(project_summary, project_name)
project = _ui.query(get_project, None, name=project_name)
st.title("Compare")
versions = list(summary.versions)
if len(versions) < 2:
    st.info("Comparing needs two model versions; this project has one.")
    st.stop()
stages = [ALL_STAGES, *summary.stages]
first, last = summary.first_timestamp.date(), summary.last_timestamp.date()


# The URL seeds the widgets once per session (a shared link opens the same view).
params = st.query_params
for key, param, options, default in (
    ("cmp_base", "baseline", versions, versions[0]),
    ("cmp_cand", "candidate", versions, versions[-1]),
    ("cmp_base_stage", "baseline_stage", stages, ALL_STAGES),
    ("cmp_cand_stage", "candidate_stage", stages, ALL_STAGES),
    ("cmp_view", "view", list(VIEWS), "overall"),
):
    if key not in st.session_state:
        wanted = params.get(param)
        st.session_state[key] = wanted if wanted in options else default
_url.start_dates(("cmp_from", "cmp_to"), ("start", "end"), first, last)
if "cmp_overlap" not in st.session_state:
    st.session_state["cmp_overlap"] = params.get("overlap") != "0"

a, b, c, d, e = st.columns([2, 2, 2, 2, 5])  # the window: two dates and Apply
base_version = a.selectbox("Baseline", versions, key="cmp_base")
base_stage = b.selectbox("Baseline stage", stages, key="cmp_base_stage")
cand_version = c.selectbox("Candidate", versions, key="cmp_cand")
cand_stage = d.selectbox("Candidate stage", stages, key="cmp_cand_stage")
start, end, window_notes = _url.window_input(e, ("cmp_from", "cmp_to"), first, last)
overlap = st.toggle(
    "Only the days both versions served (when they did not score the same examples)",
    key="cmp_overlap",
    help="Two versions that served over different days are compared on the days they share; "
    "what is left out of each is said below.",
)
for note in window_notes:
    st.caption(_ui.plain(note))
view_key = (
    st.segmented_control("View", list(VIEWS), format_func=VIEWS.get, key="cmp_view", label_visibility="collapsed")
    or "overall"
)
url = {"baseline": base_version, "candidate": cand_version, "view": view_key}
url |= {k: v for k, v in (("baseline_stage", base_stage), ("candidate_stage", cand_stage)) if v != ALL_STAGES}
url |= {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v != (first if k == "start" else last)}
if not overlap:
    url["overlap"] = "0"
for param in ("baseline_stage", "candidate_stage", "start", "end", "overlap"):
    if param not in url:
        params.pop(param, None)
for param, value in url.items():
    if params.get(param) != value:
        params[param] = value

baseline = Side(base_version, None if base_stage == ALL_STAGES else base_stage)
candidate = Side(cand_version, None if cand_stage == ALL_STAGES else cand_stage)
if baseline == candidate:
    st.info("Pick two different versions (or stages) to compare.")
    st.stop()

FIGURES_WAIT = 30.0  # seconds the page waits for the overall figures (they come first; a second or two)


def comparison_and_verdict(args: dict):
    """The gate's verdict (or its pending state) and the overall figures. One computation
    gives both: it says the overall figures before it searches the slices, and the page
    shows them as soon as they are in (None: not in after FIGURES_WAIT)."""
    verdict = _slow.answer(run_gate, project_name, progress=True, figures=True, **args)
    if not isinstance(verdict, _slow.Pending):
        return verdict.comparison, verdict
    with st.spinner("Comparing the two versions overall…", show_time=True):
        first = verdict.first_figures(timeout=FIGURES_WAIT)
    if first is None and verdict.job.done():  # it ended first: its answer, or its error
        verdict = _slow.answer(run_gate, project_name, progress=True, figures=True, **args)
        return verdict.comparison, verdict
    return first, verdict


verdict_box = st.empty()  # the gate's verdict, filled in after the first figures
args = {"baseline": baseline, "candidate": candidate, "start": start, "end": end, "overlap": overlap}
try:
    # The gate searches every slice: on millions of rows it takes seconds, computed on a
    # worker while the rest of the page is drawn and used; its part fills in by itself.
    first_figures, verdict = comparison_and_verdict(args)
except SliceboardError as exc:
    _ui.show_error(exc)
    st.stop()
if first_figures is None:
    st.caption("The overall figures come with the gate's verdict, above.")
else:
    views.method_caption(first_figures)
report_view = {"baseline": baseline, "candidate": candidate, "start": start, "end": end, "overlap": overlap}
if view_key == "overall" and first_figures is not None:
    views.overall_view(first_figures)
with verdict_box.container():
    if isinstance(verdict, _slow.Pending):
        _slow.show_pending(
            verdict, "Checking the gate: every slice, and the search of where the candidate is worse than the baseline"
        )
    else:
        with st.container(key="cmp_verdict"):
            views.verdict_view(verdict)
    _report_ui.add_to_report(
        project_name,
        [
            ("The comparison", "comparison", report_view),
            ("The gate's verdict", "gate", report_view),
            ("Both versions over time", "series", report_view),
        ],
        key="cmp_report",
    )
if view_key == "slices":
    if isinstance(verdict, _slow.Pending):
        st.caption("The slices come with the gate's verdict, above, when its search is done.")
    else:
        views.slices_view(project_name, verdict.comparison)
elif view_key == "time" and first_figures is not None:
    views.series_view(
        _ui.query(daily, project_name, baseline=baseline, candidate=candidate, start=start, end=end), first_figures
    )
elif view_key == "sets":
    views.sets_view(_ui.query(evaluate, project_name), baseline, candidate)
elif view_key == "settings":
    st.subheader("Product metrics of this project")
    views.product_metrics_editor(project_name, project)
    st.subheader("Gate criteria of this project")
    views.criteria_editor(project_name, project)

"""Slices: build a slice from the project's columns and see its metrics with
95% intervals next to the rest and the whole scope. The URL carries the
project, version, stages, the slice (``?slice=country = NG AND age < 25``) and
the view (``?view=errors``); only the chosen view is computed."""

import streamlit as st

from analysis import SliceboardError, get_project
from analysis.overview import project_summary
from analysis.slices import Slice, parse_slice, validate_slice
from analysis.slices.metrics import slice_metrics
from analysis.store.scope import Scope
from pages.parts import _report_ui, _ui, _url
from pages.parts import _slice_examples as examples
from pages.parts import _slice_views as views
from pages.parts._promote_view import promote_view
from pages.parts._saved_view import saved_view
from pages.parts._slice_builder import condition_builder

ALL = "All versions"

_ui.require_app()

project_name = _ui.current_project()
summary = _ui.query(project_summary, project_name)
project = _ui.query(get_project, None, name=project_name)
st.title("Slices")

# --- scope: version and stages, kept in the URL ---------------------------------------
if st.session_state.get("sl_for", project_name) != project_name:  # another project: its own scope, no slice
    for key in ("sl_version", "sl_stages", "sl_text", "sl_drill", "sl_selected", "sl_from", "sl_to"):
        st.session_state.pop(key, None)
    for param in ("version", "stage", "slice", "from", "to"):
        st.query_params.pop(param, None)
st.session_state["sl_for"] = project_name
if "sl_pending_scope" in st.session_state:  # a saved slice opened: its version and stages come back
    versions, wanted_stages = st.session_state.pop("sl_pending_scope")
    st.session_state["sl_version"] = versions[0] if len(versions) == 1 and versions[0] in summary.versions else ALL
    st.session_state["sl_stages"] = [x for x in wanted_stages if x in summary.stages] or list(summary.stages)
if "sl_version" not in st.session_state:
    wanted = st.query_params.get("version")
    st.session_state["sl_version"] = wanted if wanted in summary.versions else ALL
if "sl_stages" not in st.session_state:
    wanted_stages = [x for x in st.query_params.get_all("stage") if x in summary.stages]
    st.session_state["sl_stages"] = wanted_stages or list(summary.stages)
first, last = summary.first_timestamp.date(), summary.last_timestamp.date()
a, b, c = st.columns([3, 3, 4])
version = a.selectbox("Model version", [ALL, *summary.versions], key="sl_version")
stages = b.multiselect("Stages", summary.stages, key="sl_stages")
start, end = _url.page_window(c, "sl", first, last, _ui.plain)
if stages and set(stages) != set(summary.stages):
    st.query_params["stage"] = stages
else:
    st.query_params.pop("stage", None)
every_stage = not stages or set(stages) == set(summary.stages)  # all stages: no stage filter
scope = Scope.of(
    versions=None if version == ALL else version,
    stages=None if every_stage else stages,
    start=None if start == first else start,
    end=None if end == last else end,
)
if version == ALL:
    st.query_params.pop("version", None)
else:
    st.query_params["version"] = version


# --- the slice: from the URL, edited by the builder or as text --------------------------
def example_slice(project) -> str:
    """The text box's example, in the project's own columns (a categorical one and a number)."""
    cat = next((c.name for c in project.features if c.kind == "categorical"), None)
    num = next((c.name for c in project.features if c.kind == "numeric"), None)
    parts = ([f"{cat} = …"] if cat else []) + ([f"{num} < …"] if num else [])
    return " AND ".join(parts) or "column = value"


if "sl_pending" in st.session_state:  # set by a button below, applied before the widget exists
    st.session_state["sl_text"] = st.session_state.pop("sl_pending")
if "sl_text" not in st.session_state:
    st.session_state["sl_text"] = st.query_params.get("slice", "")
text = st.text_input(
    "Slice",
    key="sl_text",
    placeholder=example_slice(project),
    help="Conditions joined by AND: `col = v`, `col != v`, `col in (a, b)`, `col < 5`, "
    '`1 <= col < 5`, `col is null`, `col is true`, `col contains "text"`.',
)
try:
    current = validate_slice(parse_slice(text), project)
except SliceboardError as exc:
    _ui.show_error(exc)
    current = Slice()
readable = current.readable() if current.conditions else ""
if readable:
    st.query_params["slice"] = readable
else:
    st.query_params.pop("slice", None)


def set_slice(new: Slice) -> None:
    st.session_state["sl_pending"] = new.readable() if new.conditions else ""
    st.rerun()


def open_saved(where: str, versions, stages) -> None:
    """Open a saved slice in the version and stages it was saved for."""
    st.session_state["sl_pending_scope"] = (list(versions), list(stages))
    set_slice(parse_slice(where))


condition_builder(project_name, project, scope, current, set_slice)

if current.conditions:
    st.caption("Conditions (click to remove)")
    chips = st.columns(min(len(current.conditions), 4))
    for i, c in enumerate(current.conditions):
        if chips[i % len(chips)].button(f"✕ {_ui.plain(c.readable())}", key=f"sl_remove_{i}"):
            set_slice(Slice(current.conditions[:i] + current.conditions[i + 1 :]))

# --- views of the slice: only the chosen one is computed ----------------------------------
st.subheader(_ui.plain(readable) if readable else "All rows")
if readable:  # its recent weeks estimated before the labels arrive
    watch = {"where": readable} | ({"version": version} if version != ALL else {})
    st.page_link("pages/monitor.py", label="Monitor this slice", icon=":material/query_stats:", query_params=watch)
_report_ui.add_to_report(
    project_name, [("This slice's metrics", "slice", {"slice": current, "scope": scope})], key="sl_report"
)
VIEWS = ["Metrics", "Breakdown", "Leaderboard", "Errors", "Examples", "Saved"] + (
    [] if _ui.read_only() else ["Promote"]
)  # read-only mode: no promotion
if "sl_view_pending" in st.session_state:  # set by a drill or a write, applied before the switcher exists
    st.session_state["sl_view"] = st.session_state.pop("sl_view_pending")
if st.session_state.get("sl_view") not in VIEWS:
    wanted = str(st.query_params.get("view", "")).capitalize()
    st.session_state["sl_view"] = wanted if wanted in VIEWS else VIEWS[0]
view = st.segmented_control("View", VIEWS, key="sl_view", required=True, label_visibility="collapsed")
if view == VIEWS[0]:
    st.query_params.pop("view", None)
else:
    st.query_params["view"] = view.lower()

DRAW = {
    "Metrics": lambda: views.metrics_view(_ui.query(slice_metrics, project_name, slice_=current, scope=scope)),
    "Breakdown": lambda: views.breakdown_view(project_name, project, scope, current),
    "Leaderboard": lambda: views.leaderboard_view(project_name, project, scope, current),
    "Errors": lambda: examples.errors_view(project_name, project, scope, current),
    "Examples": lambda: examples.examples_view(project_name, project, scope, current),
    "Saved": lambda: saved_view(project_name, project, scope, current, open_saved=open_saved),
    "Promote": lambda: promote_view(
        project_name, project, scope, current, key="sl_promote", selected_ids=examples.selected_ids(scope, current)
    ),
}
DRAW[view]()

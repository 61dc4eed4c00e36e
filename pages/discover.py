"""Discover: the slices where a model version is worse than it should be (than its own
scores predict, or than another version), or plainly errs most (SliceLine), with
intervals, Benjamini–Hochberg q-values, near-duplicates folded; open or save any of them.
Every choice lives in the URL, so a link reproduces the view."""

import streamlit as st

from analysis import get_project
from analysis.discovery.encode import error_choices
from analysis.discovery.result import AGAINST, RANKING_WORDS
from analysis.discovery.run import DEFAULT_BINS, discover
from analysis.discovery.shown import error_words
from analysis.discovery.tree import error_tree
from analysis.overview import project_summary
from analysis.store.scope import Scope
from pages.parts import _discover_views as views
from pages.parts import _report_ui, _slow, _ui, _url
from pages.parts._discover_settings import search_settings

_ui.require_app()

project_name = _ui.current_project()
summary = _ui.query(project_summary, project_name)
project = _ui.query(get_project, None, name=project_name)
st.title("Discover")
st.caption(
    "Where is the model worse than it should be? Each slice (up to *L* feature conditions) is held "
    "against what its rows should err: what the model's own scores predict for them, or another "
    "version on the same slice; or ranked by plain error (SliceLine, Sagadeeva & Boehm 2021)."
)

EXPRESSION = "a cost expression…"
VIEWS = ["Slices", "Error tree"]
errors = [*error_choices(project), EXPRESSION]


if st.session_state.get("dc_for", project_name) != project_name:  # another project: its own versions and stages
    for key in ("dc_version", "dc_stages", "dc_against", "dc_error", "dc_from", "dc_to", "dc_within"):
        st.session_state.pop(key, None)
    for param in ("version", "stage", "against", "error", "from", "to", "within"):
        st.query_params.pop(param, None)
st.session_state["dc_for"] = project_name
_url.start_choice("dc_version", "version", summary.versions, summary.versions[0])
_url.start_choice("dc_ranking", "ranking", list(AGAINST), "expected")
_url.start_choice("dc_error", "error", errors, errors[0])
_url.start_number("dc_level", "level", 1, 4, 3, int)
_url.start_number("dc_top", "top", 1, 50, 10, int)
_url.start_number("dc_support", "support", 0.0005, 0.5, 0.01)
_url.start_choice("dc_view", "view", VIEWS, VIEWS[0])
_url.start_choices("dc_stages", "stage", summary.stages, summary.stages)

first, last = summary.first_timestamp.date(), summary.last_timestamp.date()
a, b, w = st.columns([3, 3, 4])
version = a.selectbox("Model version", summary.versions, key="dc_version")
stages = b.multiselect("Stages", summary.stages, key="dc_stages")
start, end = _url.page_window(w, "dc", first, last, _ui.plain)
within = _url.slice_input(
    "dc_within",
    "within",
    project,
    "Within a slice (optional)",
    "Search only these rows, e.g. region = east AND age < 30 (the Monitor and Slices pages link here with theirs).",
)
error = st.selectbox(
    "Error to find",
    errors,
    key="dc_error",
    format_func=lambda e: e if e == EXPRESSION else f"{error_words(e)} ({e})" if error_words(e) != e else e,
    help="misclassification, log loss or Brier per row, residuals, an outcome column "
    "(a cost such as money lost), or your own per-row cost.",
)
r1, r2 = st.columns([2, 1])
ranking = r1.segmented_control(
    "Rank slices by",
    AGAINST,
    key="dc_ranking",
    required=True,
    format_func=lambda r: RANKING_WORDS[r] if r != "version" else "worse than another version",
    help="Worse than its scores predict: errors beyond the mean error of rows with about the same score "
    "(the default; the hard population, where every model errs and its scores say so, is not a finding). "
    "Worse than another version: errors beyond that version's error rate on the same slice. "
    "Plain error: where errors are highest.",
)
others = [v for v in summary.versions if v != version]
against = None
if ranking == "version":
    if not others:
        st.info("This project has one version: there is no other version to hold it against.")
        st.stop()
    _url.start_choice("dc_against", "against", others, others[0])
    against = r2.selectbox("Against version", others, key="dc_against")

if error == EXPRESSION:
    error = st.text_input(
        "Cost per row (SQL over the log's columns)",
        key="dc_expression",
        placeholder="CASE WHEN NOT prediction AND label THEN loss ELSE 0 END",
        help="Columns, numbers, arithmetic, comparisons, CASE and scalar functions "
        "(abs, coalesce, least, greatest, round, ln, exp, sqrt). Rows where it is "
        "NULL are left out; it must not be negative.",
    ).strip()
    if not error:
        st.info("Write a cost per row, for example the money lost on approved loans that default.")
        st.stop()
settings = search_settings(project, ranking, error)

# The URL says what is on screen.
st.query_params.update(
    {
        "version": version,
        "ranking": ranking,
        "level": str(settings.max_level),
        "top": str(settings.top_k),
        "support": f"{settings.support:g}",
    }
)
st.query_params["stage"] = stages
for param, value in (("against", against), ("error", None if error not in errors else error)):
    if value:
        st.query_params[param] = value
    else:
        st.query_params.pop(param, None)

scope = Scope.of(version, stages or None, None if start == first else start, None if end == last else end)
if not settings.features:
    st.info("Pick at least one feature to search.")
    st.stop()
view = st.radio("View", VIEWS, horizontal=True, key="dc_view", label_visibility="collapsed")
st.query_params["view"] = view
if view == "Slices":  # only the chosen view is computed
    words = RANKING_WORDS[ranking] if ranking != "version" else f"worse than {against}"
    search = {
        "scope": scope,
        "error": error,
        "columns": settings.features,
        "max_level": settings.max_level,
        "top_k": settings.top_k,
        "min_support": settings.support,
        "alpha": settings.alpha,
        "rank_by": settings.rank_by,
        "bins": settings.bins,
        "ranking": ranking,
        "other_version": against,
        "slice_": within,
    }
    result = None
    with _ui.readable_errors():  # on millions of rows a search takes seconds: computed on a worker
        result = _slow.answer(discover, project_name, **search)
    if isinstance(result, _slow.Pending):
        _slow.show_pending(result, f"Searching slices ({words})")
        st.stop()
    if result is None:  # the search could not run: the message says why
        st.stop()
    inside = f", within {within.readable()}" if within.conditions else ""
    st.status(_ui.plain(views.searched(result) + inside), state="complete", expanded=False)
    views.found_view(project_name, project, version, error, result)
    pinned = {**search, "columns": list(settings.features)}
    _report_ui.add_to_report(project_name, [("These discovered slices", "discovery", pinned)], key="dc_report")
else:
    t1, t2 = st.columns([4, 1])
    depth = t1.slider("Depth", 1, 6, 3, key="dc_depth")
    tree_bins = t2.number_input(
        "Bins for numbers",
        2,
        60,
        DEFAULT_BINS["error"],
        key="dc_tree_bins",
        help="Numbers and timestamps are cut into this many quantile bins for the tree.",
    )
    with st.spinner("Fitting the error tree…"):
        tree = _ui.query(
            error_tree,
            project_name,
            scope=scope,
            error=error,
            columns=settings.features,
            max_depth=int(depth),
            bins=int(tree_bins),
            slice_=within,
        )
    views.tree_view(project_name, version, error, tree)

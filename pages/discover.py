"""Discover: the slices where a model version errs most, found by SliceLine, with
intervals, Benjamini–Hochberg q-values and impact; open or save any of them."""

import streamlit as st

from analysis import get_project
from analysis.breakdown import GROUPABLE
from analysis.discovery.encode import error_choices
from analysis.discovery.run import discover
from analysis.discovery.tree import error_tree
from analysis.overview import project_summary
from analysis.scope import Scope
from pages import _discover_views as views
from pages import _report_ui, _ui

_ui.require_app()

project_name = _ui.current_project()
summary = _ui.query(project_summary, project_name)
project = _ui.query(get_project, None, name=project_name)
st.title("Discover")
st.caption("SliceLine (Sagadeeva & Boehm, 2021) searches every combination of up to *L* feature values "
           "for the slices whose error is far above average and which are big enough to matter.")

if "dc_version" not in st.session_state:
    wanted = st.query_params.get("version")
    st.session_state["dc_version"] = wanted if wanted in summary.versions else summary.versions[0]
a, b, c = st.columns(3)
version = a.selectbox("Model version", summary.versions, key="dc_version")
stages = b.multiselect("Stages", summary.stages, default=list(summary.stages), key="dc_stages")
EXPRESSION = "a cost expression…"
error = c.selectbox("Error to find", [*error_choices(project), EXPRESSION], key="dc_error",
                    help="misclassification, log loss or Brier per row, residuals, an outcome column "
                         "(a cost such as money lost), or your own per-row cost to rank slices by.")
if error == EXPRESSION:
    error = st.text_input("Cost per row (SQL over the log's columns)", key="dc_expression",
                          placeholder="CASE WHEN NOT prediction AND label THEN loss ELSE 0 END",
                          help="Columns, numbers, arithmetic, comparisons, CASE and scalar functions "
                               "(abs, coalesce, least, greatest, round, ln, exp, sqrt). Rows where it is "
                               "NULL are left out; it must not be negative.").strip()
    if not error:
        st.info("Write a cost per row, for example the money lost on approved loans that default.")
        st.stop()
st.query_params["version"] = version
features = [f.name for f in project.features if f.kind in GROUPABLE]
with st.expander("Search settings"):
    s1, s2, s3, s4, s5 = st.columns(5)
    max_level = s1.number_input("Conditions per slice (L)", 1, 4, 3, key="dc_level")
    top_k = s2.number_input("Slices to report (k)", 1, 50, 10, key="dc_top")
    support = s3.number_input("Minimum support σ (share of rows)", 0.001, 0.5, 0.01, 0.005, format="%.3f",
                              key="dc_support")
    alpha = s4.slider("α: error vs size", 0.5, 1.0, 0.95, 0.01, key="dc_alpha")
    rank_by = s5.selectbox("Rank by", ["score", "impact"], key="dc_rank")
    f1, f2 = st.columns([5, 1])
    if any(f not in features for f in st.session_state.get("dc_features", ())):  # another project's features
        del st.session_state["dc_features"]
    chosen = f1.multiselect("Features", features, default=features, key="dc_features")
    bins = f2.number_input("Bins for numbers", 2, 20, 5, key="dc_bins",
                           help="Numbers and timestamps are cut into this many quantile bins; more bins find "
                                "narrower ranges (such as an age band) but need more rows per slice.")

scope = Scope.of(versions=version, stages=stages or None)
if not chosen:
    st.info("Pick at least one feature to search.")
    st.stop()
view = st.radio("View", ["Slices (SliceLine)", "Error tree"], horizontal=True, key="dc_view",
                label_visibility="collapsed")
if view == "Slices (SliceLine)":
    with st.status("Searching slices…", expanded=False) as status:
        result = _ui.query(discover, project_name, scope=scope, error=error, columns=tuple(chosen),
                           max_level=int(max_level), top_k=int(top_k), min_support=float(support),
                           alpha=float(alpha), rank_by=rank_by, bins=int(bins))
        status.update(label=f"Searched {result.n_evaluated:,} slices of {result.n_rows:,} rows in "
                            f"{result.seconds:.2f} s", state="complete")
    views.found_view(project_name, project, version, error, result)
    _report_ui.add_to_report(project_name, [("These discovered slices", "discovery", {
        "scope": scope, "error": error, "columns": chosen, "max_level": int(max_level), "top_k": int(top_k),
        "min_support": float(support), "alpha": float(alpha), "bins": int(bins), "rank_by": rank_by})],
        key="dc_report")
else:  # only the chosen view is computed
    depth = st.slider("Depth", 1, 6, 3, key="dc_depth")
    with st.spinner("Fitting the error tree…"):
        tree = _ui.query(error_tree, project_name, scope=scope, error=error, columns=tuple(chosen),
                         max_depth=int(depth), bins=int(bins))
    views.tree_view(project_name, version, tree)

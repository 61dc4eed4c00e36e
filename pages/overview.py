"""Overview: per model version and stage, volume, label coverage, ML metrics,
product outcomes, and their daily series."""

import plotly.express as px
import streamlit as st

from analysis.metrics import METRICS, metrics_for
from analysis.overview import overview_data, project_summary
from analysis.scope import Scope
from pages import _report_ui, _ui

ALL = "All versions"

_ui.require_app()

project = _ui.current_project()
summary = _ui.query(project_summary, project)
st.title(_ui.plain(project))
st.caption(
    f"{summary.task.capitalize()} task · {_ui.fmt_int(summary.n_rows)} logged predictions · "
    f"{len(summary.versions)} model versions · "
    f"{summary.first_timestamp:%Y-%m-%d} to {summary.last_timestamp:%Y-%m-%d}"
    if summary.n_rows else f"{summary.task.capitalize()} task · no predictions yet"
)
if summary.external:
    st.caption(f"Reads the Parquet dataset {_ui.plain(summary.external)} in place; the daily figures are as of its last "
               "refresh (`python -m analysis attach --refresh`).")
if not summary.n_rows:
    st.info("This project has no logged predictions yet. Ingest a file on the Import page.")
    st.stop()

version_names, stage_names = summary.versions, summary.stages
if "ov_version" not in st.session_state:
    wanted = st.query_params.get("version")
    st.session_state["ov_version"] = wanted if wanted in version_names else ALL
c1, c2, c3 = st.columns([2, 3, 3])
version = c1.selectbox("Model version", [ALL, *version_names], key="ov_version")
stages = c2.multiselect("Stages", stage_names, default=stage_names, key="ov_stages")
first, last = summary.first_timestamp.date(), summary.last_timestamp.date()
window = c3.date_input("Time window", value=(first, last), min_value=first, max_value=last, key="ov_window")
if version == ALL:
    st.query_params.pop("version", None)
else:
    st.query_params["version"] = version

start, end = (window[0], window[1]) if len(window) == 2 else (window[0], window[0])
scope = Scope.of(versions=None if version == ALL else version, stages=stages or None, start=start, end=end)
data = _ui.query(overview_data, project, scope=scope)
_report_ui.add_to_report(project, [("Headline numbers per version", "headline", {
    "scope": scope, "sides": None if version == ALL else [{"version": version, "stage": None}]})], key="ov_report")
table = data.table
if table.empty:
    st.warning("No predictions match these filters.")
    st.stop()

metric_names = list(metrics_for(summary.task))
headline = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "mae"}[summary.task]
labeled, rows = int(table["n_labeled"].sum()), int(table["n_rows"].sum())
st.markdown(
    f"Metrics use **labeled rows only**: {_ui.fmt_int(labeled)} of {_ui.fmt_int(rows)} predictions "
    f"in this view ({_ui.fmt_pct(labeled / rows)}) have a label."
    + (f" {_ui.fmt_int(summary.pending_labels)} labels are waiting for predictions that are not logged yet."
       if summary.pending_labels else "")
)

outcome_names = summary.outcomes
cards = st.columns(min(len(table), 4))
for i, row in enumerate(table.head(4).itertuples(index=False)):
    with cards[i].container(border=True):
        st.markdown(f"**{_ui.plain(row.model_version)}** · {_ui.plain(row.stage)}")
        a, b = st.columns(2)
        a.metric("Predictions", _ui.fmt_int(row.n_rows))
        b.metric("Labeled", _ui.fmt_pct(row.labeled_share))
        a.metric(METRICS[headline].label, _ui.fmt_num(getattr(row, headline), METRICS[headline].fmt))
        second = metric_names[0] if headline != metric_names[0] else metric_names[1]
        b.metric(METRICS[second].label, _ui.fmt_num(getattr(row, second), METRICS[second].fmt))
        for name in outcome_names[:2]:
            st.metric(f"{_ui.plain(name)} (sum)", _ui.fmt_num(getattr(row, f"{name}_sum"), ",.0f"))

st.subheader("Metrics by version and stage")
shown = ["model_version", "stage", "n_rows", "n_labeled", "labeled_share", *metric_names]
for name in outcome_names:
    shown += [f"{name}_sum", f"{name}_mean"]
config = {
    "model_version": st.column_config.TextColumn("Version"),
    "stage": st.column_config.TextColumn("Stage"),
    "n_rows": st.column_config.NumberColumn("Predictions", format="localized"),
    "n_labeled": st.column_config.NumberColumn("Labeled", format="localized"),
    "labeled_share": st.column_config.NumberColumn("Labeled share", format="percent"),
}
config.update({m: st.column_config.NumberColumn(METRICS[m].label, format="%.4f") for m in metric_names})
config.update({f"{o}_sum": st.column_config.NumberColumn(f"{o} sum", format="localized") for o in outcome_names})
config.update({f"{o}_mean": st.column_config.NumberColumn(f"{o} mean", format="%.2f") for o in outcome_names})
st.dataframe(table[shown], column_config=config, hide_index=True, key="ov_table")

st.subheader("Over time")
metric = st.selectbox("Metric", metric_names, index=metric_names.index(headline),
                      format_func=lambda m: METRICS[m].label, key="ov_metric")
daily = data.daily.copy()
daily["series"] = (daily["model_version"] + " · " + daily["stage"]).map(_ui.chart_text)
left, middle, right = st.columns(3)
charts = (
    (left, "n_rows", "Predictions per day", None),
    (middle, "labeled_share", "Label coverage", ".0%"),
    (right, metric, f"{METRICS[metric].label} (labeled rows)", None),
)
for col, y, title, tickformat in charts:
    fig = px.line(daily, x="day", y=y, color="series", title=title, markers=False,
                  labels={"day": "", y: "", "series": ""})
    fig.update_layout(legend=dict(orientation="h", y=-0.2), margin=dict(t=40, l=10, r=10, b=10), height=340)
    if tickformat:
        fig.update_yaxes(tickformat=tickformat)
    col.plotly_chart(fig, key=f"ov_chart_{y}")
st.caption(
    "Label coverage drops for recent days because labels arrive days to weeks after the "
    "prediction; metrics for those days rest on fewer rows."
)

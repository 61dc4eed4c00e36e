"""Overview: per model version and stage, volume, label coverage, ML metrics and product
outcomes (the "By version" view), or their daily series (the "Over time" view). Only the
chosen view is computed. Version, stages, time window and view live in the URL."""

import streamlit as st

from analysis import get_project
from analysis.metrics.product import list_metrics
from analysis.metrics.registry import headline_metrics, metrics_for
from analysis.numbers import (
    format_count,
    format_number,
    format_percent,
    format_value,
    is_share,
    metric_name,
    metric_title,
)
from analysis.overview import daily_series, outcome_units, overview_table, project_summary
from analysis.store.scope import Scope
from pages.parts import _alert_banner, _report_ui, _ui, _url
from pages.parts import _overview_estimates as estimates
from pages.parts._overview_estimates import line_chart

ALL = "All versions"
VIEWS = {"versions": "By version", "time": "Over time"}

_ui.require_app()

project = _ui.current_project()
summary = _ui.query(project_summary, project)
project_definition = _ui.query(get_project, None, name=project)
st.title(_ui.plain(project))
st.caption(
    f"{summary.task.capitalize()} task · {format_count(summary.n_rows)} logged predictions · "
    f"{format_count(len(summary.versions))} model version{'s' if len(summary.versions) != 1 else ''} · "
    f"{summary.first_timestamp:%Y-%m-%d} to {summary.last_timestamp:%Y-%m-%d}"
    if summary.n_rows
    else f"{summary.task.capitalize()} task · no predictions yet"
)
if summary.external:
    st.caption(
        f"Reads the Parquet dataset {_ui.plain(summary.external)} in place; the daily figures are as of its last "
        "refresh (`python -m analysis attach --refresh`)."
    )
if not summary.n_rows:
    st.info("This project has no logged predictions yet. Ingest a file on the Import page.")
    st.stop()
_alert_banner.open_alerts_banner(project)

version_names, stage_names = summary.versions, summary.stages
if st.session_state.get("ov_for", project) != project:  # another project: its own full view, not the last one's
    for key, param in (("ov_version", "version"), ("ov_stages", "stage"), ("ov_from", "from"), ("ov_to", "to")):
        st.session_state.pop(key, None)
        st.query_params.pop(param, None)
st.session_state["ov_for"] = project
first, last = summary.first_timestamp.date(), summary.last_timestamp.date()
_url.start_choice("ov_version", "version", [ALL, *version_names], ALL)
_url.start_choices("ov_stages", "stage", stage_names, stage_names)
_url.start_choice("ov_view", "view", list(VIEWS), "versions")
_url.start_dates(("ov_from", "ov_to"), ("from", "to"), first, last)

c1, c2, c3 = st.columns([2, 3, 3])
version = c1.selectbox("Model version", [ALL, *version_names], key="ov_version")
stages = c2.multiselect("Stages", stage_names, key="ov_stages")
start, end, notes = _url.window_input(c3, ("ov_from", "ov_to"), first, last)
for note in notes:
    st.caption(_ui.plain(note))
view = (
    st.segmented_control("View", list(VIEWS), format_func=VIEWS.get, key="ov_view", label_visibility="collapsed")
    or "versions"
)

_url.keep("version", None if version == ALL else version)
_url.keep("stage", stages if set(stages) != set(stage_names) else None)
_url.keep("from", start, first)
_url.keep("to", end, last)
_url.keep("view", view, "versions")

scope = Scope.of(versions=None if version == ALL else version, stages=stages or None, start=start, end=end)
_report_ui.add_to_report(
    project,
    [
        (
            "Headline numbers per version",
            "headline",
            {"scope": scope, "sides": None if version == ALL else [{"version": version, "stage": None}]},
        )
    ],
    key="ov_report",
)

metric_names = list(metrics_for(summary.task))
headline, second = headline_metrics(summary.task)
outcome_names = summary.outcomes
# An outcome whose plain sum is a product metric (sum(revenue), in $) is shown in its unit.
units = outcome_units(_ui.metadata(list_metrics, project), outcome_names)


def outcome_value(name: str, value) -> str:
    return units[name].show(value) if name in units else format_number(value)


def coverage(rows: int, labeled: int) -> None:
    st.markdown(
        f"Metrics use **labeled rows only**: {format_count(labeled)} of {format_count(rows)} predictions "
        f"in this view ({format_percent(labeled / rows)}) have a label."
        + (
            f" {format_count(summary.pending_labels)} labels are waiting for predictions that are not logged yet."
            if summary.pending_labels
            else ""
        )
    )


def by_version() -> None:
    table = _ui.query(overview_table, project, scope=scope)
    if table.empty:
        st.warning("No predictions match these filters.")
        return
    coverage(int(table["n_rows"].sum()), int(table["n_labeled"].sum()))
    cards = st.columns(min(len(table), 4))
    for i, row in enumerate(table.head(4).to_dict("records")):
        with cards[i].container(border=True):
            st.markdown(f"**{_ui.plain(row['model_version'])}** · {_ui.plain(row['stage'])}")
            a, b = st.columns(2)
            a.metric("Predictions", format_count(row["n_rows"]))
            b.metric("Labeled", format_percent(row["labeled_share"]))
            a.metric(metric_title(headline), format_value(headline, row[headline]))
            b.metric(metric_title(second), format_value(second, row[second]))
            estimates.card(project, project_definition, row["model_version"], row["stage"], headline)
            for name in outcome_names[:2]:
                st.metric(_ui.plain(f"Total {metric_name(name)}"), outcome_value(name, row[f"{name}_sum"]))
    if len(table) > 4:
        st.caption(f"The first 4 of {len(table)} version and stage pairs; all of them are in the table.")

    st.subheader("Metrics by version and stage")
    shown = ["model_version", "stage", "n_rows", "n_labeled", "labeled_share", *metric_names]
    for name in outcome_names:
        shown += [f"{name}_sum", f"{name}_mean"]
    frame = table[shown]
    headers = {
        "model_version": "Version",
        "stage": "Stage",
        "n_rows": "Predictions",
        "n_labeled": "Labeled",
        "labeled_share": "Labeled share",
        **{m: metric_title(m) for m in metric_names},
    }
    for name in outcome_names:
        headers.update({f"{name}_sum": f"Total {metric_name(name)}", f"{name}_mean": f"Mean {metric_name(name)}"})
    formats = {c: (lambda v, c=c: format_value(c, v)) for c in ["n_rows", "n_labeled", "labeled_share", *metric_names]}
    for name in outcome_names:
        formats.update({f"{name}_{k}": (lambda v, n=name: outcome_value(n, v)) for k in ("sum", "mean")})
    config = {c: st.column_config.Column(h) for c, h in headers.items()}  # headers are plain text
    st.dataframe(frame.style.format(formats, na_rep="–"), column_config=config, hide_index=True, key="ov_table")


@st.fragment
def metric_chart(daily) -> None:
    """The chosen metric's chart: picking another metric redraws only this one."""
    metric = st.selectbox(
        "Metric", metric_names, index=metric_names.index(headline), format_func=metric_title, key="ov_metric"
    )
    pairs = daily[["model_version", "stage", "series"]].drop_duplicates().itertuples(index=False)
    shown = estimates.daily_estimates(project, project_definition, list(pairs)[:4], metric)
    title = f"{metric_title(metric)} (labeled rows{'; dotted: estimated' if shown else ''})"
    line_chart(daily, metric, title, is_share(metric), f"ov_chart_{metric}", shown)


def over_time() -> None:
    daily = _ui.query(daily_series, project, scope=scope)
    if daily.empty:
        st.warning("No predictions match these filters.")
        return
    coverage(int(daily["n_rows"].sum()), int(daily["n_labeled"].sum()))
    daily = daily.copy()
    daily["series"] = (daily["model_version"] + " · " + daily["stage"]).map(_ui.chart_text)
    left, middle, right = st.columns(3, vertical_alignment="bottom")
    with left:
        line_chart(daily, "n_rows", "Predictions per day", False, "ov_chart_n_rows")
    with middle:
        line_chart(daily, "labeled_share", "Label coverage", True, "ov_chart_labeled_share")
    with right:
        metric_chart(daily)
    if daily["labeled_share"].min() < 1:
        st.caption(
            "Where label coverage drops (labels arrive days to weeks after the prediction), "
            "the metrics of those days rest on fewer rows."
        )


{"versions": by_version, "time": over_time}[view]()

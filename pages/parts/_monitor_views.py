"""The Monitor page's parts: the reference window (shown, and chosen) and one slice's
estimate timeline with the period a click opens."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pandas as pd
import streamlit as st

from analysis import ConfigError, SliceboardError
from analysis.estimation.reference import ReferenceChoice, resolve_reference, set_reference_choice
from analysis.estimation.run import estimate
from analysis.numbers import format_count, format_percent, format_value, metric_name, metric_title, missing
from analysis.reports.charts import estimate_figure
from pages.parts import _report_ui, _ui, _writes
from pages.parts._monitor_drift import drift_view, period_drift

REFERENCE_ERROR = "mo_ref_error"


def reference_panel(project_name: str, version: str, stage: str, choice: ReferenceChoice):
    """What the estimates are calibrated on, and a form to choose it (stored with the
    project); the window, or None when the choice finds no labeled past (said in the panel)."""
    try:
        window = _ui.query(resolve_reference, project_name, version=version, stage=stage, choice=choice)
        title = f"Reference window: {window.describe()}"
        said = (
            f"{format_count(window.labeled)} labeled of {format_count(window.rows)} predictions of {version} "
            f"({stage}). Estimates are calibrated on these days and listed for the whole periods after them."
        )
    except SliceboardError as exc:
        window, title, said = None, "Reference window: choose one", str(exc)
    with st.expander(_ui.plain(title), expanded=window is None):
        (st.caption if window is not None else st.warning)(_ui.plain(said))
        if REFERENCE_ERROR in st.session_state:
            st.error(_ui.plain(st.session_state.pop(REFERENCE_ERROR)))
        if not _ui.read_only():
            st.caption("One window for the project: each version and stage is calibrated on its own rows of it.")
            _reference_form(project_name, choice, version, stage)
    return window


def _reference_form(project_name: str, choice: ReferenceChoice, version: str, stage: str) -> None:
    with st.form("mo_reference", border=False):
        how = st.radio(
            "Choose it as",
            ["recent", "dates"],
            format_func={"recent": "the most recent fully labeled days", "dates": "dates"}.get,
            index=1 if choice.by_dates else 0,
            horizontal=True,
            key="mo_ref_how",
        )
        a, b, c = st.columns(3)
        days = a.number_input("Days (at least 99% labeled each)", 1, 365, choice.days, key="mo_ref_days")
        start = b.text_input("From", value=str(choice.start or ""), placeholder="YYYY-MM-DD", key="mo_ref_from")
        end = c.text_input("To (included)", value=str(choice.end or ""), placeholder="YYYY-MM-DD", key="mo_ref_to")
        if st.form_submit_button("Save the reference window"):
            _save(project_name, how, int(days), start, end, version, stage)


def _save(project_name: str, how: str, days: int, start: str, end: str, version: str, stage: str) -> None:
    """Store the window, once it finds a labeled past for the version on screen (a window
    without labels would leave every estimate without calibration: refused, nothing written)."""
    try:
        choice = ReferenceChoice.of(start, end) if how == "dates" else ReferenceChoice(recent_days=days)
        if how == "dates" and not (start.strip() and end.strip()):
            raise ConfigError("Give both dates (From and To), or choose the most recent fully labeled days.")
        _ui.query(resolve_reference, project_name, version=version, stage=stage, choice=choice)
    except SliceboardError as exc:
        st.session_state[REFERENCE_ERROR] = str(exc)
        st.rerun()
    saved = _writes.write(
        project_name,
        set_reference_choice,
        choice,
        done=f"Reference window saved: {choice.describe()}.",
        error_key=REFERENCE_ERROR,
    )
    if saved is not None:
        st.rerun()


def _key(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:10]


def slice_timeline(project_name: str, name: str, slice_, *, version: str, stage: str, by: str, metric: str) -> None:
    st.subheader(_ui.plain(name))
    try:
        with st.spinner("Calibrating on the reference and estimating each period…"):
            timeline = _ui.query(estimate, project_name, version=version, stage=stage, slice_=slice_, by=by)
    except SliceboardError as exc:  # a slice without reference rows: said, the others still shown
        st.warning(_ui.plain(str(exc)), icon=":material/info:")
        return
    fit = timeline.fit
    st.caption(_ui.plain(f"{fit.describe().capitalize()}; {format_count(fit.rows)} labeled reference rows here."))
    for note in fit.notes:
        st.warning(_ui.plain(note.capitalize() + "."), icon=":material/warning:")
    if not timeline.periods:
        st.info("No whole period after the reference window has predictions yet.")
        return
    frame = timeline.frame()
    rows = frame[frame.metric == metric].reset_index(drop=True)
    _latest(rows, metric, by)
    _disagreements(rows, metric)
    key = _key(f"{name}|{slice_.readable()}")
    view = {"version": version, "stage": stage, "slice": slice_, "by": by, "metric": metric}
    _report_ui.add_to_report(project_name, [("This estimate timeline", "estimate", view)], key=f"mo_report_{key}")
    figure = estimate_figure(rows.to_dict(orient="records"), metric, f"{metric_title(metric)} per {by}")
    event = st.plotly_chart(figure, key=f"mo_chart_{key}", on_select="rerun", selection_mode="points", width="stretch")
    chosen = [p["customdata"][0] for p in event["selection"]["points"] if p.get("customdata")]
    reference = fit.reference
    if chosen:
        row = rows[rows.period == chosen[-1]].iloc[0]
        _open_period(row, slice_, version, stage)
        period_drift(project_name, reference, slice_, by, row, key)
    else:
        st.caption("Click a period on the chart to open it in Slices or Discover, and to see what moved in it.")
    if st.toggle("Input drift of every period", key=f"mo_drift_on_{key}"):
        drift_view(project_name, reference, slice_, by, key)
    with st.expander(f"Every {by}: figures and notes"):
        st.dataframe(_table(rows, metric), hide_index=True, key=f"mo_table_{key}", width="stretch")


def _latest(rows: pd.DataFrame, metric: str, by: str) -> None:
    """The last period's estimate, the figure a person asks for first."""
    last = rows.iloc[-1]
    a, b, c = st.columns(3)
    a.metric(
        f"{metric_title(metric)}, {last.period} (estimated)",
        format_value(metric, last.estimated),
        help="From the model's scores alone: no label of this period is used.",
    )
    b.metric("95% interval", _interval(metric, last.low, last["high"]))
    c.metric(
        "Labeled so far",
        format_percent(last.labeled_share, 0),
        help=f"{format_count(last.labeled)} of {format_count(last.rows)} rows",
    )


def _disagreements(rows: pd.DataFrame, metric: str) -> None:
    off = rows[rows.labels_disagree]
    if len(off):
        periods = ", ".join(off.period)
        st.warning(
            _ui.plain(
                f"The labels that arrived disagree with the estimate of {metric_name(metric)} in {periods}: "
                "the scores no longer mean what they meant on the reference (the relation between scores and "
                "outcomes changed), so estimates for unlabeled rows may be off. Trust the realized and combined "
                "figures there."
            ),
            icon=":material/report:",
        )


def _open_period(row, slice_, version: str, stage: str) -> None:
    start = row.start.date()
    last = (row.end - timedelta(days=1)).date()
    params = {"version": version, "stage": stage, "from": start.isoformat(), "to": last.isoformat()}
    # Each page's own name for the slice it opens on: Slices shows it, Discover searches within it.
    in_slices, in_discover = dict(params), dict(params)
    if slice_.conditions:
        in_slices["slice"] = in_discover["within"] = slice_.readable()
    st.caption(
        _ui.plain(f"{row.period}: {format_count(row.rows)} rows, {format_percent(row.labeled_share, 0)} labeled")
    )
    a, b = st.columns(2)
    a.page_link(
        "pages/slices.py", label=f"Open {row.period} in Slices", icon=":material/filter_alt:", query_params=in_slices
    )
    b.page_link(
        "pages/discover.py",
        label=f"Find where {row.period} goes wrong (Discover)",
        icon=":material/travel_explore:",
        query_params=in_discover,
    )


def _interval(metric: str, low, high) -> str:
    if missing(low) or missing(high):
        return "–"
    return f"{format_value(metric, low)} to {format_value(metric, high)}"


def _table(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    def shown(x):
        return format_value(metric, x)

    return pd.DataFrame(
        {
            "Period": rows.period,
            "Rows": rows["rows"].map(format_count),
            "Labeled": rows.labeled_share.map(lambda x: format_percent(x, 0)),
            "Realized (labeled rows)": rows.realized.map(shown),
            "Estimate": rows.estimated.map(shown),
            "Estimate, 95%": [_interval(metric, lo, hi) for lo, hi in zip(rows.low, rows["high"])],
            "Combined": rows.combined.map(shown),
            "Combined, 95%": [_interval(metric, lo, hi) for lo, hi in zip(rows.combined_low, rows.combined_high)],
            "Notes": rows.notes,
        }
    )

"""The Monitor page's input drift of a slice: which features moved in each period (a
heatmap and a table), and, for a period opened by a click, each feature's drift with how
much of the estimate's change its shift accounts for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis import SliceboardError
from analysis.drift import drift_table
from analysis.drift.attribution import explain_change
from analysis.numbers import format_count, format_delta, format_number, format_p, format_percent
from analysis.reports.charts import layout
from pages.parts import _ui

STRONGEST = 10.0  # -log10(q) at which the heatmap's colour is full


def drift_view(project_name: str, reference, slice_, by: str, key: str) -> None:
    """Every period's features against the reference: a heatmap of the evidence (the darker,
    the smaller the q-value; a drifted cell is marked), and the features that moved."""
    try:
        with st.spinner("Comparing each feature with the reference…"):
            result = _ui.query(drift_table, project_name, reference=reference, slice_=slice_, by=by)
    except SliceboardError as exc:
        st.warning(_ui.plain(str(exc)), icon=":material/info:")
        return
    frame = result.frame()
    if frame.empty:
        st.info("No period after the reference window yet.")
        return
    evidence = frame.pivot(index="feature", columns="period", values="q_value").astype(float)
    strength = np.minimum(-np.log10(evidence.clip(lower=1e-300)), STRONGEST)
    moved = frame.pivot(index="feature", columns="period", values="drifted").fillna(False).astype(bool)
    figure = go.Figure(
        go.Heatmap(
            z=strength.to_numpy(),
            x=list(strength.columns),
            y=[_ui.chart_text(f) for f in strength.index],
            text=np.where(moved.reindex_like(strength).to_numpy(), "●", ""),
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=STRONGEST,
            colorbar=dict(title="−log10 q"),
            hovertemplate="%{y}, %{x}: −log10 q = %{z:.1f}<extra></extra>",
        )
    )
    layout(figure, "Input drift: the darker, the stronger the evidence (● drifted, q < 0.05)", 120 + 22 * len(strength))
    st.plotly_chart(figure, key=f"mo_drift_{key}")
    summary = (
        frame[frame.drifted.fillna(False)]
        .sort_values(["period", "distance"], ascending=[True, False])
        .groupby("period")["feature"]
        .agg(lambda names: ", ".join(names))
    )
    rows = frame.groupby("period")["rows"].first()
    st.dataframe(
        pd.DataFrame(
            {
                "Period": rows.index,
                "Rows": rows.map(format_count).to_numpy(),
                "Features that moved (most first)": [summary.get(p, "") for p in rows.index],
            }
        ),
        hide_index=True,
        key=f"mo_drift_table_{key}",
    )


def period_drift(project_name: str, reference, slice_, by: str, row, key: str) -> None:
    """One period: each feature's drift, and how much of the estimate's change its shift
    accounts for (the features that moved first)."""
    try:
        result = _ui.query(drift_table, project_name, reference=reference, slice_=slice_, by=by)
        found = _ui.query(
            explain_change, project_name, reference=reference, slice_=slice_, period_start=row.start.date(), by=by
        )
    except SliceboardError as exc:
        st.warning(_ui.plain(str(exc)), icon=":material/info:")
        return
    frame = result.frame()
    frame = frame[frame.period == row.period]
    accounts = {e.feature: e for e in found}
    measure = found[0].measure if found else "accuracy"
    shown = pd.DataFrame(
        {
            "Feature": frame.feature,
            "Moved": frame.drifted.map(lambda d: "● yes" if d else ""),
            "Distance": frame.distance.map(format_number),
            "q-value": frame.q_value.map(format_p),
            "Missing": frame.null_rate.map(lambda x: format_percent(x, 1)),
            "New categories": frame.new_categories.map(lambda x: "" if pd.isna(x) else format_count(x)),
            f"Accounts for (estimated {'MAE' if measure == 'mae' else 'accuracy'})": frame.feature.map(
                lambda f: format_delta(measure, accounts[f].accounts_for) if f in accounts else ""
            ),
        }
    )
    order = frame.assign(size=frame.feature.map(lambda f: abs(accounts[f].accounts_for) if f in accounts else 0.0))
    shown = shown.loc[order.sort_values(["drifted", "size"], ascending=[False, False]).index]
    st.markdown(f"##### What moved in {_ui.plain(row.period)}")
    st.caption(
        "Each feature against the reference window's rows of this slice; *accounts for*: how much of the change "
        "of the estimate from the reference the feature's shift explains (its mix held at the reference's)."
    )
    st.dataframe(shown, hide_index=True, key=f"mo_period_drift_{key}")

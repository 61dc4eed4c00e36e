"""The Validation sets page's matrix (sets × model versions) and its export / re-score loop."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from analysis import SliceboardError
from analysis.paths import safe_file_name
from analysis.valsets import export_bytes, ingest_scores
from pages import _files, _ui

EXPORT_MIME = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}
VERDICT_MARK = {"pass": "✓ pass", "fail": "✗ fail", "no criteria": "", "no data": "no data"}


def matrix_view(project_name: str, project, results) -> None:
    """A heatmap of one metric per set × model version · stage, with verdicts; the full table below."""
    if results.empty:
        st.info("No committed validation set yet. Promote examples into a set, then commit it.")
        return
    metrics = [m for m in ("accuracy", "recall", "precision", "f1", "roc_auc", "error_rate", "mae", "rmse")
               if m in results]
    metric = st.selectbox("Metric", metrics, key="vs_matrix_metric")
    results = results.assign(row=(results["set"] + " v" + results["set_version"].astype(str)).map(_ui.chart_text),
                             column=(results["model_version"] + " · " + results["stage"]).map(_ui.chart_text))
    grid = results.pivot(index="row", columns="column", values=metric)
    def cell(r) -> str:
        value = "–" if r[metric] != r[metric] else f"{r[metric]:.3f}"
        low, high = r.get(f"{metric}_low"), r.get(f"{metric}_high")
        ci = f"<br>[{low:.3f}, {high:.3f}]" if low is not None and low == low else ""
        return f"{value}{ci}<br>{VERDICT_MARK[r['verdict']]}<br>{int(r['scored']):,}/{int(r['members']):,} scored"
    text = results.assign(t=[cell(r) for _, r in results.iterrows()]).pivot(index="row", columns="column", values="t")
    fig = go.Figure(go.Heatmap(z=grid.values, x=list(grid.columns), y=list(grid.index), text=text.values,
                               texttemplate="%{text}", colorscale="RdYlGn",
                               reversescale=metric in ("error_rate", "mae", "rmse"), colorbar=dict(title=metric)))
    fig.update_layout(height=120 + 90 * len(grid), margin=dict(t=30, l=10, r=10, b=10),
                      title=f"{metric} of each model version on each set's latest version")
    st.plotly_chart(fig, key="vs_matrix")
    st.caption("Coverage: members the version scored. Members without a label are counted, not evaluated. "
               "Labels that arrived after promotion are used.")
    st.dataframe(results.drop(columns=["row", "column"]), hide_index=True, key="vs_matrix_table")


def export_view(project_name: str, project, name: str, versions: list[int]) -> None:
    """Export a committed version for offline scoring; ingest the scored file back."""
    if not versions:
        st.info("Commit the draft first: exports and scores belong to a committed version.")
        return
    st.markdown("1. Export a version (example ids, features as promoted, labels as known now).\n"
                "2. Score the file offline with any model; add a `prediction` (and `score`) column.\n"
                "3. Upload it here as a model version: it becomes that version's `offline` predictions and "
                "fills in the matrix.")
    a, b = st.columns(2)
    version = a.selectbox("Version", sorted(versions, reverse=True), key="vs_export_version")
    fmt = b.radio("Format", ["parquet", "csv"], horizontal=True, key="vs_export_format")
    # Built in memory when asked for: nothing is written on the server.
    wanted = (project_name, name, version, fmt, _ui.store().fingerprint())
    ready = st.session_state.get("vs_export_ready")
    if not (ready and ready["for"] == wanted) and st.button("Prepare the export", key="vs_export_prepare"):
        with _ui.readable_errors():
            with _ui.store().read() as con:
                data, done = export_bytes(con, project, name, version, fmt)
            st.session_state["vs_export_ready"] = ready = {"for": wanted, "data": data, "rows": done.rows}
    if ready and ready["for"] == wanted:
        st.download_button(f"Download {ready['rows']:,} examples ({fmt})", ready["data"],
                           file_name=safe_file_name(f"{project_name}-{name}-v{version}.{fmt}"),
                           mime=EXPORT_MIME[fmt], key="vs_download")
    if _ui.read_only():  # read-only mode: no ingest
        return
    st.markdown("##### Ingest scores")
    scored, label = _files.file_input("vs_scored")
    model_version = st.text_input("Model version that scored it", key="vs_scored_version")
    if st.button("Ingest as offline predictions", key="vs_ingest", disabled=not (scored and model_version)):
        try:
            with _ui.store().write() as con:
                report = ingest_scores(con, project, name, scored, model_version=model_version, version=version,
                                       source_name=label)
            _ui.clear_caches()
            _files.ingested()
            st.success(f"Ingested {report.inserted:,} offline predictions of {_ui.plain(model_version)}.")
        except SliceboardError as exc:
            _ui.show_error(exc)

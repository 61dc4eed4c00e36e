"""The Validation sets page's matrix (sets × model versions) and its export / re-score loop."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from analysis import SliceboardError
from analysis.numbers import MISSING, format_count, format_value, metric_name, metric_title, missing
from analysis.palette import VERDICT_WORDS
from analysis.reports.blocks import records
from analysis.reports.html import inert_figure
from analysis.reports.kinds import kind_of
from analysis.store.paths import safe_file_name
from analysis.valsets import create_set, diff, export_bytes, history, ingest_scores
from pages.parts import _files, _ui

EXPORT_MIME = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}
# The engine's column names as a person reads them, in the sets, draft, history and diff tables.
HEADERS = {
    "name": "Name",
    "description": "Description",
    "owner": "Owner",
    "tags": "Tags",
    "criteria": "Pass criteria",
    "created_at": "Created",
    "latest_version": "Latest version",
    "latest_members": "Members (latest)",
    "draft_members": "Members (draft)",
    "example_id": "Example id",
    "prediction_id": "Prediction id",
    "label": "Label",
    "reason": "Reason",
    "source": "Source",
    "added_at": "Added at",
    "version": "Version",
    "message": "Message",
    "content_hash": "Content hash",
    "n_members": "Members",
    "committed_at": "Committed",
    "added": "Added",
    "removed": "Removed",
    "change": "Change",
}
CRITERIA_EXAMPLE = {
    "binary": "accuracy >= 0.9\nrecall >= 0.8",
    "multiclass": "accuracy >= 0.9\nmacro_f1 >= 0.8",
    "regression": "mae <= 5\nrmse <= 8",
}


def source_words(source) -> str:
    """Where a member came from, in words: the slice, "errors only", the bucket, the sample."""
    try:
        s = json.loads(source) if isinstance(source, str) else source
    except ValueError:
        return str(source)
    if not isinstance(s, dict):
        return MISSING if missing(s) else str(s)
    parts = [str(s.get("where") or s.get("kind") or MISSING)]
    versions = (s.get("scope") or {}).get("versions") or []
    if versions:
        parts.append(f"in {', '.join(map(str, versions))}")
    if s.get("only_errors"):
        parts.append("errors only")
    if s.get("bucket"):
        parts.append(f"bucket {s['bucket']}")
    if s.get("sample"):
        parts.append(f"a sample of {format_count(s['sample'])}")
    return " · ".join(parts)


def table(frame: pd.DataFrame, key: str, **kwargs):
    """A set's table with headers in words, sources in words and no "None"."""
    if "source" in frame:
        frame = frame.assign(source=[source_words(x) for x in frame["source"]])
    config = {c: st.column_config.Column(HEADERS[c]) for c in frame.columns if c in HEADERS}
    return st.dataframe(frame, hide_index=True, key=key, column_config=config, placeholder=MISSING, **kwargs)


METRICS = ("accuracy", "recall", "precision", "f1", "macro_f1", "roc_auc", "error_rate", "mae", "rmse")


def matrix_view(project_name: str, project, results) -> None:
    """Sets × model version · stage, each cell coloured by its verdict (blue pass,
    vermillion fail, grey not judged: the chart the reports draw) with the chosen metric's
    value written in it; the figures, formatted, in the table below."""
    if results.empty:
        st.info("No committed validation set yet. Promote examples into a set, then commit it.")
        return
    metrics = [m for m in METRICS if m in results]
    metric = st.selectbox("Metric written in the cells", metrics, key="vs_matrix_metric", format_func=metric_title)
    fig = kind_of("valsets").figures({"metric": metric, "rows": records(results)})[0]
    st.plotly_chart(inert_figure(fig), key="vs_matrix", config={"displaylogo": False})
    st.caption(
        "Colour: the set's verdict (blue ✓ pass, vermillion ✗ fail against the set's criteria; light grey: "
        "no criteria; grey: no labeled member scored). Coverage: members the version scored. Members "
        "without a label are counted, not evaluated. Labels that arrived after promotion are used."
    )
    st.dataframe(matrix_table(results, metrics), hide_index=True, key="vs_matrix_table")


def matrix_table(results, metrics: list[str]) -> pd.DataFrame:
    """The matrix as people read it: counts with separators, metrics in their format with
    their 95% interval, the verdict in words."""
    out = pd.DataFrame(
        {
            "set": results["set"],
            "version": results["set_version"].map(format_count),
            "model version": results["model_version"],
            "stage": results["stage"],
            "members": results["members"].map(format_count),
            "scored": results["scored"].map(format_count),
            "labeled": results["labeled"].map(format_count),
        }
    )
    for m in metrics:
        out[metric_name(m)] = [format_value(m, v) for v in results[m]]
        if f"{m}_low" in results:
            out[f"{metric_name(m)}, 95% interval"] = [
                MISSING if missing(lo) or missing(hi) else f"[{format_value(m, lo)}, {format_value(m, hi)}]"
                for lo, hi in zip(results[f"{m}_low"], results[f"{m}_high"])
            ]
    out.insert(4, "verdict", results["verdict"].map(lambda v: VERDICT_WORDS.get(v, v)))
    out.insert(5, "failed criteria", results["failed"].fillna(""))
    return out


def export_view(project_name: str, project, name: str, versions: list[int]) -> None:
    """Export a committed version for offline scoring; ingest the scored file back."""
    if not versions:
        st.info("Commit the draft first: exports and scores belong to a committed version.")
        return
    st.markdown(
        "1. Export a version (example ids, features as promoted, labels as known now).\n"
        "2. Score the file offline with any model; add a `prediction` (and `score`) column.\n"
        "3. Upload it here as a model version: it becomes that version's `offline` predictions and "
        "fills in the matrix."
    )
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
        st.download_button(
            f"Download {ready['rows']:,} examples ({fmt})",
            ready["data"],
            file_name=safe_file_name(f"{project_name}-{name}-v{version}.{fmt}"),
            mime=EXPORT_MIME[fmt],
            key="vs_download",
        )
    if _ui.read_only():  # read-only mode: no ingest
        return
    st.markdown("##### Ingest scores")
    scored, label = _files.file_input("vs_scored")
    model_version = st.text_input("Model version that scored it", key="vs_scored_version")
    if st.button("Ingest as offline predictions", key="vs_ingest", disabled=not (scored and model_version)):
        try:
            with _ui.store().write() as con:
                report = ingest_scores(
                    con, project, name, scored, model_version=model_version, version=version, source_name=label
                )
            _ui.clear_caches()
            _files.ingested()
            done = f"Ingested {report.inserted:,} offline predictions of {_ui.plain(model_version)}."
            st.toast(done, icon=":material/check_circle:")
            st.success(done)
        except SliceboardError as exc:
            _ui.show_error(exc)


def create_form(project, write) -> None:
    """The form that creates a set (name, description, owner, tags, pass criteria); the
    write runs in the Create button's callback, and the new set opens."""

    def do_create() -> None:
        name = st.session_state.get("vs_new_name", "")
        tags = st.session_state.get("vs_new_tags", "")
        criteria = st.session_state.get("vs_new_criteria", "")
        done = write(
            create_set,
            name,
            description=st.session_state.get("vs_new_description", ""),
            owner=st.session_state.get("vs_new_owner", ""),
            tags=[t for t in tags.split(",")],
            criteria=[c for c in criteria.splitlines() if c.strip()],
            done=f"Created the set “{_ui.plain(name.strip())}”.",
        )
        if done is not None:
            st.session_state["vs_open"] = done.name
            for key in ("vs_new_name", "vs_new_description", "vs_new_owner", "vs_new_tags", "vs_new_criteria"):
                st.session_state[key] = ""

    with st.form("vs_create"):
        st.markdown("##### New set")
        st.text_input("Name", key="vs_new_name")
        st.text_input("Description", key="vs_new_description")
        st.text_input("Owner (optional)", key="vs_new_owner")
        st.text_input("Tags (comma-separated)", key="vs_new_tags")
        st.text_area(
            "Pass criteria, one per line",
            key="vs_new_criteria",
            height=68,
            placeholder=CRITERIA_EXAMPLE.get(project.task, ""),
        )
        st.form_submit_button("Create", on_click=do_create)


def history_view(project_name: str, chosen: str) -> None:
    """A set's committed versions, and what changed between any two (or the draft)."""
    versions = _ui.query(history, project_name, name=chosen)
    table(versions, key=f"vs_history_{chosen}")
    options = ["draft", *[int(v) for v in sorted(versions["version"])]]
    c, d = st.columns(2)
    old = c.selectbox("From", options, index=max(0, len(options) - 1), key="vs_diff_old")
    new = d.selectbox("To", options, index=0, key="vs_diff_new")
    changes = _ui.query(diff, project_name, name=chosen, old=old, new=new)
    if changes.empty:
        st.caption(
            f"No change between {'the draft' if old == 'draft' else f'version {old}'} and "
            f"{'the draft' if new == 'draft' else f'version {new}'}."
        )
    else:
        st.caption(
            f"{int((changes['change'] == 'added').sum()):,} added, "
            f"{int((changes['change'] == 'removed').sum()):,} removed"
        )
        table(changes, key="vs_diff")

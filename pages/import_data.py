"""Import: upload predictions or late labels, map their columns, ingest.

Nothing partial is ever written: the engine checks the whole file first and
writes in one transaction; errors appear here as messages."""

import streamlit as st

from analysis import Mapping, get_project, guess_mapping, mapping_to_toml
from analysis.external import attach_parquet
from analysis.labels import guess_label_columns
from analysis.mapping import ROLE_KEYS, parse_mapping
from analysis.paths import is_upload
from analysis.schema import STAGES, TASKS
from analysis.sources import preview_source
from analysis.staging import ingest_staged, labels_staged
from pages import _files, _ui

NONE = "—"
NEW = "New project…"
ROLE_HELP = {
    "id": "unique id of each logged prediction (required)",
    "example": "the request/input; versions scoring the same request share it",
    "timestamp": "when the prediction was made",
    "version": "model version",
    "stage": "offline, shadow, canary or production",
    "prediction": "predicted class or value",
    "score": "probability of the positive class",
    "label": "true label, if already known",
    "label_timestamp": "when the label became known",
}

_ui.require_app()
if _ui.read_only():  # read-only mode: the page is not in the navigation, nor reachable
    st.stop()
st.title("Import")
kind = st.radio("What are you importing?", ["Predictions", "Labels and outcomes"], horizontal=True, key="imp_kind")
path, name = _files.file_input("imp_" + ("pred" if kind == "Predictions" else "lab"))
if path is None:
    st.caption("Upload a CSV or Parquet file to map its columns. Files are checked completely "
               "before anything is written.")
    st.stop()
preview = preview_source(path, name=name)
st.markdown(f"**{_ui.plain(preview.name)}** · {preview.kind} · {_ui.fmt_int(preview.n_rows)} rows · {len(preview.columns)} columns")
st.dataframe(preview.head, hide_index=True, height=220, key="imp_preview")
cols = preview.columns
projects = _ui.project_names()

if kind == "Predictions":
    choice = st.selectbox("Project", [NEW, *projects], key="imp_project")
    existing = None if choice == NEW else _ui.query(get_project, None, name=choice)
    project_name = st.text_input("New project name", key="imp_new_name") if choice == NEW else choice
    base = parse_mapping(existing.mapping_toml) if existing else Mapping()
    guess = guess_mapping(cols, base=Mapping(**{r: getattr(base, r) for r in ROLE_KEYS if getattr(base, r) in cols}))
    st.markdown("##### Column mapping")
    roles = {}
    grid = st.columns(3)
    for i, role in enumerate(ROLE_KEYS):
        options = [NONE, *cols]
        default = getattr(guess, role)
        picked = grid[i % 3].selectbox(role.replace("_", " ").capitalize(), options,
                                       index=options.index(default) if default in cols else 0,
                                       help=ROLE_HELP[role], key=f"imp_role_{role}")
        roles[role] = None if picked == NONE else picked
    mapped = {c for c in roles.values() if c}
    if existing:
        st.caption("Features of this project: " + _ui.plain(", ".join(c.name for c in existing.features)))
        features = None
        task, positive = existing.task, existing.positive_label
    else:
        remaining = [c for c in cols if c not in mapped]
        default_out = [c for c in guess.outcomes if c in remaining]
        outcomes_pick = st.multiselect("Product outcome columns (money, clicks, costs)", remaining,
                                       default=default_out, key="imp_outcomes")
        features = st.multiselect("Feature columns", [c for c in remaining if c not in outcomes_pick],
                                  default=[c for c in remaining if c not in outcomes_pick], key="imp_features")
        a, b = st.columns(2)
        task = a.selectbox("Task", TASKS, key="imp_task")
        positive = b.text_input("Positive label (binary)", key="imp_positive",
                                help="e.g. 1, true, fraud. Left empty, 1/true/yes is used when the labels are of that form.") or None
    outcomes = ([c.name for c in existing.outcomes if c.name in cols] if existing else outcomes_pick)
    a, b, c = st.columns(3)
    const_version = a.text_input("Model version for all rows", key="imp_const_version",
                                 help="Overrides the version column.") or None
    const_stage = b.selectbox("Stage for all rows", [NONE, *STAGES], key="imp_const_stage")
    on_duplicate = c.selectbox("Ids already stored", ["error", "skip", "replace"], key="imp_dup",
                               help="reject the file, skip those rows, or overwrite the stored rows")
    mapping = Mapping(task=task, positive_label=positive, features=features, outcomes=list(outcomes), **roles)
    toml_text = mapping_to_toml(mapping.with_(name=project_name or None))
    st.download_button("Download mapping as TOML", toml_text, file_name="mapping.toml", key="imp_toml")
    if st.button("Ingest predictions", type="primary", key="imp_ingest", disabled=not project_name):
        with _ui.readable_errors(), st.spinner("Checking and ingesting…"):
            # Read and checked first; the database is locked only to copy the rows in.
            report = ingest_staged(
                _ui.store(), path, project=project_name.strip(), mapping=mapping, on_duplicate=on_duplicate,
                version=const_version, stage=None if const_stage == NONE else const_stage, source_name=name,
            )
            _ui.clear_caches()
            _files.ingested()
            st.success(f"Ingested {_ui.fmt_int(report.inserted)} predictions into **{_ui.plain(report.project)}** "
                       f"({report.seconds:.1f} s). Skipped duplicates: {report.skipped_duplicates}; "
                       f"replaced: {report.replaced}; labels applied from waiting: "
                       f"{report.labels_applied_from_pending}.")
            for w in report.warnings:
                st.warning(_ui.plain(w))
    # A Parquet dataset on the server can also be read where it is, without a copy.
    if choice == NEW and preview.kind == "parquet" and not is_upload(path):
        if st.button("Attach in place (read the Parquet where it is)", key="imp_attach", disabled=not project_name):
            with _ui.readable_errors(), st.spinner("Checking every value and building the rollup…"):
                with _ui.store().write() as con:
                    attached = attach_parquet(con, path, project=project_name.strip(), mapping=mapping,
                                              version=const_version, stage=None if const_stage == NONE else const_stage)
                _ui.clear_caches()
                st.success(f"**{_ui.plain(attached.name)}** reads {_ui.plain(attached.external)} in place.")
else:
    if not projects:
        st.info("Labels attach to a project's predictions: ingest predictions first.")
        st.stop()
    project_name = st.selectbox("Project", projects, key="imp_lab_project")
    project = _ui.query(get_project, None, name=project_name)
    key = st.radio("Rows name a", ["prediction", "example"], horizontal=True, key="imp_lab_key",
                   format_func=lambda k: f"{k} id")
    guess = guess_label_columns(project, cols, key)
    a, b, c = st.columns(3)

    def pick(col, label, default, k):
        options = [NONE, *cols]
        value = col.selectbox(label, options, index=options.index(default) if default in cols else 0, key=k)
        return None if value == NONE else value

    id_column = pick(a, "Id column", guess["id_column"], "imp_lab_id")
    label_column = pick(b, "Label column", guess["label_column"], "imp_lab_label")
    ts_column = pick(c, "Label timestamp column", guess["label_timestamp_column"], "imp_lab_ts")
    numeric = [x for x in cols if x not in {id_column, label_column, ts_column}]
    outcomes = st.multiselect("Outcome columns", numeric, default=guess["outcomes"], key="imp_lab_outcomes")
    overwrite = st.checkbox("Overwrite stored labels and outcomes that differ", key="imp_lab_overwrite")
    if st.button("Attach labels", type="primary", key="imp_lab_go", disabled=id_column is None):
        with _ui.readable_errors(), st.spinner("Checking and attaching…"):
            report = labels_staged(  # read and checked first; locked only to write
                _ui.store(), path, project=project_name, key=key, id_column=id_column, label_column=label_column,
                label_timestamp_column=ts_column, outcomes=outcomes, overwrite=overwrite, source_name=name,
            )
            _ui.clear_caches()
            _files.ingested()
            st.success(f"{_ui.fmt_int(report.applied)} predictions updated, {_ui.fmt_int(report.unchanged)} "
                       f"unchanged, {_ui.fmt_int(report.pending)} labels waiting for their predictions, "
                       f"{_ui.fmt_int(report.conflicting)} conflicts ({report.seconds:.1f} s).")
            for w in report.warnings:
                st.warning(_ui.plain(w))
            if report.conflict_examples:
                st.dataframe(report.conflict_examples, key="imp_lab_conflicts")

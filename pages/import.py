"""Import: upload predictions or late labels, map their columns, ingest.

The page works on the project chosen in the sidebar: predictions are added to it (or
start a new project), labels attach to it. Columns are guessed from names and values
(``analysis.ingest.guess_columns``), each guess with its reason; every guess can be changed.
Nothing partial is ever written: the engine checks the whole file first and writes in
one transaction; errors appear here as messages."""

import streamlit as st

from analysis import Mapping, get_project, mapping_to_toml
from analysis.ingest.external import attach_parquet
from analysis.ingest.guess_columns import guess_source
from analysis.ingest.mapping import ROLE_KEYS, parse_mapping
from analysis.ingest.sources import preview_source
from analysis.ingest.staging import ingest_staged
from analysis.numbers import format_count
from analysis.store.paths import is_upload
from analysis.store.schema import STAGES, TASKS
from pages.parts import _files, _ui
from pages.parts import _import_forms as forms
from pages.parts._import_forms import ADD, NEW, NONE

_ui.require_app()
if _ui.read_only():  # read-only mode: the page is not in the navigation, nor reachable
    st.stop()
st.title("Import")
if "imp_done" in st.session_state:
    done = st.session_state.pop("imp_done")
    st.toast(done, icon=":material/check_circle:")
    st.success(done)
    st.page_link("pages/overview.py", label="See it on the Overview", icon=":material/monitoring:")
    for w in st.session_state.pop("imp_warnings", []):
        st.warning(_ui.plain(w))
    if "imp_conflicts" in st.session_state:
        st.dataframe(st.session_state.pop("imp_conflicts"), key="imp_lab_conflicts")
projects = _ui.project_names()
current = forms.sidebar_project(projects)
kind = st.radio("What are you importing?", ["Predictions", "Labels and outcomes"], horizontal=True, key="imp_kind")
if kind != "Predictions" and current is None:
    st.info("Labels attach to a project's predictions: ingest predictions first.")
    st.stop()
if kind != "Predictions":
    st.markdown(f"Labels and outcomes for the project **{_ui.plain(current)}** (chosen in the sidebar).")
path, name = _files.file_input("imp_" + ("pred" if kind == "Predictions" else "lab"))
if path is None:
    st.caption(
        "Upload a CSV or Parquet file to map its columns. Files are checked completely before anything is written."
    )
    st.stop()
preview = preview_source(path, name=name)
st.markdown(
    f"**{_ui.plain(preview.name)}** · {preview.kind} · {format_count(preview.n_rows)} rows · "
    f"{len(preview.columns)} columns"
)
st.dataframe(preview.head, hide_index=True, height=220, key="imp_preview")
cols = preview.columns

if kind == "Predictions":
    targets = [ADD, NEW] if current else [NEW]
    if st.session_state.get("imp_target_for") != current:  # another project in the sidebar: add to it
        st.session_state.pop("imp_target", None)
        st.session_state["imp_target_for"] = current
    target = st.radio(
        "Into",
        targets,
        horizontal=True,
        key="imp_target",
        format_func=lambda t: f"the project {current} (chosen in the sidebar)" if t == ADD else "a new project",
    )
    existing = _ui.query(get_project, None, name=current) if target == ADD else None
    project_name = current if existing else st.text_input("New project name", key="imp_new_name")
    stored = parse_mapping(existing.mapping_toml) if existing else None
    base = None
    if stored is not None:
        base = Mapping(
            **{r: getattr(stored, r) for r in ROLE_KEYS if getattr(stored, r) in cols},
            task=existing.task,
            outcomes=[c.name for c in existing.outcomes if c.name in cols],
            features=[c.name for c in existing.features],
        )
    guess = guess_source(path, name=name, base=base)
    forms.defaults_for(
        ("pred", path, name, existing.name if existing else None),
        {
            **{f"imp_role_{r}": getattr(guess.mapping, r) or NONE for r in ROLE_KEYS},
            "imp_outcomes": [c for c in guess.mapping.outcomes if c in cols],
            "imp_features": [c for c in guess.mapping.features or [] if c in cols],
            "imp_task": guess.mapping.task if guess.mapping.task in TASKS else TASKS[0],
        },
    )
    forms.show_reasons(guess)
    st.markdown("##### Column mapping")
    roles = {}
    grid = st.columns(3)
    for i, role in enumerate(ROLE_KEYS):
        picked = grid[i % 3].selectbox(
            role.replace("_", " ").capitalize(), [NONE, *cols], help=forms.ROLE_HELP[role], key=f"imp_role_{role}"
        )
        roles[role] = None if picked == NONE else picked
    mapped = {c for c in roles.values() if c}
    if existing:
        st.caption("Features of this project: " + _ui.plain(", ".join(c.name for c in existing.features)))
        absent = [c.name for c in existing.features if c.name not in cols]
        if absent:
            st.warning(
                _ui.plain(
                    f"This file lacks {len(absent)} of the {len(existing.features)} features of {current} "
                    f"({', '.join(absent[:8])}{'…' if len(absent) > 8 else ''}). If it belongs to "
                    "another project, pick that project in the sidebar, or choose a new project."
                ),
                icon=":material/help:",
            )
        features = None
        task, positive = existing.task, existing.positive_label
        outcomes = [c.name for c in existing.outcomes if c.name in cols]
    else:
        remaining = [c for c in cols if c not in mapped]
        forms.keep_options("imp_outcomes", remaining)
        outcomes = st.multiselect("Product outcome columns (money, clicks, costs)", remaining, key="imp_outcomes")
        candidates = [c for c in remaining if c not in outcomes]
        forms.keep_options("imp_features", candidates)
        features = st.multiselect("Feature columns", candidates, key="imp_features")
        a, b = st.columns(2)
        task = a.selectbox("Task", TASKS, key="imp_task")
        positive = (
            b.text_input(
                "Positive label (binary)",
                key="imp_positive",
                help="e.g. 1, true, fraud. Left empty, 1/true/yes is used when the labels are of that form.",
            )
            or None
        )
    a, b, c = st.columns(3)
    const_version = (
        a.text_input("Model version for all rows", key="imp_const_version", help="Overrides the version column.")
        or None
    )
    const_stage = b.selectbox("Stage for all rows", [NONE, *STAGES], key="imp_const_stage")
    on_duplicate = c.selectbox(
        "Ids already stored",
        ["error", "skip", "replace"],
        key="imp_dup",
        help="reject the file, skip those rows, or overwrite the stored rows",
    )
    mapping = Mapping(task=task, positive_label=positive, features=features, outcomes=list(outcomes), **roles)
    toml_text = mapping_to_toml(mapping.with_(name=project_name or None))
    st.download_button("Download mapping as TOML", toml_text, file_name="mapping.toml", key="imp_toml")
    label = f"Add predictions to {current}" if existing else "Ingest predictions"
    if st.button(_ui.plain(label), type="primary", key="imp_ingest", disabled=not project_name):
        with _ui.readable_errors(), st.spinner("Checking and ingesting…"):
            # Read and checked first; the database is locked only to copy the rows in.
            report = ingest_staged(
                _ui.store(),
                path,
                project=project_name.strip(),
                mapping=mapping,
                on_duplicate=on_duplicate,
                version=const_version,
                stage=None if const_stage == NONE else const_stage,
                source_name=name,
            )
            st.session_state["imp_warnings"] = list(report.warnings)
            forms.written(
                f"Ingested {format_count(report.inserted)} predictions into **{_ui.plain(report.project)}** "
                f"({report.seconds:.1f} s). Skipped duplicates: {format_count(report.skipped_duplicates)}; "
                f"replaced: {format_count(report.replaced)}; labels applied from waiting: "
                f"{format_count(report.labels_applied_from_pending)}.",
                report.project,
            )
    # A Parquet dataset on the server can also be read where it is, without a copy.
    if target == NEW and preview.kind == "parquet" and not is_upload(path):
        if st.button("Attach in place (read the Parquet where it is)", key="imp_attach", disabled=not project_name):
            with _ui.readable_errors(), st.spinner("Checking every value and building the rollup…"):
                with _ui.store().write() as con:
                    attached = attach_parquet(
                        con,
                        path,
                        project=project_name.strip(),
                        mapping=mapping,
                        version=const_version,
                        stage=None if const_stage == NONE else const_stage,
                    )
                forms.written(
                    f"**{_ui.plain(attached.name)}** reads {_ui.plain(attached.external)} in place.", attached.name
                )
else:
    forms.labels_form(path, name, cols, current)

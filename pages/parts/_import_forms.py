"""The Import page's parts: what each column role means, the guesses preselected (and
the user's picks kept), what a write does after it, and the form that attaches late labels."""

from __future__ import annotations

import streamlit as st

from analysis import get_project
from analysis.ingest.guess_columns import guess_source
from analysis.ingest.labels import guess_label_columns
from analysis.ingest.mapping import ROLE_KEYS
from analysis.ingest.staging import labels_staged
from analysis.numbers import format_count
from pages.parts import _files, _ui

NONE = "—"
ADD, NEW = "add", "new"
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
ROLE_WORDS = {
    "id": "id",
    "example": "example id",
    "timestamp": "timestamp",
    "version": "model version",
    "stage": "stage",
    "prediction": "prediction",
    "score": "score",
    "label": "label",
    "label_timestamp": "label timestamp",
    "outcomes": "outcomes",
    "features": "features",
    "task": "task",
}


def sidebar_project(names: list[str]) -> str | None:
    """The project chosen in the sidebar (the frame keeps it in the session and the URL)."""
    return next(
        (
            n
            for n in (
                st.session_state.get("project"),
                st.session_state.get("sb_project"),
                st.query_params.get("project"),
            )
            if n in names
        ),
        None,
    )


def written(message: str, project: str) -> None:
    """After a write: the sidebar shows (and selects) the project, the page shows the
    new state at once, and a short confirmation says what happened."""
    _ui.clear_caches()
    _files.ingested()
    st.session_state["imp_done"] = message
    st.query_params["project"] = project
    st.session_state.pop("project", None)  # the sidebar picks the project up from the URL
    st.session_state.pop("imp_target", None)  # the next file goes into that project too
    st.rerun()


def defaults_for(guess_key: tuple, values: dict) -> None:
    """Preselect the guesses when the file or the target changes; afterwards the user's picks stay."""
    if st.session_state.get("imp_guess_key") == guess_key and all(k in st.session_state for k in values):
        return
    st.session_state["imp_guess_key"] = guess_key
    for key, value in values.items():
        st.session_state[key] = value


def keep_options(key: str, options: list[str]) -> None:
    """A multiselect's picks that are still among its options (a column mapped to a role leaves them)."""
    if key in st.session_state:
        st.session_state[key] = [x for x in st.session_state[key] if x in options]


def show_reasons(guess) -> None:
    lines = [
        f"- **{ROLE_WORDS.get(role, role)}**"
        + (f" ← `{_ui.plain(getattr(guess.mapping, role))}`" if role in ROLE_KEYS else "")
        + f": {_ui.plain(why)}"
        for role, why in guess.reasons.items()
    ]
    if lines:
        with st.expander("What was guessed, and why", expanded=True):
            st.markdown("\n".join(lines))
            st.caption("Guessed from the column names and the first 10,000 rows. Change any of them below.")


def labels_form(path: str, name: str, cols: list[str], current: str) -> None:
    """Map a file's columns to an id, a label, its time and outcomes, and attach them to
    ``current``'s predictions."""
    project = _ui.query(get_project, None, name=current)
    key = st.radio(
        "Rows name a", ["prediction", "example"], horizontal=True, key="imp_lab_key", format_func=lambda k: f"{k} id"
    )
    guess = guess_label_columns(project, cols, key)
    named = guess_source(path, name=name).mapping  # names and values, where the stored names are absent
    if guess["label_column"] is None and named.label:
        guess["label_column"] = named.label
    if not guess["outcomes"]:
        guess["outcomes"] = [c for c in named.outcomes if c in cols]
    defaults_for(
        ("lab", path, name, current, key),
        {
            "imp_lab_id": guess["id_column"] or NONE,
            "imp_lab_label": guess["label_column"] or NONE,
            "imp_lab_ts": guess["label_timestamp_column"] or NONE,
            "imp_lab_outcomes": guess["outcomes"],
        },
    )
    a, b, c = st.columns(3)

    def pick(col, label, k):
        value = col.selectbox(label, [NONE, *cols], key=k)
        return None if value == NONE else value

    id_column = pick(a, "Id column", "imp_lab_id")
    label_column = pick(b, "Label column", "imp_lab_label")
    ts_column = pick(c, "Label timestamp column", "imp_lab_ts")
    numeric = [x for x in cols if x not in {id_column, label_column, ts_column}]
    keep_options("imp_lab_outcomes", numeric)
    outcomes = st.multiselect("Outcome columns", numeric, key="imp_lab_outcomes")
    overwrite = st.checkbox("Overwrite stored labels and outcomes that differ", key="imp_lab_overwrite")
    if st.button("Attach labels", type="primary", key="imp_lab_go", disabled=id_column is None):
        with _ui.readable_errors(), st.spinner("Checking and attaching…"):
            report = labels_staged(  # read and checked first; locked only to write
                _ui.store(),
                path,
                project=current,
                key=key,
                id_column=id_column,
                label_column=label_column,
                label_timestamp_column=ts_column,
                outcomes=outcomes,
                overwrite=overwrite,
                source_name=name,
            )
            st.session_state["imp_warnings"] = list(report.warnings)
            if report.conflict_examples:
                st.session_state["imp_conflicts"] = report.conflict_examples
            written(
                f"{format_count(report.applied)} predictions updated, {format_count(report.unchanged)} "
                f"unchanged, {format_count(report.pending)} labels waiting for their predictions, "
                f"{format_count(report.conflicting)} conflicts ({report.seconds:.1f} s).",
                current,
            )

"""Files in the app: an upload is kept in a private folder of the server (mode 0700) and
removed once ingested or replaced; a path on the server is read only inside the folders
the app may read (``analysis.store.paths``; ``$SLICEBOARD_READ_FOLDERS``)."""

from __future__ import annotations

import streamlit as st

from analysis import SliceboardError, default_db_path
from analysis.store.paths import Uploads, check_readable, read_folders


def _uploads() -> Uploads:
    if "sb_uploads" not in st.session_state:
        st.session_state["sb_uploads"] = Uploads()
    return st.session_state["sb_uploads"]


def file_input(key: str):
    """An uploaded file, or a path on the server for files too big to upload.

    Returns ``(path, display name)`` or ``(None, None)``.
    """
    upload = st.file_uploader("CSV or Parquet file", type=["csv", "tsv", "parquet", "pq"], key=f"{key}_upload")
    folders = read_folders(default_db_path())
    with st.expander("…or read a file, folder or glob on the server"):
        server_path = st.text_input("Path", key=f"{key}_path", placeholder="/data/logs/2026-11-*.parquet")
        st.caption(
            "The app reads files inside "
            + (", ".join(f"`{f}`" for f in folders) or "no folder")
            + " (the setting `SLICEBOARD_READ_FOLDERS` names others)."
        )
    uploads = _uploads()
    if upload is not None:
        if upload.file_id in st.session_state.setdefault("sb_uploads_done", set()):
            st.caption(f"{upload.name} is ingested and its copy removed; upload another file.")
            return None, None
        return str(uploads.keep(upload.file_id, upload.name, upload.getbuffer())), upload.name
    uploads.discard()  # removed from the uploader (or never there): no copy stays
    if server_path.strip():
        try:
            return check_readable(server_path, folders), server_path.strip()
        except SliceboardError as exc:
            st.error(str(exc), icon=":material/block:")
    return None, None


def ingested() -> None:
    """After a successful ingest: the uploaded copy is removed, and the same upload is not
    saved again."""
    uploads = _uploads()
    if uploads.tag is not None:
        st.session_state.setdefault("sb_uploads_done", set()).add(uploads.tag)
    uploads.discard()

"""The shared frame of every page: the database, the project picker, cached
queries and readable errors. The only place where Streamlit caching lives."""

from __future__ import annotations

import importlib
import logging
import time
from contextlib import contextmanager

import streamlit as st

from analysis import DatabaseBusyError, SliceboardError, Store, default_db_path, get_project, list_projects
from analysis.engine import answered, engine_connection, get_settings

log = logging.getLogger("sliceboard")

BUSY_WAIT_SECONDS = 20.0


@st.cache_resource(show_spinner=False)
def _store_for(path: str) -> Store:
    # One Store per database path for the whole server. It holds no open
    # connection: each query opens the file briefly, so the CLI can write.
    return Store(path, busy_timeout=BUSY_WAIT_SECONDS)


@st.cache_resource(show_spinner=False)
def favicon() -> bytes:
    """A 32x32 bar-chart icon as PNG bytes (served by the app itself)."""
    import io

    from PIL import Image, ImageDraw

    icon = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    for left, top in ((3, 18), (12, 6), (21, 12)):
        draw.rectangle((left, top, left + 7, 28), fill=(255, 75, 75, 255))
    buffer = io.BytesIO()
    icon.save(buffer, format="PNG")
    return buffer.getvalue()


def store() -> Store:
    return _store_for(str(default_db_path()))


@st.cache_data(show_spinner="Querying the log…", max_entries=256)
def _cached_call(fingerprint: tuple, path: str, func_path: str, project: str | None, kwargs: tuple):
    module, name = func_path.rsplit(".", 1)
    func = getattr(importlib.import_module(module), name)
    with _store_for(path).read() as con:
        if project is None:
            return func(con, **dict(kwargs)), None
        p = get_project(con, project)
        settings = get_settings(con, p)
        # The project's engine answers (DuckDB, or Spark over its Parquet dataset).
        with answered(settings) as answer:
            with engine_connection(con, p, settings) as engine_con:
                value = func(engine_con, p, **dict(kwargs))
        return value, answer


def query(func, project: str | None = None, **kwargs):
    """Run ``func(con, project, **kwargs)`` read-only on the project's engine, cached
    until the database changes (the key includes the engine setting, kept in the
    database). Keyword values must be hashable plain values (strings, numbers, tuples).
    """
    s = store()
    start = time.perf_counter()
    value, answer = _cached_call(
        s.fingerprint(), str(s.path), f"{func.__module__}.{func.__name__}", project,
        tuple(sorted(kwargs.items())),
    )
    if answer is not None:  # what the sidebar says answered this page
        cached = time.perf_counter() - start < answer.seconds / 2
        st.session_state.setdefault("sb_answers", []).append((answer.engine, answer.seconds, cached))
    return value


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_metadata(fingerprint: tuple, path: str, func_path: str, project: str):
    module, name = func_path.rsplit(".", 1)
    func = getattr(importlib.import_module(module), name)
    with _store_for(path).read() as con:
        return func(con, get_project(con, project))


def metadata(func, project: str):
    """``func(con, project)`` on the local database only (settings, curation data),
    cached until the database changes: no engine is started to read a setting."""
    s = store()
    return _cached_metadata(s.fingerprint(), str(s.path), f"{func.__module__}.{func.__name__}", project)


def clear_caches() -> None:
    _cached_call.clear()
    _cached_metadata.clear()


def ensure_database() -> None:
    """Build the demo project on first start, when there is no database yet."""
    s = store()
    if s.exists():
        return
    from analysis.demo import build_demo

    with st.status("First start: building the demo project…", expanded=True) as status:
        bar = st.progress(0.0)

        def progress(fraction: float, text: str) -> None:
            bar.progress(min(1.0, fraction), text=text)

        build_demo(s, progress=progress)
        status.update(label="Demo project ready", state="complete", expanded=False)
    clear_caches()


def project_names() -> list[str]:
    return [p.name for p in query(list_projects)]


def project_picker() -> str | None:
    """Sidebar picker; the choice is kept in the URL (``?project=``)."""
    names = project_names()
    if not names:
        return None
    wanted = st.query_params.get("project")
    if st.session_state.get("project") not in names:
        st.session_state["project"] = wanted if wanted in names else names[0]
    choice = st.sidebar.selectbox("Project", names, key="project")
    # Also kept outside the widget: Streamlit drops a widget's state on a run
    # that does not draw it (pages run under AppTest's switch_page, for one).
    st.session_state["sb_project"] = choice
    if st.query_params.get("project") != choice:
        st.query_params["project"] = choice
    return choice


def require_app() -> None:
    """Every page calls this first.

    Until app.py has called ``st.navigation`` once in a server process,
    Streamlit treats the ``pages/`` folder the old way: a first request for a
    page URL (a deep link such as ``/slices?...``) runs that file alone, with
    no frame and an automatic page list. Leave that mode and rerun, so that
    app.py draws the frame and runs the page.
    """
    from streamlit.runtime.pages_manager import PagesManager  # pinned Streamlit 1.67

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def current_project() -> str:
    """The selected project, or an empty state that stops the page."""
    names = project_names()
    name = next((n for n in (st.session_state.get("project"), st.session_state.get("sb_project"),
                             st.query_params.get("project")) if n in names), None)
    if not name:
        st.info(
            "There are no projects in this database yet. Import a predictions file on the "
            "**Import** page, or build the demo with `python -m analysis demo`."
        )
        st.page_link("pages/import_data.py", label="Go to Import", icon=":material/upload:")
        st.stop()
    return name


def show_error(exc: BaseException) -> None:
    if isinstance(exc, DatabaseBusyError):
        st.warning(str(exc), icon=":material/hourglass:")
    elif isinstance(exc, SliceboardError):
        st.error(str(exc), icon=":material/error:")
    else:
        log.exception("unexpected error in a page", exc_info=exc)
        st.error(
            f"Something went wrong ({type(exc).__name__}: {exc}). The details are in the "
            "server log.",
            icon=":material/error:",
        )


@contextmanager
def readable_errors():
    """Show errors as messages instead of tracebacks (Streamlit's own control
    flow, such as ``st.rerun``, passes through: it is not an ``Exception``)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - everything becomes a readable message
        show_error(exc)


def fmt_int(n) -> str:
    return f"{int(n):,}"


def fmt_pct(x) -> str:
    return "–" if x is None or x != x else f"{x:.1%}"


def fmt_num(x, spec: str = ".3f") -> str:
    return "–" if x is None or x != x else format(x, spec)

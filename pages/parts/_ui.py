"""The shared frame of every page: the database, the project picker, cached
queries and readable errors. The only place where Streamlit caching lives."""

from __future__ import annotations

import html
import importlib
import logging
import os
import pickle
import re
import threading
import time
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from analysis import DatabaseBusyError, SliceboardError, Store, default_db_path, get_project, list_projects
from analysis.engines.settings import answered, engine_connection, get_settings
from analysis.store.access import ReadOnlyStore, read_only_mode
from analysis.store.changes import Signatures
from analysis.store.changes import signatures as read_signatures
from pages.parts import _warm_up

log = logging.getLogger("sliceboard")

BUSY_WAIT_SECONDS = 20.0
TRACE_ENV = "SLICEBOARD_TRACE"
_TRACE_LOCK = threading.Lock()


@st.cache_resource(show_spinner=False)
def _store_for(path: str, read_only: bool = False) -> Store:
    # One Store per database path for the whole server. It holds no open
    # connection: each query opens the file briefly, so the CLI can write.
    # Read-only mode: a store that refuses every write before opening the file.
    return (ReadOnlyStore if read_only else Store)(path, busy_timeout=BUSY_WAIT_SECONDS)


def read_only() -> bool:
    """Read-only mode (``SLICEBOARD_READ_ONLY=1``): pages hide every control that writes."""
    return read_only_mode()


# CommonMark shows a backslash-escaped punctuation character literally. Escaped: every
# character that starts Markdown, HTML, an entity, LaTeX, an autolink (www., x@y, any
# "scheme:") or one of Streamlit's directives (:material/icon:, :red[text], :smile:);
# and, at the start of a line, what starts a list or a heading underline. The rest
# (- . / , ; = ? ' " ( ) > letters, and _ inside a word, which CommonMark never reads
# as emphasis) stays as typed, so names such as self_employed read as they are.
_ALWAYS = re.compile(
    r"([\\`*~\[\]<&#|${}!@^])|:(?=\S)|(?<=material)/|(?<=www)\.|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", re.IGNORECASE
)
_LINE_START = re.compile(r"^(\s*)([-+=>]|\d+[.)])")
# Streamlit's Markdown turns bare URLs, www. names and e-mail addresses into links after
# escapes are read, so no escape stops it: an invisible word joiner breaks the pattern.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def plain(text) -> str:
    """User text (a project, version, slice, set or report name, a description, a
    value, a message quoting them) for any Streamlit element that reads Markdown
    (markdown, caption, title, info/success/warning/error, metric and widget labels,
    toasts): shown literally, never as an image, a link, HTML or an icon."""
    if text is None:
        return ""
    out = []
    for line in re.split(r"\r\n|\r|\n", str(text)):
        line = _ALWAYS.sub(lambda m: "\\" + m.group(0), _AUTOLINK.sub(WORD_JOINER, line))
        out.append(_LINE_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], line))
    return "  \n".join(out)


def chart_text(text) -> str:
    """User text inside a plotly title or label, which reads a little HTML: shown literally."""
    return html.escape("" if text is None else str(text), quote=False)  # plotly shows &quot; as written


def note(text: str) -> None:
    """A report note (Markdown): drawn without images, raw HTML or links to other hosts."""
    # Imported here: analysis.reports brings the comparison engine (scipy, statsmodels),
    # seconds of imports that every page's first run would otherwise wait for.
    from analysis.reports.html import note_html

    st.html(note_html(text))


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
    return _store_for(str(default_db_path()), read_only_mode())


# Which areas of the database (see analysis.store.changes) each cached answer depends on: the
# signatures are read again only when the file changed on disk (a stat, microseconds),
# and after a write of this process (clear_caches).
_SIGNATURES: dict[str, tuple[tuple, Signatures]] = {}
_SIGNATURES_LOCK = threading.Lock()
# Set while a cached function body runs: the call was computed, not served from cache.
_COMPUTING = threading.local()


def signatures() -> Signatures:
    """The database's area signatures, read again only when its file changed."""
    s = store()
    key = str(s.path)
    fingerprint = s.fingerprint()
    with _SIGNATURES_LOCK:
        known = _SIGNATURES.get(key)
    if known is not None and known[0] == fingerprint:
        return known[1]
    with s.read() as con:
        value = read_signatures(con)
    with _SIGNATURES_LOCK:
        _SIGNATURES[key] = (fingerprint, value)
    return value


@st.cache_data(show_spinner="Querying the log…", max_entries=256)
def _cached_call(depends_on: tuple, path: str, func_path: str, project: str | None, kwargs: tuple):
    _COMPUTING.computed = True
    return compute(path, func_path, project, kwargs)


def compute(path: str, func_path: str, project: str | None, kwargs: tuple, extra: dict | None = None):
    """``func(con, project, **kwargs)`` on the project's engine, uncached: ``(value, answer)``,
    the answer saying which engine answered and how fast (None for a call without project).
    ``extra``: more keyword arguments that do not change the answer (a progress callback)."""
    _warm_up.settle()  # no computation while libraries are half imported on another thread
    kwargs = (*kwargs, *(extra or {}).items())
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
    until a write changes what it reads (the areas ``analysis.store.changes.READS`` declares
    for it, every area when not declared; the project and its engine setting always).
    Keyword values must be hashable plain values (strings, numbers, tuples).
    """
    _COMPUTING.computed = False
    key = call_key(func, project, kwargs)
    func_path = key[2]
    value, answer = _cached_call(*key)
    computed = getattr(_COMPUTING, "computed", False)
    _COMPUTING.computed = False
    note_answer(func_path, project, kwargs, answer, computed)
    return value


def note_answer(func_path: str, project: str | None, kwargs: dict, answer, computed: bool) -> None:
    """Trace the call (benchmarks) and keep which engine answered, for the sidebar."""
    trace_call(func_path, project, kwargs, computed, answer.seconds if answer is not None else None)
    if answer is not None:
        st.session_state.setdefault("sb_answers", []).append((answer.engine, answer.seconds, not computed))


def call_key(func, project: str | None, kwargs: dict) -> tuple:
    """What identifies an answer: the areas of the database it reads as they are now (a
    write that changes them makes a new key), the database, the function and its arguments."""
    func_path = f"{func.__module__}.{func.__name__}"
    return (signatures().key(func_path, project), str(store().path), func_path, project, tuple(sorted(kwargs.items())))


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_metadata(depends_on: tuple, path: str, func_path: str, project: str):
    _COMPUTING.computed = True
    module, name = func_path.rsplit(".", 1)
    func = getattr(importlib.import_module(module), name)
    with _store_for(path).read() as con:
        return func(con, get_project(con, project))


def trace_call(func_path: str, project: str | None, kwargs: dict, computed: bool, seconds: float | None) -> None:
    """With ``$SLICEBOARD_TRACE`` set (benchmarks/bench_pages.py), append each engine call
    of a page to that file, so that the benchmark can time the same calls directly."""
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    record = (time.time(), func_path, project, kwargs, computed, seconds)
    with _TRACE_LOCK, open(path, "ab") as fh:
        pickle.dump(record, fh)


def trace_mark(name: str) -> None:
    """A point of the script run (its start, its end) in the trace, when tracing."""
    trace_call(name, None, {}, False, None)


def metadata(func, project: str):
    """``func(con, project)`` on the local database only (settings, curation data),
    cached until a write changes what it reads: no engine is started to read a setting."""
    s = store()
    func_path = f"{func.__module__}.{func.__name__}"
    _COMPUTING.computed = False
    value = _cached_metadata(signatures().key(func_path, project), str(s.path), func_path, project)
    trace_call(func_path, project, {}, getattr(_COMPUTING, "computed", False), None)
    _COMPUTING.computed = False
    return value


def clear_caches() -> None:
    """Call after a write: the next query reads the database's signatures again, so
    the answers the write changed are computed again and the others stay cached."""
    with _SIGNATURES_LOCK:
        _SIGNATURES.clear()


def ensure_database() -> None:
    """Build the demo project on first start, when there is no database yet."""
    s = store()
    if s.exists():
        return
    if read_only_mode():
        st.info(
            "There is no Sliceboard database here yet, and this app is read-only: it shows a database "
            "someone else builds."
        )
        st.stop()
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
    trace_mark("run start")
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
    app.py draws the frame and runs the page. That old mode matches a URL to a
    file's name and lists every file at the top of ``pages/``: each page file is
    named as its address and the shared code lives in ``pages/parts/``, so the
    first request finds its page (no "Page not found") and lists no helper.
    """
    from streamlit.runtime.pages_manager import PagesManager  # pinned Streamlit 1.67

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def current_project() -> str:
    """The selected project, or an empty state that stops the page."""
    names = project_names()
    name = next(
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
    if not name and read_only():
        st.info("There are no projects in this database yet.")
        st.stop()
    if not name:
        st.info(
            "There are no projects in this database yet. Import a predictions file on the "
            "**Import** page, or build the demo with `python -m analysis demo`."
        )
        st.page_link("pages/import.py", label="Go to Import", icon=":material/upload:")
        st.stop()
    return name


def show_error(exc: BaseException) -> None:
    """An error as a message; its text (which may quote names and values) shown literally."""
    if isinstance(exc, DatabaseBusyError):
        st.warning(plain(exc), icon=":material/hourglass:")
    elif isinstance(exc, SliceboardError):
        st.error(plain(exc), icon=":material/error:")
    else:
        log.exception("unexpected error in a page", exc_info=exc)
        st.error(
            f"Something went wrong ({type(exc).__name__}: {plain(exc)}). The details are in the server log.",
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
    return "–" if pd.isna(x) else f"{x:.1%}"


def fmt_num(x, spec: str = ".3f") -> str:
    return "–" if pd.isna(x) else format(x, spec)

"""Slow answers (the deployment gate, a discovery search on millions of rows) computed on a
worker thread: the page settles at once and stays usable, says what is being computed and
for how long, and reruns itself when the answer is in.

``answer(func, project, **kwargs)`` is ``_ui.query``'s answer when it is ready within
``wait_seconds()`` (most are: small projects, answers already computed), else a
:class:`Pending`; ``show_pending`` draws it where the answer will go, and a fragment polls
the job and reruns the page once it is done. A computation that says its first figures
before the rest (``figures(first)``, as a comparison does before searching its slices)
hands them to the page through ``Pending.first_figures``: the page shows them as soon as
they are in, without computing them a second time. The answers are kept per key (the areas of the
database they read, as ``_ui.query``'s cache does), so a write makes a new one and every
session shares them.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass

import streamlit as st

from pages.parts import _ui

WAIT_ENV = "SLICEBOARD_WAIT_SECONDS"
DEFAULT_WAIT = 0.5  # the page waits this long for a slow answer before saying it is coming
KEEP = 32  # answers kept (the newest); an older one is computed again when asked for

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sliceboard-slow")
_JOBS: OrderedDict[tuple, tuple[float, Future]] = OrderedDict()
_PROGRESS: dict[tuple, tuple[float, str]] = {}  # what each job said it is doing
_FIRST: dict[tuple, Future] = {}  # each job's first figures, when it says them
_NOTED: set[tuple] = set()  # answers already said to be computed (the first page to show one computed it)
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Pending:
    """An answer still being computed: since when (``time.monotonic``), its job, and its key."""

    started: float
    job: Future
    key: tuple

    def progress(self) -> tuple[float, str] | None:
        """``(fraction done, what it is doing)`` as the computation last said, if it says."""
        return _PROGRESS.get(self.key)

    def first_figures(self, timeout: float):
        """The first figures the computation said (``answer(..., figures=True)``), waiting
        for them up to ``timeout`` seconds; None if the computation ended first (done, or
        failed: ``answer`` then gives its value or raises its error) or they are not in yet."""
        first = _FIRST.get(self.key)
        if first is None:
            return None
        wait_for_futures([first, self.job], timeout=timeout, return_when=FIRST_COMPLETED)
        return first.result() if first.done() else None


def wait_seconds() -> float:
    """How long a page waits for a slow answer from when it was asked for
    (``$SLICEBOARD_WAIT_SECONDS``, default 0.5)."""
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def answer(func, project: str | None = None, *, progress: bool = False, figures: bool = False, **kwargs):
    """``func(con, project, **kwargs)`` as ``_ui.query`` answers it, or a :class:`Pending`
    while a worker computes it (``progress``: ``func`` takes a ``progress(fraction, text)``
    callback, and the pending state shows what it says; ``figures``: it takes a
    ``figures(first)`` callback, and ``Pending.first_figures`` gives them). An error of the
    computation is raised here, as by ``query``, and the next request computes it again."""
    key = _ui.call_key(func, project, kwargs)
    with _LOCK:
        if key not in _JOBS:

            def say(fraction: float, text: str) -> None:
                _PROGRESS[key] = (fraction, text)

            extra = {"progress": say} if progress else {}
            if figures:
                first = _FIRST[key] = Future()
                extra["figures"] = first.set_result
            _JOBS[key] = (time.monotonic(), _POOL.submit(_ui.compute, *key[1:], extra))
            for old in [k for k, (_, job) in _JOBS.items() if job.done()][: max(0, len(_JOBS) - KEEP)]:
                del _JOBS[old]
                _NOTED.discard(old)
                _PROGRESS.pop(old, None)
                _FIRST.pop(old, None)
        _JOBS.move_to_end(key)
        started, job = _JOBS[key]
    try:
        # A new job gets a short wait (a quick answer shows without a pending state); one
        # already under way is not waited for again on every rerun while it runs.
        value, engine_answer = job.result(timeout=max(0.0, wait_seconds() - (time.monotonic() - started)))
    except FutureTimeout:
        return Pending(started, job, key)
    except Exception:
        with _LOCK:
            _JOBS.pop(key, None)
            _FIRST.pop(key, None)
        raise
    with _LOCK:
        computed = key not in _NOTED
        _NOTED.add(key)
    _ui.note_answer(key[2], project, kwargs, engine_answer, computed)
    return value


def show_pending(pending: Pending, message: str) -> None:
    """Where the answer will show: what is being computed and for how long. Polled every
    second; the page reruns when the answer is in."""

    @st.fragment(run_every=1.0)
    def poll() -> None:
        if pending.job.done():
            st.rerun(scope="app")
        seconds = time.monotonic() - pending.started
        box = st.container(key="sb_pending")
        box.info(
            f"{message} ({seconds:.0f} s so far). The rest of the page can be used meanwhile; "
            "this part fills in by itself.",
            icon=":material/hourglass_top:",
        )
        said = pending.progress()
        if said is not None:
            fraction, text = said
            box.progress(min(1.0, max(0.0, fraction)), text=_ui.plain(f"Now: {text}"))

    poll()


def wait_for_answers(timeout: float | None = None) -> bool:
    """Wait until every answer being computed is in (tests of the pending state); True when all are."""
    with _LOCK:
        jobs = [job for _, job in _JOBS.values()]
    return not wait_for_futures(jobs, timeout=timeout).not_done

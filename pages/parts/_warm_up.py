"""The heavy libraries the pages need (scipy.stats alone takes about 0.6 s to import)
are imported on a thread once the first page of a fresh server has been drawn, so the
next page a person opens does not pay for them.

Only third-party libraries are imported here: they never import Sliceboard's modules, so
a page importing one of them at the same moment simply waits for it."""

from __future__ import annotations

import importlib
import logging
import threading

LIBRARIES = (
    "scipy.stats",
    "statsmodels.stats.proportion",
    "statsmodels.stats.multitest",
    "sklearn.metrics",
    "statsmodels.stats.contingency_tables",
    "markdown_it",
)

_LOCK = threading.Lock()
_THREADS: list[threading.Thread] = []  # the one warm-up thread, once started


def _import_all() -> None:
    for name in LIBRARIES:
        try:
            importlib.import_module(name)
        except ImportError:  # a page that needs it says so when it is opened
            logging.getLogger(__name__).warning("could not import %s ahead of use", name)
        except BaseException:  # noqa: BLE001 - the server is stopping under the import: nothing to warm any more
            return


def warm_up() -> threading.Thread:
    """Start the imports, once per server process (later calls return the same thread)."""
    with _LOCK:
        if not _THREADS:
            _THREADS.append(threading.Thread(target=_import_all, name="sliceboard-warm-up", daemon=True))
            _THREADS[0].start()
        return _THREADS[0]


def settle() -> None:
    """Wait until the imports under way are done (at once when none is). A library being
    imported on this thread is visible, half made, to the others: scikit-learn checks
    whether polars is loaded, and statsmodels imports polars when it is installed, so a
    computation racing the imports could read a partial module. What computes waits."""
    with _LOCK:
        threads = list(_THREADS)
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join()


def done() -> bool:
    """Whether the heavy libraries are in: the warm-up ran to its end."""
    with _LOCK:
        threads = list(_THREADS)
    return bool(threads) and not threads[0].is_alive()

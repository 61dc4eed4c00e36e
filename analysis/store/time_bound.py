"""A time bound for work that users' expressions cause.

An expression passes the whitelist of :mod:`analysis.metrics.expressions` and still may be
slow on a large log. :func:`time_bound` runs a block of DuckDB work with a timer
thread that calls ``con.interrupt()`` once ``seconds`` have passed (DuckDB's own
way to cancel the running query of a connection; it has no statement timeout);
the interrupted query raises, and the block ends in a :class:`ConfigError` saying
what was cancelled after how long. The timer is disarmed under a lock when the
block ends, so it can never interrupt a later query on the same connection.
Within a transaction an interrupted query aborts the transaction (the caller
rolls back, as for any error).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import duckdb

from analysis.errors import ConfigError

# Checking an expression against the log's rows (a definition being stored, a cost
# before a search): seconds before it is cancelled.
CHECK_SECONDS = 60.0


def local_connection(con):
    """The DuckDB connection under an engine connection (the store's own), or ``con``."""
    return getattr(con, "local", None) or con


@contextmanager
def time_bound(con: duckdb.DuckDBPyConnection, seconds: float, what: str) -> Iterator[None]:
    """Run the block; after ``seconds`` interrupt ``con``'s running query and raise
    :class:`ConfigError` naming ``what`` (such as "checking revenue = sum(x)")."""
    lock = threading.Lock()
    state = {"armed": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["armed"]:
                state["fired"] = True
                con.interrupt()

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except duckdb.InterruptException:
        if state["fired"]:
            raise ConfigError(f"{what} took longer than {seconds:g} s and was cancelled.") from None
        raise
    finally:
        with lock:
            state["armed"] = False
        timer.cancel()


def run_bounded(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list | None = None,
    *,
    seconds: float = CHECK_SECONDS,
    what: str = "The query",
) -> list[tuple]:
    """``con.execute(sql, params).fetchall()`` under :func:`time_bound`."""
    with time_bound(con, seconds, what):
        return con.execute(sql, params or []).fetchall()

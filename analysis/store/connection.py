"""Opening the database file: short sessions, shared reads, retried writes.

DuckDB lets one process hold a database file read-write, and while it does no
other process can open the file at all. Several processes may read together.
Sliceboard therefore never keeps the file open between operations:

* every operation opens the file, does its work and closes it again, so the
  dashboard holds the file only while a page is being computed;
* reads open it read-only (the app and ``python -m analysis metrics`` can read
  side by side); writes open it read-write;
* when another process holds a conflicting lock, opening is retried with
  bounded exponential backoff; if the lock outlives ``busy_timeout`` seconds the
  caller gets :class:`DatabaseBusyError` naming the process that holds it;
* inside one process (the app serves many browser sessions from threads),
  reads share the file and a write waits until they are done, because DuckDB
  refuses a read-write and a read-only connection to one file in one process.
"""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from analysis.errors import DatabaseBusyError, DatabaseNotFoundError
from analysis.store.migrations import SCHEMA_VERSION, current_version, ensure_schema
from analysis.store.schema import data_version, is_blank, is_empty

DEFAULT_DB = Path(__file__).resolve().parents[2] / "data" / "sliceboard.duckdb"  # the repository's data/
DB_ENV = "SLICEBOARD_DB"
MEMORY_ENV = "SLICEBOARD_MEMORY_LIMIT"
# DuckDB's own default is 80% of RAM; a bounded buffer pool keeps a 10M-row
# ingest near 1 GB of process memory (DuckDB spills to disk beyond it).
DEFAULT_MEMORY_LIMIT = "1GB"


def default_db_path() -> Path:
    """``$SLICEBOARD_DB`` if set, else ``data/sliceboard.duckdb`` in the repository."""
    env = os.environ.get(DB_ENV)
    return Path(env).expanduser() if env else DEFAULT_DB


class _ReadWriteLock:
    """Many readers or one writer; waiting writers go first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


_LOCKS: dict[str, _ReadWriteLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> _ReadWriteLock:
    key = str(path.resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, _ReadWriteLock())


_HOLDER = re.compile(r"Conflicting lock is held in (?P<prog>.+?) \(PID (?P<pid>\d+)\)")


def _is_lock_conflict(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _holder(exc: BaseException) -> str:
    match = _HOLDER.search(str(exc))
    if not match:
        return "another process"
    pid = match.group("pid")
    cmd = ""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\x00", b" ").decode().strip()
    except OSError:
        pass
    return f"process {pid} ({cmd or match.group('prog')})"


class Store:
    """A Sliceboard database file.

    ``with store.read() as con`` and ``with store.write() as con`` give a DuckDB
    connection for the length of one operation. ``busy_timeout`` is how long to
    wait for a file another process holds; ``memory_limit`` bounds DuckDB's
    buffer pool (default ``$SLICEBOARD_MEMORY_LIMIT`` or 1GB).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        busy_timeout: float = 30.0,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.busy_timeout = busy_timeout
        self.memory_limit = memory_limit or os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY_LIMIT
        self.threads = threads
        self._lock = _lock_for(self.path)
        self._schema_checked = False

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.exists()

    def fingerprint(self) -> tuple:
        """Cheap token that changes whenever the file changes (for caches)."""
        parts: list = [str(self.path)]
        for p in (self.path, Path(str(self.path) + ".wal")):
            try:
                st = p.stat()
                parts += [st.st_mtime_ns, st.st_size]
            except FileNotFoundError:
                parts += [None, None]
        return tuple(parts)

    def _configure(self, con: duckdb.DuckDBPyConnection, read_only: bool = True) -> None:
        con.execute("SET TimeZone = 'UTC'")
        # DuckDB's own progress bar writes to the terminal, into the CLI's JSON output.
        con.execute("SET enable_progress_bar = false")
        if not read_only:
            # Bulk inserts then fill whole row groups in parallel and are stored
            # final at commit; with insertion order kept, DuckDB writes them
            # provisionally and rewrites them over the next checkpoints (at ten
            # million rows: 12 s at commit and 3 s more at each of the next
            # writes). Sliceboard never relies on row order: queries say ORDER BY.
            con.execute("SET preserve_insertion_order = false")
        if self.memory_limit:
            con.execute("SET memory_limit = ?", [self.memory_limit])
        if self.threads:
            con.execute("SET threads = ?", [int(self.threads)])

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as exc:
                if not _is_lock_conflict(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise DatabaseBusyError(
                        f"The database {self.path} is in use by {_holder(exc)}, which kept "
                        f"it locked for more than {self.busy_timeout:g} s. Wait for it to "
                        "finish (an ingest or labels run) and try again."
                    ) from None
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)
                continue
            try:
                self._configure(con, read_only)
            except BaseException:
                con.close()
                raise
            return con

    def initialize(self) -> None:
        """Create the file (and its folder) if needed and bring the schema up to date."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock.writing():
            con = self._connect(read_only=False)
            try:
                ensure_schema(con)
                con.execute("CHECKPOINT")
            finally:
                con.close()
        self._schema_checked = True

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for one operation."""
        if not self.exists():
            raise DatabaseNotFoundError(
                f"There is no Sliceboard database at {self.path}. Build the demo with "
                "`python -m analysis demo` or ingest a file first."
            )
        if not self._schema_checked:
            self._check_schema()
        with self._lock.reading():
            con = self._connect(read_only=True)
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def write(self, *, create: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection for one operation.

        With ``create`` a missing database file is created; if the operation then
        fails, the new file is removed again, so a rejected first ingest leaves
        nothing behind. Whether this operation created the file is decided after the
        lock is taken (the file is new when it holds no table at all), and the file
        is removed before the lock is let go: a writer in another process that
        created the same file a moment earlier, or opens it right after, never loses
        its data. Without ``create`` a missing file is an error.
        """
        if not create and not self.exists():
            raise DatabaseNotFoundError(
                f"There is no Sliceboard database at {self.path}. Ingest predictions first (or check the --db path)."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock.writing():
            con = self._connect(read_only=False)
            created = False
            try:
                created = is_empty(con)
                if created or not self._schema_checked:
                    ensure_schema(con)
                    self._schema_checked = True
                yield con
            except BaseException:
                if created:
                    self._discard(con)
                raise
            finally:
                con.close()

    def _discard(self, con: duckdb.DuckDBPyConnection) -> None:
        """Remove the database file of ``con`` while its lock is still held.

        Everything is checkpointed first, so no write-ahead log is left that closing
        the connection would later delete by name (by then it could be another
        process's log for a new file at the same path)."""
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction was open
        try:
            con.execute("CHECKPOINT")
        except duckdb.Error:
            return  # keep the file: an empty Sliceboard database, usable as it is
        self.path.unlink(missing_ok=True)
        self._schema_checked = False

    def is_blank(self) -> bool:
        """True when there is no database file or it holds no data (see :func:`is_blank`)."""
        if not self.exists():
            return True
        with self._lock.reading():
            con = self._connect(read_only=True)
            try:
                return is_blank(con)
            finally:
                con.close()

    def _check_schema(self) -> None:
        with self._lock.reading():
            con = self._connect(read_only=True)
            try:
                version = current_version(con)
            finally:
                con.close()
        if version != SCHEMA_VERSION:
            self.initialize()
        self._schema_checked = True

    def data_version(self) -> int:
        """Counter bumped by every write that changes stored data."""
        with self.read() as con:
            return data_version(con)

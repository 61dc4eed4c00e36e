"""One database file shared by the app, the CLI and cron jobs: short sessions,
retried writes, clear messages when another process holds the file too long."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL_MAPPING, small_predictions

from analysis import (
    DatabaseBusyError,
    DatabaseNotFoundError,
    Store,
    attach_labels,
    get_project,
    ingest_predictions,
    parse_mapping,
)
from analysis.overview import overview_table

ROOT = Path(__file__).resolve().parent.parent

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("locked", flush=True)
sys.stdin.readline()  # hold the file until the test says so
con.close()
print("released", flush=True)
"""


class LockHolder:
    """Another process that holds the database file open until released."""

    def __init__(self, path: Path, mode: str = "rw") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "released"
        self.proc.wait(timeout=30)

    @property
    def pid(self) -> int:
        return self.proc.pid


def seeded_store(path: Path, **kw) -> Store:
    store = Store(path, **kw)
    with store.write() as con:
        ingest_predictions(con, small_predictions(10), project="p", mapping=parse_mapping(SMALL_MAPPING))
    return store


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(DatabaseNotFoundError, match="python -m analysis demo"):
        with Store(tmp_path / "none.duckdb").read():
            pass


def test_database_is_closed_between_operations(tmp_path):
    path = tmp_path / "db.duckdb"
    seeded_store(path)
    # If any connection were left open, another process could not take the file.
    holder = LockHolder(path, "rw")
    holder.release()


def test_write_waits_for_another_process_then_succeeds(tmp_path):
    path = tmp_path / "db.duckdb"
    store = seeded_store(path, busy_timeout=60)
    holder = LockHolder(path, "rw")
    result: dict = {}

    def write():
        with store.write() as con:
            result["report"] = attach_labels(con, pd.DataFrame({"request_id": ["r1"], "label": [True]}), project="p")

    worker = threading.Thread(target=write)
    worker.start()
    worker.join(timeout=0.3)
    assert worker.is_alive(), "the write should be waiting for the other process"
    holder.release()
    worker.join(timeout=60)
    assert result["report"].applied == 1


def test_persistent_lock_becomes_a_message_naming_the_process(tmp_path):
    path = tmp_path / "db.duckdb"
    seeded_store(path)
    holder = LockHolder(path, "rw")
    try:
        with pytest.raises(DatabaseBusyError) as info:
            with Store(path, busy_timeout=0.3).read():
                pass
        message = str(info.value)
        assert f"process {holder.pid}" in message and "python" in message and "0.3 s" in message
    finally:
        holder.release()


def test_readers_in_other_processes_share_the_file(tmp_path):
    path = tmp_path / "db.duckdb"
    store = seeded_store(path)
    holder = LockHolder(path, "ro")
    try:
        with store.read() as con:
            assert con.execute("SELECT count(*) FROM log_1").fetchall()[0][0] == 10
    finally:
        holder.release()


def test_threads_reading_and_writing_lose_nothing(tmp_path):
    """The app serves sessions from threads: reads share the file, writes take turns."""
    path = tmp_path / "db.duckdb"
    store = seeded_store(path)
    errors: list = []
    counts: list = []

    def reader():
        try:
            for _ in range(15):
                with store.read() as con:
                    counts.append(int(overview_table(con, get_project(con, "p")).n_rows.sum()))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def writer(k: int):
        try:
            for j in range(3):
                ids = [f"r{i}" for i in range(10)]
                frame = pd.DataFrame({"request_id": ids, "revenue": [float(k * 10 + j)] * 10})
                with store.write() as con:
                    attach_labels(con, frame, project="p", overwrite=True)
                with store.write() as con:
                    ingest_predictions(con, small_predictions(2, start=100 + k * 10 + j * 2), project="p")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer, args=(k,)) for k in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with store.read() as con:
        assert con.execute("SELECT count(*), count(DISTINCT prediction_id) FROM log_1").fetchall()[0] == (28, 28)
    assert counts and all(10 <= c <= 28 for c in counts)


def test_cli_writes_while_another_process_keeps_reading(tmp_path):
    """A cron job attaching labels while the dashboard keeps querying: both finish."""
    path = tmp_path / "db.duckdb"
    seeded_store(path)
    labels_file = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": [f"r{i}" for i in range(10)], "label": [True, False] * 5}).to_csv(
        labels_file, index=False
    )
    reader_code = """
import sys
from analysis import Store
store = Store(sys.argv[1])
seen = 0
while seen < 10:
    with store.read() as con:
        seen = con.execute("SELECT count(label) FROM log_1").fetchall()[0][0]
print("saw", seen, flush=True)
"""
    reader = subprocess.Popen([sys.executable, "-c", reader_code, str(path)], stdout=subprocess.PIPE, text=True)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "labels",
            str(labels_file),
            "--project",
            "p",
            "--db",
            str(path),
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0 and out.strip() == "saw 10"

"""Shared fixtures: real DuckDB files in temp folders, a demo database built once."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analysis import Store
from analysis.demo import build_demo

ROOT = Path(__file__).resolve().parent.parent
# The files that take longest run first. Each file runs whole in one worker (``--dist
# loadfile``, tests/run.sh), in the order collected: a long file started last would keep one
# worker busy while the other has finished (alphabetically, the Spark files come last).
LONGEST_FIRST = (
    "test_spark.py",
    "test_browser.py",
    "test_spark_connect.py",
    "test_sequential.py",
    "test_crash_safety.py",
    "test_app_machine.py",
    "test_browser_slices.py",
    "test_browser_present.py",
)


def pytest_collection_modifyitems(session, config, items) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def db_digest(path: str | os.PathLike) -> dict:
    """Content of every table: row count and an order-independent checksum of all rows.

    Two databases with equal digests hold the same data, whatever the file bytes.
    """
    path = Path(path)
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name"
            ).fetchall()
        ]
        digest = {}
        for t in tables:
            q = '"' + t.replace('"', '""') + '"'
            cols = [r[0] for r in con.execute(f"DESCRIBE {q}").fetchall()]
            n, h = con.execute(f"SELECT count(*), coalesce(sum(CAST(hash(t) AS HUGEINT)), 0) FROM {q} AS t").fetchall()[
                0
            ]
            digest[t] = (tuple(cols), int(n), int(h))
        return digest
    finally:
        con.close()


def labeled_out_of_step(path: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """Stored projects whose copy of the labeled rows differs from the log's labeled
    rows: ``{log table: (rows missing from the copy, rows only in the copy)}``."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        logs = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'log\\_%' ESCAPE '\\' "
                "AND table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        for log in logs:
            labeled = "labeled_" + log.split("_", 1)[1]
            cols = ", ".join('"' + r[0].replace('"', '""') + '"' for r in con.execute(f'DESCRIBE "{log}"').fetchall())
            mine = f'SELECT {cols} FROM "{log}" WHERE label IS NOT NULL'
            copy = f'SELECT {cols} FROM "{labeled}"'
            missing = con.execute(f"SELECT count(*) FROM ({mine} EXCEPT ALL {copy})").fetchall()[0][0]
            extra = con.execute(f"SELECT count(*) FROM ({copy} EXCEPT ALL {mine})").fetchall()[0][0]
            if missing or extra:
                out[log] = (missing, extra)
        return out
    finally:
        con.close()


def repeat_flags_wrong(path: str | os.PathLike) -> list[tuple]:
    """``(project, version, stage, flag)`` of every stored version x stage whose flag
    (analysis.ingest.key_repeats) could mislead a comparison: missing, or saying "no repeats"
    where an example has two rows. (A sticky "repeats" where none is left is allowed.)"""
    con = duckdb.connect(str(path), read_only=True)
    try:
        wrong = []
        logs = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'log\\_%' ESCAPE '\\' "
                "AND table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        for log in logs:
            pid = int(log.split("_", 1)[1])
            truth = con.execute(
                f'SELECT model_version, stage, count(*) > count(DISTINCT example_id) FROM "{log}" GROUP BY ALL'
            ).fetchall()
            for version, stage, repeats in truth:
                flag = con.execute(
                    "SELECT repeats FROM sb_key_repeats WHERE project_id = ? AND model_version = ? AND stage = ?",
                    [pid, version, stage],
                ).fetchall()
                if not flag or (repeats and not flag[0][0]):
                    wrong.append((pid, version, stage, flag[0][0] if flag else None))
        return wrong
    finally:
        con.close()


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "test.duckdb"


@pytest.fixture
def store(db_path) -> Store:
    return Store(db_path, busy_timeout=10)


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The full demo project, built once per test session (read it, do not write)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(Store(path))
    return path


@pytest.fixture
def demo_copy(demo_db, tmp_path) -> Path:
    """A private copy of the demo database that a test may change."""
    target = tmp_path / "demo.duckdb"
    target.write_bytes(Path(demo_db).read_bytes())
    return target


def small_predictions(n: int = 12, *, start: int = 0) -> pd.DataFrame:
    """A small binary log with mixed feature types and hand-checkable values."""
    import numpy as np

    i = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "request_id": [f"r{k}" for k in i],
            "ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(i, unit="h"),
            "model": np.where(i % 2 == 0, "m1", "m2"),
            "score": np.round((i % 10) / 10 + 0.05, 2),
            "country": np.array(["NG", "US", "DE"])[i % 3],
            "age": 20 + i,
            "vip": i % 4 == 0,
        }
    )


SMALL_MAPPING = """
[project]
task = "binary"
positive_label = "true"

[columns]
id = "request_id"
timestamp = "ts"
version = "model"
score = "score"
label = "label"
outcomes = ["revenue"]
"""

"""Nothing stored is lost: racing first writes, processes killed halfway through a write.

A process is killed at chosen statements of a write's transaction (the first, the
middle, the one before COMMIT) by a connection wrapper in the child process, so the
kill lands where it is meant to on every run. Afterwards the database opens with
every table as it was, no input view is left in the file, and the same write run
again succeeds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_MAPPING, db_digest, small_predictions

from analysis import IngestError, Store, ingest_predictions, parse_mapping
from analysis.store.project import get_project
from analysis.valsets import Selection, create_set, promote

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, signal, sys
import pandas as pd
from analysis import Store, attach_labels, ingest_predictions, parse_mapping
from analysis.store.project import get_project
from analysis.valsets import commit

path, operation, kill_at, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


class KilledHalfway:
    # Counts the statements of the write's transaction up to its COMMIT; kills this
    # process just before statement number ``kill_at`` runs (0: never).
    def __init__(self, con):
        self._con, self.statements, self.open, self.done = con, 0, False, False

    def execute(self, sql, *args, **kwargs):
        word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if word == "BEGIN" and not self.done:
            self.open = True
        if self.open:
            self.statements += 1
            if self.statements == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if word == "COMMIT":
                self.open, self.done = False, True
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


with Store(path).write() as con:
    wrapped = KilledHalfway(con)
    if operation == "ingest":
        mapping = parse_mapping(open(arg + ".toml").read())
        ingest_predictions(wrapped, arg, project="p", mapping=mapping)
    elif operation == "labels":
        attach_labels(wrapped, arg, project="p")
    else:
        commit(wrapped, get_project(con, "p"), arg, "freeze")
print(json.dumps({"statements": wrapped.statements}))
"""


def _run_child(path: Path, operation: str, kill_at: int, arg: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(path), operation, str(kill_at), arg],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )


def _persistent_views(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary "
                "AND view_name NOT LIKE 'log\\_%' ESCAPE '\\'"
            ).fetchall()
        ]
    finally:
        con.close()


def _seeded(path: Path) -> None:
    with Store(path).write() as con:
        ingest_predictions(con, small_predictions(40), project="p", mapping=parse_mapping(SMALL_MAPPING))


def _more_predictions(tmp_path: Path) -> str:
    csv = tmp_path / "more.csv"
    small_predictions(2000, start=1000).to_csv(csv, index=False)
    Path(str(csv) + ".toml").write_text(SMALL_MAPPING)
    return str(csv)


def _labels(tmp_path: Path) -> str:
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": [f"r{i}" for i in range(40)], "label": np.arange(40) % 3 == 0}).to_csv(csv, index=False)
    return str(csv)


def _draft(path: Path) -> str:
    with Store(path).write() as con:
        project = get_project(con, "p")
        create_set(con, project, "hard")
        promote(con, project, "hard", Selection(), reason="all of them")
    return "hard"


def _kill_points(statements: int) -> list[int]:
    """The first statement of the transaction, one in the middle, and its COMMIT (the last)."""
    return sorted({1, max(1, statements // 2), statements})


@pytest.mark.parametrize("operation", ["ingest", "labels", "commit"])
def test_a_write_killed_halfway_leaves_the_database_as_it_was(tmp_path, operation):
    path = tmp_path / "db.duckdb"
    _seeded(path)
    arg = {
        "ingest": lambda: _more_predictions(tmp_path),
        "labels": lambda: _labels(tmp_path),
        "commit": lambda: _draft(path),
    }[operation]()

    # A dry run on a copy counts the statements of the transaction.
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(path.read_bytes())
    dry = _run_child(copy, operation, 0, arg)
    assert dry.returncode == 0, dry.stderr
    statements = json.loads(dry.stdout)["statements"]
    assert statements >= 3
    expected_after = db_digest(copy)

    before = db_digest(path)
    for kill_at in _kill_points(statements):
        killed = _run_child(path, operation, kill_at, arg)
        assert killed.returncode == -9, (kill_at, killed.stdout, killed.stderr)
        assert db_digest(path) == before, f"killed at statement {kill_at} of {statements}"
        assert _persistent_views(path) == []

    retry = _run_child(path, operation, 0, arg)
    assert retry.returncode == 0, retry.stderr
    after = db_digest(path)
    assert after.keys() == expected_after.keys()
    # Rows written with the time of writing differ; every table holds the same number of rows.
    assert {t: v[1] for t, v in after.items()} == {t: v[1] for t, v in expected_after.items()}


def test_a_killed_first_ingest_leaves_a_database_that_the_next_write_uses(tmp_path):
    path = tmp_path / "new.duckdb"
    arg = _more_predictions(tmp_path)
    killed = _run_child(path, "ingest", 2, arg)
    assert killed.returncode == -9
    assert _persistent_views(path) == []
    assert Store(path).is_blank()
    before = db_digest(path)
    with pytest.raises(IngestError):
        with Store(path).write() as con:
            ingest_predictions(
                con, small_predictions(3).drop(columns=["score"]), project="p", mapping=parse_mapping(SMALL_MAPPING)
            )
    assert db_digest(path) == before
    retry = _run_child(path, "ingest", 0, arg)
    assert retry.returncode == 0, retry.stderr
    assert not Store(path).is_blank()


def test_a_rejected_first_write_leaves_no_file(tmp_path):
    path = tmp_path / "new.duckdb"
    with pytest.raises(IngestError):
        with Store(path).write() as con:
            ingest_predictions(
                con, small_predictions(3).drop(columns=["score"]), project="p", mapping=parse_mapping(SMALL_MAPPING)
            )
    assert not path.exists() and not Path(str(path) + ".wal").exists()


def test_input_views_left_by_older_versions_are_dropped_on_open(tmp_path):
    path = tmp_path / "db.duckdb"
    _seeded(path)
    data = tmp_path / "x.parquet"
    small_predictions(3).to_parquet(data)
    con = duckdb.connect(str(path))
    con.execute(f"CREATE VIEW sb_src AS SELECT * FROM read_parquet('{data}')")
    con.execute("DROP TABLE sb_reference_windows")  # what a version-9 database lacks (11)
    con.execute("DROP TABLE sb_monitors")  # (12)
    con.execute("DROP TABLE sb_monitor_settings")
    for table in (
        "sb_monitor_state",
        "sb_monitor_observations",
        "sb_alerts",
        "sb_alert_events",
        "sb_webhooks",
        "sb_deliveries",
    ):
        con.execute(f"DROP TABLE {table}")  # (13)
    con.execute("UPDATE sb_meta SET value = '9' WHERE key = 'schema_version'")
    con.close()
    with Store(path).read() as con:
        assert con.execute("SELECT count(*) FROM log_1").fetchall()[0][0] == 40
    assert _persistent_views(path) == []


def test_a_rejected_first_write_never_removes_a_database_another_writer_created(tmp_path):
    """Two first ingests race on a new path: the good one's data always survives."""
    good_rows = small_predictions(20)
    bad_rows = small_predictions(5).assign(score=["high"] * 5)  # not numbers: rejected
    mapping = parse_mapping(SMALL_MAPPING)
    for trial in range(12):
        path = tmp_path / f"race{trial}.duckdb"
        start = threading.Barrier(2)
        results: dict = {}

        def run(name: str, rows: pd.DataFrame) -> None:
            start.wait()
            try:
                with Store(path, busy_timeout=60).write() as con:
                    ingest_predictions(con, rows, project=name, mapping=mapping)
                results[name] = "stored"
            except IngestError as exc:
                results[name] = str(exc)

        threads = [
            threading.Thread(target=run, args=("good", good_rows)),
            threading.Thread(target=run, args=("bad", bad_rows)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert results["good"] == "stored" and "score" in results["bad"]
        with Store(path).read() as con:
            assert con.execute("SELECT name FROM sb_projects").fetchall() == [("good",)]
            assert con.execute(f"SELECT count(*) FROM {get_project(con, 'good').log_table}").fetchall()[0][0] == 20


def test_a_rejected_write_keeps_a_file_that_is_not_sliceboards(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE mine AS SELECT 42 AS answer")
    con.close()
    before = db_digest(path)
    with pytest.raises(IngestError):
        with Store(path).write() as con:
            ingest_predictions(
                con, small_predictions(3).drop(columns=["score"]), project="p", mapping=parse_mapping(SMALL_MAPPING)
            )
    assert path.exists()
    assert db_digest(path)["mine"] == before["mine"]


def test_the_app_opens_a_database_left_empty_by_a_killed_first_ingest(monkeypatch, tmp_path):
    """The leftover is an empty Sliceboard database: the app says there are no projects
    yet and offers the Import page, as on any empty database."""
    from test_app import app_on, texts

    path = tmp_path / "left.duckdb"
    killed = _run_child(path, "ingest", 2, _more_predictions(tmp_path))
    assert killed.returncode == -9
    at = app_on(monkeypatch, path).run()
    assert not at.exception
    assert "no projects" in texts(at)
    at.switch_page("pages/import.py").run()
    assert not at.exception

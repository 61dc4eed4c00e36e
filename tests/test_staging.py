"""Ingest reads and checks its input before it locks the database, and stores exactly
what an ingest inside the lock stores."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_MAPPING, db_digest, small_predictions
from test_store import LockHolder

from analysis import DatabaseBusyError, IngestError, Store, attach_labels, ingest_predictions, parse_mapping
from analysis.ingest.staging import STAGING_PREFIX, ingest_staged, remove_abandoned_staging

# Tables that hold the time of writing (it differs between two ingests of one file).
WRITE_TIMES = {"sb_ingests", "sb_projects"}
LOGS = {"log_1": "prediction_id", "labeled_1": "prediction_id", "pending_1": "key_kind, key"}


def _content(path: Path) -> dict:
    """Every table's digest, and the log's and waiting labels' rows without the times of writing."""
    out = {t: v for t, v in db_digest(path).items() if t not in WRITE_TIMES | set(LOGS)}
    con = duckdb.connect(str(path), read_only=True)
    try:
        for log, order in LOGS.items():
            times = "label_timestamp, received_at" if log.startswith("pending") else "label_timestamp"
            rows = con.execute(f"SELECT * EXCLUDE ({times}) FROM {log} ORDER BY {order}").df()
            out[log] = rows.astype(object).where(rows.notna(), None).to_dict("list")
    finally:
        con.close()
    return out


def _both_ways(tmp_path: Path, steps) -> tuple[Path, Path]:
    """Run the same ingests through the staged path and inside one lock."""
    staged, locked = tmp_path / "staged.duckdb", tmp_path / "locked.duckdb"
    for source, kwargs in steps:
        ingest_staged(Store(staged), source, **kwargs)
        with Store(locked).write() as con:
            ingest_predictions(con, source, **kwargs)
    return staged, locked


def test_staged_ingest_stores_what_an_ingest_in_the_lock_stores(tmp_path):
    mapping = parse_mapping(SMALL_MAPPING)
    first = tmp_path / "first.csv"
    small_predictions(50).to_csv(first, index=False)
    second = tmp_path / "second.parquet"
    later = small_predictions(40, start=30)
    later["score"] = np.round(1 - later["score"], 2)
    later.to_parquet(second, index=False)
    labels = pd.DataFrame({"request_id": [f"r{i}" for i in range(60, 75)], "label": [True, False, True] * 5})
    staged, locked = tmp_path / "staged.duckdb", tmp_path / "locked.duckdb"
    for path in (staged, locked):  # labels that wait for their predictions
        with Store(path).write() as con:
            ingest_predictions(con, small_predictions(1, start=500), project="p", mapping=mapping)
            attach_labels(con, labels, project="p")
    steps = [
        (str(first), {"project": "p", "mapping": mapping}),
        (str(second), {"project": "p", "on_duplicate": "replace"}),
        (small_predictions(30, start=60), {"project": "p", "on_duplicate": "skip"}),
    ]
    for source, kwargs in steps:
        a = ingest_staged(Store(staged), source, **kwargs)
        with Store(locked).write() as con:
            b = ingest_predictions(con, source, **kwargs)
        assert {k: v for k, v in a.to_dict().items() if k != "seconds"} == {
            k: v for k, v in b.to_dict().items() if k != "seconds"
        }
    assert _content(staged) == _content(locked)
    with Store(staged).read() as con:
        stored = con.execute("SELECT count(*), count(label) FROM log_1").fetchall()[0]
    assert stored == (1 + 50 + 20 + 20, 15)  # r500, r0-r49, r50-r69 new in the second file, r70-r89


def test_a_new_project_with_a_guessed_mapping_is_the_same_either_way(tmp_path):
    rows = small_predictions(20).rename(columns={"request_id": "id", "ts": "timestamp", "model": "model_version"})
    rows["label"] = np.arange(20) % 2 == 0
    staged, locked = _both_ways(tmp_path, [(rows, {"project": "guess"})])
    assert _content(staged) == _content(locked)


def test_a_bad_input_is_refused_without_waiting_for_the_database(tmp_path):
    """The input is checked before the lock: a reader in another process (the app) that
    keeps the file open does not delay the message, and nothing is written."""
    path = tmp_path / "db.duckdb"
    with Store(path).write() as con:
        ingest_predictions(con, small_predictions(5), project="p", mapping=parse_mapping(SMALL_MAPPING))
    bad = small_predictions(5, start=10).astype({"score": object})
    bad.loc[2, "score"] = "very high"
    before = db_digest(path)
    holder = LockHolder(path, "ro")
    try:
        with pytest.raises(IngestError, match="very high"):
            ingest_staged(Store(path, busy_timeout=0.2), bad, project="p", mapping=parse_mapping(SMALL_MAPPING))
        # A good input is read and checked too, then waits for the file like any write.
        with pytest.raises(DatabaseBusyError):
            ingest_staged(Store(path, busy_timeout=0.2), small_predictions(5, start=20), project="p")
    finally:
        holder.release()
    assert db_digest(path) == before
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_staging_is_private_and_abandoned_staging_is_removed(tmp_path):
    path = tmp_path / "db.duckdb"
    seen = {}
    code = (
        "import os, sys, tempfile\n"
        "from analysis.ingest.staging import STAGING_PREFIX\n"
        "d = tempfile.mkdtemp(prefix=f'{STAGING_PREFIX}{os.getpid()}-', dir=sys.argv[1])\n"
        "open(os.path.join(d, 'staging.duckdb'), 'wb').write(b'x' * 10)\n"
        "print(d)\n"
    )
    left = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        check=True,
    )
    abandoned = Path(left.stdout.strip())
    assert abandoned.is_dir()
    seen["mode"] = stat.S_IMODE(abandoned.stat().st_mode)
    mine = tmp_path / f"{STAGING_PREFIX}{os.getpid()}-running"
    mine.mkdir()
    ingest_staged(Store(path), small_predictions(5), project="p", mapping=parse_mapping(SMALL_MAPPING))
    assert not abandoned.exists()
    assert mine.exists()  # this process still runs: its folder is left alone
    assert remove_abandoned_staging(tmp_path) == []
    assert seen["mode"] == 0o700


def _bad_inputs() -> dict[str, pd.DataFrame]:
    rows = small_predictions(8, start=100)
    no_score = rows.copy()
    no_score.loc[[2, 5], "score"] = np.nan
    infinite = rows.copy()
    infinite.loc[3, "score"] = np.inf
    repeated = pd.concat([rows, rows.head(2)], ignore_index=True)
    text = rows.astype({"score": object})
    text.loc[1, "score"] = "high"
    return {"no score": no_score, "infinite score": infinite, "repeated ids": repeated, "text score": text}


@pytest.mark.parametrize("case", sorted(_bad_inputs()))
def test_a_bad_input_gets_the_same_message_staged_or_in_the_lock(tmp_path, case):
    path = tmp_path / "db.duckdb"
    with Store(path).write() as con:
        ingest_predictions(con, small_predictions(5), project="p", mapping=parse_mapping(SMALL_MAPPING))
    before = db_digest(path)
    source = _bad_inputs()[case]
    with pytest.raises(IngestError) as staged:
        ingest_staged(Store(path), source, project="p")
    with pytest.raises(IngestError) as locked:
        with Store(path).write() as con:
            ingest_predictions(con, source, project="p")
    assert str(staged.value) == str(locked.value)
    assert db_digest(path) == before


def test_staged_labels_store_what_labels_in_the_lock_store(tmp_path):
    """Labels by prediction and by example id, conflicts kept and overwritten, labels that
    wait for their predictions: the same tables and the same report either way."""
    from analysis.ingest.staging import labels_staged

    mapping = parse_mapping(SMALL_MAPPING)
    staged, locked = tmp_path / "staged.duckdb", tmp_path / "locked.duckdb"
    for path in (staged, locked):
        with Store(path).write() as con:
            ingest_predictions(con, small_predictions(40), project="p", mapping=mapping)
    first = tmp_path / "first.csv"
    pd.DataFrame(
        {"request_id": [f"r{i}" for i in range(0, 50)], "label": np.arange(50) % 3 == 0, "revenue": np.arange(50) * 1.5}
    ).to_csv(first, index=False)
    second = pd.DataFrame({"request_id": [f"r{i}" for i in range(20, 30)], "label": [True] * 10})
    steps = [(str(first), {}), (second, {}), (second, {"overwrite": True})]
    for source, options in steps:
        a = labels_staged(Store(staged), source, project="p", **options)
        with Store(locked).write() as con:
            b = attach_labels(con, source, project="p", **options)
        assert {k: v for k, v in a.to_dict().items() if k != "seconds"} == {
            k: v for k, v in b.to_dict().items() if k != "seconds"
        }
    assert _content(staged) == _content(locked)
    assert a.overwritten == b.overwritten > 0 and b.pending == 0


@pytest.mark.parametrize("case", ["repeated ids", "unknown class", "bad outcome"])
def test_bad_labels_are_refused_without_waiting_for_the_database(tmp_path, case):
    from analysis.ingest.staging import labels_staged

    path = tmp_path / "db.duckdb"
    with Store(path).write() as con:
        ingest_predictions(con, small_predictions(5), project="p", mapping=parse_mapping(SMALL_MAPPING))
    frame = pd.DataFrame({"request_id": ["r0", "r1", "r2"], "label": [True, False, True]})
    if case == "repeated ids":
        frame["request_id"] = ["r0", "r1", "r0"]
    elif case == "unknown class":
        frame["label"] = ["true", "perhaps", "false"]
    else:
        frame["revenue"] = ["1.5", "lots", "2"]
    with pytest.raises(IngestError) as locked:
        with Store(path).write() as con:
            attach_labels(con, frame, project="p")
    before = db_digest(path)
    holder = LockHolder(path, "ro")  # the app reading: the staged check does not wait for it
    try:
        with pytest.raises(IngestError) as staged:
            labels_staged(Store(path, busy_timeout=0.2), frame, project="p")
    finally:
        holder.release()
    assert str(staged.value) == str(locked.value)
    assert db_digest(path) == before

"""Ingest from CSV, Parquet and DataFrames; every bad input is rejected with a
message naming what is wrong, and the database content is left exactly as it was."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_MAPPING, db_digest, labeled_out_of_step, repeat_flags_wrong, small_predictions

from analysis import ConfigError, IngestError, get_project, ingest_predictions, parse_mapping

MAPPING = parse_mapping(SMALL_MAPPING)


def ingest(store, source, **kw):
    kw.setdefault("project", "p")
    kw.setdefault("mapping", MAPPING)
    with store.write() as con:
        return ingest_predictions(con, source, **kw)


def rows(db_path, sql="SELECT * FROM log_1 ORDER BY prediction_id"):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


@pytest.fixture
def seeded(store, db_path):
    """A project with 12 predictions already stored."""
    ingest(store, small_predictions(12))
    return store


def assert_rejected(store, db_path, source, match, exc=IngestError, **kw):
    store.initialize()  # compare against an existing (possibly empty) database
    before = db_digest(db_path)
    with pytest.raises(exc, match=match) as info:
        ingest(store, source, **kw)
    assert db_digest(db_path) == before, "a rejected input changed the database"
    return info.value


# --- happy paths -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def labeled_rows_stay_in_step(db_path):
    """After every write of this module, each stored log's copy of its labeled rows
    equals its labeled rows."""
    yield
    if db_path.exists():
        assert labeled_out_of_step(db_path) == {}
        assert repeat_flags_wrong(db_path) == []


def test_dataframe_creates_project_with_native_types(store, db_path):
    report = ingest(store, small_predictions(12))
    assert report.created_project and report.inserted == 12 and report.task == "binary"
    with store.read() as con:
        project = get_project(con, "p")
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'log_1'"
            ).fetchall()
        )
    assert {c.name: c.kind for c in project.features} == {"country": "categorical", "age": "numeric", "vip": "boolean"}
    assert types["age"] == "BIGINT" and types["vip"] == "BOOLEAN" and types["country"] == "VARCHAR"
    assert types["prediction"] == "BOOLEAN" and types["score"] == "DOUBLE" and types["timestamp"] == "TIMESTAMP"
    stored = rows(db_path)
    # No prediction column: prediction = score >= threshold (0.5).
    assert list(stored.prediction) == list(stored.score >= 0.5)
    assert (stored.example_id == stored.prediction_id).all()
    assert set(stored.stage) == {"production"}


def test_csv_parquet_folder_and_glob(store, db_path, tmp_path):
    frame = small_predictions(40)
    frame.iloc[:10].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[10:20].to_parquet(tmp_path / "b.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[20:30].to_parquet(folder / "x.parquet")
    frame.iloc[30:35].to_parquet(folder / "y.parquet")
    frame.iloc[35:40].to_parquet(tmp_path / "g1.parquet")
    assert ingest(store, str(tmp_path / "a.csv")).inserted == 10
    assert ingest(store, str(tmp_path / "b.parquet")).inserted == 10
    assert ingest(store, str(folder)).inserted == 15
    assert ingest(store, str(tmp_path / "g*.parquet")).inserted == 5
    stored = rows(db_path)
    assert len(stored) == 40
    csv_row = stored.set_index("prediction_id").loc["r3"]
    assert csv_row.age == 23 and csv_row.country == "NG" and bool(csv_row.vip) is False
    assert csv_row.timestamp == pd.Timestamp("2026-01-01 03:00")


def test_mapping_toml_with_all_roles_and_stage_values(store, db_path, tmp_path):
    frame = small_predictions(6)
    frame["example"] = ["e1", "e1", "e2", "e2", "e3", "e3"]
    frame["stage"] = ["production", "SHADOW", " canary ", "offline", None, "production"]
    frame["pred"] = ["yes", "no", "yes", "no", "no", "yes"]
    frame["truth"] = ["yes", None, "no", "no", None, "yes"]
    frame["truth_at"] = ["2026-02-01T00:00:00+02:00", None, "2026-02-02", "2026-02-03", None, "2026-02-04"]
    frame["revenue"] = [1.5, 2, None, 4, 5, 6]
    toml = tmp_path / "m.toml"
    toml.write_text("""
[project]
name = "p"
task = "binary"
positive_label = "yes"
[columns]
id = "request_id"
example = "example"
timestamp = "ts"
version = "model"
stage = "stage"
prediction = "pred"
score = "score"
label = "truth"
label_timestamp = "truth_at"
features = ["country", "age"]
outcomes = ["revenue"]
[kinds]
age = "categorical"
""")
    from analysis import load_mapping

    ingest(store, frame, mapping=load_mapping(toml))
    stored = rows(db_path)
    assert list(stored.stage) == ["production", "shadow", "canary", "offline", "production", "production"]
    assert list(stored.prediction) == [True, False, True, False, False, True]
    assert stored.label.tolist()[:4] == [True, None, False, False] or stored.label.isna().tolist() == [
        False,
        True,
        False,
        False,
        True,
        False,
    ]
    # Text with an offset is converted to UTC.
    assert stored.label_timestamp.iloc[0] == pd.Timestamp("2026-01-31 22:00")
    assert list(stored.example_id) == ["e1", "e1", "e2", "e2", "e3", "e3"]
    with store.read() as con:
        project = get_project(con, "p")
        assert project.positive_label == "yes" and project.negative_label == "no"
        assert project.column("age").kind == "categorical" and project.column("age").dtype == "VARCHAR"
        assert [c.name for c in project.features] == ["country", "age"]


def test_constant_version_and_stage(store, db_path):
    frame = small_predictions(4).drop(columns=["model"])
    ingest(store, frame, mapping=MAPPING.with_(version=None), version="v9", stage="offline")
    stored = rows(db_path)
    assert set(stored.model_version) == {"v9"} and set(stored.stage) == {"offline"}


def test_guessed_mapping_for_new_project(store, db_path):
    frame = pd.DataFrame(
        {
            "prediction_id": ["a", "b", "c"],
            "model_version": ["v1"] * 3,
            "timestamp": ["2026-01-01 10:00", "2026-01-01 11:00", "2026-01-02 00:00"],
            "score": [0.2, 0.7, 0.9],
            "label": [0, 1, 1],
            "region": ["x", "y", "x"],
        }
    )
    report = ingest(store, frame, mapping=None)
    assert report.task == "binary"
    assert any("inferred" in w for w in report.warnings)
    stored = rows(db_path)
    assert stored.label.tolist() == [False, True, True]


def test_duplicates_skip_and_replace_keep_late_labels(seeded, db_path):
    store = seeded
    from analysis import attach_labels

    with store.write() as con:
        attach_labels(con, pd.DataFrame({"request_id": ["r1"], "label": [True], "revenue": [10.0]}), project="p")
    again = small_predictions(14)  # r0..r11 stored, r12 and r13 new
    skip = ingest(store, again, on_duplicate="skip")
    assert (skip.inserted, skip.skipped_duplicates) == (2, 12)
    assert len(rows(db_path)) == 14
    changed = small_predictions(2).assign(score=[0.99, 0.01])
    rep = ingest(store, changed, on_duplicate="replace")
    assert rep.replaced == 2
    stored = rows(db_path).set_index("prediction_id")
    assert len(stored) == 14
    assert stored.loc["r1", "score"] == 0.01
    # The replacement carried no label or outcome: the late ones stay.
    assert bool(stored.loc["r1", "label"]) is True and stored.loc["r1", "revenue"] == 10.0


def test_empty_input_writes_nothing(seeded, db_path):
    before = db_digest(db_path)
    report = ingest(seeded, small_predictions(3).iloc[:0])
    assert report.inserted == 0 and "no rows" in report.warnings[0]
    assert db_digest(db_path) == before


# --- bad inputs: each named, nothing written ----------------------------------------


def test_missing_mapped_column(seeded, db_path):
    err = assert_rejected(
        seeded,
        db_path,
        small_predictions(3, start=50).drop(columns=["ts"]),
        r"column 'ts' \(mapped as timestamp\) is not in the input",
    )
    assert err.column == "ts"


def test_missing_feature_of_existing_project(seeded, db_path):
    assert_rejected(
        seeded,
        db_path,
        small_predictions(3, start=50).drop(columns=["age"]),
        r"feature column 'age' of project 'p' is not in the input",
    )


def test_missing_column_in_first_file_is_named(store, db_path):
    assert_rejected(
        store, db_path, small_predictions(3).drop(columns=["model"]), r"column 'model' \(mapped as version\)"
    )
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM sb_projects").fetchall()[0][0] == 0


def test_wrong_type_names_rows_and_count(seeded, db_path, tmp_path):
    frame = small_predictions(8, start=50).astype({"age": object})
    frame.loc[2, "age"] = "forty"
    frame.loc[5, "age"] = "n/a"
    path = tmp_path / "bad_age.csv"
    frame.to_csv(path, index=False)
    err = assert_rejected(seeded, db_path, str(path), r"column 'age': 2 rows do not convert to BIGINT")
    assert "bad_age.csv" in str(err)
    # Data rows 3 and 6 are lines 4 and 7 of the CSV (the header is line 1).
    assert "line 4: 'forty'" in str(err) and "line 7: 'n/a'" in str(err)
    assert err.rows == [4, 7] and err.count == 2


def test_duplicate_ids_within_file(store, db_path):
    frame = small_predictions(6)
    frame.loc[4, "request_id"] = "r1"
    err = assert_rejected(store, db_path, frame, r"1 row repeats an id.*'r1' \(2 times\)")
    assert err.column == "request_id"


def test_duplicate_ids_against_store(seeded, db_path):
    err = assert_rejected(
        seeded,
        db_path,
        small_predictions(14),
        r"12 of 14 prediction ids are already stored in project 'p'.*--on-duplicate skip",
    )
    assert err.count == 12


def test_scores_out_of_range(seeded, db_path):
    frame = small_predictions(5, start=50)
    frame.loc[1, "score"] = 1.5
    frame.loc[3, "score"] = -0.2
    err = assert_rejected(seeded, db_path, frame, r"column 'score': 2 rows are outside \[0, 1\]")
    assert "position 1: '1.5'" in str(err) and "position 3: '-0.2'" in str(err)


def test_infinite_score(seeded, db_path):
    frame = small_predictions(3, start=50)
    frame.loc[0, "score"] = np.inf
    assert_rejected(
        seeded, db_path, frame, r"column 'score': 1 row (are|is) not (a )?finite numbers? \(position 0: 'inf'\)"
    )


def test_unparseable_timestamps(seeded, db_path, tmp_path):
    frame = small_predictions(4, start=50)
    frame["ts"] = frame["ts"].astype(str)
    frame.loc[2, "ts"] = "yesterday"
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    err = assert_rejected(seeded, db_path, str(path), r"column 'ts': 1 row is not a timestamp \(row 3: 'yesterday'\)")
    assert err.rows == [3]


def test_unknown_stage(seeded, db_path):
    frame = small_predictions(3, start=50).assign(stage=["production", "staging", "canary"])
    assert_rejected(
        seeded, db_path, frame, r"column 'stage': 1 row is not a stage.*'staging'", mapping=MAPPING.with_(stage="stage")
    )


def test_third_class_in_binary_task(seeded, db_path):
    frame = small_predictions(3, start=50).assign(label=["true", "false", "maybe"])
    assert_rejected(
        seeded,
        db_path,
        frame,
        r"column 'label': 1 row is not one of the two classes 'true' \(positive\) and 'false' \(negative\).*'maybe'",
    )


def test_missing_ids_and_versions(seeded, db_path):
    frame = small_predictions(4, start=50)
    frame.loc[1, "request_id"] = None
    frame.loc[2, "model"] = "  "
    err = assert_rejected(seeded, db_path, frame, r"column 'request_id': 1 row has no id")
    assert "column 'model': 1 row has no model version" in str(err)


def test_corrupt_and_missing_files(seeded, db_path, tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1" + b"\x00garbage" * 50)
    assert_rejected(seeded, db_path, str(bad), r"broken.parquet: cannot be read as Parquet")
    assert_rejected(seeded, db_path, str(tmp_path / "nope.csv"), r"nope.csv: file not found")
    assert_rejected(seeded, db_path, str(tmp_path / "none-*.parquet"), r"no files match")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("request_id,ts,model,score,country,age,vip\nr90,2026-01-01,m1,0.5,NG,3,true\nr91,2026-01-01,m1\n")
    assert_rejected(seeded, db_path, str(ragged), r"ragged.csv")


def test_reserved_and_case_colliding_names(store, db_path):
    assert_rejected(store, db_path, small_predictions(3).assign(stage="x"), r"'stage' is a reserved column name")
    assert_rejected(
        store, db_path, small_predictions(3).assign(Country="x"), r"columns 'country' and 'Country' differ only in case"
    )


def test_task_mismatch_and_bad_policy(seeded, db_path):
    assert_rejected(
        seeded,
        db_path,
        small_predictions(3, start=50),
        r"is a binary task",
        exc=ConfigError,
        mapping=MAPPING.with_(task="regression"),
    )
    assert_rejected(
        seeded, db_path, small_predictions(3, start=50), r"on_duplicate must be", exc=ConfigError, on_duplicate="merge"
    )


def test_hostile_column_names_are_just_names(store, db_path):
    evil = 'x"; DROP TABLE sb_projects; --'
    frame = small_predictions(4).assign(**{evil: ["a", "b", "a", "b"]})
    ingest(store, frame)
    stored = rows(db_path)
    assert list(stored[evil]) == ["a", "b", "a", "b"]
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM sb_projects").fetchall()[0][0] == 1


def test_failure_mid_write_rolls_back(seeded, db_path, monkeypatch):
    """A crash after rows were inserted (here: recording the ingest) leaves nothing behind."""
    import analysis.ingest.predictions as ingest_module

    before = db_digest(db_path)

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest_module, "record_ingest", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(seeded, small_predictions(5, start=100))
    assert db_digest(db_path) == before

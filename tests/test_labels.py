"""Late labels and outcomes: applied, kept pending when early, never silently overwritten."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from conftest import SMALL_MAPPING, db_digest, labeled_out_of_step, repeat_flags_wrong, small_predictions

from analysis import (
    ConfigError,
    IngestError,
    ProjectNotFoundError,
    attach_labels,
    get_project,
    ingest_predictions,
    parse_mapping,
)
from analysis.overview import overview_table, project_summary

MAPPING = parse_mapping(SMALL_MAPPING)


def ingest(store, frame, **kw):
    with store.write() as con:
        return ingest_predictions(con, frame, project="p", mapping=MAPPING, **kw)


def labels(store, frame, **kw):
    with store.write() as con:
        return attach_labels(con, frame, project="p", **kw)


def stored(db_path, table="log_1"):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table}").df().set_index("prediction_id" if table == "log_1" else "key")
    finally:
        con.close()


@pytest.fixture
def seeded(store):
    ingest(store, small_predictions(10))
    return store


@pytest.fixture(autouse=True)
def labeled_rows_stay_in_step(db_path):
    """After every write of this module, each stored log's copy of its labeled rows
    equals its labeled rows."""
    yield
    if db_path.exists():
        assert labeled_out_of_step(db_path) == {}
        assert repeat_flags_wrong(db_path) == []


def test_labels_and_outcomes_apply(seeded, db_path):
    rep = labels(
        seeded,
        pd.DataFrame(
            {
                "request_id": ["r0", "r1", "r2"],
                "label": [True, False, True],
                "label_timestamp": ["2026-03-01 12:00", None, "2026-03-02"],
                "revenue": [5.0, None, 7.5],
            }
        ),
        outcomes=["revenue"],
    )
    assert (rep.matched_predictions, rep.applied, rep.pending, rep.conflicting) == (3, 3, 0, 0)
    rows = stored(db_path)
    assert rows.loc["r0", "label"] == True and rows.loc["r1", "label"] == False  # noqa: E712
    assert rows.loc["r0", "label_timestamp"] == pd.Timestamp("2026-03-01 12:00")
    assert pd.notna(rows.loc["r1", "label_timestamp"])  # defaults to arrival time
    assert rows.loc["r2", "revenue"] == 7.5 and pd.isna(rows.loc["r1", "revenue"])
    assert rows.label.notna().sum() == 3
    # The same file again changes nothing.
    again = labels(seeded, pd.DataFrame({"request_id": ["r0", "r1"], "label": [True, False]}))
    assert (again.applied, again.unchanged, again.conflicting) == (0, 2, 0)


def test_labels_before_predictions_wait_then_apply(store, db_path):
    ingest(store, small_predictions(4))
    early = labels(
        store,
        pd.DataFrame({"request_id": ["r2", "r7", "r8"], "label": [True, False, True], "revenue": [1.0, 2.0, 3.0]}),
        outcomes=["revenue"],
    )
    assert (early.applied, early.pending) == (1, 2)
    assert sorted(stored(db_path, "pending_1").index) == ["r7", "r8"]
    with store.read() as con:
        assert project_summary(con, get_project(con, "p")).pending_labels == 2
    late = ingest(store, small_predictions(6, start=4))  # r4..r9 arrive
    assert late.labels_applied_from_pending == 2
    rows = stored(db_path)
    assert rows.loc["r7", "label"] == False and rows.loc["r8", "revenue"] == 3.0  # noqa: E712
    assert stored(db_path, "pending_1").empty


def test_conflicts_are_reported_not_overwritten(seeded, db_path):
    labels(seeded, pd.DataFrame({"request_id": ["r0", "r1"], "label": [True, True]}))
    rep = labels(seeded, pd.DataFrame({"request_id": ["r0", "r1", "r2"], "label": [False, True, False]}))
    assert (rep.conflicting, rep.unchanged, rep.applied) == (1, 1, 1)
    assert rep.conflict_examples == [{"prediction_id": "r0", "stored_label": True, "new_label": False}]
    assert any("--overwrite" in w for w in rep.warnings)
    assert stored(db_path).loc["r0", "label"] == True  # noqa: E712
    forced = labels(seeded, pd.DataFrame({"request_id": ["r0"], "label": [False]}), overwrite=True)
    assert (forced.conflicting, forced.overwritten, forced.applied) == (1, 1, 1)
    assert stored(db_path).loc["r0", "label"] == False  # noqa: E712


def test_conflicting_pending_labels(store, db_path):
    ingest(store, small_predictions(2))
    labels(store, pd.DataFrame({"request_id": ["r50"], "label": [True]}))
    rep = labels(store, pd.DataFrame({"request_id": ["r50"], "label": [False]}))
    assert rep.conflicting == 1 and rep.pending == 1
    assert stored(db_path, "pending_1").loc["r50", "label"] == True  # noqa: E712
    labels(store, pd.DataFrame({"request_id": ["r50"], "label": [False]}), overwrite=True)
    assert stored(db_path, "pending_1").loc["r50", "label"] == False  # noqa: E712


def test_example_keyed_labels_reach_every_version_even_later(store, db_path):
    frame = small_predictions(4).assign(example=["e1", "e1", "e2", "e3"])
    with store.write() as con:
        ingest_predictions(con, frame, project="p", mapping=MAPPING.with_(example="example"))
    rep = labels(
        store,
        pd.DataFrame({"example": ["e1", "e2", "e9"], "label": [True, False, True]}),
        key="example",
        id_column="example",
    )
    assert rep.matched_predictions == 3 and rep.applied == 3 and rep.pending == 1
    # A new version scores e1 and e9 later (an offline re-score): both pick up the labels.
    later = pd.DataFrame(
        {
            "request_id": ["x1", "x9"],
            "ts": pd.Timestamp("2026-02-01"),
            "model": "m3",
            "score": [0.3, 0.8],
            "country": "NG",
            "age": 30,
            "vip": False,
            "example": ["e1", "e9"],
        }
    )
    with store.write() as con:
        r = ingest_predictions(con, later, project="p", mapping=MAPPING.with_(example="example"))
    assert r.labels_applied_from_pending == 2
    rows = stored(db_path)
    assert rows.loc["x1", "label"] == True and rows.loc["x9", "label"] == True  # noqa: E712
    assert rows.loc["r2", "label"] == False  # noqa: E712


def test_new_outcome_column_by_name(seeded, db_path):
    rep = labels(seeded, pd.DataFrame({"request_id": ["r3"], "clicks": [4]}), outcomes=["clicks"])
    assert rep.applied == 1
    with seeded.read() as con:
        project = get_project(con, "p")
        assert [c.name for c in project.outcomes] == ["revenue", "clicks"]
        table = overview_table(con, project)
    assert table.clicks_sum.sum() == 4


def test_unknown_columns_are_ignored_with_a_warning(seeded):
    rep = labels(seeded, pd.DataFrame({"request_id": ["r3"], "label": [True], "notes": ["x"]}))
    assert rep.applied == 1 and "notes" in rep.warnings[0]


def assert_labels_rejected(store, db_path, frame, match, exc=IngestError, **kw):
    before = db_digest(db_path)
    with pytest.raises(exc, match=match):
        labels(store, frame, **kw)
    assert db_digest(db_path) == before


def test_bad_label_files_change_nothing(seeded, db_path, tmp_path):
    assert_labels_rejected(
        seeded,
        db_path,
        pd.DataFrame({"request_id": ["r0", "r1"], "label": ["true", "perhaps"]}),
        r"column 'label': 1 row is not one of the two classes 'true' \(positive\) and 'false' \(negative\)",
    )
    assert_labels_rejected(
        seeded,
        db_path,
        pd.DataFrame({"request_id": ["r0", "r0"], "label": [True, False]}),
        r"1 row repeats an id.*'r0'",
    )
    assert_labels_rejected(
        seeded,
        db_path,
        pd.DataFrame({"request_id": ["r0", None], "label": [True, False]}),
        r"column 'request_id': 1 row has no prediction id",
    )
    assert_labels_rejected(
        seeded,
        db_path,
        pd.DataFrame({"request_id": ["r0"], "label": [True], "label_timestamp": ["soon"]}),
        r"column 'label_timestamp': 1 row is not a timestamp",
    )
    assert_labels_rejected(
        seeded,
        db_path,
        pd.DataFrame({"request_id": ["r0"], "revenue": ["lots"]}),
        r"column 'revenue': 1 row is not a number",
    )
    assert_labels_rejected(
        seeded,
        db_path,
        pd.DataFrame({"id2": ["r0"], "label": [True]}),
        r"no prediction id column found",
        exc=ConfigError,
    )
    assert_labels_rejected(
        seeded, db_path, pd.DataFrame({"request_id": ["r0"], "other": [1]}), r"nothing to attach", exc=ConfigError
    )
    assert_labels_rejected(
        seeded,
        db_path,
        pd.DataFrame({"request_id": ["r0"], "label": [True]}),
        r"column 'nope' \(mapped as outcome\) is not in the input",
        outcomes=["nope"],
    )
    broken = tmp_path / "labels.csv"
    broken.write_bytes(b"\xff\xfe\x00garbage\x00\x00")
    assert_labels_rejected(seeded, db_path, str(broken), r"labels.csv")
    with pytest.raises(ProjectNotFoundError, match=r"No project named 'q'"):
        with seeded.write() as con:
            attach_labels(con, pd.DataFrame({"request_id": ["r0"], "label": [True]}), project="q")


def test_regression_labels(store, db_path):
    frame = pd.DataFrame({"id": ["a", "b"], "v": ["m", "m"], "prediction": [1.0, 2.0]})
    from analysis import Mapping

    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="reg",
            mapping=Mapping(task="regression", id="id", version="v", prediction="prediction", features=[]),
        )
        rep = attach_labels(con, pd.DataFrame({"id": ["a", "b"], "label": ["1.5", "x"]}).iloc[:1], project="reg")
        assert rep.applied == 1
        table = overview_table(con, get_project(con, "reg"))
    assert table.iloc[0].mae == pytest.approx(0.5)


def test_the_write_functions_take_a_project_as_well_as_its_name(seeded, db_path):
    """Read functions take a Project; the writes take one too (or its name, as before),
    and read the project again inside their transaction, so an object read earlier
    writes into the project as it is now."""
    with seeded.read() as con:
        project = get_project(con, "p")
    with seeded.write() as con:
        more = ingest_predictions(con, small_predictions(5, start=10), project=project, mapping=MAPPING)
        rep = attach_labels(con, pd.DataFrame({"request_id": ["r0", "r12"], "label": [True, False]}), project=project)
    assert more.inserted == 5 and rep.matched_predictions == 2
    rows = stored(db_path)
    assert len(rows) == 15 and rows.loc["r0", "label"] and not rows.loc["r12", "label"]

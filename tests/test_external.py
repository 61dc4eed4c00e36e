"""A project over an external, hive-partitioned Parquet dataset gives the same numbers
as the same rows ingested; bad datasets are named and change nothing; writes to the
log are refused; a refresh picks up new files."""

from __future__ import annotations

import math
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import db_digest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_compare import two_versions

from analysis import ConfigError, Mapping, SliceboardError, Store, get_project, ingest_predictions
from analysis.compare.comparison import Side, compare
from analysis.ingest.external import attach_parquet, refresh
from analysis.ingest.labels import attach_labels
from analysis.overview import overview_table
from analysis.slices import parse_slice
from analysis.slices.breakdown import breakdown
from analysis.slices.metrics import slice_metrics
from analysis.store.scope import Scope
from analysis.store.sql import sql_literal

MAPPING = Mapping(
    id="id",
    example="example",
    version="v",
    stage="stage",
    timestamp="ts",
    task="binary",
    prediction="prediction",
    score="score",
    label="label",
    positive_label="1",
    features=["city", "tier"],
    outcomes=["loss"],
)


def frame(n: int = 2000) -> pd.DataFrame:
    rows = two_versions(seed=3, n=n)
    rows["ts"] = (
        pd.Timestamp("2026-05-01")
        + pd.to_timedelta(rows.index % 10, unit="D")
        + pd.to_timedelta(rows.index % 977, unit="s")
    )
    rows["day"] = rows["ts"].dt.date.astype(str)
    unlabeled = rows["example"].isin([f"e{i}" for i in range(n - 300, n)])
    return rows.assign(label=rows["label"].where(~unlabeled))


def write_lake(rows: pd.DataFrame, folder) -> None:
    """model_version=.../day=.../part-0.parquet, as a data lake keeps them."""
    pq.write_to_dataset(
        pa.Table.from_pandas(rows.rename(columns={"v": "model_version"}), preserve_index=False),
        root_path=str(folder),
        partition_cols=["model_version", "day"],
    )


@pytest.fixture()
def lake(tmp_path):
    rows = frame()
    write_lake(rows, tmp_path / "lake")
    store = Store(tmp_path / "x.duckdb")
    lake_mapping = Mapping(**{**MAPPING.__dict__, "version": "model_version"})
    with store.write() as con:
        ingest_predictions(con, rows.drop(columns=["day"]), project="stored", mapping=MAPPING)
        attach_parquet(con, str(tmp_path / "lake"), project="lake", mapping=lake_mapping)
    return store, rows, tmp_path / "lake", lake_mapping


def test_the_lake_gives_the_numbers_of_the_same_rows_stored(lake):
    store, rows, _, _ = lake
    with store.read() as con:
        stored, external = get_project(con, "stored"), get_project(con, "lake")
        assert external.external and external.external.endswith(".parquet")
        assert stored.external is None
        pairs = [
            (
                overview_table(con, p).sort_values(["model_version", "stage"]).reset_index(drop=True)
                for p in (stored, external)
            ),
            (
                slice_metrics(con, p, parse_slice("city = ber AND tier = free"), Scope.of(versions="v2")).table
                for p in (stored, external)
            ),
            (breakdown(con, p, "city").reset_index(drop=True) for p in (stored, external)),
            (compare(con, p, Side("v1"), Side("v2"), discovered=2).overall for p in (stored, external)),
        ]
        for a, b in pairs:
            pd.testing.assert_frame_equal(a, b, rtol=1e-9, check_dtype=False)
        comp = compare(con, external, Side("v1"), Side("v2"), discovered=0)
    assert comp.paired and comp.n_pairs == len(rows) // 2


def test_writes_to_the_lakes_log_are_refused_and_change_nothing(lake, tmp_path):
    store, rows, _, _ = lake
    digest = db_digest(store.path)
    with store.write() as con:
        with pytest.raises(ConfigError, match="reads its predictions from .*write to the dataset"):
            ingest_predictions(con, rows.drop(columns=["day"]).head(5), project="lake", mapping=MAPPING)
        with pytest.raises(ConfigError, match="attaching labels"):
            attach_labels(con, rows[["example", "label"]].head(5), project="lake", key="example")
    assert db_digest(store.path) == digest


def test_bad_datasets_are_named_and_change_nothing(lake, tmp_path):
    store, rows, folder, lake_mapping = lake
    digest = db_digest(store.path)
    csv = tmp_path / "rows.csv"
    rows.to_csv(csv, index=False)
    bad = rows.rename(columns={"v": "model_version"}).assign(score=rows["score"].astype(str))
    bad.loc[3, "score"] = "high"
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), tmp_path / "bad.parquet")
    dup = rows.rename(columns={"v": "model_version"})
    pq.write_table(pa.Table.from_pandas(pd.concat([dup, dup.head(2)]), preserve_index=False), tmp_path / "dup.parquet")
    with store.write() as con:
        for source, project, message in [
            (str(folder), "lake", "exists already"),
            (str(csv), "other", "not a Parquet dataset"),
            (str(tmp_path / "missing"), "other", "(?i)no such|not found|does not exist|no files"),
            (str(tmp_path / "bad.parquet"), "other", "score"),
            (str(tmp_path / "dup.parquet"), "other", "(?i)duplicate|unique|more than once"),
        ]:
            with pytest.raises(SliceboardError, match=message):
                attach_parquet(con, source, project=project, mapping=lake_mapping)
        with pytest.raises(SliceboardError, match="nope"):
            attach_parquet(
                con, str(folder), project="other", mapping=Mapping(**{**lake_mapping.__dict__, "features": ["nope"]})
            )
    assert db_digest(store.path) == digest


def test_a_refresh_reads_files_added_to_the_lake(lake):
    store, rows, folder, _ = lake
    later = frame().assign(ts=pd.Timestamp("2026-05-20"), day="2026-05-20")
    later["id"] = later["id"] + "-later"
    write_lake(later.head(400), folder)
    with store.write() as con:
        project = get_project(con, "lake")
        assert overview_table(con, project)["n_rows"].sum() == len(rows)  # the rollup is as attached
        assert refresh(con, project) == len(rows) + 400
        assert overview_table(con, project)["n_rows"].sum() == len(rows) + 400
        with pytest.raises(ConfigError, match="stored in this database"):
            refresh(con, get_project(con, "stored"))


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text().filter(lambda s: "\x00" not in s),
        st.integers(-(2**62), 2**62),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.dates(min_value=date(1, 1, 1)),
        st.datetimes(min_value=datetime(1, 1, 1)),
    )
)
def test_a_value_written_as_a_literal_reads_back_the_same(value):
    con = duckdb.connect()
    got = con.execute(f"SELECT {sql_literal(value)}").fetchall()[0][0]
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(got)
    else:
        assert got == value and type(got) is type(value) or (isinstance(value, float) and got == value)


def test_a_nul_is_refused_as_a_literal():
    with pytest.raises(ConfigError, match="NUL"):
        sql_literal("a\x00b")
    with pytest.raises(ConfigError):
        sql_literal(np.array([1]))


def test_the_cli_attaches_and_refreshes(tmp_path, capsys):
    import json

    from analysis.cli.main import main

    rows = frame(400)
    write_lake(rows, tmp_path / "lake")
    config = tmp_path / "lake.toml"
    config.write_text(
        '[project]\ntask = "binary"\npositive_label = "1"\n\n[columns]\nid = "id"\n'
        'example = "example"\nversion = "model_version"\nstage = "stage"\ntimestamp = "ts"\n'
        'prediction = "prediction"\nscore = "score"\nlabel = "label"\nfeatures = ["city", "tier"]\n'
    )
    db = ["--db", str(tmp_path / "cli.duckdb")]
    assert (
        main(["attach", str(tmp_path / "lake"), "--project", "lake", "--config", str(config), *db, "--format", "json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["rows"] == len(rows)
    assert main(["slice", "--project", "lake", "--where", "city = ber", *db, "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["attach", "--refresh", "--project", "lake", *db, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == len(rows)
    assert main(["labels", str(tmp_path / "lake"), "--project", "lake", *db]) == 2
    assert "write to the dataset" in capsys.readouterr().err


def test_an_object_store_url_is_read_through_httpfs_or_named(lake):
    """s3://bucket/folder/ is a dataset of every Parquet file below it; without DuckDB's
    httpfs extension (and no download: tests stay on loopback) the message says so."""
    from analysis.ingest.sources import resolve_path

    assert resolve_path("s3://bucket/lake/") == ("s3://bucket/lake/**/*.parquet", "parquet", True)
    assert resolve_path("gs://bucket/day=*/part.parquet") == ("gs://bucket/day=*/part.parquet", "parquet", True)
    store, _, _, lake_mapping = lake
    digest = db_digest(store.path)
    with store.write() as con:
        con.execute("SET autoinstall_known_extensions = false")
        with pytest.raises(SliceboardError, match="httpfs"):
            attach_parquet(con, "s3://sliceboard-nowhere/lake/", project="remote", mapping=lake_mapping)
    assert db_digest(store.path) == digest


def test_a_column_named_with_a_question_mark_attaches_and_groups(tmp_path):
    """A column called ``why?`` (a parameter mark in SQL text) is a name, not a mark: the
    lake attaches, its breakdown and a slice on it count as pandas does."""
    n = 300
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "model": "m1",
            "ts": pd.date_range("2026-01-01", periods=n, freq="h"),
            "prediction": np.arange(n) % 2,
            "score": np.linspace(0, 1, n),
            "label": (np.arange(n) // 3) % 2,
            "why?": np.where(np.arange(n) % 3 == 0, "a", "b"),
        }
    )
    frame.to_parquet(tmp_path / "lake.parquet")
    store = Store(tmp_path / "db.duckdb")
    mapping = Mapping(
        id="id",
        version="model",
        timestamp="ts",
        task="binary",
        prediction="prediction",
        score="score",
        label="label",
        positive_label="1",
        features=["why?"],
    )
    with store.write() as con:
        attach_parquet(con, str(tmp_path / "lake.parquet"), project="q", mapping=mapping)
    with store.read() as con:
        project = get_project(con, "q")
        by_value = breakdown(con, project, "why?").set_index("value")
        sliced = slice_metrics(con, project, parse_slice("why? = a"))
    expected = frame["why?"].value_counts()
    assert by_value.loc["a", "n_rows"] == expected["a"] and by_value.loc["b", "n_rows"] == expected["b"]
    assert sliced.row("slice")["n_rows"] == expected["a"]


def test_migration_7_gives_a_lakes_view_its_example_keys(lake):
    """A database from before schema 7: the lake's view had no example key. Opening it
    migrates the view (the stored log's column is tested in test_saved.py): every row's
    key is the one Python's MD5 gives its example id, and the lake's numbers stay the same."""
    import duckdb as db

    from analysis.store.example_key import example_key
    from analysis.store.migrations import SCHEMA_VERSION

    store, rows, _, _ = lake
    with store.read() as con:
        project = get_project(con, "lake")
        before = overview_table(con, project)
    view = project.log_table
    con = db.connect(str(store.path))
    # The view as schema 6 left it: the same rows, without the key.
    con.execute(f'ALTER VIEW "{view}" RENAME TO sb_keyed')
    con.execute("CREATE TABLE sb_rows AS SELECT * EXCLUDE (example_key) FROM sb_keyed")
    con.execute("DROP VIEW sb_keyed")
    con.execute(f'CREATE VIEW "{view}" AS SELECT * FROM sb_rows')
    assert "example_key" not in [r[0] for r in con.execute(f'DESCRIBE "{view}"').fetchall()]
    # And what schemas 7 to 9 added beside it: engines, the labeled rows' copies, key repeats.
    labeled = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'labeled_%'"
        ).fetchall()
    ]
    for table in (
        "sb_engine",
        "sb_key_repeats",
        "sb_reference_windows",
        "sb_monitors",
        "sb_monitor_settings",
        "sb_monitor_state",
        "sb_monitor_observations",
        "sb_alerts",
        "sb_alert_events",
        "sb_webhooks",
        "sb_deliveries",
        *labeled,
    ):
        con.execute(f'DROP TABLE "{table}"')
    con.execute("UPDATE sb_meta SET value = '6' WHERE key = 'schema_version'")
    con.close()
    with Store(store.path).read() as con:
        keys = con.execute(f'SELECT example_id, example_key FROM "{view}"').fetchall()
        after = overview_table(con, get_project(con, "lake"))
        version = con.execute("SELECT value FROM sb_meta WHERE key = 'schema_version'").fetchall()[0][0]
    assert version == str(SCHEMA_VERSION)
    assert len(keys) == len(rows) and all(key == example_key(example) for example, key in keys)
    pd.testing.assert_frame_equal(before, after)

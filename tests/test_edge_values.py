"""Values at the edges of real data: NaN and infinities as other tools write them,
missing scores, odd column names.

Rules under test (README, "Ingest rules"): NaN is a missing value wherever it comes
from (CSV, Parquet with or without statistics, by pyarrow, polars or DuckDB, a
DataFrame, an attached dataset); a score, a label or a prediction must be finite (an
infinite one is refused, naming the column and rows); an infinite feature or outcome
is stored as missing and the report says how many, of which column; a row of a binary
project whose prediction is derived from its score needs a score.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import db_digest
from sklearn.metrics import accuracy_score, confusion_matrix, mean_absolute_error, mean_squared_error, r2_score

from analysis import IngestError, Mapping, get_project, ingest_predictions
from analysis.discovery.encode import error_choices
from analysis.discovery.run import discover
from analysis.ingest.external import attach_parquet, refresh
from analysis.ingest.labels import attach_labels
from analysis.overview import overview_table
from analysis.slices.breakdown import breakdown
from analysis.slices.grouping import MISSING

N = 300
REG = Mapping(
    id="id",
    version="v",
    timestamp="ts",
    task="regression",
    prediction="pred",
    label="y",
    features=["size", "city"],
    outcomes=["cost"],
)
BIN = Mapping(
    id="id",
    version="v",
    timestamp="ts",
    task="binary",
    score="score",
    label="y",
    positive_label="1",
    features=["size", "city"],
    outcomes=["cost"],
)


def regression_table(seed: int = 7) -> pa.Table:
    """Floats with NaN written as NaN (not as null): pyarrow keeps them."""
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, N)
    pred = y + rng.normal(0, 1, N)
    size = rng.uniform(0, 100, N)
    cost = rng.uniform(0, 5, N)
    y[::17] = np.nan  # (a prediction is required: a NaN one is refused as missing)
    size[::7] = np.nan
    cost[3::11] = np.nan
    return pa.table(
        {
            "id": [f"r{i}" for i in range(N)],
            "v": ["m1"] * N,
            "ts": pa.array(pd.Timestamp("2026-03-01") + pd.to_timedelta(np.arange(N) % 5, unit="D")),
            "size": size,
            "city": np.array(["ber", "lis", "osl"])[np.arange(N) % 3],
            "pred": pred,
            "y": y,
            "cost": cost,
        }
    )


def write(table: pa.Table, path, writer: str) -> str:
    if writer == "pyarrow":
        pq.write_table(table, path)
    elif writer == "pyarrow-nostats":
        pq.write_table(table, path, write_statistics=False)
    elif writer == "polars":
        import polars as pl

        pl.from_arrow(table).write_parquet(path)
    else:
        con = duckdb.connect()
        con.from_arrow(table).write_parquet(str(path))
        con.close()
    return str(path)


WRITERS = ["pyarrow", "pyarrow-nostats", "polars", "duckdb"]


@pytest.mark.parametrize("writer", WRITERS)
def test_an_opened_parquet_file_answers_isnan_truly(tmp_path, writer):
    """The trap: DuckDB folds isnan() to false from min/max statistics, which leave
    NaN out; a source opened by Sliceboard tells NaN apart in every query of it."""
    from analysis.ingest.sources import close_source, open_source

    path = write(pa.table({"x": [1.0, float("nan"), 3.0]}), tmp_path / "x.parquet", writer)
    con = duckdb.connect()
    src = open_source(con, path)
    assert con.execute(f'SELECT list(isnan(x)) FROM "{src.view}"').fetchall()[0][0] == [False, True, False]
    assert con.execute(f'SELECT count(*) FROM "{src.view}" WHERE isnan(x)').fetchall()[0][0] == 1
    close_source(con, src)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("how", ["ingest", "attach"])
def test_nan_is_missing_in_every_parquet_writer(store, tmp_path, writer, how):
    table = regression_table()
    path = write(table, tmp_path / "reg.parquet", writer)
    with store.write() as con:
        if how == "ingest":
            report = ingest_predictions(con, path, project="p", mapping=REG)
            assert report.inserted == N
            assert not any("infinite" in w for w in report.warnings)
        else:
            attach_parquet(con, path, project="p", mapping=REG)
    df = table.to_pandas()
    ok = df["y"].notna() & df["pred"].notna()
    y, p = df.loc[ok, "y"], df.loc[ok, "pred"]
    with store.read() as con:
        project = get_project(con, "p")
        o = overview_table(con, project).iloc[0]
        assert o["mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-9)
        assert o["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, p)), rel=1e-9)
        assert o["r2"] == pytest.approx(r2_score(y, p), rel=1e-9)
        stored = con.execute(
            f'SELECT count(*) FILTER (WHERE "size" IS NULL), count(*) FILTER (WHERE cost IS NULL), '
            f'count(*) FILTER (WHERE isnan("size") OR isnan(cost) OR isnan(label) '
            f'OR isnan(prediction)) FROM "{project.log_table}"'
        ).fetchall()[0]
        assert stored == (df["size"].isna().sum(), df["cost"].isna().sum(), 0)
        sizes = breakdown(con, project, "size")
        missing = sizes.loc[sizes["value"] == MISSING]
        assert int(missing["n_rows"].iloc[0]) == df["size"].isna().sum()
        assert int(sizes["n_rows"].sum()) == N
        found = discover(con, project, error=error_choices(project)[0], columns=["size", "city"], max_level=2)
        assert found.n_rows == int(ok.sum()) and math.isfinite(found.total_errors)


def test_nan_in_a_late_labels_file_is_a_missing_label(store, tmp_path):
    table = regression_table()
    path = write(table.drop_columns(["y", "cost"]), tmp_path / "preds.parquet", "pyarrow")
    labels = write(table.select(["id", "y", "cost"]), tmp_path / "labels.parquet", "pyarrow")
    with store.write() as con:
        ingest_predictions(con, path, project="p", mapping=REG)
        report = attach_labels(con, labels, project="p")
        df = table.to_pandas()
        assert report.applied == int((df["y"].notna() | df["cost"].notna()).sum())
    with store.read() as con:
        project = get_project(con, "p")
        bad = con.execute(
            f"SELECT count(*) FILTER (WHERE isnan(label) OR isnan(cost)), count(label), count(cost) "
            f'FROM "{project.log_table}"'
        ).fetchall()[0]
    df = table.to_pandas()
    assert bad == (0, df["y"].notna().sum(), df["cost"].notna().sum())


# --- infinities ------------------------------------------------------------------------------


def binary_frame(n: int = 40) -> pd.DataFrame:
    i = np.arange(n)
    return pd.DataFrame(
        {
            "id": [f"r{k}" for k in i],
            "v": "m1",
            "ts": pd.Timestamp("2026-03-01") + pd.to_timedelta(i, unit="h"),
            "score": (i % 10) / 10 + 0.05,
            "y": (i % 3 == 0).astype(int),
            "size": i * 1.5,
            "city": np.array(["ber", "lis"])[i % 2],
            "cost": i / 4,
        }
    )


def as_source(frame: pd.DataFrame, form: str, tmp_path):
    """The same rows as a DataFrame, a CSV file or a Parquet file (NaN/inf kept)."""
    if form == "dataframe":
        return frame
    if form == "csv":
        path = tmp_path / "in.csv"
        frame.to_csv(path, index=False)  # inf is written as "inf"
        return str(path)
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return str(path)


FORMS = ["dataframe", "csv", "parquet"]


@pytest.mark.parametrize("form", FORMS + ["attach"])
@pytest.mark.parametrize(
    "column,mapping,value",
    [
        ("score", BIN, np.inf),
        ("score", BIN, -np.inf),
        ("pred", REG, np.inf),
        ("y", REG, -np.inf),
    ],
)
def test_an_infinite_score_label_or_prediction_is_refused_with_its_row(
    store, db_path, tmp_path, form, column, mapping, value
):
    frame = binary_frame()
    if mapping is REG:
        frame = frame.assign(pred=frame["score"] * 10, y=frame["score"] * 9)
    frame[column] = frame[column].astype(float)
    frame.loc[[4, 9], column] = value
    store.initialize()
    before = db_digest(db_path)
    source = as_source(frame, "parquet" if form == "attach" else form, tmp_path)
    with pytest.raises(
        IngestError,
        match=rf"(?s)column '{column}': 2 rows are not finite numbers.*"
        rf"{ {'csv': 'line 6', 'dataframe': 'position 4'}.get(form, 'row 5') }",
    ) as info:
        with store.write() as con:
            if form == "attach":
                attach_parquet(con, source, project="p", mapping=mapping)
            else:
                ingest_predictions(con, source, project="p", mapping=mapping)
    assert info.value.column == column
    assert db_digest(db_path) == before


@pytest.mark.parametrize("form", FORMS + ["attach"])
def test_an_infinite_feature_or_outcome_is_stored_as_missing_and_counted(store, tmp_path, form):
    frame = binary_frame()
    frame.loc[[2, 3, 7], "size"] = [np.inf, -np.inf, np.inf]
    frame.loc[[5], "cost"] = np.inf
    source = as_source(frame, "parquet" if form == "attach" else form, tmp_path)
    with store.write() as con:
        if form == "attach":
            attach_parquet(con, source, project="p", mapping=BIN)
            warnings = con.execute("SELECT details FROM sb_ingests").fetchall()[0][0]
        else:
            warnings = " ".join(ingest_predictions(con, source, project="p", mapping=BIN).warnings)
        assert "3 values of column 'size' were stored as missing because they were infinite" in warnings
        assert "1 value of column 'cost' was stored as missing because it was infinite" in warnings
        project = get_project(con, "p")
        got = con.execute(
            f'SELECT prediction_id FROM "{project.log_table}" WHERE "size" IS NULL ORDER BY prediction_id'
        ).fetchall()
        assert sorted(r[0] for r in got) == ["r2", "r3", "r7"]
        assert con.execute(f'SELECT count(*) FROM "{project.log_table}" WHERE cost IS NULL').fetchall()[0][0] == 1
        assert (
            con.execute(f'SELECT count(*) FROM "{project.log_table}" WHERE isinf("size") OR isinf(cost)').fetchall()[0][
                0
            ]
            == 0
        )


def test_infinite_labels_and_outcomes_in_a_labels_file(store, db_path, tmp_path):
    frame = binary_frame().assign(pred=lambda f: f["score"] * 10)
    with store.write() as con:
        ingest_predictions(
            con,
            frame.drop(columns=["y", "cost"]),
            project="p",
            mapping=Mapping(**{**REG.__dict__, "outcomes": ["cost"]}),
        )
    labels = frame[["id", "cost"]].assign(y=frame["score"] * 9.0)
    labels.loc[3, "cost"] = np.inf
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    with store.write() as con:
        report = attach_labels(con, str(path), project="p")
    assert any("1 value of column 'cost' was stored as missing because it was infinite" in w for w in report.warnings)
    labels.loc[6, "y"] = -np.inf
    labels.to_csv(path, index=False)
    before = db_digest(db_path)
    with store.write() as con:
        with pytest.raises(
            IngestError, match=r"column 'y': 1 row (is|are) not (a )?finite numbers? \(line 8: '-inf'\)"
        ):
            attach_labels(con, str(path), project="p", overwrite=True)
    assert db_digest(db_path) == before


# --- missing scores ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_a_missing_score_that_would_leave_no_prediction_is_refused(store, db_path, tmp_path, form):
    frame = binary_frame()
    frame.loc[[3, 8], "score"] = np.nan  # CSV: an empty cell; Parquet: NaN (pyarrow keeps statistics)
    if form == "parquet":
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.set_column(
            table.schema.get_field_index("score"), "score", pa.array(frame["score"].to_numpy(), from_pandas=False)
        )
        path = tmp_path / "in.parquet"
        pq.write_table(table, path)
        source = str(path)
    else:
        source = as_source(frame, form, tmp_path)
    store.initialize()
    before = db_digest(db_path)
    where = {"csv": "line 5", "dataframe": "position 3", "parquet": "row 4"}[form]
    with pytest.raises(
        IngestError,
        match=rf"column 'score': 2 rows have no score \(needed to derive the "
        rf"prediction\) \({where}",
    ):
        with store.write() as con:
            ingest_predictions(con, source, project="p", mapping=BIN)
    assert db_digest(db_path) == before


def test_rows_without_a_prediction_are_left_out_of_every_binary_metric(store, tmp_path):
    """An attached dataset is checked when attached; a file added later with missing
    scores gives rows without a prediction: accuracy and the confusion matrix both
    leave them out."""
    frame = binary_frame(60)
    lake = tmp_path / "lake"
    lake.mkdir()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), lake / "a.parquet")
    with store.write() as con:
        attach_parquet(con, str(lake), project="p", mapping=BIN)
    later = binary_frame(60).assign(id=lambda f: f["id"] + "-later")
    later["score"] = later["score"].where(later.index % 4 != 0)
    table = pa.Table.from_pandas(later, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("score"), "score", pa.array(later["score"].to_numpy(), from_pandas=False)
    )  # NaN, not null
    pq.write_table(table, lake / "b.parquet")
    both = pd.concat([frame, later], ignore_index=True)
    has = both["score"].notna()
    y, p = both.loc[has, "y"].to_numpy(), (both.loc[has, "score"] >= 0.5).astype(int).to_numpy()
    tn, fp, fn, tp = confusion_matrix(y, p, labels=[0, 1]).ravel()
    with store.write() as con:
        project = get_project(con, "p")
        refresh(con, project)
        for source in ("log", "rollup"):
            o = overview_table(con, project, source=source).iloc[0]
            assert (o["tp"], o["fp"], o["fn"], o["tn"]) == (tp, fp, fn, tn)
            assert o["accuracy"] == pytest.approx(accuracy_score(y, p), rel=1e-12)
            assert o["n_rows"] == len(both)


# --- column names -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["size?", "a ? b", "'?'", "?", 'q"?"', "x; --?", "a\\b?", "é😀?", "$1", ":v"])
def test_a_question_mark_in_a_column_name_attaches(store, tmp_path, name):
    """The view of an attached dataset holds the mapping's values as literals: a ``?``
    in a column name (or in a class value) is no placeholder."""
    frame = binary_frame().rename(columns={"size": name})
    frame.loc[2, name] = np.nan
    frame["y"] = np.where(frame["y"] == 1, "pos?'\\", 'neg"?')
    path = tmp_path / "q.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    mapping = Mapping(**{**BIN.__dict__, "features": [name, "city"], "positive_label": "pos?'\\"})
    with store.write() as con:
        attach_parquet(con, str(path), project="lake", mapping=mapping)
        ingest_predictions(con, frame, project="stored", mapping=mapping)
        lake, stored = get_project(con, "lake"), get_project(con, "stored")
        a = breakdown(con, lake, name).reset_index(drop=True)
        b = breakdown(con, stored, name).reset_index(drop=True)
        o = overview_table(con, lake).iloc[0]
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert (a["value"] == MISSING).sum() == 1
    y = (frame["y"] == "pos?'\\").astype(int)
    assert o["accuracy"] == pytest.approx(accuracy_score(y, (frame["score"] >= 0.5).astype(int)), rel=1e-12)


# --- NaN written as text ----------------------------------------------------------------------


def test_nan_written_as_text_in_a_csv_is_missing_like_a_parquet_nan(store, db_path, tmp_path):
    """Spark and numpy write NaN into CSV as "NaN"/"nan": a feature, outcome or label
    holding it is missing; a score needed for the prediction, or a prediction, is refused
    as missing, as the same NaN in Parquet is."""
    frame = (
        binary_frame()
        .assign(pred=lambda f: f["score"] * 10)
        .astype({"size": object, "cost": object, "score": object, "pred": object})
    )
    frame.loc[[1, 2], "size"] = ["NaN", "nan"]
    frame.loc[[4], "cost"] = " NaN "
    path = tmp_path / "in.csv"
    frame.assign(y=frame["score"] * 9).to_csv(path, index=False)
    with store.write() as con:
        report = ingest_predictions(con, str(path), project="r", mapping=REG)
        assert report.inserted == len(frame) and report.warnings == []
        log = get_project(con, "r").log_table
        assert con.execute(
            f'SELECT list(prediction_id ORDER BY prediction_id) FILTER (WHERE "size" IS NULL), '
            f'count(*) FILTER (WHERE cost IS NULL) FROM "{log}"'
        ).fetchall()[0] == (["r1", "r2"], 1)
    frame.loc[6, "score"] = "nan"
    frame.to_csv(path, index=False)
    before = db_digest(db_path)
    with store.write() as con:
        with pytest.raises(
            IngestError,
            match=r"column 'score': 1 row has no score \(needed to derive the "
            r"prediction\) \(line 8\)",
        ):
            ingest_predictions(con, str(path), project="b", mapping=BIN)
    regression = frame.assign(score=binary_frame()["score"], y=1.0)
    regression.loc[9, "pred"] = "NaN"
    regression.to_csv(path, index=False)
    with store.write() as con:
        with pytest.raises(IngestError, match=r"column 'pred': 1 row has no prediction \(line 11\)"):
            ingest_predictions(con, str(path), project="r2", mapping=REG)
    assert db_digest(db_path) == before


def test_the_cli_says_which_values_were_infinite(tmp_path, capsys):
    import json

    from analysis.cli.main import main

    frame = binary_frame()
    frame.loc[[1, 2], "cost"] = np.inf
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "f.parquet")
    frame.to_csv(tmp_path / "f.csv", index=False)
    config = tmp_path / "m.toml"
    config.write_text(
        '[project]\ntask = "binary"\npositive_label = "1"\n\n[columns]\nid = "id"\nversion = "v"\n'
        'timestamp = "ts"\nscore = "score"\nlabel = "y"\nfeatures = ["size", "city"]\n'
        'outcomes = ["cost"]\n'
    )
    db = ["--db", str(tmp_path / "cli.duckdb"), "--format", "json"]
    said = "2 values of column 'cost' were stored as missing because they were infinite"
    assert main(["attach", str(tmp_path / "f.parquet"), "--project", "lake", "--config", str(config), *db]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == [said]
    assert main(["ingest", str(tmp_path / "f.csv"), "--project", "p", "--config", str(config), *db]) == 0
    assert said in json.loads(capsys.readouterr().out)["warnings"]

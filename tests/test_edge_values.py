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
from sklearn.metrics import accuracy_score, confusion_matrix, mean_absolute_error, mean_squared_error, r2_score

from analysis import IngestError, Mapping, SliceboardError, get_project, ingest_predictions
from analysis.breakdown import MISSING, breakdown
from analysis.discovery.encode import error_choices
from analysis.discovery.run import discover
from analysis.external import attach_parquet, refresh
from analysis.labels import attach_labels
from analysis.overview import overview_table

from conftest import db_digest

N = 300
REG = Mapping(id="id", version="v", timestamp="ts", task="regression", prediction="pred", label="y",
              features=["size", "city"], outcomes=["cost"])
BIN = Mapping(id="id", version="v", timestamp="ts", task="binary", score="score", label="y",
              positive_label="1", features=["size", "city"], outcomes=["cost"])


def binary_frame(n: int = 40) -> pd.DataFrame:
    i = np.arange(n)
    return pd.DataFrame({
        "id": [f"r{k}" for k in i], "v": "m1",
        "ts": pd.Timestamp("2026-03-01") + pd.to_timedelta(i, unit="h"),
        "score": (i % 10) / 10 + 0.05, "y": (i % 3 == 0).astype(int),
        "size": i * 1.5, "city": np.array(["ber", "lis"])[i % 2], "cost": i / 4,
    })


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

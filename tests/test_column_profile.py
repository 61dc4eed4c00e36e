"""Column profiles (the Slices page's value picker and histogram), refereed by pandas and
numpy on the same rows: value counts with missing values, equal-width histograms of
numbers and timestamps, a scope, and the refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.slices.column_profile import histogram, value_counts
from analysis.store.scope import Scope


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    rng = np.random.default_rng(3)
    n = 2000
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": np.where(np.arange(n) % 4 == 0, "v2", "v1"),
            "ts": pd.Timestamp("2026-10-01") + pd.to_timedelta(rng.integers(0, 30 * 24, n), unit="h"),
            "prediction": rng.integers(0, 2, n),
            "label": rng.integers(0, 2, n),
            "region": rng.choice(["east", "west", "north", None], n, p=[0.5, 0.3, 0.15, 0.05]),
            "amount": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, 100.0, n).round(2)),
            "opened": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 2000, n), unit="D"),
        }
    )
    store = Store(tmp_path_factory.mktemp("profile") / "p.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="p",
            mapping=Mapping(
                id="id",
                version="v",
                timestamp="ts",
                task="binary",
                prediction="prediction",
                label="label",
                positive_label="1",
                features=["region", "amount", "opened"],
            ),
        )
    with store.read() as con:
        return store, get_project(con, "p"), frame


def test_value_counts_are_pandas_value_counts_with_missing_values(profiled):
    store, project, frame = profiled
    with store.read() as con:
        got = value_counts(con, project, "region")
        scoped = value_counts(con, project, "region", Scope.of(versions="v2"), limit=2)
    expected = frame["region"].value_counts(dropna=False)
    counts = {None if pd.isna(v) else v: int(n) for v, n in zip(got["value"], got["n"])}
    assert counts == {None if pd.isna(v) else v: int(n) for v, n in expected.items()}
    assert list(got["n"]) == sorted(got["n"], reverse=True)  # most frequent first
    v2 = frame[frame.v == "v2"]["region"].value_counts(dropna=False)
    assert len(scoped) == 2 and list(scoped["n"]) == list(v2.sort_values(ascending=False).head(2))


def test_a_numeric_histogram_is_numpys_equal_width_histogram(profiled):
    store, project, frame = profiled
    with store.read() as con:
        got = histogram(con, project, "amount", bins=20)
    values = frame["amount"].dropna().to_numpy()
    counts, edges = np.histogram(values, bins=20, range=(values.min(), values.max()))
    shown = dict(zip(np.round(got["low"], 6), got["n"]))
    want = {round(lo, 6): int(n) for lo, n in zip(edges[:-1], counts) if n}
    assert shown == want
    assert got["n"].sum() == len(values) and got.attrs["nulls"] == int(frame["amount"].isna().sum())
    assert got["high"].iloc[-1] == pytest.approx(values.max())


def test_a_timestamp_histogram_covers_every_row_in_days(profiled):
    store, project, frame = profiled
    with store.read() as con:
        got = histogram(con, project, "opened", Scope.of(versions="v1"), bins=10)
    opened = frame[frame.v == "v1"]["opened"]
    assert got.attrs["kind"] == "timestamp" and got["n"].sum() == len(opened)
    assert got["low"].iloc[0] == opened.min()
    seconds = opened.astype("int64") // 10**9
    counts, _ = np.histogram(seconds, bins=10, range=(seconds.min(), seconds.max()))
    assert list(got["n"]) == [int(n) for n in counts if n]


def test_profiles_refuse_unknown_and_unfit_columns(profiled):
    store, project, _ = profiled
    with store.read() as con:
        with pytest.raises(ConfigError, match="Unknown column 'nope'"):
            value_counts(con, project, "nope")
        with pytest.raises(ConfigError, match="region is a categorical column; a histogram needs numbers"):
            histogram(con, project, "region")
        empty = histogram(con, project, "amount", Scope.of(versions="v9"))
    assert empty.empty and empty.attrs["nulls"] == 0

"""Error buckets and the examples table, against pandas on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_slices import MAPPING, shop_frame

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.slices import parse_slice
from analysis.slices.buckets import BINARY_BUCKETS, bucket_counts, examples


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("buckets") / "shop.duckdb"
    frame = shop_frame(600, seed=11)
    frame.loc[frame.index % 7 == 0, "label"] = None  # some rows still unlabeled
    frame["label"] = frame["label"].astype("Int64")
    store = Store(path)
    with store.write() as con:
        ingest_predictions(con, frame, project="shop", mapping=MAPPING)
    with store.read() as con:
        project = get_project(con, "shop")
    frame["prediction"] = frame["score"] >= 0.5
    frame["bucket"] = pandas_buckets(frame, 0.9)
    return store, project, frame


def pandas_buckets(frame: pd.DataFrame, confidence: float) -> pd.Series:
    y, p, s = frame.label, frame.prediction, frame.score
    out = pd.Series("unlabeled", index=frame.index)
    lab = y.notna()
    yb = y.fillna(0).astype(bool)
    out[lab & yb & p] = "TP"
    out[lab & ~yb & ~p] = "TN"
    out[lab & ~yb & p] = np.where(s[lab & ~yb & p] >= confidence, "FP confident", "FP")
    out[lab & yb & ~p] = np.where(s[lab & yb & ~p] <= 1 - confidence, "FN confident", "FN")
    return out


def test_bucket_counts_by_column_match_pandas(shop):
    store, project, frame = shop
    with store.read() as con:
        counts = bucket_counts(con, project, "country", slice_=parse_slice("vip is false"), confidence=0.9)
    part = frame[~frame.vip]
    expected = part.groupby(["country", "bucket"]).size()
    got = counts.set_index(["value", "bucket"])["n"]
    for (value, bucket), n in got.items():
        assert n == expected.get((value, bucket), 0), (value, bucket)
    assert got.sum() == len(part)
    assert set(counts.bucket) == set(BINARY_BUCKETS)


def test_examples_page_through_one_bucket_sorted(shop):
    store, project, frame = shop
    wanted = frame[(frame.bucket == "FP") & (frame.country == "NG")].sort_values(
        ["score", "id"], ascending=[False, True]
    )
    seen = []
    with store.read() as con:
        first = examples(
            con,
            project,
            slice_=parse_slice("country = NG"),
            bucket="FP",
            sort_by="score",
            descending=True,
            page=1,
            page_size=7,
        )
        for page in range(1, first.pages + 1):
            seen += list(
                examples(
                    con,
                    project,
                    slice_=parse_slice("country = NG"),
                    bucket="FP",
                    sort_by="score",
                    descending=True,
                    page=page,
                    page_size=7,
                ).rows.prediction_id
            )
    assert first.total == len(wanted)
    assert first.pages == -(-len(wanted) // 7)
    assert list(first.rows.columns[:9]) == [
        "prediction_id",
        "example_id",
        "timestamp",
        "model_version",
        "stage",
        "prediction",
        "score",
        "label",
        "label_timestamp",
    ]
    # Ties in score are broken by id, so the page order is exactly pandas' order.
    assert seen == list(wanted.id)
    assert len(seen) == len(set(seen)) == len(wanted)
    assert set(first.rows.bucket) == {"FP"}


def test_near_threshold_and_bad_requests(shop):
    store, project, frame = shop
    with store.read() as con:
        near = examples(con, project, near_threshold=0.05, page_size=1000)
        assert near.total == int(((frame.score - 0.5).abs() < 0.05).sum())
        with pytest.raises(ConfigError, match="Cannot sort by 'nope'"):
            examples(con, project, sort_by="nope")
        with pytest.raises(ConfigError, match="Unknown bucket 'XX'"):
            examples(con, project, bucket="XX")
        with pytest.raises(ConfigError, match="confidence"):
            bucket_counts(con, project, "country", confidence=0.2)


def test_regression_residual_bands(tmp_path):
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "segment": rng.choice(["a", "b"], n),
            "pred": rng.normal(10, 3, n),
        }
    )
    frame["label"] = frame["pred"] + rng.normal(0, 2, n)
    store = Store(tmp_path / "reg.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="r",
            mapping=Mapping(
                task="regression", id="id", version="v", prediction="pred", label="label", features=["segment"]
            ),
        )
    with store.read() as con:
        counts = bucket_counts(con, get_project(con, "r"), "segment")
    mae = (frame.pred - frame.label).abs().mean()
    r = frame.pred - frame.label
    bands = np.select(
        [r < -2 * mae, r < -mae, r <= mae, r <= 2 * mae],
        ["under > 2 MAE", "under 1-2 MAE", "within 1 MAE", "over 1-2 MAE"],
        "over > 2 MAE",
    )
    expected = pd.Series(bands).groupby([frame.segment, bands]).size()
    got = counts.set_index(["value", "bucket"])["n"]
    for key, value in got.items():
        assert value == expected.get(key, 0), key


def test_drilling_into_a_group_selects_its_rows(shop):
    from analysis.slices import Slice, compile_slice
    from analysis.slices.breakdown import breakdown
    from analysis.slices.grouping import group_condition, grouping

    store, project, frame = shop
    with store.read() as con:
        for column in ("age", "country", "vip"):
            g = grouping(con, project, column, bins=4)
            table = breakdown(con, project, column, bins=4)
            for value, n in zip(table.value, table.n_rows):
                sql, params = compile_slice(Slice.of(group_condition(g, value)), project)
                got = con.execute(f'SELECT count(*) FROM "{project.log_table}" WHERE {sql}', params).fetchall()[0][0]
                assert got == n, (column, value)


def test_bucket_filters_select_exactly_the_named_rows(shop):
    """The pushed-down bucket predicates agree with the bucket CASE on every
    combination of label, prediction and score, missing values included."""
    import duckdb

    from analysis.slices.buckets import bucket_filter, bucket_sql, buckets_for

    _, project, _ = shop
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT l.v AS label, p.v AS prediction, s.v AS score "
        "FROM (VALUES (true), (false), (NULL)) l(v), (VALUES (true), (false), (NULL)) p(v), "
        "(VALUES (0.0), (0.05), (0.1), (0.5), (0.9), (0.95), (1.0), (NULL)) s(v)"
    )
    for confidence in (0.5, 0.9, 1.0):
        case, case_params = bucket_sql(project, confidence=confidence)
        for bucket in buckets_for("binary"):
            where, params = bucket_filter(project, bucket, confidence=confidence)
            got = con.execute(f"SELECT label, prediction, score FROM t WHERE {where} ORDER BY ALL", params).fetchall()
            want = con.execute(
                f"SELECT label, prediction, score FROM t WHERE ({case}) = ? ORDER BY ALL", [*case_params, bucket]
            ).fetchall()
            assert got == want, (bucket, confidence)

"""Metrics computed in DuckDB agree with hand-computed values and with scikit-learn."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from analysis import Mapping, get_project, ingest_predictions
from analysis.overview import daily_series, overview_table
from analysis.store.scope import Scope

TOL = 1e-9


def ingest_frame(store, frame, task, **roles):
    mapping = Mapping(task=task, id="id", version="v", features=[], **roles)
    if task == "binary":
        mapping = mapping.with_(positive_label="1")
    with store.write() as con:
        ingest_predictions(con, frame, project="p", mapping=mapping)
    with store.read() as con:
        return overview_table(con, get_project(con, "p"))


def test_binary_hand_computed(store):
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e", "f"],
            "v": ["m"] * 6,
            "label": pd.array([1, 1, 0, 0, 1, None], dtype="Int64"),
            "score": [0.9, 0.4, 0.6, 0.1, 0.6, 0.8],
            "prediction": [1, 0, 1, 0, 1, 1],
        }
    )
    row = ingest_frame(store, frame, "binary", label="label", score="score", prediction="prediction").iloc[0]
    assert row.n_rows == 6 and row.n_labeled == 5
    assert row.labeled_share == pytest.approx(5 / 6, abs=TOL)
    assert (row.tp, row.fp, row.fn, row.tn) == (2, 1, 1, 1)
    assert row.accuracy == pytest.approx(0.6, abs=TOL)
    assert row.precision == pytest.approx(2 / 3, abs=TOL)
    assert row.recall == pytest.approx(2 / 3, abs=TOL)
    assert row.f1 == pytest.approx(2 / 3, abs=TOL)
    # 6 positive/negative pairs: 4 ordered correctly, one tie (0.6 vs 0.6) counts half.
    assert row.roc_auc == pytest.approx(4.5 / 6, abs=TOL)
    # Thresholds 0.9, 0.6, 0.4: recall steps of 1/3 at precision 1, 2/3, 3/4.
    assert row.pr_auc == pytest.approx((1 + 2 / 3 + 3 / 4) / 3, abs=TOL)
    expected_ll = -(2 * math.log(0.9) + 2 * math.log(0.4) + math.log(0.6)) / 5
    assert row.log_loss == pytest.approx(expected_ll, abs=TOL)
    assert row.brier == pytest.approx((0.01 + 0.36 + 0.36 + 0.01 + 0.16) / 5, abs=TOL)


def test_multiclass_hand_computed(store):
    frame = pd.DataFrame(
        {
            "id": list("12345"),
            "v": ["m"] * 5,
            "label": ["a", "a", "b", "c", "b"],
            "prediction": ["a", "b", "b", "c", "a"],
        }
    )
    row = ingest_frame(store, frame, "multiclass", label="label", prediction="prediction").iloc[0]
    assert row.accuracy == pytest.approx(3 / 5, abs=TOL)
    assert row.macro_f1 == pytest.approx((0.5 + 0.5 + 1.0) / 3, abs=TOL)


def test_regression_hand_computed(store):
    frame = pd.DataFrame(
        {"id": list("1234"), "v": ["m"] * 4, "label": [1.0, 2.0, 3.0, 4.0], "prediction": [1.5, 2.0, 2.0, 5.0]}
    )
    row = ingest_frame(store, frame, "regression", label="label", prediction="prediction").iloc[0]
    assert row.mae == pytest.approx(0.625, abs=TOL)
    assert row.rmse == pytest.approx(0.75, abs=TOL)
    assert row.r2 == pytest.approx(1 - 2.25 / 5, abs=TOL)


def binary_reference(y, score, pred) -> dict:
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=np.nan),
        "recall": skm.recall_score(y, pred, zero_division=np.nan),
        "f1": skm.f1_score(y, pred, zero_division=np.nan),
        "roc_auc": skm.roc_auc_score(y, score),
        "pr_auc": skm.average_precision_score(y, score),
        "log_loss": skm.log_loss(y, y_proba=score),
        "brier": skm.brier_score_loss(y, score),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_random_against_sklearn(store, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    y = rng.random(n) < 0.3
    # Rounded scores make many ties; include exact 0 and 1 to exercise clipping.
    score = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.25), 0, 1), 2)
    pred = rng.random(n) < score
    label = pd.array(y.astype(int), dtype="Int64")
    label[rng.random(n) < 0.1] = pd.NA
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "v": rng.choice(["a", "b", "c"], n),
            "label": label,
            "score": score,
            "prediction": pred.astype(int),
        }
    )
    table = ingest_frame(store, frame, "binary", label="label", score="score", prediction="prediction")
    for version, part in frame.groupby("v"):
        part = part[part.label.notna()]
        ref = binary_reference(part.label.astype(int), part.score, part.prediction)
        row = table[table.model_version == version].iloc[0]
        assert row.n_labeled == len(part)
        for name, value in ref.items():
            assert row[name] == pytest.approx(value, abs=TOL), name


def test_multiclass_random_against_sklearn(store):
    rng = np.random.default_rng(5)
    n = 2000
    classes = np.array(["cat", "dog", "bird", "fish"])
    y = rng.choice(classes, n)
    pred = np.where(rng.random(n) < 0.6, y, rng.choice(classes[:3], n))
    frame = pd.DataFrame({"id": np.arange(n), "v": rng.choice(["a", "b"], n), "label": y, "prediction": pred})
    table = ingest_frame(store, frame, "multiclass", label="label", prediction="prediction")
    for version, part in frame.groupby("v"):
        row = table[table.model_version == version].iloc[0]
        assert row.accuracy == pytest.approx(skm.accuracy_score(part.label, part.prediction), abs=TOL)
        assert row.macro_f1 == pytest.approx(skm.f1_score(part.label, part.prediction, average="macro"), abs=TOL)


def test_regression_random_against_sklearn(store):
    rng = np.random.default_rng(9)
    n = 2000
    y = rng.normal(100, 20, n)
    pred = y + rng.normal(0, 8, n)
    frame = pd.DataFrame({"id": np.arange(n), "v": rng.choice(["a", "b"], n), "label": y, "prediction": pred})
    table = ingest_frame(store, frame, "regression", label="label", prediction="prediction")
    for version, part in frame.groupby("v"):
        row = table[table.model_version == version].iloc[0]
        assert row.mae == pytest.approx(skm.mean_absolute_error(part.label, part.prediction), abs=TOL)
        assert row.rmse == pytest.approx(skm.root_mean_squared_error(part.label, part.prediction), abs=TOL)
        assert row.r2 == pytest.approx(skm.r2_score(part.label, part.prediction), abs=TOL)


def demo_rows(path) -> pd.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            'SELECT model_version, stage, CAST("timestamp" AS DATE) AS day, label, prediction, score, '
            "revenue, loss FROM log_1"
        ).df()
    finally:
        con.close()


def test_demo_overview_matches_sklearn(demo_db):
    from analysis import Store

    with Store(demo_db).read() as con:
        table = overview_table(con, get_project(con, "lending-demo"))
    rows = demo_rows(demo_db)
    assert len(table) == 3
    for (version, stage), part in rows.groupby(["model_version", "stage"]):
        row = table[(table.model_version == version) & (table.stage == stage)].iloc[0]
        assert row.n_rows == len(part)
        labeled = part[part.label.notna()]
        assert row.n_labeled == len(labeled)
        ref = binary_reference(labeled.label.astype(bool), labeled.score, labeled.prediction.astype(bool))
        for name, value in ref.items():
            assert row[name] == pytest.approx(value, abs=TOL), (version, name)
        assert row.revenue_sum == pytest.approx(part.revenue.sum(), rel=1e-12)
        assert row.loss_mean == pytest.approx(part.loss.mean(), rel=1e-12)
        assert row.revenue_count == part.revenue.notna().sum()


def test_demo_daily_series_matches_sklearn(demo_db):
    from analysis import Store

    with Store(demo_db).read() as con:
        daily = daily_series(con, get_project(con, "lending-demo"), Scope.of(versions="credit-v3"))
    rows = demo_rows(demo_db)
    rows = rows[rows.model_version == "credit-v3"]
    assert set(daily.model_version) == {"credit-v3"}
    assert len(daily) == rows.day.nunique()
    for day in sorted(rows.day.unique())[:5]:
        part = rows[rows.day == day]
        labeled = part[part.label.notna()]
        row = daily[daily.day == pd.Timestamp(day)].iloc[0]
        assert row.n_rows == len(part)
        assert row.roc_auc == pytest.approx(skm.roc_auc_score(labeled.label.astype(bool), labeled.score), abs=TOL)
        assert row.accuracy == pytest.approx(
            skm.accuracy_score(labeled.label.astype(bool), labeled.prediction.astype(bool)), abs=TOL
        )


def test_scope_filters_versions_stages_and_window(demo_db):
    from analysis import Store

    with Store(demo_db).read() as con:
        project = get_project(con, "lending-demo")
        table = overview_table(
            con, project, Scope.of(stages=["shadow", "canary"], start="2026-10-10", end="2026-10-20")
        )
    rows = demo_rows(demo_db)
    window = rows[
        (rows.day >= pd.Timestamp("2026-10-10"))
        & (rows.day <= pd.Timestamp("2026-10-20"))
        & rows.stage.isin(["shadow", "canary"])
    ]
    assert sorted(table.stage) == ["canary", "shadow"]
    assert table.n_rows.sum() == len(window)


@pytest.mark.parametrize(
    "scope",
    [
        Scope(),
        Scope.of(start="2026-10-10", end="2026-10-20"),
        Scope.of(versions="credit-v1", stages="production", start="2026-09-01", end="2026-12-31"),
        Scope.of(stages=["shadow", "canary"]),
    ],
)
def test_rollup_answers_equal_the_raw_log(demo_db, scope):
    """Each way the rollup answers (per-day ranking figures, all-time figures,
    ranking figures from the log for other windows) equals the raw log."""
    from analysis import Store

    with Store(demo_db).read() as con:
        project = get_project(con, "lending-demo")
        for func in (overview_table, daily_series):
            fast = func(con, project, scope)
            slow = func(con, project, scope, source="log")
            assert len(fast) and list(fast.columns) == list(slow.columns)
            pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9, atol=1e-9)


def test_partial_window_roc_auc_matches_sklearn(demo_db):
    from analysis import Store

    with Store(demo_db).read() as con:
        table = overview_table(
            con, get_project(con, "lending-demo"), Scope.of(versions="credit-v1", start="2026-10-01", end="2026-10-07")
        )
    rows = demo_rows(demo_db)
    part = rows[
        (rows.model_version == "credit-v1")
        & (rows.day >= pd.Timestamp("2026-10-01"))
        & (rows.day <= pd.Timestamp("2026-10-07"))
        & rows.label.notna()
    ]
    row = table.iloc[0]
    assert row.n_labeled == len(part)
    assert row.roc_auc == pytest.approx(skm.roc_auc_score(part.label.astype(bool), part.score), abs=TOL)
    assert row.pr_auc == pytest.approx(skm.average_precision_score(part.label.astype(bool), part.score), abs=TOL)

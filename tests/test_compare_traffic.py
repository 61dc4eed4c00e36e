"""Versions that served different traffic (issue 21, item 3): totals compared per
prediction, with an interval refereed against the per-row means of the same rows; a
comparison of two sides over different days keeps their overlap and says what it
left out; paired comparisons keep their totals and state the window."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_compare import two_versions

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.compare.comparison import Side, compare
from analysis.compare.gate import GateCriteria, run_gate
from analysis.metrics.decompose import AS_DEFINED, NEITHER, PER_PREDICTION, TOTAL, decompose
from analysis.metrics.product import ProductMetric, define_metric


def canary(seed: int = 3, n: int = 20_000) -> pd.DataFrame:
    """Production (v1) serves 85% of the traffic for 30 days; the canary (v2) 15% from day
    10. Both models are equally good and earn the same per prediction."""
    rng = np.random.default_rng(seed)
    day = rng.integers(0, 30, n)
    version = np.where((day >= 10) & (rng.random(n) < 0.15 / (1 - 10 / 30)), "v2", "v1")
    label = rng.random(n) < 0.3
    wrong = rng.random(n) < 0.2
    pred = np.where(wrong, ~label, label)
    revenue = np.where(~pred, rng.gamma(2.0, 40.0, n), 0.0).round(2)
    loss = np.where(~pred & label, rng.gamma(2.0, 100.0, n), 0.0).round(2)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": version,
            "ts": pd.Timestamp("2026-03-01") + pd.to_timedelta(day * 86400 + rng.integers(0, 86400, n), unit="s"),
            "prediction": pred.astype(int),
            "score": np.where(pred, 0.7, 0.3),
            "label": label.astype(int),
            "x": rng.normal(0, 1, n).round(3),
            "revenue": revenue,
            "loss": loss,
        }
    )


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    frame = canary()
    store = Store(tmp_path_factory.mktemp("traffic") / "t.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="t",
            mapping=Mapping(
                id="id",
                version="v",
                timestamp="ts",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["x"],
                outcomes=["revenue", "loss"],
            ),
        )
        project = get_project(con, "t")
        define_metric(con, project, ProductMetric("revenue", "sum(revenue)", "higher", "$"))
        define_metric(
            con,
            project,
            ProductMetric("missed_loss", "sum(loss) FILTER (WHERE NOT prediction AND label)", "lower", "$"),
        )
        define_metric(con, project, ProductMetric("approval_rate", "avg((NOT prediction)::int)", "higher"))
    return store, frame


def test_totals_between_unequal_traffic_are_compared_per_prediction(traffic):
    store, frame = traffic
    with store.read() as con:
        project = get_project(con, "t")
        comp = compare(con, project, Side("v1"), Side("v2"), discovered=0)
        verdict = run_gate(
            con, project, Side("v1"), Side("v2"), comparison=comp, criteria=GateCriteria(required_sets=())
        )
    rows = comp.overall.set_index("metric")
    assert rows.loc["revenue", "normalisation"] == PER_PREDICTION
    assert rows.loc["missed_loss", "normalisation"] == PER_PREDICTION
    assert rows.loc["approval_rate", "normalisation"] == AS_DEFINED
    kept = frame[frame.ts >= pd.Timestamp("2026-03-11")]  # the days both served
    b, c = kept[kept.v == "v1"], kept[kept.v == "v2"]
    assert comp.rows == (len(b), len(c))
    for name, per_row in (
        ("revenue", lambda s: s.revenue),
        ("missed_loss", lambda s: s.loss.where((s.prediction == 0) & (s.label == 1), 0.0)),
    ):
        vb, vc = per_row(b), per_row(c)
        assert rows.loc[name, "baseline"] == pytest.approx(vb.mean())
        assert rows.loc[name, "candidate"] == pytest.approx(vc.mean())
        assert rows.loc[name, "baseline_total"] == pytest.approx(vb.sum())
        # The bootstrap interval of the difference of per-row means is near Welch's.
        se = np.sqrt(vb.var(ddof=1) / len(vb) + vc.var(ddof=1) / len(vc))
        width = rows.loc[name, "ci_high"] - rows.loc[name, "ci_low"]
        assert width == pytest.approx(2 * stats.norm.ppf(0.975) * se, rel=0.15)
        assert rows.loc[name, "ci_low"] < 0 < rows.loc[name, "ci_high"]  # the same model: no difference
    products = [r for r in verdict.results if r.criterion.startswith("product metric")]
    assert all(r.passed for r in products), [r.detail for r in products]
    assert any(r.criterion.startswith("product metric revenue per prediction") for r in products)
    line = next(r.detail for r in products if "revenue" in r.criterion)
    assert "e+" not in line and "$" in line


def test_the_overlap_is_compared_and_what_is_left_out_is_said(traffic):
    store, frame = traffic
    with store.read() as con:
        project = get_project(con, "t")
        comp = compare(con, project, Side("v1"), Side("v2"), discovered=0)
        whole = compare(con, project, Side("v1"), Side("v2"), discovered=0, overlap=False)
    days = frame.ts.dt.date
    first_c = days[frame.v == "v2"].min()
    w = comp.window
    assert w.restricted and w.start == first_c and w.end == days.max()
    b_side, c_side = w.sides
    early = frame[(frame.v == "v1") & (days < first_c)]
    assert b_side.dropped_rows == len(early) and not c_side.dropped
    assert (b_side.dropped[0].first, b_side.dropped[0].last) == (days[frame.v == "v1"].min(), early.ts.dt.date.max())
    assert f"{len(early):,} rows of {b_side.dropped[0].first} to {b_side.dropped[0].last}" in w.sentence()
    assert not whole.window.restricted and whole.rows == ((frame.v == "v1").sum(), (frame.v == "v2").sum())


def test_a_comparison_with_no_day_in_common_says_so(tmp_path):
    frame = canary(n=3000)
    frame.loc[frame.v == "v2", "ts"] = pd.Timestamp("2026-05-01")
    store = Store(tmp_path / "apart.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="t",
            mapping=Mapping(
                id="id",
                version="v",
                timestamp="ts",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["x"],
            ),
        )
    with store.read() as con:
        project = get_project(con, "t")
        with pytest.raises(ConfigError, match="no day in common"):
            compare(con, project, Side("v1"), Side("v2"), discovered=0)
        assert not compare(con, project, Side("v1"), Side("v2"), discovered=0, overlap=False).window.restricted


def test_the_cli_says_how_each_product_metric_was_normalised(traffic, capsys):
    store, _ = traffic
    db = ["--db", str(store.path), "--project", "t", "--baseline", "v1", "--candidate", "v2"]
    assert main(["compare", *db, "--discovered", "0", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["normalisation"] == {
        "revenue": PER_PREDICTION,
        "missed_loss": PER_PREDICTION,
        "approval_rate": AS_DEFINED,
    }
    revenue = next(r for r in out["overall"] if r["metric"] == "revenue")
    assert {
        "metric",
        "kind",
        "direction",
        "baseline",
        "candidate",
        "delta",
        "ci_low",
        "ci_high",
        "p_value",
        "test",
        "normalisation",
    } <= set(revenue)
    assert out["window"]["overlap_only"] is True and out["window"]["sides"][0]["dropped_rows"] > 0
    assert main(["compare", *db, "--discovered", "0", "--whole-window", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["window"]["overlap_only"] is False
    assert main(["compare", *db, "--discovered", "0"]) == 0
    text = capsys.readouterr().out
    assert "revenue per prediction" in text and "the days both versions served" in text and "e+" not in text
    assert main(["gate", *db, "--format", "json"]) == 0
    gate = json.loads(capsys.readouterr().out)
    assert gate["normalisation"]["revenue"] == PER_PREDICTION and gate["window"]["overlap_only"]


def test_a_small_canary_no_longer_fails_for_its_smaller_total(traffic, capsys):
    """Before: 'revenue 80% lower' for serving a fifth of the traffic (and a loss that
    looked better for the same reason)."""
    store, _ = traffic
    db = ["--db", str(store.path), "--project", "t", "--baseline", "v1", "--candidate", "v2"]
    with store.write() as con:
        from analysis.compare.gate import set_criteria

        set_criteria(con, get_project(con, "t"), GateCriteria(discovered_slices=0))
    assert main(["gate", *db]) == 0
    assert "revenue per prediction" in capsys.readouterr().out


def test_paired_totals_stay_totals_and_the_window_is_stated(tmp_path):
    frame = two_versions(n=1500)
    store = Store(tmp_path / "p.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="p",
            mapping=Mapping(
                id="id",
                example="example",
                version="v",
                stage="stage",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["city", "tier"],
                outcomes=["loss"],
            ),
        )
        project = get_project(con, "p")
        define_metric(
            con,
            project,
            ProductMetric("missed_loss", "sum(loss) FILTER (WHERE NOT prediction AND label)", "lower", "$"),
        )
        comp = compare(con, project, Side("v1"), Side("v2"), discovered=0)
    assert comp.paired and comp.window.paired and not comp.window.restricted
    assert comp.window.sentence().startswith("Paired on the examples both versions scored")
    row = comp.overall.set_index("metric").loc["missed_loss"]
    c = frame[frame.v == "v2"]
    assert row["normalisation"] == TOTAL
    assert row["candidate"] == pytest.approx(c.loss[(c.prediction == 0) & (c.label == 1)].sum())


@pytest.mark.parametrize(
    "expression, how",
    [
        ("sum(revenue)", PER_PREDICTION),
        ("count(*)", PER_PREDICTION),
        ("sum(revenue) - sum(loss)", PER_PREDICTION),
        ("count(*) FILTER (WHERE label)", PER_PREDICTION),
        ("2 * sum(loss)", PER_PREDICTION),
        ("coalesce(sum(revenue), 0)", PER_PREDICTION),
        ("avg(revenue)", AS_DEFINED),
        ("sum(revenue) / count(*)", AS_DEFINED),
        ("round(avg(loss), 2)", AS_DEFINED),
        ("max(revenue)", NEITHER),
        ("count(DISTINCT revenue)", NEITHER),
        ("sum(revenue) * sum(loss)", NEITHER),
        ("sum(revenue) + 1", NEITHER),
    ],
)
def test_how_a_metric_is_normalised_is_read_from_its_tree(traffic, expression, how):
    store, _ = traffic
    with store.read() as con:
        project = get_project(con, "t")
    assert decompose(ProductMetric("m", expression), project, 0).normalisation(paired=False) == how

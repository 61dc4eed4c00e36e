"""Label-free estimates on a real DuckDB file, against a direct implementation on the same
rows: isotonic calibration from scikit-learn, the expected confusion matrix in numpy, and
scikit-learn's ranking metrics on each row counted positive with weight p and negative
with weight 1 - p."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import db_digest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.estimation import ReferenceChoice, resolve_reference, set_reference_choice
from analysis.estimation.fit import fit_slice
from analysis.estimation.periods import period_start_sql
from analysis.estimation.run import estimate
from analysis.estimation.timeline import estimate_timeline
from analysis.metrics.sql import GroupKey, compute_metrics
from analysis.slices import Slice, parse_slice
from analysis.store.sql import in_transaction

FIRST_DAY = date(2026, 3, 2)  # a Monday
DAYS = 42
REFERENCE_DAYS = 21
MAPPING = Mapping(
    task="binary",
    id="id",
    timestamp="ts",
    version="v",
    score="score",
    label="label",
    positive_label="1",
    features=["region", "age"],
)


FIELDS = ("realized", "estimated", "low", "high", "combined", "combined_low", "combined_high")
SCORED = ("roc_auc", "pr_auc", "log_loss", "brier")


def stream(seed: int = 5, per_day: int = 400) -> pd.DataFrame:
    """Scores calibrated everywhere but in the north, where the model is over-confident;
    the first three weeks fully labeled, the next two weeks partly, the last week not."""
    rng = np.random.default_rng(seed)
    n = DAYS * per_day
    day = np.repeat(np.arange(DAYS), per_day)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.15, 0.35, 0.25, 0.25])
    z = rng.normal(-0.8, 1.5, n)
    truth = 1 / (1 + np.exp(-np.where(region == "north", 0.35 * z, z)))
    label = (rng.random(n) < truth).astype(int)
    arrived = np.where(day < REFERENCE_DAYS, 1.0, np.where(day < DAYS - 7, 0.5, 0.0))
    labels = pd.array(np.where(rng.random(n) < arrived, label, -1), dtype="Int64")
    labels[labels == -1] = pd.NA
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "ts": pd.Timestamp(FIRST_DAY) + pd.to_timedelta(day * 86400 + rng.integers(0, 86400, n), unit="s"),
            "v": "m1",
            "score": np.round(1 / (1 + np.exp(-z)), 4),
            "label": labels,
            "true_label": label,
            "region": region,
            "age": rng.integers(18, 80, n),
        }
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("estimation") / "stream.duckdb"
    frame = stream()
    store = Store(path)
    with store.write() as con:
        ingest_predictions(con, frame.drop(columns=["true_label"]), project="s", mapping=MAPPING)
    frame["day"] = frame.ts.dt.date
    frame["prediction"] = (frame.score >= 0.5).astype(int)
    return store, frame


def by_dates(start_day: int, end_day: int) -> ReferenceChoice:
    return ReferenceChoice.of(FIRST_DAY + timedelta(days=start_day), FIRST_DAY + timedelta(days=end_day))


def direct(reference: pd.DataFrame, period: pd.DataFrame) -> dict[str, float]:
    """The estimate written out plainly: isotonic calibration, the expected confusion matrix."""
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(reference.score, reference.label.astype(int))
    p = iso.predict(period.score)
    yhat = period.prediction.to_numpy()
    tp, fp = np.sum(p * yhat), np.sum((1 - p) * yhat)
    fn, tn = np.sum(p * (1 - yhat)), np.sum((1 - p) * (1 - yhat))
    twice = np.r_[np.ones(len(p)), np.zeros(len(p))]
    scores, weights = np.r_[period.score, period.score], np.r_[p, 1 - p]
    return {
        "accuracy": (tp + tn) / len(p),
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "roc_auc": roc_auc_score(twice, scores, sample_weight=weights),
        "pr_auc": average_precision_score(twice, scores, sample_weight=weights),
        "log_loss": log_loss(twice, scores, sample_weight=weights),
        "brier": brier_score_loss(twice, scores, sample_weight=weights),
    }


@pytest.mark.parametrize("where", ["", "region = north"])
def test_estimates_equal_a_direct_implementation_on_the_same_rows(shop, where):
    store, frame = shop
    slice_ = parse_slice(where) if where else Slice()
    with store.read() as con:
        project = get_project(con, "s")
        reference = resolve_reference(con, project, "m1", "production", by_dates(0, REFERENCE_DAYS - 1))
        fit = fit_slice(con, project, reference, slice_, method="isotonic")
        timeline = estimate_timeline(con, project, fit, "day")
    rows = frame if not where else frame[frame.region == "north"]
    reference_rows = rows[(rows.day <= reference.end) & rows.label.notna()]
    if not fit.within_slice:
        reference_rows = frame[(frame.day <= reference.end) & frame.label.notna()]
    assert fit.within_slice == bool(where)  # the north's own calibration wins on held-out folds
    assert [p.period.start for p in timeline.periods] == sorted(set(rows.day[rows.day > reference.end]))
    for period in timeline.periods:
        expected = direct(reference_rows, rows[rows.day == period.period.start])
        for name, value in expected.items():
            assert period.metrics[name].estimated == pytest.approx(value, abs=1e-9), (period.period.label, name)


def test_realized_and_combined_figures(shop):
    store, frame = shop
    with store.read() as con:
        project = get_project(con, "s")
        timeline = estimate(con, project, "m1", choice=by_dates(0, REFERENCE_DAYS - 2))
    first = timeline.periods[0]  # the reference's last day: every row labeled
    day = frame[frame.day == first.period.start]
    assert first.labeled == first.rows == len(day)
    accuracy = first.metrics["accuracy"]
    assert accuracy.realized == pytest.approx(np.mean(day.label.astype(int) == day.prediction), abs=1e-12)
    assert accuracy.combined == pytest.approx(accuracy.realized, abs=1e-12)
    assert accuracy.combined_low == accuracy.combined_high == accuracy.combined
    auc = first.metrics["roc_auc"]
    assert auc.combined == pytest.approx(roc_auc_score(day.label.astype(int), day.score), abs=1e-12)
    for period in timeline.periods:
        for m in period.metrics.values():
            if period.labeled == 0:
                assert m.realized is None and m.combined == m.estimated
                assert (m.combined_low, m.combined_high) == (m.low, m.high)
            elif period.labeled < period.rows:
                # The labels narrow the interval.
                assert m.combined_high - m.combined_low < m.high - m.low


def test_realized_figures_are_the_engines_metrics_of_the_labeled_rows(shop):
    """The timeline computes its realized figures from the rows it estimates (counted
    alike in SQL): they equal the metrics engine's (what the Slices page shows) and
    scikit-learn's on the same labeled rows, in fully and partly labeled periods."""
    store, frame = shop
    with store.read() as con:
        project = get_project(con, "s")
        timeline = estimate(con, project, "m1", choice=by_dates(0, REFERENCE_DAYS - 2))
        engine = compute_metrics(
            con,
            project,
            group_by=[GroupKey("period", period_start_sql("day"))],
            where=('"timestamp" >= ?', [FIRST_DAY + timedelta(days=REFERENCE_DAYS - 1)]),
            include_outcomes=False,
        )
    engine = {pd.Timestamp(r["period"]).date(): r for r in engine.to_dict(orient="records")}
    partly = [p for p in timeline.periods if 0 < p.labeled < p.rows]
    assert partly and any(p.labeled == p.rows for p in timeline.periods)
    for period in timeline.periods:
        day = frame[frame.day == period.period.start]
        seen = day[day.label.notna()]
        truth, yhat = seen.label.astype(int), seen.prediction
        assert (period.rows, period.labeled) == (len(day), len(seen))
        if seen.empty:
            assert all(figure.realized is None for figure in period.metrics.values())
            continue
        sklearn_figures = {
            "accuracy": accuracy_score(truth, yhat),
            "precision": precision_score(truth, yhat),
            "recall": recall_score(truth, yhat),
            "f1": f1_score(truth, yhat),
            "roc_auc": roc_auc_score(truth, seen.score),
            "pr_auc": average_precision_score(truth, seen.score),
            "log_loss": log_loss(truth, seen.score),
            "brier": brier_score_loss(truth, seen.score),
        }
        for name, figure in period.metrics.items():
            label = (period.period.label, name)
            assert figure.realized == pytest.approx(engine[period.period.start][name], abs=1e-12), label
            assert figure.realized == pytest.approx(sklearn_figures[name], abs=1e-12), label


def test_a_slice_with_few_reference_rows_borrows_the_whole_reference_with_a_wider_interval(shop):
    store, frame = shop
    with store.read() as con:
        project = get_project(con, "s")
        reference = resolve_reference(con, project, "m1", "production", by_dates(0, 2))
        small = fit_slice(con, project, reference, parse_slice("region = west AND age < 30"))
        large = fit_slice(con, project, reference, parse_slice("region = west"))
        small_line = estimate_timeline(con, project, small, "week", ["accuracy"])
    assert not small.within_slice and small.rows < 500
    assert "few reference rows" in small.notes[0]
    assert small.errors["accuracy"].squared > large.errors["accuracy"].squared
    assert small_line.periods and all(p.period.start.weekday() == 0 for p in small_line.periods)


def test_the_reference_is_the_most_recent_fully_labeled_days_unless_chosen(shop, tmp_path):
    store, frame = shop
    with store.read() as con:
        project = get_project(con, "s")
        default = resolve_reference(con, project, "m1", "production")
        five = resolve_reference(con, project, "m1", "production", ReferenceChoice(recent_days=5))
    last_full = FIRST_DAY + timedelta(days=REFERENCE_DAYS - 1)
    assert (default.start, default.end) == (last_full - timedelta(days=13), last_full)
    assert (five.start, five.end) == (last_full - timedelta(days=4), last_full)
    window = frame[(frame.day >= five.start) & (frame.day <= five.end)]
    assert (five.rows, five.labeled) == (len(window), int(window.label.notna().sum()))


def test_cli_estimate_keeps_its_contract(shop, capsys):
    store, frame = shop
    start, end = FIRST_DAY.isoformat(), (FIRST_DAY + timedelta(days=REFERENCE_DAYS - 1)).isoformat()
    base = ["--db", str(store.path), "estimate", "--project", "s", "--version", "m1", "--format", "json"]
    base += ["--reference-start", start, "--reference-end", end]
    for by, label in (("day", "2026-03-23"), ("week", "2026-W13"), ("month", "2026-04")):
        assert main(base + ["--by", by, "--metric", "accuracy", "--metric", "roc_auc"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["reference"]["start"] == start and out["reference"]["end"] == end
        window = frame[(frame.day >= FIRST_DAY) & (frame.day <= date.fromisoformat(end))]
        assert (out["reference"]["rows"], out["reference"]["labeled"]) == (len(window), window.label.notna().sum())
        first = out["periods"][0]
        assert first["period"] == label
        assert date.fromisoformat(first["start"]) > date.fromisoformat(end)
        for period in out["periods"]:
            inside = frame[
                (frame.day >= date.fromisoformat(period["start"])) & (frame.day < date.fromisoformat(period["end"]))
            ]
            assert period["rows"] == len(inside) and period["labeled"] == inside.label.notna().sum()
            assert set(period["metrics"]) == {"accuracy", "roc_auc"}
            for figures in period["metrics"].values():
                assert set(figures) == {
                    "realized",
                    "estimated",
                    "low",
                    "high",
                    "combined",
                    "combined_low",
                    "combined_high",
                }
                if period["labeled"] == 0:
                    assert figures["realized"] is None and figures["combined"] == figures["estimated"]
    assert main(base[:-4] + ["--by", "week"]) == 0  # every metric of the task, the stored reference
    out = json.loads(capsys.readouterr().out)
    assert set(out["periods"][0]["metrics"]) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
    }


def test_the_reference_choice_is_stored_with_the_project(shop, tmp_path, capsys):
    store, frame = shop
    path = tmp_path / "copy.duckdb"
    path.write_bytes(store.path.read_bytes())
    assert main(["--db", str(path), "reference", "--project", "s", "--recent-days", "3", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["recent_days"] == 3
    assert (
        main(
            [
                "--db",
                str(path),
                "estimate",
                "--project",
                "s",
                "--version",
                "m1",
                "--metric",
                "accuracy",
                "--format",
                "json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["reference"]["chosen_as"] == "the most recent 3 fully labeled days"
    assert out["reference"]["end"] == (FIRST_DAY + timedelta(days=REFERENCE_DAYS - 1)).isoformat()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--reference-start", "2025-01-01", "--reference-end", "2025-01-31"], "has no predictions of m1"),
        (["--reference-start", "2026-03-30", "--reference-end", "2026-04-12"], None),  # partly labeled: fine
        (["--reference-start", "2026-04-06", "--reference-end", "2026-04-12"], "has no labeled predictions"),
        (["--where", "region = nowhere"], "No prediction of m1 (production) is in the slice region = nowhere"),
        (["--reference-start", "2026-03-05"], "start and its end, or neither"),
        (["--reference-start", "2026-03-09", "--reference-end", "2026-03-02"], "starts (2026-03-09) after it ends"),
        (["--metric", "r2"], "No estimate of r2"),
        (["--stage", "canary"], "has no canary predictions"),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(shop, tmp_path, capsys, args, words):
    store, frame = shop
    before = db_digest(store.path)
    code = main(["--db", str(store.path), "estimate", "--project", "s", "--version", "m1", *args])
    err = capsys.readouterr().err
    if words is None:
        assert code == 0
    else:
        assert code == 2 and words in err and "Traceback" not in err
    assert db_digest(store.path) == before


def test_a_reference_of_one_class_and_a_version_without_scores_are_refused(tmp_path):
    store = Store(tmp_path / "x.duckdb")
    frame = stream(seed=9, per_day=30)
    frame.loc[frame.ts.dt.date < FIRST_DAY + timedelta(days=7), "label"] = 0
    frame["pred"] = (frame.score >= 0.5).astype(int)
    unscored = frame.assign(v="m0", id="u" + frame.id, score=np.nan)
    both = pd.concat([frame, unscored]).drop(columns=["true_label"])
    with store.write() as con:
        ingest_predictions(con, both, project="s", mapping=dataclasses.replace(MAPPING, prediction="pred"))
    with store.read() as con:
        project = get_project(con, "s")
        with pytest.raises(ConfigError, match="is '0': calibration needs both kinds of rows"):
            estimate(con, project, "m1", choice=by_dates(0, 6))
        with pytest.raises(ConfigError, match="has no scores"):
            estimate(con, project, "m0", choice=by_dates(0, 6))


def test_labels_that_disagree_with_the_estimate_are_said(tmp_path):
    """Concept shift: from day 28 the same scores mean fewer positives. The estimate cannot
    see it; once labels arrive the periods say they disagree."""
    frame = stream(seed=13, per_day=600)
    late = frame.ts.dt.date >= FIRST_DAY + timedelta(days=28)
    flipped = late & (frame.true_label == 1) & (np.random.default_rng(1).random(len(frame)) < 0.5)
    frame.loc[flipped & frame.label.notna(), "label"] = 0
    store = Store(tmp_path / "shift.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame.drop(columns=["true_label"]), project="s", mapping=MAPPING)
        in_transaction(con, lambda: set_reference_choice(con, get_project(con, "s"), by_dates(0, 20)))
    with store.read() as con:
        timeline = estimate(con, get_project(con, "s"), "m1", metrics=["accuracy", "precision"])
    before = [p for p in timeline.periods if p.period.start < FIRST_DAY + timedelta(days=28)]
    after = [p for p in timeline.periods if p.period.start >= FIRST_DAY + timedelta(days=28) and p.labeled]
    assert sum(p.metrics["precision"].labels_disagree for p in before) <= 1
    assert all(p.metrics["precision"].labels_disagree for p in after)
    assert all("labels that arrived disagree" in " ".join(p.notes) for p in after)


def test_an_estimate_block_holds_the_engine_s_timeline_and_draws_it(shop, tmp_path):
    from analysis.reports import add_block, get_report, render_html
    from analysis.reports.kinds import kind_of

    store, frame = shop
    path = tmp_path / "report.duckdb"
    path.write_bytes(store.path.read_bytes())
    copy = Store(path)
    with copy.write() as con:
        project = get_project(con, "s")
        view = {"version": "m1", "metric": "roc_auc", "slice": parse_slice("region = north"), "by": "week"}
        view["choice"] = by_dates(0, REFERENCE_DAYS - 1)
        block = add_block(con, project, "review", "estimate", view)
        report = get_report(con, project, "review")
    with copy.read() as con:
        timeline = estimate(
            con,
            get_project(con, "s"),
            "m1",
            slice_=parse_slice("region = north"),
            by="week",
            choice=by_dates(0, REFERENCE_DAYS - 1),
            metrics=["roc_auc"],
        )
    assert block.params["reference_start"] == FIRST_DAY.isoformat()
    rows = block.snapshot["rows"]
    assert [r["period"] for r in rows] == [p.period.label for p in timeline.periods]
    assert [r["estimated"] for r in rows] == [p.metrics["roc_auc"].estimated for p in timeline.periods]
    assert "from the model's scores" in " ".join(kind_of("estimate").lines(block.snapshot))
    html = render_html(report)
    assert "ROC AUC per week" in html and "estimate from scores alone" in html


def test_cli_adds_an_estimate_block(shop, tmp_path, capsys):
    store, frame = shop
    path = tmp_path / "copy.duckdb"
    path.write_bytes(store.path.read_bytes())
    base = ["--db", str(path), "reports", "add", "--project", "s", "--name", "weekly", "--kind", "estimate"]
    assert main(base) == 2 and "An estimate block needs --version" in capsys.readouterr().err
    assert main(base + ["--version", "m1", "--by", "week", "--where", "region = north", "--format", "json"]) == 0
    assert "estimated" in json.dumps(json.loads(capsys.readouterr().out))
    with Store(path).read() as con:
        from analysis.reports import get_report

        (block,) = get_report(con, get_project(con, "s"), "weekly").blocks
    assert block.params["metric"] == "roc_auc" and block.params["where"] == "region = north"
    assert block.params["by"] == "week"

"""Label-free estimates for a multiclass classifier whose score is the predicted class's
confidence: calibrated against being right, wrong predictions spread over the true
classes as on the reference. Against a direct implementation on the same rows
(scikit-learn's isotonic regression, the expected per-class counts in numpy), against
scikit-learn's F1 once every label is in, and the intervals' coverage on simulated streams."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score

from analysis import Mapping, Store, get_project, ingest_predictions
from analysis.estimation import ReferenceChoice
from analysis.estimation.calibration import draw_folds
from analysis.estimation.combine import estimate_period
from analysis.estimation.expected import EXPECTED_BY_TASK
from analysis.estimation.fit import ReferenceRows, fit_rows
from analysis.estimation.outcomes import READINGS
from analysis.estimation.reference import ReferenceWindow
from analysis.estimation.run import estimate
from analysis.slices import Slice

CLASSES = np.array(["cat", "dog", "fox", "owl"], dtype=object)
FIRST_DAY = date(2026, 5, 4)
MAPPING = Mapping(
    task="multiclass",
    id="id",
    timestamp="ts",
    version="v",
    score="confidence",
    prediction="pred",
    label="label",
    features=["region"],
)


def draw(rng, n: int, shift: float = 0.0) -> dict:
    """Each row's true class drawn from its own class probabilities; the model predicts the
    likeliest class, with that probability as its confidence (calibrated by construction)."""
    logits = rng.normal(0, 1.5 * (1 - shift), (n, 4)) + np.array([1.0, 0.3, 0.0, -0.5])
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    truth = (probabilities.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return {"score": probabilities[np.arange(n), predicted], "yhat": CLASSES[predicted], "y": CLASSES[truth]}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    rng = np.random.default_rng(8)
    days, per_day = 24, 500
    rows = draw(rng, days * per_day)
    day = np.repeat(np.arange(days), per_day)
    labeled = np.where(day < 14, True, np.where(day < 20, rng.random(len(day)) < 0.5, False))
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(day))],
            "ts": pd.Timestamp(FIRST_DAY) + pd.to_timedelta(day * 86400 + rng.integers(0, 86400, len(day)), unit="s"),
            "v": "m1",
            "confidence": np.round(rows["score"], 4),
            "pred": rows["yhat"],
            "label": np.where(labeled, rows["y"], None),
            "truth": rows["y"],
            "region": rng.choice(["north", "south"], len(day)),
        }
    )
    store = Store(tmp_path_factory.mktemp("multiclass") / "zoo.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame.drop(columns=["truth"]), project="zoo", mapping=MAPPING)
    frame["day"] = frame.ts.dt.date
    return store, frame


def test_estimates_equal_a_direct_implementation(zoo):
    store, frame = zoo
    choice = ReferenceChoice.of(FIRST_DAY, FIRST_DAY + timedelta(days=13))
    with store.read() as con:
        timeline = estimate(con, get_project(con, "zoo"), "m1", choice=choice, method="isotonic")
    reference = frame[(frame.day <= choice.end) & frame.label.notna()]
    right = (reference.label == reference.pred).astype(int)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(reference.confidence, right)
    names = sorted(set(reference.pred) | set(reference.label))
    wrong = reference[reference.label != reference.pred]
    counts = (
        pd.crosstab(wrong.pred, wrong.label).reindex(index=names, columns=names, fill_value=0).to_numpy(float).copy()
    )
    np.fill_diagonal(counts, 0)
    spread = counts + (0.5 / (len(names) - 1)) * (1 - np.eye(len(names)))
    spread /= spread.sum(axis=1, keepdims=True)
    assert timeline.fit.method == "isotonic" and [p.period.start for p in timeline.periods][
        0
    ] == choice.end + timedelta(1)
    for period in timeline.periods:
        rows = frame[frame.day == period.period.start]
        q = iso.predict(rows.confidence)
        k = rows.pred.map({n: i for i, n in enumerate(names)}).to_numpy()
        tp = np.bincount(k, weights=q, minlength=len(names))
        fp = np.bincount(k, weights=1 - q, minlength=len(names))
        fn = ((1 - q)[:, None] * spread[k]).sum(axis=0)
        f1 = 2 * tp / (2 * tp + fp + fn)
        assert period.metrics["accuracy"].estimated == pytest.approx(q.mean(), abs=1e-9)
        assert period.metrics["macro_f1"].estimated == pytest.approx(f1.mean(), abs=1e-9)
        labeled = rows[rows.label.notna()]
        if len(labeled):
            assert period.metrics["accuracy"].realized == pytest.approx(accuracy_score(labeled.label, labeled.pred))
            assert period.metrics["macro_f1"].realized == pytest.approx(
                f1_score(labeled.label, labeled.pred, average="macro"), abs=1e-12
            )
        else:
            assert period.metrics["macro_f1"].realized is None


def test_a_fully_labeled_period_combines_to_scikit_learn_s_f1(zoo):
    store, frame = zoo
    choice = ReferenceChoice.of(FIRST_DAY, FIRST_DAY + timedelta(days=11))
    with store.read() as con:
        timeline = estimate(con, get_project(con, "zoo"), "m1", choice=choice)
    first = timeline.periods[0]
    rows = frame[frame.day == first.period.start]
    assert first.labeled == first.rows
    assert first.metrics["macro_f1"].combined == pytest.approx(f1_score(rows.label, rows.pred, average="macro"))
    assert first.metrics["macro_f1"].combined_low == first.metrics["macro_f1"].combined_high
    partly = [p for p in timeline.periods if 0 < p.labeled < p.rows]
    assert partly and all(
        p.metrics["macro_f1"].combined_high - p.metrics["macro_f1"].combined_low
        < p.metrics["macro_f1"].high - p.metrics["macro_f1"].low
        for p in partly
    )


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_intervals_cover_the_realized_metric(shift):
    """300 periods of 2,000 rows, labels arriving for a random share of each; scores moving
    toward less confident ones over the periods (``shift``)."""
    rng = np.random.default_rng(21 + int(10 * shift))
    reference = READINGS["multiclass"].read(draw(rng, 20_000))
    rows = ReferenceRows(
        reference.rows,
        reference.outcomes,
        np.ones(20_000, bool),
        draw_folds(20_000),
        reference.known,
        "multiclass",
        reference.classes,
    )
    window = ReferenceWindow("m", "production", FIRST_DAY, FIRST_DAY, 0, 0, ReferenceChoice())
    fit = fit_rows(window, Slice(), rows)
    metrics = EXPECTED_BY_TASK["multiclass"]
    hits = {(kind, m): [] for kind in ("estimate", "combined") for m in metrics}
    for t in range(300):
        period = draw(rng, 2000, shift * t / 300)
        everything = READINGS["multiclass"].read(period, fit.classes)
        arrived = rng.random(2000) < rng.random()
        seen = READINGS["multiclass"].read({**period, "y": np.where(arrived, period["y"], None)}, fit.classes)
        truth = {m: f(everything.known, everything.outcomes).value for m, f in metrics.items()}
        labeled = seen.outcomes >= 0
        realized = {m: f(seen.known.subset(labeled), seen.outcomes[labeled]).value for m, f in metrics.items()}
        for m, e in estimate_period(fit, seen.rows, seen.outcomes, list(metrics), seen.known).items():
            if labeled.any():
                assert e.realized == pytest.approx(realized[m], abs=1e-12)
            hits[("estimate", m)].append(e.low <= truth[m] <= e.high)
            hits[("combined", m)].append(e.combined_low <= truth[m] <= e.combined_high)
    coverage = {key: float(np.mean(v)) for key, v in hits.items()}
    assert min(coverage.values()) >= 0.93, coverage

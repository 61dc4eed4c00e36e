"""Label-free estimates for a regression model: models of its absolute and squared errors
learned on the reference. On a simulated stream with known noise (larger in one region,
and growing with the size of the case) whose mix of regions shifts over 200 days: the 95%
intervals cover each day's realized MAE and RMSE, overall and in the noisy region; once
every label is in, the combined figure is scikit-learn's; R² is refused with its reason.
Cases beyond the reference's range are where a model of errors cannot know: the periods
say so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.estimation import ReferenceChoice
from analysis.estimation.run import estimate
from analysis.slices import parse_slice

DAYS, PER_DAY, REFERENCE_DAYS = 214, 300, 14
MAPPING = Mapping(
    task="regression", id="id", timestamp="ts", version="v", prediction="pred", label="y", features=["region", "size"]
)


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    rng = np.random.default_rng(17)
    n = DAYS * PER_DAY
    day = np.repeat(np.arange(DAYS), PER_DAY)
    drift = np.clip((day - REFERENCE_DAYS) / (DAYS - REFERENCE_DAYS), 0, 1)  # more of the noisy north over time
    size = rng.gamma(2, 50, n)
    north = rng.random(n) < 0.2 + 0.3 * drift
    region = np.where(north, "north", rng.choice(["south", "east", "west"], n))
    noise = np.where(region == "north", 60, 20) * (1 + size / 200)
    truth = 3 * size + rng.normal(0, noise, n)
    prediction = 3 * size
    arrived = np.where(day < REFERENCE_DAYS, True, rng.random(n) < rng.random(DAYS)[day])
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "ts": pd.Timestamp("2026-01-05") + pd.to_timedelta(day * 86400 + rng.integers(0, 86400, n), unit="s"),
            "v": "m",
            "pred": prediction,
            "y": np.where(arrived, truth, np.nan),
            "truth": truth,
            "region": region,
            "size": size,
        }
    )
    store = Store(tmp_path_factory.mktemp("regression") / "r.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame.drop(columns=["truth"]), project="r", mapping=MAPPING)
    frame["day"] = frame.ts.dt.date
    return store, frame


def reference():
    return ReferenceChoice.of("2026-01-05", "2026-01-18")


@pytest.mark.parametrize("where", ["", "region = north"])
def test_intervals_cover_each_day_s_realized_errors(stream, where):
    store, frame = stream
    with store.read() as con:
        slice_ = parse_slice(where) if where else parse_slice("")
        timeline = estimate(con, get_project(con, "r"), "m", slice_=slice_, choice=reference())
    rows = frame if not where else frame[frame.region == "north"]
    hits = {(kind, m): [] for kind in ("estimate", "combined") for m in ("mae", "rmse")}
    errors = {"mae": [], "rmse": []}
    assert len(timeline.periods) == DAYS - REFERENCE_DAYS
    for period in timeline.periods:
        day = rows[rows.day == period.period.start]
        truth = {
            "mae": mean_absolute_error(day.truth, day.pred),
            "rmse": root_mean_squared_error(day.truth, day.pred),
        }
        for m, figures in period.metrics.items():
            hits[("estimate", m)].append(figures.low <= truth[m] <= figures.high)
            hits[("combined", m)].append(figures.combined_low <= truth[m] <= figures.combined_high)
            errors[m].append(abs(figures.estimated - truth[m]))
    coverage = {key: float(np.mean(v)) for key, v in hits.items()}
    report = f"{coverage}; mean absolute error of the estimate: { {m: np.mean(v) for m, v in errors.items()} }"
    print(report)
    assert min(coverage.values()) >= 0.93, report


def test_a_fully_labeled_day_combines_to_scikit_learn_s_figures_and_r2_is_refused(stream):
    store, frame = stream
    with store.read() as con:
        project = get_project(con, "r")
        timeline = estimate(con, project, "m", choice=ReferenceChoice.of("2026-01-05", "2026-01-17"))
        with pytest.raises(ConfigError, match="No estimate of r2"):
            estimate(con, project, "m", choice=reference(), metrics=["r2"])
    first = timeline.periods[0]  # the reference's last day, every label in
    day = frame[frame.day == first.period.start]
    assert first.labeled == first.rows
    assert first.metrics["mae"].combined == pytest.approx(mean_absolute_error(day.y, day.pred), rel=1e-12)
    assert first.metrics["rmse"].combined == pytest.approx(root_mean_squared_error(day.y, day.pred), rel=1e-12)
    assert first.metrics["mae"].realized == pytest.approx(first.metrics["mae"].combined, rel=1e-12)


def test_predictions_beyond_the_reference_s_range_are_said(tmp_path):
    rng = np.random.default_rng(3)
    day = np.repeat(np.arange(20), 200)
    size = rng.gamma(2, 50, len(day)) * np.where(day >= 14, 3.0, 1.0)  # cases three times bigger
    truth = 3 * size + rng.normal(0, 20 * (1 + size / 200))
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(day))],
            "ts": pd.Timestamp("2026-01-05") + pd.to_timedelta(day, unit="D"),
            "v": "m",
            "pred": 3 * size,
            "y": np.where(day < 14, truth, np.nan),
            "region": "south",
            "size": size,
        }
    )
    store = Store(tmp_path / "far.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame, project="r", mapping=MAPPING)
    with store.read() as con:
        timeline = estimate(con, get_project(con, "r"), "m", choice=reference())
    assert all("of the predictions lie outside the reference's range" in " ".join(p.notes) for p in timeline.periods)

"""Which feature's shift explains a slice's estimated change: on a stream where only one
feature's mix moves (more of the rows the model is unsure about), that feature accounts
for the change of the estimated accuracy, and a feature that did not move for none of it."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from analysis import Mapping, Store, get_project, ingest_predictions
from analysis.drift.attribution import explain_change
from analysis.estimation import ReferenceChoice, resolve_reference
from analysis.estimation.fit import fit_slice
from analysis.slices import Slice

MAPPING = Mapping(
    task="binary",
    id="id",
    timestamp="ts",
    version="v",
    score="score",
    label="label",
    positive_label="1",
    features=["segment", "region", "size"],
)


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    rng = np.random.default_rng(12)
    days, per_day = 28, 1500
    day = np.repeat(np.arange(days), per_day)
    risky = rng.random(len(day)) < np.where(day >= 21, 0.6, 0.2)
    z = np.where(risky, rng.normal(0, 0.4, len(day)), rng.normal(-2.5, 1.0, len(day)))
    score = 1 / (1 + np.exp(-z))
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(day))],
            "ts": pd.Timestamp("2026-04-06")
            + pd.to_timedelta(day * 86400 + rng.integers(0, 86400, len(day)), unit="s"),
            "v": "m",
            "score": score,
            "label": np.where(day < 21, (rng.random(len(day)) < score).astype(int), None),
            "segment": np.where(risky, "risky", "safe"),
            "region": rng.choice(["n", "s", "e", "w"], len(day)),
            "size": rng.gamma(2, 10, len(day)),
        }
    )
    store = Store(tmp_path_factory.mktemp("attribution") / "s.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame, project="s", mapping=MAPPING)
    return store


def test_the_feature_that_moved_accounts_for_the_change(shifted):
    with shifted.read() as con:
        project = get_project(con, "s")
        reference = resolve_reference(con, project, "m", "production", ReferenceChoice.of("2026-04-06", "2026-04-26"))
        found = explain_change(con, project, reference, Slice(), date(2026, 4, 27), "week")
        fit = fit_slice(con, project, reference, Slice())
        rows = con.execute(
            f"SELECT score, prediction FROM {project.log_table} WHERE timestamp < TIMESTAMP '2026-04-27'"
        ).df()
    p = fit.calibrator.apply(rows.score.to_numpy())
    before = float(np.mean(np.where(rows.prediction, p, 1 - p)))  # the reference's estimated accuracy
    first, *others = found
    change = first.period - before
    assert first.feature == "segment" and first.measure == "accuracy"
    assert change < -0.05  # more rows the model is unsure about: a lower estimate
    assert first.accounts_for == pytest.approx(change, abs=0.01)
    assert first.unmatched == pytest.approx(0.0, abs=1e-12)
    for other in others:
        assert abs(other.accounts_for) < 0.01, other

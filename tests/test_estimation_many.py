"""Many slices fitted and estimated at once (:mod:`analysis.estimation.many`), as a monitor
run asks them, give each slice exactly what fitting and estimating it alone gives: the same
calibration, calibration errors and priors (``fit_slice``), the same reference halves, and
each day's figures as ``estimate_timeline`` shows that day known that evening. On a real
DuckDB file, for a binary and a multiclass model, with labels arriving late and slices
large, small, absent from the reference, and of a value no row has."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import Mapping, Store, get_project, ingest_predictions
from analysis.errors import ConfigError
from analysis.estimation import resolve_reference
from analysis.estimation.calibration import draw_folds
from analysis.estimation.combine import estimate_by_period, estimate_period
from analysis.estimation.expected import BY_PERIOD, Periods, Rows
from analysis.estimation.fit import ReferenceRows, fit_from_state, fit_rows, fit_slice, fit_state
from analysis.estimation.many import fit_slices
from analysis.estimation.outcomes import READINGS
from analysis.estimation.reference import ReferenceChoice, ReferenceWindow
from analysis.monitors.definitions import Monitor
from analysis.monitors.families import Estimates, Watch
from analysis.slices import Slice, parse_slice

FIRST_DAY = date(2026, 4, 6)
DAYS, PER_DAY, REFERENCE_DAYS = 22, 700, 12
CLASSES = np.array(["cat", "dog", "fox"], dtype=object)
SLICES = [
    "region = north",  # about half the rows: calibrated on its own
    "region = north AND channel = web",
    "channel = kiosk",  # a few dozen rows: borrows the whole reference's calibration
    "channel = pop_up",  # only after the reference window
    "region = nowhere",  # no row at all
    "",
    "period = am AND score >= 0.5",  # columns named like the query's own (its period, the score)
]


def frame(task: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = DAYS * PER_DAY
    d = np.repeat(np.arange(DAYS), PER_DAY)
    channel = rng.choice(["web", "app", "kiosk"], n, p=[0.55, 0.43, 0.02])
    channel = np.where((d >= REFERENCE_DAYS) & (rng.random(n) < 0.05), "pop_up", channel)
    region = rng.choice(["north", "south"], n)
    z = rng.normal(np.where(region == "north", -0.5, 0.4), 1.6)
    p = 1 / (1 + np.exp(-z))
    ts = pd.Timestamp(FIRST_DAY) + pd.to_timedelta(d * 86400 + rng.integers(0, 86000, n), unit="s")
    lag = pd.to_timedelta(rng.exponential(2.5, n) * 86400, unit="s")  # most labels late, some days late
    common = {"id": [f"r{i}" for i in range(n)], "ts": ts, "v": "m1", "label_ts": ts + lag}
    common["period"] = np.where(ts.hour < 12, "am", "pm")
    if task == "binary":
        off = np.where(region == "north", 0.7, 1.25)  # off calibration, each region its own way
        label = (rng.random(n) < np.clip(p * off, 0, 1)).astype(int)
        return pd.DataFrame(common | {"score": np.round(p, 3), "label": label, "region": region, "channel": channel})
    predicted = rng.integers(0, 3, n)
    right = rng.random(n) < np.clip(np.where(region == "north", 0.1, 0.4) + 0.6 * p, 0, 1)
    truth = np.where(right, predicted, (predicted + rng.integers(1, 3, n)) % 3)
    return pd.DataFrame(
        common
        | {
            "score": np.round(0.34 + 0.64 * p, 3),
            "pred": CLASSES[predicted],
            "label": CLASSES[truth],
            "region": region,
            "channel": channel,
        }
    )


MAPPINGS = {
    "binary": Mapping(
        task="binary", id="id", timestamp="ts", version="v", score="score", label="label",
        label_timestamp="label_ts", positive_label="1", features=["region", "channel", "period"],
    ),
    "multiclass": Mapping(
        task="multiclass", id="id", timestamp="ts", version="v", score="score", prediction="pred",
        label="label", label_timestamp="label_ts", features=["region", "channel", "period"],
    ),
}  # fmt: skip
METRICS = {"binary": ["roc_auc", "accuracy", "recall"], "multiclass": ["accuracy", "macro_f1"]}


@pytest.fixture(scope="module", params=["binary", "multiclass"])
def project(request, tmp_path_factory):
    task = request.param
    store = Store(tmp_path_factory.mktemp(task) / "many.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame(task, 5), project=task, mapping=MAPPINGS[task])
    with store.read() as con:
        project = get_project(con, task)
        window = resolve_reference(con, project, "m1", "production", before=FIRST_DAY + timedelta(days=REFERENCE_DAYS))
        yield con, project, window


def same_fit(a, b) -> bool:
    ca, cb = a.calibrator, b.calibrator
    counts = ("within_slice", "rows", "positives", "notes", "errors", "group_bias", "held_out_brier")
    classes_alike = (a.classes is None and b.classes is None) or (
        a.classes.names == b.classes.names and np.array_equal(a.classes.confusion, b.classes.confusion)
    )
    return (
        ca.method == cb.method
        and all(np.array_equal(getattr(ca, k), getattr(cb, k)) for k in ("x", "y", "levels", "counts"))
        and all(getattr(a, k) == getattr(b, k) for k in counts)
        and np.array_equal(a.score_quantiles, b.score_quantiles)
        and classes_alike
    )


def test_many_slices_fitted_at_once_are_fitted_as_each_alone(project):
    con, project, window = project
    slices = [parse_slice(s) for s in SLICES]
    together = fit_slices(con, project, window, slices)
    for text, slice_, fit in zip(SLICES, slices, together):
        try:
            alone = fit_slice(con, project, window, slice_)
        except ConfigError as refused:
            assert isinstance(fit, ConfigError) and str(fit) == str(refused), text
            continue
        assert same_fit(alone, fit), text
        assert same_fit(fit, fit_from_state(window, slice_, project.task, fit_state(fit))), text
    fitted = [f for f in together if not isinstance(f, ConfigError)]
    assert {f.within_slice for f in fitted} == {True, False}  # both kinds of calibration were compared
    assert sum(isinstance(f, ConfigError) for f in together) == 2


@pytest.mark.parametrize("kind", ["combined", "estimated"])
def test_each_day_estimated_at_once_is_the_day_estimated_alone_as_known_that_evening(project, kind):
    con, project, window = project
    monitors = [
        Monitor(f"{kind} {metric} {text}", metric, kind, "m1", "production", parse_slice(text))
        for metric in METRICS[project.task]
        for text in [*SLICES[:4], SLICES[-1]]
    ]
    batched, alone = Estimates(), Estimates()
    found = batched.reference_many(con, project, [(m, window) for m in monitors])
    days = [window.end + timedelta(days=i) for i in range(1, DAYS - REFERENCE_DAYS + 2)]  # and a day with no rows
    asked = []
    for monitor in monitors:
        reference = found[monitor.name]
        if isinstance(reference, ConfigError):  # the slice first seen after the reference
            assert monitor.slice_.readable() == "channel = pop_up"
            continue
        one = alone.reference(con, project, monitor, window)
        # The same rows; the same figures but for the order numbers are added up in.
        assert [h[0] for h in reference["halves"]] == [h[0] for h in one["halves"]], monitor.name
        assert np.allclose(reference["halves"], one["halves"], rtol=1e-12, atol=0, equal_nan=True), monitor.name
        asked.append((Watch(monitor, "m1", "production", window, reference, days[0]), days))
    assert len(asked) == 4 * len(METRICS[project.task])
    together = batched.observe_many(con, project, asked)
    checked = 0
    for watch, _ in asked:
        each = alone.observe(con, project, watch, days)
        assert together[watch.monitor.name].keys() == each.keys()
        for day in days:
            a, b = together[watch.monitor.name][day], each[day]
            assert a[2] == b[2] and np.allclose(a[:2], b[:2], rtol=1e-12, atol=0, equal_nan=True), (
                watch.monitor.name,
                day,
            )
            checked += np.isfinite(a[0])
    assert checked >= 0.6 * len(asked) * (len(days) - 1)  # most days have a figure to compare (not the kiosk)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), periods=st.integers(1, 6), labeled=st.sampled_from([0.0, 0.3, 1.0]))
def test_a_slices_days_estimated_at_once_are_each_day_estimated_alone(seed, periods, labeled):
    """Periods of a few rows to a few hundred (one row, one class, ties, weights), none,
    some or all of them labeled: :func:`estimate_by_period` gives each period's figures as
    :func:`estimate_period` gives them for its rows alone."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 2, 5, 40, 300], periods)
    fit = _binary_fit()
    parts = []
    for i, size in enumerate(sizes):
        score = np.sort(np.round(rng.random(size), 2))
        y = np.where(rng.random(size) < labeled * rng.random(), (rng.random(size) < score).astype(int), -1)
        parts.append(pd.DataFrame({"period": i, "score": score, "yhat": (score > 0.5).astype(int), "y": y}))
    frame = pd.concat(parts).groupby(["period", "score", "yhat", "y"]).size().rename("w").reset_index()
    read = READINGS["binary"].read({k: frame[k].to_numpy() for k in ("score", "yhat", "y", "w")})
    names = list(BY_PERIOD)
    at_once = estimate_by_period(fit, read.rows, read.outcomes, names, Periods(frame.period.to_numpy()))
    for i in range(periods):
        mine = (frame.period == i).to_numpy()
        alone = READINGS["binary"].read(
            {k: frame[k].to_numpy()[mine] for k in ("score", "yhat", "y", "w")}, presorted=True
        )
        want = estimate_period(fit, alone.rows, alone.outcomes, names, alone.known, full=False)
        for name in names:
            a, b = at_once[i][name], want[name]
            for field in ("estimated", "low", "high", "combined", "combined_low", "combined_high"):
                assert np.isclose(getattr(a, field), getattr(b, field), rtol=1e-12, atol=1e-15, equal_nan=True), (
                    name, i, field, getattr(a, field), getattr(b, field),
                )  # fmt: skip
            assert (a.realized is None) == (b.realized is None)
            assert a.realized is None or np.isclose(a.realized, b.realized, rtol=1e-12)


def _binary_fit():
    """A calibration fitted on rows whose scores run high, with errors measured on it."""
    rng = np.random.default_rng(3)
    score = np.sort(np.round(rng.random(4000), 2))
    label = (rng.random(4000) < np.clip(score * 0.8 + 0.05, 0, 1)).astype(float)
    rows = Rows(score, (score > 0.5).astype(float), presorted=True)
    reference = ReferenceRows(rows, label, np.ones(4000, bool), draw_folds(4000), task="binary")
    start, end = date(2026, 1, 1), date(2026, 1, 14)
    window = ReferenceWindow("m1", "production", start, end, 4000, 4000, ReferenceChoice(start, end))
    return fit_rows(window, Slice(), reference, "isotonic")

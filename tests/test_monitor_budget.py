"""Monitors keep the false-alarm budget and still catch real drops (analysis/monitors):
simulated daily streams of slices' accuracy, each monitor comparing its slice with a
reference window of 28 days that is itself a sample.

* Null streams (no change; 90 days; 500 monitors over slices of 0.5-20% of 8,000 rows a
  day; two seeds): the false alerts per 30 days stay within a budget of 1 on average
  and never far above it, while a fixed threshold (alert when a day's accuracy is 5 points
  below the reference's) and a daily fixed-sample test (one-sided z at 5%) raise far more.
* Planted drops in a slice of 2% of the traffic (160 rows a day, labels at once), at the
  level set for 500 monitors: 10 points from 0.81 within 7 days, 5 points from 0.93 within
  7 days and from 0.81 within 21 days (medians over seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import ConfigError
from analysis.monitors.budget import Budget
from analysis.monitors.evidence import EstimateMonitors, RateMonitors

MONITORS, DAYS, TRAFFIC, REFERENCE_DAYS = 500, 90, 8000, 28
BUDGET = Budget(1.0)


def null_stream(seed: int) -> dict[str, float]:
    """False alerts per 30 days of the monitors, and of the two rules people use instead."""
    rng = np.random.default_rng(seed)
    share = rng.uniform(0.005, 0.2, MONITORS)
    accuracy = rng.uniform(0.75, 0.95, MONITORS)
    ref_trials = rng.poisson(share * TRAFFIC * REFERENCE_DAYS)
    ref_successes = rng.binomial(ref_trials, accuracy)
    reference = ref_successes / ref_trials
    monitors = RateMonitors(ref_successes, ref_trials, BUDGET.threshold(MONITORS))
    counts = {"monitors": 0, "fixed threshold": 0, "daily z-test": 0}
    for _ in range(DAYS):
        trials = rng.poisson(share * TRAFFIC)
        successes = rng.binomial(trials, accuracy)
        alerts, _ = monitors.step(successes, trials)
        counts["monitors"] += int(alerts.sum())
        rate = successes / np.maximum(trials, 1)
        counts["fixed threshold"] += int(np.sum(rate < reference - 0.05))
        se = np.sqrt(reference * (1 - reference) / np.maximum(trials, 1))
        counts["daily z-test"] += int(np.sum((reference - rate) / se > 1.645))
    return {rule: n * 30 / DAYS for rule, n in counts.items()}


def test_null_streams_stay_within_the_budget_where_usual_rules_do_not():
    runs = [null_stream(seed) for seed in range(2)]
    said = "; ".join(", ".join(f"{rule} {n:.1f}" for rule, n in run.items()) for run in runs)
    monitors = [run["monitors"] for run in runs]
    assert np.mean(monitors) <= BUDGET.false_alerts_per_month, said
    assert max(monitors) <= 3 * BUDGET.false_alerts_per_month, said
    assert all(run["fixed threshold"] > 20 and run["daily z-test"] > 100 for run in runs), said


@pytest.mark.parametrize("base, drop, within", [(0.81, 0.10, 7), (0.93, 0.05, 7), (0.81, 0.05, 21)])
def test_a_drop_in_a_two_percent_slice_is_alerted_in_time(base, drop, within):
    """25 seeds at once (a monitor each): the drop starts on day 31; a delay counts from it
    to the first alert on or after it."""
    rng = np.random.default_rng(int(base * 100 + drop * 1000))
    seeds, per_day = 25, 160
    ref_trials = np.full(seeds, per_day * REFERENCE_DAYS)
    monitors = RateMonitors(rng.binomial(ref_trials, base), ref_trials, BUDGET.threshold(MONITORS))
    found = np.full(seeds, np.inf)
    for day in range(DAYS):
        rate = base if day < 30 else base - drop
        alerts, _ = monitors.step(rng.binomial(per_day, rate, seeds), np.full(seeds, per_day))
        if day >= 30:
            found = np.where(alerts & np.isinf(found), day - 29, found)
    assert np.median(found) <= within, sorted(found)


def test_a_budget_is_a_positive_number_of_alerts():
    assert Budget(2.0).threshold(500) == 500 * 30 / 2
    assert Budget(1.0).threshold(500, period_days=7) == pytest.approx(500 * 30 / 7)
    assert Budget(1.0).years_between_false_alarms(500) == pytest.approx(15_000 / 365)
    with pytest.raises(ConfigError, match="above 0"):
        Budget(0)


def test_estimate_monitors_keep_the_budget_and_see_a_drop():
    """Monitors of an estimate (a value and its variance a period, such as accuracy
    estimated from scores while labels are late): null streams over 500 slices stay within
    the budget; a 10-point drop in a 2% slice is alerted within two weeks (median)."""
    rng = np.random.default_rng(29)
    share = rng.uniform(0.005, 0.2, MONITORS)
    accuracy = rng.uniform(0.75, 0.95, MONITORS)
    per_day = share * TRAFFIC
    half = accuracy * (1 - accuracy) / (per_day * REFERENCE_DAYS / 2)  # each half of the reference
    monitors = EstimateMonitors(
        rng.normal(accuracy, np.sqrt(half)), half, rng.normal(accuracy, np.sqrt(half)), half, BUDGET.threshold(MONITORS)
    )
    alerts = 0
    for _ in range(DAYS):
        variance = 1.3 * accuracy * (1 - accuracy) / per_day  # an estimate: a little above a count's
        found, _ = monitors.step(rng.normal(accuracy, np.sqrt(variance)), variance)
        alerts += int(found.sum())
    assert alerts * 30 / DAYS <= BUDGET.false_alerts_per_month

    seeds, base = 25, 0.81
    half = np.full(seeds, base * (1 - base) / (160 * REFERENCE_DAYS / 2))
    monitors = EstimateMonitors(
        rng.normal(base, np.sqrt(half)), half, rng.normal(base, np.sqrt(half)), half, BUDGET.threshold(MONITORS)
    )
    delay = np.full(seeds, np.inf)
    for day in range(DAYS):
        mean = base if day < 30 else base - 0.10
        variance = np.full(seeds, 1.3 * mean * (1 - mean) / 160)
        found, _ = monitors.step(rng.normal(mean, np.sqrt(variance)), variance)
        if day >= 30:
            delay = np.where(found & np.isinf(delay), day - 29, delay)
    assert np.median(delay) <= 14, sorted(delay)

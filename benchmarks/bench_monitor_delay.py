"""What the false-alarm budget costs in delay: Sliceboard's monitors against a fixed-sample
test held to the same budget, on simulated drops in a slice of 2% of the traffic.

    .venv/bin/python benchmarks/bench_monitor_delay.py [--seeds 200]

Both rules watch 500 monitors with a budget of 1 false alert a month, and a reference of 28
days that is itself a sample (the same streams as ``tests/test_monitor_budget.py``):

* **Sliceboard**: the e-detector of each monitor (``analysis.monitors.evidence``), alerting
  at the budget's level (``Budget.threshold``), valid however often it is looked at;
* **a fixed-sample test at the same budget**: each day, the last ``--window`` days of the
  slice against the reference, a one-sided two-proportion z-test at the level that keeps
  the false alerts within the budget by the union bound (500 monitors × 30 tests a month:
  alpha = 1 / 15,000); the best a person can do with fixed-sample tests re-run daily.

Printed: for each drop (labels at once, 160 rows a day, the drop from day 31), the median
days to the alert and the share of drops alerted within 30 days, for both rules; then the
false alerts a month of both on null streams.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.monitors.budget import Budget  # noqa: E402
from analysis.monitors.evidence import RateMonitors  # noqa: E402

MONITORS, REFERENCE_DAYS, PER_DAY, CHANGE_DAY, DAYS = 500, 28, 160, 30, 90
BUDGET = Budget(1.0)
DROPS = ((0.81, 0.10), (0.93, 0.05), (0.81, 0.05), (0.81, 0.03))


def fixed_sample_alerts(ref_s, ref_n, window_s, window_n, alpha: float) -> np.ndarray:
    """One-sided two-proportion z-test (pooled variance) of the window below the reference."""
    pooled = (ref_s + window_s) / np.maximum(ref_n + window_n, 1)
    se = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(ref_n, 1) + 1 / np.maximum(window_n, 1)))
    z = (ref_s / ref_n - window_s / np.maximum(window_n, 1)) / np.where(se > 0, se, np.inf)
    return z > stats.norm.isf(alpha)


def delays(base: float, drop: float, seeds: int, window: int, rng) -> dict[str, np.ndarray]:
    ref_n = np.full(seeds, PER_DAY * REFERENCE_DAYS)
    ref_s = rng.binomial(ref_n, base)
    monitors = RateMonitors(ref_s, ref_n, BUDGET.threshold(MONITORS))
    alpha = BUDGET.false_alerts_per_month / (MONITORS * 30)
    found = {"sliceboard": np.full(seeds, np.inf), "fixed-sample": np.full(seeds, np.inf)}
    days_s, days_n = [], []
    for day in range(DAYS):
        rate = base if day < CHANGE_DAY else base - drop
        s, n = rng.binomial(PER_DAY, rate, seeds), np.full(seeds, PER_DAY)
        days_s.append(s)
        days_n.append(n)
        alerts, _ = monitors.step(s, n)
        fixed = fixed_sample_alerts(
            ref_s, ref_n, np.sum(days_s[-window:], axis=0), np.sum(days_n[-window:], axis=0), alpha
        )
        if day >= CHANGE_DAY:
            for rule, hit in (("sliceboard", alerts), ("fixed-sample", fixed)):
                found[rule] = np.where(hit & np.isinf(found[rule]), day - CHANGE_DAY + 1, found[rule])
    return found


def null_rate(seeds: int, window: int, rng) -> dict[str, float]:
    """False alerts a month over ``MONITORS`` monitors of slices of 0.5-20% of 8,000 rows."""
    share = rng.uniform(0.005, 0.2, MONITORS)
    accuracy = rng.uniform(0.75, 0.95, MONITORS)
    alpha = BUDGET.false_alerts_per_month / (MONITORS * 30)
    counts = {"sliceboard": 0, "fixed-sample": 0}
    for _ in range(seeds):
        ref_n = rng.poisson(share * 8000 * REFERENCE_DAYS)
        ref_s = rng.binomial(ref_n, accuracy)
        monitors = RateMonitors(ref_s, ref_n, BUDGET.threshold(MONITORS))
        days_s, days_n = [], []
        for _ in range(DAYS):
            n = rng.poisson(share * 8000)
            s = rng.binomial(n, accuracy)
            days_s.append(s)
            days_n.append(n)
            counts["sliceboard"] += int(monitors.step(s, n)[0].sum())
            w_s, w_n = np.sum(days_s[-window:], axis=0), np.sum(days_n[-window:], axis=0)
            counts["fixed-sample"] += int(fixed_sample_alerts(ref_s, ref_n, w_s, w_n, alpha).sum())
    return {rule: n * 30 / (DAYS * seeds) for rule, n in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--window", type=int, default=7, help="the fixed-sample test's days")
    parser.add_argument("--null-seeds", type=int, default=4)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}")
    print(f"{MONITORS} monitors, budget {BUDGET.false_alerts_per_month:g} a month, reference {REFERENCE_DAYS} days")
    print(f"{'drop':<22} {'Sliceboard: median, within 30 d':>32} {f'{args.window}-day test: median, within 30 d':>36}")
    rng = np.random.default_rng(2026)
    for base, drop in DROPS:
        found = delays(base, drop, args.seeds, args.window, rng)
        cells = [
            f"{np.median(found[r]):>6.0f} d, {np.mean(found[r] <= 30):>5.0%}" for r in ("sliceboard", "fixed-sample")
        ]
        print(f"{drop:.0%} from {base:.2f}{'':<12} {cells[0]:>32} {cells[1]:>36}")
    rates = null_rate(args.null_seeds, args.window, rng)
    print(
        f"no change: false alerts a month: Sliceboard {rates['sliceboard']:.2f}, "
        f"{args.window}-day test {rates['fixed-sample']:.2f}"
    )


if __name__ == "__main__":
    main()

"""Evidence that watched figures got worse than their reference, for many monitors at once.

A rate monitor (accuracy, a labeled share: successes among trials each period) compares
every period since its episode began with its reference sample (successes of trials in
the reference window): :func:`analysis.stats.sequential.rate_change_log_e` for each start,
summed into the Shiryaev–Roberts e-detector. When the evidence reaches the budget's level
(:mod:`.budget`) the monitor alerts and starts a new episode from the next period.

The period's rate is mixed over a Beta prior centred on the reference's rate, with a
standard deviation of ``spread`` (5 points by default: drops from a couple of points to a
few tens weigh most), restricted to the bad side; the reference's own rate over a uniform
prior (it may not depend on the reference's counts).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from analysis.stats.sequential import beta_prior, normal_change_log_e, rate_change_log_e

SPREAD = 0.05
SPLIT_SEED = 20240  # the reference's split into prior and test halves: the same on every run
SIDES = {"lower": "below", "higher": "above"}


def rate_prior(rate, spread: float = SPREAD) -> tuple[np.ndarray, np.ndarray]:
    """A Beta prior with mean ``rate`` and standard deviation ``spread`` (at most what a
    Beta of that mean allows, and worth at least two observations)."""
    rate = np.clip(np.asarray(rate, float), 1e-6, 1 - 1e-6)
    strength = np.maximum(rate * (1 - rate) / spread**2 - 1.0, 2.0)
    return beta_prior(rate, strength)


def _detect(detector, log_e: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """The Shiryaev–Roberts step shared by the detectors: ``log_e`` holds each monitor's log
    e-value from every start to period ``t``; starts before the episode's are left out. Keeps
    the start carrying the most evidence (``best_start``: where the change most likely
    began) and restarts the episode of each monitor that alerts."""
    log_e = np.where(np.arange(t)[None, :] >= detector.episode_start[:, None], log_e, -np.inf)
    evidence = special.logsumexp(log_e, axis=1)
    detector.best_start = np.argmax(log_e, axis=1)
    alerts = evidence >= detector.log_threshold
    detector.episode_start[alerts] = t
    return alerts, evidence


class RateMonitors:
    """The e-detectors of ``len(ref_successes)`` rate monitors, fed one period at a time."""

    def __init__(
        self, ref_successes, ref_trials, threshold: float, bad: str = "lower", tolerance: float = 0.0, seeds=None
    ):
        successes, trials = np.asarray(ref_successes, np.int64), np.asarray(ref_trials, np.int64)
        # Half the reference's rows (drawn at random: rows are exchangeable) set the prior of
        # its rate; the test compares the other half with the periods. A prior that did not
        # look at the reference would cost the evidence about half the log of its rows.
        # ``seeds``: one per monitor, so that a monitor's draw does not depend on the others.
        good, bad_rows, half = np.maximum(successes, 0), np.maximum(trials - successes, 0), trials // 2
        if seeds is None:
            rng = np.random.default_rng(SPLIT_SEED)
            learned = rng.hypergeometric(good, bad_rows, half) if len(trials) else np.zeros(0, np.int64)
        else:
            learned = np.array(
                [
                    np.random.default_rng([SPLIT_SEED, int(seed)]).hypergeometric(g, b, h)
                    for g, b, h, seed in zip(good, bad_rows, half, seeds)
                ],
                dtype=np.int64,
            )
        half = trials // 2
        self.ref_prior = (1.0 + learned, 1.0 + half - learned)
        self.ref_successes = (successes - learned).astype(float)
        self.ref_trials = (trials - half).astype(float)
        self.log_threshold = float(np.log(threshold))
        self.side = SIDES[bad]
        self.tolerance = tolerance
        self.prior = rate_prior(successes / np.maximum(trials, 1))
        count = len(trials)
        self._successes = np.zeros((count, 1))  # running totals, a column per period boundary
        self._trials = np.zeros((count, 1))
        self.episode_start = np.zeros(count, dtype=int)  # the first period of each monitor's episode

    @property
    def periods(self) -> int:
        return self._successes.shape[1] - 1

    def step(self, successes, trials) -> tuple[np.ndarray, np.ndarray]:
        """Feed one period's counts (per monitor): which monitors alert at it, and each one's
        log evidence (before an alert's restart)."""
        self._successes = np.c_[self._successes, self._successes[:, -1] + np.asarray(successes, float)]
        self._trials = np.c_[self._trials, self._trials[:, -1] + np.asarray(trials, float)]
        t = self.periods
        since_s = self._successes[:, [t]] - self._successes[:, :t]  # totals from each start to now
        since_n = self._trials[:, [t]] - self._trials[:, :t]
        log_e = rate_change_log_e(
            self.ref_successes[:, None],
            self.ref_trials[:, None],
            since_s,
            since_n,
            self.tolerance,
            self.side,
            prior=(self.ref_prior[0][:, None], self.ref_prior[1][:, None]),
            period_prior=(self.prior[0][:, None], self.prior[1][:, None]),
        )
        return _detect(self, log_e, t)


class EstimateMonitors:
    """The e-detectors of estimate monitors (a label-free estimate, alone or combined with
    the labels that arrived: a value and its variance each period), against a reference
    estimated on two halves of the reference window's rows: one sets the prior of the
    reference's mean, the other is compared with the periods."""

    def __init__(
        self,
        ref_value,
        ref_variance,
        prior_mean,
        prior_variance,
        threshold: float,
        bad: str = "lower",
        tolerance: float = 0.0,
        spread: float = SPREAD,
    ):
        self.reference = (np.asarray(ref_value, float), np.asarray(ref_variance, float))
        self.prior = (np.asarray(prior_mean, float), np.asarray(prior_variance, float))
        self.log_threshold = float(np.log(threshold))
        self.side = SIDES[bad]
        self.tolerance = tolerance
        self.spread = np.asarray(spread, float)  # one for all, or one per monitor
        count = len(self.reference[0])
        self._sums = np.zeros((count, 1))  # running Σ x / v and Σ 1 / v
        self._precision = np.zeros((count, 1))
        self.episode_start = np.zeros(count, dtype=int)

    @property
    def periods(self) -> int:
        return self._sums.shape[1] - 1

    def step(self, values, variances) -> tuple[np.ndarray, np.ndarray]:
        """Feed one period's estimates and their variances (per monitor; a NaN value: no
        estimate that period): which monitors alert at it, and each one's log evidence."""
        values, variances = np.asarray(values, float), np.asarray(variances, float)
        seen = np.isfinite(values) & np.isfinite(variances) & (variances > 0)
        weight = np.where(seen, 1.0 / np.where(seen, variances, 1.0), 0.0)
        self._sums = np.c_[self._sums, self._sums[:, -1] + weight * np.where(seen, values, 0.0)]
        self._precision = np.c_[self._precision, self._precision[:, -1] + weight]
        t = self.periods
        log_e = normal_change_log_e(
            self.reference[0][:, None],
            self.reference[1][:, None],
            self.prior[0][:, None],
            self.prior[1][:, None],
            self._sums[:, [t]] - self._sums[:, :t],
            self._precision[:, [t]] - self._precision[:, :t],
            self.spread[:, None] if self.spread.ndim else self.spread,
            self.tolerance,
            self.side,
        )
        return _detect(self, log_e, t)

"""The sequential statistics (analysis/stats/sequential.py) against a published
implementation (ville, BSD-3, a test-only dependency), numerical integration of the
mixtures, and simulation of what they promise: an expectation of at most 1 under the
null, Ville's inequality, and at most T / c false alarms in T periods from an e-detector
alarming at c."""

from __future__ import annotations

import numpy as np
import pytest
import ville
from scipy import integrate, stats
from ville.evalues import ebh as ville_ebh

from analysis.stats.sequential import (
    anytime_p_value,
    beta_mixture_log_e,
    beta_prior,
    count_change_log_e,
    ebh,
    false_alarm_threshold,
    normal_change_log_e,
    normal_mixture_log_e,
    p_to_e,
    rate_change_log_e,
    shiryaev_roberts,
    suffix_sums,
)


@pytest.mark.parametrize("p0, truth, prior", [(0.8, 0.8, (1.0, 1.0)), (0.3, 0.2, (2.0, 5.0)), (0.9, 0.7, (9.0, 1.0))])
def test_the_untruncated_beta_mixture_is_villes(p0, truth, prior):
    x = (np.random.default_rng(3).random(400) < truth).astype(float)
    theirs = ville.BernoulliTest(p0, prior=prior).fit(x).log_e_values_
    ours = beta_mixture_log_e(np.cumsum(x), np.arange(1, 401), p0, prior, side="both")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("theta0, sigma, tau", [(0.0, 1.0, 0.5), (0.8, 0.05, 0.02), (-1.0, 2.0, 3.0)])
def test_the_two_sided_normal_mixture_is_villes(theta0, sigma, tau):
    x = np.random.default_rng(4).normal(theta0 + 0.3 * sigma, sigma, 300)
    theirs = ville.MSPRT(theta0, sigma=sigma, tau=tau).fit(x).log_e_values_
    t = np.arange(1, 301)
    ours = normal_mixture_log_e(np.cumsum(x - theta0) / sigma**2, t / sigma**2, tau, side="both")
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("side", ["below", "above"])
@pytest.mark.parametrize("s, n", [(70, 100), (90, 100), (3, 40), (0, 10)])
def test_the_one_sided_beta_mixture_is_its_integral(side, s, n):
    p0, (a, b) = 0.8, beta_prior(0.8, 20.0)
    lo, hi = (0.0, p0) if side == "below" else (p0, 1.0)

    def ratio(p):
        return np.exp(s * np.log(p / p0) + (n - s) * np.log((1 - p) / (1 - p0))) * stats.beta.pdf(p, a, b)

    numerator = integrate.quad(ratio, lo, hi, epsabs=0, epsrel=1e-11, limit=200)[0]
    mass = stats.beta.cdf(p0, a, b) if side == "below" else stats.beta.sf(p0, a, b)
    expected = numerator / mass
    assert np.exp(beta_mixture_log_e(s, n, p0, (a, b), side)) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("side", ["below", "above"])
@pytest.mark.parametrize("shift_sum, precision", [(-40.0, 900.0), (25.0, 400.0), (0.0, 10.0)])
def test_the_one_sided_normal_mixture_is_its_integral(side, shift_sum, precision):
    scale = 0.05

    def ratio(delta):
        return np.exp(delta * shift_sum - delta**2 * precision / 2) * 2 * stats.norm.pdf(delta, 0, scale)

    lo, hi = (-np.inf, 0.0) if side == "below" else (0.0, np.inf)
    expected = integrate.quad(ratio, lo, hi, epsabs=0, epsrel=1e-11)[0]
    got = np.exp(normal_mixture_log_e(shift_sum, precision, scale, side))
    assert got == pytest.approx(expected, rel=1e-8)


def test_e_values_keep_their_promise_under_the_null():
    """At the null's boundary and inside it, the one-sided e-values average at most 1, and
    the chance an e-process ever reaches 20 within 60 looks stays below 1/20."""
    rng = np.random.default_rng(11)
    p0, prior = 0.8, beta_prior(0.8, 50.0)
    for truth in (0.8, 0.85):  # the boundary, and a rate the null allows
        counts = rng.binomial(100, truth, size=(20_000, 60))
        log_e = beta_mixture_log_e(np.cumsum(counts, axis=1), 100 * np.arange(1, 61), p0, prior)
        assert np.exp(log_e[:, -1]).mean() <= 1.0 + 3 * np.exp(log_e[:, -1]).std() / np.sqrt(20_000)
        crossed = (log_e >= np.log(20)).any(axis=1).mean()
        assert crossed <= 1 / 20, crossed
    # Estimates with their variances: the same promise.
    x = rng.normal(0.0, 0.02, size=(20_000, 60))
    precision = np.arange(1, 61) / 0.02**2
    log_e = normal_mixture_log_e(np.cumsum(x, axis=1) / 0.02**2, precision, 0.03)
    assert (log_e >= np.log(20)).any(axis=1).mean() <= 1 / 20


def run_detector(counts: np.ndarray, trials: int, p0: float, prior, threshold: float) -> list[int]:
    """Periods at which a Shiryaev-Roberts e-detector over ``counts`` alarms (restarting
    after each alarm)."""
    alarms, start = [], 0
    for t in range(len(counts)):
        since = counts[start : t + 1]
        log_e = beta_mixture_log_e(suffix_sums(since), trials * np.arange(len(since), 0, -1), p0, prior)
        if shiryaev_roberts(log_e) >= np.log(threshold):
            alarms.append(t)
            start = t + 1
    return alarms


def test_an_e_detector_raises_at_most_T_over_c_false_alarms():
    rng = np.random.default_rng(5)
    periods, threshold, runs = 90, 30.0, 500
    p0, prior = 0.8, beta_prior(0.8, 50.0)
    total = sum(len(run_detector(rng.binomial(160, p0, periods), 160, p0, prior, threshold)) for _ in range(runs))
    # At most 90 / 30 = 3 per run in expectation; far fewer in practice.
    assert total / runs <= periods / threshold
    # A drop is found: 0.80 -> 0.72 from period 30, at a level meant for 500 monitors.
    level = false_alarm_threshold(monitors=500, periods=30, false_alarms=1)
    delays = []
    for _ in range(25):
        counts = np.r_[rng.binomial(160, 0.8, 30), rng.binomial(160, 0.72, 60)]
        found = [t for t in run_detector(counts, 160, p0, prior, level) if t >= 30]
        delays.append(found[0] - 29 if found else np.inf)
    assert np.median(delays) <= 7, delays


def test_the_threshold_and_the_p_value():
    assert false_alarm_threshold(500, 30, 1) == 15_000
    assert false_alarm_threshold(1, 1, 10) == 1.0  # never below 1: an e-value of 1 is no evidence
    with pytest.raises(ValueError, match="above 0"):
        false_alarm_threshold(10, 30, 0)
    assert anytime_p_value(np.log(40)) == pytest.approx(0.025)
    assert anytime_p_value(-1.0) == 1.0


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_ebh_is_villes(alpha):
    rng = np.random.default_rng(int(alpha * 100))
    for _ in range(50):
        e = np.exp(rng.normal(0, 2.5, 40))
        np.testing.assert_array_equal(ebh(e, alpha), ville_ebh(e, alpha))
    assert not ebh(np.ones(5), 0.05).any()


def rate_detector(ref_s: int, ref_n: int, counts: np.ndarray, trials: int, threshold: float, **options) -> list[int]:
    """Periods at which the e-detector of :func:`rate_change_log_e` alarms (restarting after each)."""
    alarms, start = [], 0
    for t in range(len(counts)):
        since = counts[start : t + 1]
        log_e = rate_change_log_e(ref_s, ref_n, suffix_sums(since), trials * np.arange(len(since), 0, -1), **options)
        if shiryaev_roberts(log_e) >= np.log(threshold):
            alarms.append(t)
            start = t + 1
    return alarms


def test_a_change_against_a_reference_sample_keeps_the_false_alarm_bound():
    """The reference is a sample too (28 days of a slice of 160 rows a day), so a test
    against its point estimate would take its sampling error for a change; with that error
    in the test, an e-detector alarming at c = 5 stays within T / c false alarms, the
    references' noise included, and finds a drop."""
    rng = np.random.default_rng(17)
    periods, threshold, runs, per_day, ref_n = 60, 5.0, 150, 160, 28 * 160
    alarms = 0
    for _ in range(runs):
        truth = rng.uniform(0.75, 0.95)
        ref_s = rng.binomial(ref_n, truth)
        counts = rng.binomial(per_day, truth, periods)
        prior = beta_prior(ref_s / ref_n, 60.0)
        alarms += len(rate_detector(ref_s, ref_n, counts, per_day, threshold, period_prior=prior))
    assert alarms / runs <= periods / threshold, (alarms / runs, periods / threshold)
    ref_s = rng.binomial(ref_n, 0.81)
    counts = rng.binomial(per_day, 0.71, 30)
    found = rate_detector(ref_s, ref_n, counts, per_day, false_alarm_threshold(500, 30, 1), period_prior=prior)
    assert found and found[0] < 10, found


def test_the_change_test_is_its_definition_on_a_hand_case():
    """55 of 100 against a reference of 800 of 1,000, tolerance 0.05, both priors uniform:
    the mixture of both likelihoods over the largest likelihood with p >= r - 0.05."""
    from scipy import optimize, special

    mixture = special.betaln(801, 201) + special.betaln(56, 46)
    best = optimize.minimize_scalar(
        lambda r: -(800 * np.log(r) + 200 * np.log(1 - r) + 55 * np.log(r - 0.05) + 45 * np.log(1.05 - r)),
        bounds=(0.0501, 0.9999),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert rate_change_log_e(800, 1000, 55, 100, tolerance=0.05) == pytest.approx(mixture + best.fun, abs=1e-7)
    # A period better than the reference is no evidence of a drop.
    assert rate_change_log_e(800, 1000, 90, 100) < 0


@pytest.mark.parametrize("side", ["below", "above"])
def test_the_change_of_estimates_is_its_definition(side):
    """Against numerical integration: the reference (0.80, sd 0.004) with its mean's prior
    from another half (0.805, sd 0.004), three estimates with their variances, tolerance
    0.01: the mixture over both means over the largest likelihood the null allows."""
    from scipy import optimize

    sign = 1.0 if side == "below" else -1.0
    ref, v2, m1, v1, tau, tol = 0.80, 0.004**2, 0.805, 0.004**2, 0.05, 0.01
    xs = 0.8 - sign * np.array([0.02, 0.04, 0.01])
    vs = np.array([0.02, 0.025, 0.03]) ** 2

    def likelihood(r, mu):
        return stats.norm.pdf(ref, r, np.sqrt(v2)) * np.prod(stats.norm.pdf(xs, mu, np.sqrt(vs)))

    cut = m1 - sign * tol
    lo, hi = (cut - 0.4, cut) if side == "below" else (cut, cut + 0.4)
    numerator = integrate.dblquad(
        lambda mu, r: likelihood(r, mu) * stats.norm.pdf(r, m1, np.sqrt(v1)) * 2 * stats.norm.pdf(mu, cut, tau),
        m1 - 0.1,
        m1 + 0.1,
        lambda r: lo,
        lambda r: hi,
        epsabs=0,
        epsrel=1e-10,
    )[0]

    def allowed(z):
        r, mu = z
        return likelihood(r, max(mu, r - tol) if side == "below" else min(mu, r + tol))

    best = optimize.minimize(
        lambda z: -np.log(allowed(z)),
        [ref, xs.mean()],
        method="Nelder-Mead",
        options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 20_000},
    )
    expected = np.log(numerator) + best.fun  # the mixture over the best the null allows
    p, s = (1 / vs).sum(), (xs / vs).sum()
    got = normal_change_log_e(ref, v2, m1, v1, s, p, tau, tol, side)
    assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("side, total", [("below", 1700), ("above", 2300)])
def test_the_change_of_counts_is_its_definition(side, total):
    """Rows a day against a reference (2,800 in 14 days; the prior from another 2,750 in 14),
    9 days since the start, tolerance 5%: the two Gamma mixtures over the largest likelihood
    the null allows, by numerical integration and optimisation."""
    from scipy import optimize

    c_r, t_r, c0, t0, n, tol = 2800, 14, 2750, 14, 9, 0.05
    a0, b0 = c0 + 0.5, t0
    a1 = 1 / 0.2**2
    b1 = a1 / (a0 / b0)
    factor = 1 - tol if side == "below" else 1 + tol
    cut = factor * a0 / b0

    def relative(count, time, rate):  # a Poisson likelihood over its largest value
        return np.exp(count * np.log(rate) - time * rate - (count * np.log(count / time) - count))

    reference = integrate.quad(
        lambda r: relative(c_r, t_r, r) * stats.gamma.pdf(r, a0, scale=1 / b0), 150, 250, epsrel=1e-11, limit=400
    )[0]
    kept = stats.gamma.cdf(cut, a1, scale=1 / b1) if side == "below" else stats.gamma.sf(cut, a1, scale=1 / b1)
    lo, hi = (100, cut) if side == "below" else (cut, 400)
    periods = integrate.quad(
        lambda r: relative(total, n, r) * stats.gamma.pdf(r, a1, scale=1 / b1) / kept, lo, hi, epsrel=1e-11, limit=400
    )[0]
    best_at_estimates = c_r * np.log(c_r / t_r) - c_r + total * np.log(total / n) - total
    boundary = optimize.minimize_scalar(
        lambda r: -(c_r * np.log(r) - t_r * r + total * np.log(factor * r) - n * factor * r),
        bounds=(100, 300),
        method="bounded",
        options={"xatol": 1e-12},
    )
    allowed = total / n >= factor * c_r / t_r if side == "below" else total / n <= factor * c_r / t_r
    expected = (
        np.log(reference) + np.log(periods) + best_at_estimates - (best_at_estimates if allowed else -boundary.fun)
    )
    assert count_change_log_e(c_r, t_r, c0, t0, total, n, tol, side) == pytest.approx(expected, abs=1e-7)


def test_counts_against_a_sampled_reference_keep_the_false_alarm_bound():
    rng = np.random.default_rng(23)
    periods, threshold, runs = 60, 5.0, 200
    alarms = 0
    for _ in range(runs):
        rate = rng.uniform(20, 2000)
        first, second = rng.poisson(rate * 14, 2)
        counts = rng.poisson(rate, periods)
        start = 0
        for t in range(periods):
            since = counts[start : t + 1]
            log_e = count_change_log_e(
                second, 14, first, 14, suffix_sums(since), np.arange(len(since), 0, -1, dtype=float)
            )
            if shiryaev_roberts(log_e) >= np.log(threshold):
                alarms, start = alarms + 1, t + 1
    assert alarms / runs <= periods / threshold


def test_p_values_become_e_values_of_expectation_one():
    # ∫ e(p) dp over (0, 1), written over u = ln p (the calibrator grows like 1/(p ln² p) near 0).
    total = integrate.quad(lambda u: float(p_to_e(np.exp(u))) * np.exp(u), -690.0, 0.0, limit=400)[0]
    assert total == pytest.approx(1.0, abs=2e-3)
    assert list(p_to_e([1.0, 0.5])) == pytest.approx([0.5, (0.5 + 0.5 * np.log(0.5)) / (0.5 * np.log(0.5) ** 2)])
    assert p_to_e(1e-6) > 1_000  # strong evidence from a small p-value

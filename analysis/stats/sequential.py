"""Anytime-valid evidence: e-processes that may be looked at after every period without
inflating false alarms, and the e-detector that turns them into alarms at a known rate.

An *e-process* for a null hypothesis is a nonnegative process whose expectation stays at
most 1 under the null at every time, however the time is chosen (Ville's inequality:
the chance it ever reaches ``c`` is at most ``1/c``). Each function here returns the
logarithm of a mixture likelihood ratio of all the data since a start, against a
*one-sided* null ("the rate is at least ``null``" when lower is worse): every component
of the mixture is a likelihood ratio of an alternative on the bad side against the null's
boundary, which has expectation at most 1 for every value the null allows (monotone
likelihood ratio), so the mixture is an e-process for the whole one-sided null.

* :func:`beta_mixture_log_e`: counts (successes of trials) against a rate, the mixture
  over rates with a Beta prior centred on the null (Howard et al., 2021; "both" sides is
  the untruncated mixture as ``ville.BernoulliTest`` computes it);
* :func:`normal_mixture_log_e`: estimates with known variances against a mean, a
  Gaussian mixture over the mean's shift (the mixture SPRT of Johari et al., 2022;
  "both" as ``ville.MSPRT``), for figures known only up to a normal sampling error;
* :func:`rate_change_log_e`: counts against a *reference sample* of counts, "the rate
  has not moved beyond ``tolerance`` from the reference's": the reference's own sampling
  error is part of the test (universal inference: a mixture likelihood of both rates over
  the largest likelihood the null allows; Wasserman, Ramdas and Balakrishnan, 2020), so no
  margin for it has to be guessed;
* :func:`normal_change_log_e`: the same for estimates with known variances (label-free
  estimates) against a reference estimate;
* :func:`count_change_log_e`: the same for Poisson counts (rows a day) against a reference
  count; :func:`p_to_e`: an e-value from a p-value (drift's tests);
* :func:`shiryaev_roberts`: the e-detector of Shin, Ramdas and Rinaldo (2023): the sum of
  the e-processes started at each period since the last alarm. Under the null its
  expectation grows by at most 1 a period, so alarming when it reaches ``c`` raises, in
  expectation, at most ``T / c`` false alarms in ``T`` periods, restarts included, however
  many monitors run side by side (:func:`false_alarm_threshold`);
* :func:`ebh`: the e-BH procedure of Wang and Ramdas (2022): false discovery rate control
  across many e-values, under any dependence.
"""

from __future__ import annotations

import numpy as np
from scipy import special
from scipy.stats import norm

SIDES = ("below", "above", "both")


def _check_side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"side is one of {', '.join(SIDES)}, not {side!r}")
    return side


def beta_prior(null: float, strength: float) -> tuple[float, float]:
    """A Beta prior with mean ``null`` worth ``strength`` observations."""
    return strength * null, strength * (1.0 - null)


def beta_mixture_log_e(successes, trials, null, prior: tuple[float, float], side: str = "below"):
    """log e of ``successes`` in ``trials`` (arrays: one value per start) against "the rate is
    ``null``" or, one-sided, "at least ``null``" (``side="below"``: the alternatives are the
    rates below it) or "at most" (``"above"``): the Beta(``prior``) mixture of likelihood
    ratios, its prior restricted to the alternatives' side."""
    _check_side(side)
    if not np.all((np.asarray(null) > 0.0) & (np.asarray(null) < 1.0)):
        raise ValueError(f"the null rate must lie strictly between 0 and 1, not {null}")
    a, b = prior
    s = np.asarray(successes, float)
    f = np.asarray(trials, float) - s
    log_e = special.betaln(a + s, b + f) - special.betaln(a, b) - special.xlogy(s, null) - special.xlog1py(f, -null)
    if side == "both":
        return log_e
    mass = special.betainc if side == "below" else special.betaincc
    with np.errstate(divide="ignore"):
        return log_e + np.log(mass(a + s, b + f, null)) - np.log(mass(a, b, null))


def normal_mixture_log_e(shift_sum, precision, scale: float, side: str = "below"):
    """log e of estimates ``x_i`` with variances ``v_i`` against "their mean is ``null``"
    (or, one-sided, at least / at most it), from ``shift_sum = Σ (x_i - null) / v_i`` and
    ``precision = Σ 1 / v_i`` (arrays: one value per start): the mixture over the mean's
    shift from the null, normal with standard deviation ``scale``, restricted to the
    alternatives' side (and doubled, so it still integrates to 1)."""
    _check_side(side)
    s = np.asarray(shift_sum, float)
    q = 1.0 + scale**2 * np.asarray(precision, float)
    log_e = -0.5 * np.log(q) + scale**2 * s**2 / (2.0 * q)
    if side == "both":
        return log_e
    z = scale * s / np.sqrt(q)
    return log_e + np.log(2.0) + norm.logcdf(-z if side == "below" else z)


def _log_likelihood(successes, failures, rate):
    return special.xlogy(successes, rate) + special.xlog1py(failures, -rate)


def _boundary_rate(ref_s, ref_f, s, f, shift: float) -> np.ndarray:
    """The reference rate ``r`` that maximises the likelihood of both samples when the
    period's rate is ``r + shift`` (the null's boundary): the root of the log-likelihood's
    derivative, which falls in ``r`` (concave), found by bisection."""
    shape = np.broadcast_shapes(np.shape(ref_s), np.shape(s))
    lo = np.full(shape, max(0.0, -shift)) + 1e-12
    hi = np.full(shape, min(1.0, 1.0 - shift)) - 1e-12
    for _ in range(60):
        r = 0.5 * (lo + hi)
        p = r + shift
        slope = ref_s / r - ref_f / (1.0 - r) + s / p - f / (1.0 - p)
        lo, hi = np.where(slope > 0, r, lo), np.where(slope > 0, hi, r)
    return 0.5 * (lo + hi)


def rate_change_log_e(
    ref_successes,
    ref_trials,
    successes,
    trials,
    tolerance: float = 0.0,
    side: str = "below",
    prior: tuple[float, float] = (1.0, 1.0),
    period_prior: tuple[float, float] | None = None,
):
    """log e of ``successes`` in ``trials`` since a start (arrays: one value per start)
    against "the rate is at least the reference's minus ``tolerance``" (``side="below"``;
    ``"above"``: at most the reference's plus it), where the reference is itself a sample,
    ``ref_successes`` of ``ref_trials``. The numerator mixes each rate's likelihood over a
    Beta(``prior``) (fixed in advance: it must not depend on the reference's counts); the
    denominator is the largest likelihood of both samples the null allows. Its ratio is
    below, for every pair of rates the null allows, a martingale in the periods times a
    factor of the reference alone whose expectation is 1, so the e-detector's false-alarm
    bound holds with the reference's sampling error included."""
    if _check_side(side) == "both":
        raise ValueError("a change against a reference is tested on one side")
    a, b = prior
    rs = np.asarray(ref_successes, float)
    rf = np.asarray(ref_trials, float) - rs
    s = np.asarray(successes, float)
    f = np.asarray(trials, float) - s
    ref_rate = rs / np.maximum(rs + rf, 1.0)
    mixture = special.betaln(a + rs, b + rf) - special.betaln(a, b)
    if period_prior is None:
        mixture = mixture + special.betaln(a + s, b + f) - special.betaln(a, b)
    else:
        # The period's rate mixed over the alternatives' side of the reference's rate (known
        # before the periods, so the prior may use it; the reference's own prior may not).
        cut = np.clip(ref_rate - tolerance if side == "below" else ref_rate + tolerance, 1e-12, 1 - 1e-12)
        mixture = mixture + beta_mixture_log_e(s, s + f, cut, period_prior, side) + _log_likelihood(s, f, cut)
    shape = np.broadcast_shapes(np.shape(s), np.shape(ref_rate))
    s, f = np.broadcast_to(s, shape), np.broadcast_to(f, shape)
    rate = np.divide(s, s + f, out=np.broadcast_to(ref_rate, shape).astype(float), where=(s + f) > 0)
    shift = -tolerance if side == "below" else tolerance
    allowed = rate >= ref_rate + shift if side == "below" else rate <= ref_rate + shift
    boundary = _boundary_rate(rs, rf, s, f, shift)
    on_boundary = _log_likelihood(rs, rf, boundary) + _log_likelihood(s, f, boundary + shift)
    at_estimates = _log_likelihood(rs, rf, ref_rate) + _log_likelihood(s, f, rate)
    return mixture - np.where(allowed, at_estimates, on_boundary)


def normal_change_log_e(
    ref_value,
    ref_variance,
    prior_mean,
    prior_variance,
    shift_sum,
    precision,
    scale: float,
    tolerance: float = 0.0,
    side: str = "below",
):
    """log e of estimates ``x_i`` with known variances ``v_i`` since a start (arrays: one
    value per start, from ``shift_sum = Σ x_i / v_i`` and ``precision = Σ 1 / v_i``) against
    "their mean is at least the reference's minus ``tolerance``" (``side="below"``; ``"above"``:
    at most it plus), where the reference is itself an estimate, ``ref_value`` with variance
    ``ref_variance``. Universal inference as in :func:`rate_change_log_e`: the numerator mixes
    the reference's mean over a normal prior (``prior_mean``, ``prior_variance``: from data
    apart from ``ref_value``, such as another half of the reference's rows) and the periods'
    mean over a half-normal of standard deviation ``scale`` on the bad side of the prior's
    mean; the denominator is the largest likelihood the null allows. The terms of the
    periods' likelihood that do not involve the means cancel and are left out."""
    if _check_side(side) == "both":
        raise ValueError("a change against a reference is tested on one side")
    sign = 1.0 if side == "below" else -1.0  # the bad side, as "below"
    r, v2 = np.asarray(ref_value, float), np.asarray(ref_variance, float)
    p = np.asarray(precision, float)
    # On the "below" side throughout: flip values for "above".
    r, m1 = sign * r, sign * np.asarray(prior_mean, float)
    sums = sign * np.asarray(shift_sum, float)
    mean = np.divide(sums, p, out=np.zeros(np.broadcast_shapes(sums.shape, p.shape)), where=p > 0)
    # Numerator: the reference's marginal, and the periods' mixture over their mean.
    total = v2 + prior_variance
    log_ref = -0.5 * np.log(2 * np.pi * total) - (r - m1) ** 2 / (2 * total)
    cut = m1 - tolerance
    a = p + 1.0 / scale**2
    b = p * mean + cut / scale**2
    log_mix = (
        np.log(2.0)
        - np.log(scale)
        - 0.5 * np.log(a)
        + b**2 / (2 * a)
        - p * mean**2 / 2
        - cut**2 / (2 * scale**2)
        + norm.logcdf((cut - b / a) * np.sqrt(a))
    )
    # Denominator: the reference at its own value, the periods at their mean, or, when the
    # mean lies below the reference minus the tolerance, both on the null's boundary.
    gap = np.minimum(mean - (r - tolerance), 0.0)
    spread = v2 + np.divide(1.0, p, out=np.full(p.shape, np.inf), where=p > 0)
    log_best = -0.5 * np.log(2 * np.pi * v2) - gap**2 / (2 * spread)
    return log_ref + log_mix - log_best


def count_change_log_e(
    ref_count,
    ref_exposure,
    prior_count,
    prior_exposure,
    counts,
    exposure,
    tolerance: float = 0.0,
    side: str = "below",
    spread: float = 0.2,
):
    """log e of ``counts`` over ``exposure`` since a start (Poisson counts, such as rows a
    day; arrays: one value per start) against "the rate is at least ``1 - tolerance`` times
    the reference's" (``side="below"``; ``"above"``: at most ``1 + tolerance`` times), the
    reference being ``ref_count`` over ``ref_exposure``. Universal inference as in
    :func:`rate_change_log_e`: the reference's rate mixed over a Gamma prior from other data
    (``prior_count`` over ``prior_exposure``, such as the reference's other half), the
    periods' rate over a Gamma centred on the prior's rate with relative standard deviation
    ``spread``, restricted to the bad side of the null's boundary; the denominator the
    largest likelihood the null allows (found in closed form). Factorials cancel and are
    left out."""
    if _check_side(side) == "both":
        raise ValueError("a change against a reference is tested on one side")
    c_r, t_r = np.asarray(ref_count, float), np.asarray(ref_exposure, float)
    s, n = np.asarray(counts, float), np.asarray(exposure, float)
    a0, b0 = np.asarray(prior_count, float) + 0.5, np.asarray(prior_exposure, float)
    factor = 1.0 - tolerance if side == "below" else 1.0 + tolerance
    centre = a0 / b0
    a1 = 1.0 / spread**2
    b1 = a1 / centre
    cut = factor * centre
    mass = special.gammainc if side == "below" else special.gammaincc

    def log_gamma_integral(a, b, count, time):  # ∫ λ^count e^(-λ time) Gamma(λ; a, b) dλ
        return a * np.log(b) - special.gammaln(a) + special.gammaln(a + count) - (a + count) * np.log(b + time)

    with np.errstate(divide="ignore"):
        log_ref = log_gamma_integral(a0, b0, c_r, t_r)
        log_mix = log_gamma_integral(a1, b1, s, n) + np.log(mass(a1 + s, (b1 + n) * cut)) - np.log(mass(a1, b1 * cut))
    ref_rate = c_r / t_r
    rate = np.divide(s, n, out=np.zeros(np.broadcast_shapes(s.shape, n.shape)), where=n > 0)
    allowed = rate >= factor * ref_rate if side == "below" else rate <= factor * ref_rate
    at_estimates = special.xlogy(c_r, ref_rate) - c_r + special.xlogy(s, rate) - rate * n
    boundary = (c_r + s) / (t_r + n * factor)
    on_boundary = (
        special.xlogy(c_r, boundary) - t_r * boundary + special.xlogy(s, factor * boundary) - n * factor * boundary
    )
    return log_ref + log_mix - np.where(allowed, at_estimates, on_boundary)


def p_to_e(p_values) -> np.ndarray:
    """An e-value from each p-value, by the calibrator that averages ``κ p^(κ-1)`` over κ in
    (0, 1): ``(1 - p + p ln p) / (p (ln p)^2)`` (Vovk and Wang, 2021): an e-value whenever
    the p-value is valid (its expectation is 1 for a uniform p), so drift's p-values can
    feed an e-detector."""
    p = np.clip(np.asarray(p_values, float), 1e-300, 1.0)
    log_p = np.log(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (1.0 - p + p * log_p) / (p * log_p**2)
    return np.where(p >= 1.0, 0.5, e)  # its limit as p -> 1


def suffix_sums(values) -> np.ndarray:
    """For each period, the sum of it and every later one: the totals since each start."""
    values = np.asarray(values, float)
    return np.cumsum(values[::-1])[::-1]


def shiryaev_roberts(log_e_by_start) -> float:
    """log of the e-detector: the sum of the e-processes started at each period since the
    last alarm (``log_e_by_start``: each one's log e now); -inf with no period."""
    log_e = np.asarray(log_e_by_start, float)
    return float(special.logsumexp(log_e)) if len(log_e) else float("-inf")


def false_alarm_threshold(monitors: int, periods: float, false_alarms: float) -> float:
    """The level ``c`` at which ``monitors`` e-detectors, alarming when they reach it,
    raise at most ``false_alarms`` false alarms in expectation over ``periods`` periods
    (each at most ``periods / c``)."""
    if false_alarms <= 0:
        raise ValueError(f"the false alarms allowed must be above 0, not {false_alarms}")
    return max(1.0, monitors * periods / false_alarms)


def anytime_p_value(log_e_max: float) -> float:
    """The anytime-valid p-value of an e-process that reached ``exp(log_e_max)`` at most."""
    return float(min(1.0, np.exp(-log_e_max)))


def ebh(e_values, alpha: float) -> np.ndarray:
    """e-BH: reject the ``k`` hypotheses with the largest e-values, ``k`` the largest with
    ``k · e_(k) / m >= 1 / alpha``; the false discovery rate is at most ``alpha`` under any
    dependence. A boolean mask of rejections."""
    e = np.asarray(e_values, float)
    m = e.size
    order = np.argsort(-e, kind="stable")
    ranks = np.arange(1, m + 1)
    passing = np.flatnonzero(ranks * e[order] / max(m, 1) >= 1.0 / alpha)
    reject = np.zeros(m, dtype=bool)
    if passing.size:
        reject[order[: passing[-1] + 1]] = True
    return reject

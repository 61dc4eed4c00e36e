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


def beta_mixture_log_e(successes, trials, null: float, prior: tuple[float, float], side: str = "below"):
    """log e of ``successes`` in ``trials`` (arrays: one value per start) against "the rate is
    ``null``" or, one-sided, "at least ``null``" (``side="below"``: the alternatives are the
    rates below it) or "at most" (``"above"``): the Beta(``prior``) mixture of likelihood
    ratios, its prior restricted to the alternatives' side."""
    _check_side(side)
    if not 0.0 < null < 1.0:
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

"""Monitors: figures watched period after period, alerting a person only within a
false-alarm budget.

``budget``: the user's "at most N false alerts a month" as the e-detectors' alarm level;
``evidence``: the e-detectors of many monitors at once (rates against their reference
sample, estimates against a reference estimate), period after period, restarting after
each alert; ``definitions``: the monitors a project stores, and its budget. The statistics themselves are
:mod:`analysis.stats.sequential`.
"""

from analysis.monitors.budget import DAYS_PER_MONTH, Budget
from analysis.monitors.evidence import EstimateMonitors, RateMonitors, rate_prior

__all__ = ["DAYS_PER_MONTH", "Budget", "EstimateMonitors", "RateMonitors", "rate_prior"]

"""The false-alarm budget: how many false alerts a month a person accepts across a project.

Each monitor runs an e-detector (:func:`analysis.stats.sequential.shiryaev_roberts`): with
no change, it raises at most ``T / c`` false alarms in ``T`` periods in expectation when it
alerts at level ``c``, whatever it watches and however the monitors depend on each other.
So ``m`` monitors over a month of ``P`` periods raise at most ``m P / c`` false alerts, and
``c = m P / N`` keeps that within a budget of ``N``: the more monitors, the higher each
one's bar, and the budget holds over all of them together.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.errors import ConfigError
from analysis.stats.sequential import false_alarm_threshold

DAYS_PER_MONTH = 30.0


@dataclass(frozen=True)
class Budget:
    """At most ``false_alerts_per_month`` false alerts a month across a project."""

    false_alerts_per_month: float = 1.0

    def __post_init__(self) -> None:
        if not self.false_alerts_per_month > 0:
            raise ConfigError(
                f"The budget is a number of false alerts a month above 0, not {self.false_alerts_per_month}."
            )

    def threshold(self, monitors: int, period_days: float = 1.0) -> float:
        """The level each of ``monitors`` e-detectors alerts at, over periods of ``period_days``."""
        return false_alarm_threshold(max(monitors, 1), DAYS_PER_MONTH / period_days, self.false_alerts_per_month)

    def years_between_false_alarms(self, monitors: int, period_days: float = 1.0) -> float:
        """How long one monitor watches, on average at least, before a false alarm."""
        return self.threshold(monitors, period_days) * period_days / 365.0

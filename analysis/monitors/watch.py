"""What every kind of monitor shares: a monitor as a run evaluates it (:class:`Watch`),
the end of a day, which way is worse, and the base of the families
(:mod:`.families`, :mod:`.estimates`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from analysis.errors import ConfigError
from analysis.estimation.reference import ReferenceWindow
from analysis.monitors.definitions import Monitor
from analysis.store.project import Project
from analysis.store.scope import Scope

NAN = float("nan")
HALF = "example_key % 2"  # the reference split in halves by example (a hash: as good as random)


@dataclass(frozen=True)
class Watch:
    """A monitor as one run evaluates it: its version and stage, its reference window and
    the family's frozen numbers of it, and the first day it watches."""

    monitor: Monitor
    version: str
    stage: str
    window: ReferenceWindow
    reference: dict
    first_period: date

    @property
    def bad(self) -> str:
        return self.monitor.direction

    def after(self, first: date, last: date | None = None) -> Scope:
        return Scope.of(self.version, self.stage, first, last)


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time())


def worse_by(reference: float, value: float, bad: str) -> float:
    """How much worse ``value`` is than ``reference`` (negative: better)."""
    return reference - value if bad == "lower" else value - reference


class Family:
    """What every kind of monitor does unless it does better: each monitor's reference
    and days found by itself (its own engine calls)."""

    def reference_many(self, con, project: Project, pending: list[tuple[Monitor, ReferenceWindow]]) -> dict:
        """Each monitor's frozen numbers of its window (or why it has none), by monitor."""
        out = {}
        for monitor, window in pending:
            try:
                out[monitor.name] = self.reference(con, project, monitor, window)
            except ConfigError as refused:
                out[monitor.name] = refused
        return out

    def observe_many(self, con, project: Project, asked: list[tuple["Watch", list[date]]]) -> dict[str, dict]:
        return {watch.monitor.name: self.observe(con, project, watch, days) for watch, days in asked}


def ratio(a, b) -> float:
    return float(a) / float(b) if b else NAN

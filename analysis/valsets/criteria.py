"""A validation set's pass criteria: ``metric op value`` (``accuracy >= 0.8``), checked
against the project's metrics when the set is created."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from analysis.errors import ConfigError
from analysis.metrics.registry import metrics_for
from analysis.store.project import Project

OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}


@dataclass(frozen=True)
class Criterion:
    """A pass criterion such as ``accuracy >= 0.9``."""

    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def holds(self, observed: float) -> bool:
        return observed == observed and OPS[self.op](observed, self.value)


def parse_criterion(text: str, project: Project) -> Criterion:
    """``"recall >= 0.8"`` into a :class:`Criterion` of one of the task's metrics."""
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*", text or "")
    names = [*metrics_for(project.task)] + (["error_rate"] if project.task != "regression" else [])
    if not m:
        raise ConfigError(f"Write a criterion as 'metric >= value', such as 'accuracy >= 0.9'; got {text!r}.")
    metric, op, value = m.group(1), m.group(2), m.group(3)
    if metric not in names:
        raise ConfigError(
            f"Unknown metric {metric!r} in {text!r}; a {project.task} set can require {', '.join(names)}."
        )
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{value!r} in {text!r} is not a number.") from None
    if not math.isfinite(number):
        raise ConfigError(f"{value!r} in {text!r} is not a finite number.")
    return Criterion(metric, op, number)

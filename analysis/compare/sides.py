"""The two sides of a comparison (a version at a stage), the bucketing and resampling
constants every part of a comparison shares, and how a long computation reports progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sqlglot
from sqlglot import exp

from analysis.store.project import Project
from analysis.store.scope import Scope

N_BUCKETS = 1000
N_RESAMPLES = 1000
SEED = 7
MIN_PAIRS = 30


# Told each step of a long computation as it starts: ``progress(fraction done, what now)``.
Progress = Callable[[float, str], None]


def silent(fraction: float, text: str) -> None:
    """No one is listening."""


@dataclass(frozen=True)
class Side:
    """One model version, at one stage (None: all its stages)."""

    version: str
    stage: str | None = None

    def scope(self, start=None, end=None) -> Scope:
        return Scope.of(versions=self.version, stages=self.stage, start=start, end=end)

    def __str__(self) -> str:
        return self.version + (f" ({self.stage})" if self.stage else "")


def for_side(sql: str, project: Project, tag: str) -> str:
    """A product metric's SQL over one side's columns of the pairs table."""
    renamed = {c: f"{c}__{tag}" for c in ["prediction", "score", *(o.name for o in project.outcomes)]}
    tree = sqlglot.parse_one(sql, read="duckdb")
    return tree.transform(
        lambda n: exp.column(renamed[n.name], quoted=True) if isinstance(n, exp.Column) and n.name in renamed else n
    ).sql(dialect="duckdb")

"""The reference window: the labeled past that estimates are calibrated on and drift is
measured against.

A person chooses it as dates (both inclusive) or as "the most recent N fully labeled
days", and it is stored with the project. A day counts as fully labeled when at least
99% of its rows have their label: a few labels in a thousand never arrive, and they must
not keep every day out. Without a stored choice, the window is the most recent 14 fully
labeled days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from analysis.errors import ConfigError
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, quote_ident

DEFAULT_RECENT_DAYS = 14
FULLY_LABELED_SHARE = 0.99


@dataclass(frozen=True)
class ReferenceChoice:
    """Dates (``start`` and ``end``, both inclusive) or the most recent ``recent_days``
    fully labeled days."""

    start: date | None = None
    end: date | None = None
    recent_days: int | None = None

    @classmethod
    def of(cls, start=None, end=None, recent_days=None) -> "ReferenceChoice":
        def day(value, what):
            if value is None or value == "":
                return None
            if isinstance(value, date):
                return value
            try:
                return date.fromisoformat(str(value))
            except ValueError:
                raise ConfigError(f"The reference {what} {value!r} is not a date (use YYYY-MM-DD).") from None

        return cls(day(start, "start"), day(end, "end"), recent_days).check()

    def check(self) -> "ReferenceChoice":
        dates = (self.start is not None) + (self.end is not None)
        if dates == 1:
            raise ConfigError("Give the reference window's start and its end, or neither.")
        if dates == 2 and self.recent_days is not None:
            raise ConfigError("Choose the reference by dates or by a number of recent days, not both.")
        if dates == 2 and self.start > self.end:
            raise ConfigError(f"The reference window starts ({self.start}) after it ends ({self.end}).")
        if self.recent_days is not None and (not isinstance(self.recent_days, int) or self.recent_days < 1):
            raise ConfigError(
                f"The number of recent days must be a whole number of at least 1, not {self.recent_days!r}."
            )
        return self

    @property
    def by_dates(self) -> bool:
        return self.start is not None

    @property
    def days(self) -> int:
        return self.recent_days or DEFAULT_RECENT_DAYS

    def describe(self) -> str:
        if self.by_dates:
            return f"{self.start} to {self.end}"
        return f"the most recent {self.days} fully labeled days"


@dataclass(frozen=True)
class ReferenceWindow:
    """The window a choice resolved to for one version and stage: its days (both
    inclusive), its rows and its labeled rows."""

    version: str
    stage: str
    start: date
    end: date
    rows: int
    labeled: int
    choice: ReferenceChoice

    @property
    def scope(self) -> Scope:
        return Scope.of(self.version, self.stage, self.start, self.end)

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "stage": self.stage,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "labeled": self.labeled,
            "chosen_as": self.choice.describe(),
        }

    def describe(self) -> str:
        days = f"{self.start} to {self.end}"
        if self.choice.by_dates:
            return days
        found = (self.end - self.start).days + 1
        if found < self.choice.days:  # fewer fully labeled days than asked: say how many
            return f"{days} (the most recent fully labeled days: {found} of the {self.choice.days} asked)"
        return f"{days} ({self.choice.describe()})"


def get_reference_choice(con: duckdb.DuckDBPyConnection, project: Project) -> ReferenceChoice:
    """The stored choice, or the default (the most recent 14 fully labeled days)."""
    rows = con.execute(
        "SELECT start_day, end_day, recent_days FROM sb_reference_windows WHERE project_id = ?", [project.project_id]
    ).fetchall()
    if not rows:
        return ReferenceChoice()
    start, end, recent = rows[0]
    return ReferenceChoice(start, end, recent)


def set_reference_choice(con: duckdb.DuckDBPyConnection, project: Project, choice: ReferenceChoice) -> ReferenceChoice:
    choice = choice.check()
    con.execute(
        "INSERT OR REPLACE INTO sb_reference_windows VALUES (?, ?, ?, ?, ?)",
        [project.project_id, choice.start, choice.end, choice.recent_days, utc_now()],
    )
    return choice


def version_stages(con, project: Project, version: str) -> list[str]:
    """The stages ``version`` is logged in."""
    query = f"SELECT DISTINCT stage FROM {quote_ident(project.log_table)} WHERE model_version = ? ORDER BY stage"
    return [s for (s,) in con.execute(query, [version]).fetchall()]


def version_stage(con, project: Project, version: str, stage: str | None) -> str:
    """The stage a version is estimated in: ``stage`` when given (and logged), else its only
    stage, else production when it serves there."""
    found = version_stages(con, project, version)
    if not found:
        raise ConfigError(f"{project.name} has no predictions of version {version!r}.")
    if stage is not None:
        if stage not in found:
            raise ConfigError(f"Version {version} has no {stage} predictions; it has {', '.join(found)}.")
        return stage
    if len(found) == 1:
        return found[0]
    if "production" in found:
        return "production"
    raise ConfigError(f"Version {version} is logged in {', '.join(found)}: choose the stage.")


def resolve_reference(
    con,
    project: Project,
    version: str,
    stage: str,
    choice: ReferenceChoice | None = None,
    need_labels: bool = True,
    before: date | None = None,
) -> ReferenceWindow:
    """The days, rows and labeled rows of the reference for ``version`` in ``stage`` (the
    stored choice when ``choice`` is None). Estimates need labeled rows in it; drift
    (``need_labels=False``) compares features only. ``before``: only earlier days count
    (a monitor replaying the past looks for its reference in what came before)."""
    choice = (choice or get_reference_choice(con, project)).check()
    days = Sql.compose(
        'SELECT CAST("timestamp" AS DATE) AS day, count(*) AS n, count(label) AS k '
        'FROM {log} WHERE {scope} GROUP BY CAST("timestamp" AS DATE)',
        log=quote_ident(project.log_table),
        scope=Scope.of(version, stage, None, before - timedelta(days=1) if before else None).to_sql(),
    )
    if choice.by_dates:
        start, end = choice.start, choice.end
    else:
        full = con.execute(
            *Sql.compose(
                "SELECT day FROM ({days}) AS d WHERE k >= {share} * n ORDER BY day DESC LIMIT {limit}",
                days=days,
                share=Sql("?", [FULLY_LABELED_SHARE]),
                limit=Sql("?", [choice.days]),
            )
        ).fetchall()
        if not full:
            raise ConfigError(
                f"No day of {version} ({stage}) has {FULLY_LABELED_SHARE:.0%} of its rows labeled yet, so there "
                "is no labeled past to calibrate on: choose the reference window's dates."
            )
        start, end = full[-1][0], full[0][0]
    counted = Sql.compose(
        "SELECT coalesce(sum(n), 0), coalesce(sum(k), 0) FROM ({days}) AS d WHERE {window}",
        days=days,
        window=Sql("day >= ? AND day <= ?", [start, end]),
    )
    rows, labeled = con.execute(*counted).fetchall()[0]
    where = f"{version} ({stage})"
    if rows == 0:
        raise ConfigError(f"The reference window {start} to {end} has no predictions of {where}.")
    if labeled == 0 and need_labels:
        raise ConfigError(f"The reference window {start} to {end} has no labeled predictions of {where}.")
    return ReferenceWindow(version, stage, start, end, int(rows), int(labeled), choice)

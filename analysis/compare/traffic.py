"""Which days a comparison covers. Two versions compared on their own rows (unpaired)
may have served over different days: production for two months, a canary for the
last three weeks. Labels, outcomes and the population drift over time, so by default
such a comparison keeps only the days both versions served (their overlap) and says
what it left out of each side (rows and days). A paired comparison is unaffected (its
pairs are the examples both versions scored); it states each side's days too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb

from analysis.errors import ConfigError
from analysis.numbers import format_count
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident


@dataclass(frozen=True)
class Dropped:
    first: date
    last: date
    rows: int

    def to_dict(self) -> dict:
        return {"first": self.first.isoformat(), "last": self.last.isoformat(), "rows": self.rows}

    def words(self) -> str:
        days = self.first.isoformat() if self.first == self.last else f"{self.first} to {self.last}"
        return f"{format_count(self.rows)} rows of {days}"


@dataclass(frozen=True)
class SideDays:
    """One side's days with rows in the requested window, and what the overlap drops."""

    side: str
    first: date | None
    last: date | None
    rows: int
    dropped: tuple[Dropped, ...] = ()

    @property
    def dropped_rows(self) -> int:
        return sum(d.rows for d in self.dropped)

    def to_dict(self) -> dict:
        return {
            "side": self.side,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "rows": self.rows,
            "dropped_rows": self.dropped_rows,
            "dropped": [d.to_dict() for d in self.dropped],
        }


@dataclass(frozen=True)
class Window:
    """The days a comparison looked at. ``start``/``end`` (days, end included) are the
    compared window; ``restricted`` says whether it was cut to the overlap."""

    start: date | None
    end: date | None
    restricted: bool
    paired: bool
    sides: tuple[SideDays, SideDays] = field(default=())

    def to_dict(self) -> dict:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "overlap_only": self.restricted,
            "paired": self.paired,
            "sides": [s.to_dict() for s in self.sides],
        }

    def sentence(self) -> str:
        days = f"{self.start} to {self.end}" if self.start and self.end else "every day"
        if self.paired:
            covers = "; ".join(f"{s.side} {s.first} to {s.last}" for s in self.sides if s.first)
            return f"Paired on the examples both versions scored ({covers})."
        if self.restricted:
            dropped = [f"{s.side}: {', '.join(d.words() for d in s.dropped)}" for s in self.sides if s.dropped]
            return f"Compared on {days}, the days both versions served" + (
                f"; left out {'; '.join(dropped)}." if dropped else "; nothing left out."
            )
        covers = "; ".join(f"{s.side} {s.first} to {s.last}" for s in self.sides if s.first)
        return f"Compared on each version's own days ({covers}), overlap not enforced."


def _days(con, project: Project, scope: Scope) -> list[tuple[date, int]]:
    where, params = scope.to_sql()
    rows = con.execute(
        f'SELECT CAST("timestamp" AS DATE) AS day, count(*) FROM {quote_ident(project.log_table)} '
        f"WHERE {where} GROUP BY 1 ORDER BY 1",
        params,
    ).fetchall()
    return [(d if isinstance(d, date) else date.fromisoformat(str(d)[:10]), int(n)) for d, n in rows]


def _as_day(value) -> date | None:
    scope = Scope.of(start=value)
    return scope.start.date() if scope.start else None


def window(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    baseline,
    candidate,
    start=None,
    end=None,
    *,
    overlap: bool = True,
    paired: bool = False,
) -> Window:
    """The compared days of ``baseline`` and ``candidate`` (:class:`~analysis.compare.comparison.Side`)
    in the requested window: their overlap when ``overlap`` and not ``paired``, else
    the requested window. Raises :class:`ConfigError` when the overlap is empty."""
    per_side = [_days(con, project, side.scope(start, end)) for side in (baseline, candidate)]
    firsts = [d[0][0] if d else None for d in per_side]
    lasts = [d[-1][0] if d else None for d in per_side]
    restrict = overlap and not paired and all(firsts)
    if restrict:
        lo, hi = max(firsts), min(lasts)
        if lo > hi:
            raise ConfigError(
                f"{baseline} served from {firsts[0]} to {lasts[0]} and {candidate} from {firsts[1]} "
                f"to {lasts[1]}: no day in common. Turn off “only the days both served” to compare "
                "them anyway."
            )
    sides = []
    for side, days, first, last in zip((baseline, candidate), per_side, firsts, lasts):
        dropped = []
        if restrict:
            for part in ([d for d in days if d[0] < lo], [d for d in days if d[0] > hi]):
                if part:
                    dropped.append(Dropped(part[0][0], part[-1][0], sum(n for _, n in part)))
        sides.append(SideDays(str(side), first, last, sum(n for _, n in days), tuple(dropped)))
    if restrict:
        return Window(lo, hi, True, False, tuple(sides))
    end_day = Scope.of(end=end).end
    return Window(
        _as_day(start) if start is not None else min(f for f in firsts if f),
        (end_day - timedelta(days=1)).date() if end_day else max(x for x in lasts if x),
        False,
        paired,
        tuple(sides),
    )

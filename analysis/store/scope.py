"""Which logged predictions a view looks at: versions, stages and a time window."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from analysis.errors import ConfigError
from analysis.store.schema import STAGES
from analysis.store.sql import Sql


@dataclass(frozen=True)
class Scope:
    """Versions and stages (empty = all) and a half-open time window [start, end)."""

    versions: tuple[str, ...] = field(default=())
    stages: tuple[str, ...] = field(default=())
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of(cls, versions=None, stages=None, start=None, end=None) -> "Scope":
        def as_tuple(v):
            if v is None:
                return ()
            if isinstance(v, str):
                return (v,)
            return tuple(v)

        st = as_tuple(stages)
        bad = [s for s in st if s not in STAGES]
        if bad:
            raise ConfigError(f"Unknown stage(s) {', '.join(bad)}; stages are {', '.join(STAGES)}.")
        return cls(as_tuple(versions), st, _as_datetime(start), _as_datetime(end, end_of_day=True))

    def to_dict(self) -> dict:
        """Plain values (for a JSON record of where something came from)."""
        return {
            "versions": list(self.versions),
            "stages": list(self.stages),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }

    def day_aligned(self) -> bool:
        """True when the window is whole days, so the per-day rollup can answer."""
        return all(t is None or t == datetime.combine(t.date(), time()) for t in (self.start, self.end))

    def to_rollup_sql(self) -> Sql:
        """The fragment over the rollup's columns (needs :meth:`day_aligned`)."""
        parts, params = self._common()
        if self.start is not None:
            parts.append("day >= ?")
            params.append(self.start.date())
        if self.end is not None:
            parts.append("day < ?")
            params.append(self.end.date())
        return Sql(" AND ".join(parts) if parts else "TRUE", params)

    def _common(self) -> tuple[list[str], list]:
        parts: list[str] = []
        params: list = []
        if self.versions:
            parts.append(f"model_version IN ({', '.join('?' for _ in self.versions)})")
            params += list(self.versions)
        if self.stages:
            parts.append(f"stage IN ({', '.join('?' for _ in self.stages)})")
            params += list(self.stages)
        return parts, params

    def to_sql(self) -> Sql:
        """The fragment over a log table's canonical columns."""
        parts, params = self._common()
        if self.start is not None:
            parts.append('"timestamp" >= ?')
            params.append(self.start)
        if self.end is not None:
            parts.append('"timestamp" < ?')
            params.append(self.end)
        return Sql(" AND ".join(parts) if parts else "TRUE", params)


def _as_datetime(value, end_of_day: bool = False) -> datetime | None:
    """Dates mean whole days: an end date includes that day."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        d = datetime.combine(value, time())
        return d + timedelta(days=1) if end_of_day else d
    text = str(value)
    try:
        if len(text) == 10:
            return _as_datetime(date.fromisoformat(text), end_of_day)
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise ConfigError(f"{text!r} is not a date (use YYYY-MM-DD).") from None

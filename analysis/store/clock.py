"""The time a write records: now, in UTC, without a zone (DuckDB's TIMESTAMP), as every
stored time is."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)

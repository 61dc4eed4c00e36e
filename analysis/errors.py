"""Errors that Sliceboard reports to people, with messages meant to be read."""

from __future__ import annotations


class SliceboardError(Exception):
    """Base class: the message is complete and safe to show in the UI or CLI."""


class ConfigError(SliceboardError):
    """A column mapping or project setting is wrong."""


class ProjectNotFoundError(SliceboardError):
    """The named project does not exist in the database."""


class DatabaseNotFoundError(SliceboardError):
    """There is no database file at the configured path."""


class DatabaseBusyError(SliceboardError):
    """Another process held the database file for longer than the wait allows."""


class IngestError(SliceboardError):
    """A file or DataFrame was rejected; nothing was written.

    ``source`` names the file, ``column`` the offending column (if any),
    ``rows`` the first offending 1-based data rows and ``count`` how many rows
    were affected in total.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        column: str | None = None,
        rows: list | None = None,
        count: int | None = None,
    ) -> None:
        self.source = source
        self.column = column
        self.rows = list(rows or [])
        self.count = count
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + message)

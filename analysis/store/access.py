"""Read-only mode: a Sliceboard for stakeholders that can look but not change anything.

``SLICEBOARD_READ_ONLY=1`` (or ``true``/``yes``/``on``) in the environment of the app's
server turns it on. The app then hides every control that writes and the Import page,
and opens the database through :class:`ReadOnlyStore`: reads are DuckDB read-only
connections, and a write is refused with :class:`ReadOnlyError` before the file is
opened, so even a control that was missed cannot change the database.
"""

from __future__ import annotations

import os

from analysis.errors import SliceboardError
from analysis.store.connection import Store

READ_ONLY_ENV = "SLICEBOARD_READ_ONLY"
_TRUE = {"1", "true", "yes", "on"}


class ReadOnlyError(SliceboardError):
    """A write was asked of a Sliceboard that runs read-only."""


def read_only_mode() -> bool:
    """Whether ``$SLICEBOARD_READ_ONLY`` asks for read-only mode."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in _TRUE


class ReadOnlyStore(Store):
    """A :class:`~analysis.store.connection.Store` that reads and never writes."""

    def write(self, *, create: bool = True):
        raise ReadOnlyError(
            f"This Sliceboard is read-only ({READ_ONLY_ENV} is set): nothing can be changed "
            "here. Whoever runs it can make changes with the CLI or an app without read-only mode."
        )

    def initialize(self) -> None:
        raise ReadOnlyError(
            f"The database {self.path} needs a schema upgrade, which writes; this Sliceboard is "
            f"read-only ({READ_ONLY_ENV} is set). Open it once without read-only mode first."
        )

"""What an analysis asks of the connection it is given, whichever engine answers: DuckDB's
own connection, or :class:`analysis.engines.spark.SparkConnection`, which translates the
same SQL for Spark. An analysis that keeps to this surface runs on both (the Spark parity
suite runs them)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd


@runtime_checkable
class Result(Protocol):
    """A statement's rows, read once: as a DataFrame, tuples or numpy columns."""

    def df(self) -> pd.DataFrame: ...

    def fetchall(self) -> list[tuple]: ...

    def fetchnumpy(self) -> dict[str, np.ndarray]: ...

    @property
    def description(self) -> Any: ...


@runtime_checkable
class Connection(Protocol):
    """Runs one statement with its bound parameters (``?`` marks, in order); registers a
    DataFrame as a table for the statements that follow, and drops it again."""

    def execute(self, sql: str, params: Any = ...) -> Result: ...

    def register(self, name: str, frame: pd.DataFrame) -> Any: ...

    def unregister(self, name: str) -> Any: ...

    def close(self) -> None: ...

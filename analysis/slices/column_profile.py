"""Column profiles for building slices: the most frequent values of a column
with their counts, and the histogram of a numeric or timestamp column."""

from __future__ import annotations

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.slices.compile import slice_columns
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident


def _column(project: Project, column: str) -> tuple[str, str]:
    kinds = slice_columns(project)
    if column not in kinds:
        raise ConfigError(f"Unknown column {column!r}. Columns of {project.name}: {', '.join(sorted(kinds))}.")
    return quote_ident(column), kinds[column]


def value_counts(
    con: duckdb.DuckDBPyConnection, project: Project, column: str, scope: Scope = Scope(), limit: int = 100
) -> pd.DataFrame:
    """``value`` (as text; null for missing) and ``n``, most frequent first."""
    col, _ = _column(project, column)
    where, params = scope.to_sql()
    return con.execute(
        f"SELECT CAST({col} AS VARCHAR) AS value, count(*) AS n FROM {quote_ident(project.log_table)} "
        f"WHERE {where} GROUP BY {col} ORDER BY n DESC, value NULLS LAST LIMIT ?",
        [*params, int(limit)],
    ).df()


def histogram(
    con: duckdb.DuckDBPyConnection, project: Project, column: str, scope: Scope = Scope(), bins: int = 30
) -> pd.DataFrame:
    """Equal-width bins over the column's range: ``low``, ``high``, ``n``; plus a
    ``nulls`` attribute with the number of missing values."""
    col, kind = _column(project, column)
    if kind not in ("numeric", "timestamp"):
        raise ConfigError(f"{column} is a {kind} column; a histogram needs numbers or timestamps.")
    where, params = scope.to_sql()
    table = quote_ident(project.log_table)
    value = f"epoch({col})" if kind == "timestamp" else f"CAST({col} AS DOUBLE)"
    lo, hi, nulls = con.execute(
        f"SELECT min({value}), max({value}), count(*) - count({col}) FROM {table} WHERE {where}", params
    ).fetchall()[0]
    if lo is None:
        frame = pd.DataFrame({"low": [], "high": [], "n": []})
    else:
        width = (hi - lo) / bins if hi > lo else 1.0
        frame = con.execute(
            f"SELECT least(CAST(floor(({value} - ?) / ?) AS BIGINT), ?) AS b, count(*) AS n "
            f"FROM {table} WHERE {where} AND {col} IS NOT NULL GROUP BY b ORDER BY b",
            [lo, width, bins - 1, *params],
        ).df()
        frame["low"] = lo + frame["b"] * width
        frame["high"] = frame["low"] + width
        frame = frame[["low", "high", "n"]]
        if kind == "timestamp":
            frame["low"] = pd.to_datetime(frame["low"], unit="s")
            frame["high"] = pd.to_datetime(frame["high"], unit="s")
    frame.attrs["nulls"] = int(nulls or 0)
    frame.attrs["kind"] = kind
    return frame

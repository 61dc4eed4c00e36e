"""Apache Spark as a second engine for the read-side analyses.

:class:`SparkConnection` looks like the DuckDB connection the analyses take: every
statement they issue is translated from DuckDB SQL to Spark SQL (SQLGlot, pinned,
plus the rewrites in :mod:`analysis.engines.portable`) and run with its ``?`` parameters bound
by Spark; results come back as pandas frames, rows or numpy arrays. The log of a
project is a temporary view of the same name over its Parquet data
(:func:`register_log`). Statistics that run in Python (intervals, tests,
Benjamini–Hochberg) take the aggregates from whichever engine ran the query.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp

from analysis.engines.portable import to_spark
from analysis.errors import ConfigError
from analysis.store.schema import PROJECT_METADATA
from analysis.store.sql import quote_ident

_CREATE_TEMP = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TEMP(?:ORARY)?\s+TABLE\s+(\"[^\"]+\"|\w+)\s+AS\s+(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_DROP = re.compile(r"^\s*DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\"[^\"]+\"|\w+)\s*$", re.IGNORECASE)


_DUCKDB_TYPES = {
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP",
    "date": "DATE",
}


def spark_message(exc: BaseException) -> str:
    """Spark's error as one line that names what is wrong (auth, a missing table, a path)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    lowered = text.lower()
    if "unauthenticated" in lowered or "permission_denied" in lowered or "invalid access token" in lowered:
        return f"the server refused the credentials (check the token in the URL): {first}"
    if "path_not_found" in lowered or "path does not exist" in lowered:
        return f"the dataset is not where the project says: {first}"
    if "table_or_view_not_found" in lowered:
        return f"a table or view is missing on Spark: {first}"
    return first


def _name(token: str) -> str:
    return token[1:-1].replace('""', '"') if token.startswith('"') else token


class SparkResult:
    """The rows of one statement, read the ways the analyses read DuckDB results."""

    def __init__(self, frame: pd.DataFrame, dtypes: list[tuple[str, str]] | None = None):
        self._frame = frame
        self._dtypes = dtypes or [(c, "string") for c in frame.columns]

    def df(self) -> pd.DataFrame:
        return self._frame

    def fetchall(self) -> list[tuple]:
        return [tuple(r) for r in self._frame.itertuples(index=False, name=None)]

    @property
    def description(self) -> list[tuple]:
        """(name, type) per column, with DuckDB's type names."""
        return [(c, _DUCKDB_TYPES.get(t, t.upper())) for c, t in self._dtypes]

    def fetchnumpy(self) -> dict[str, np.ndarray]:
        """Columns as arrays; a column with NULLs as a masked array, as DuckDB gives it."""
        out = {}
        for c in self._frame.columns:
            column = self._frame[c]
            missing = column.isna().to_numpy()
            if missing.any():
                filled = column.where(~column.isna(), 0)
                data = (
                    filled.to_numpy(dtype="float64")
                    if column.dtype == object or column.dtype.kind in "fiu"
                    else filled.to_numpy()
                )
                out[c] = np.ma.MaskedArray(data, mask=missing)
            else:
                out[c] = column.to_numpy()
        return out


class SparkConnection:
    """A connection-like wrapper of a SparkSession (see the module docstring)."""

    def __init__(self, spark, local=None, local_tables: set[str] | frozenset[str] = frozenset()):
        self.spark = spark
        self.local = local  # the DuckDB metadata store: saved slices, product metrics, sets, ...
        self.local_tables = set(local_tables)  # more tables the local store answers (a rollup)
        self._views: list[str] = []  # temporary views this connection made, dropped by close()

    def _frame(self, sdf) -> pd.DataFrame:
        # Rows, not Arrow: the pinned pandas is newer than what PySpark's converters know.
        rows = sdf.collect()
        frame = pd.DataFrame([r.asDict() for r in rows], columns=sdf.columns)
        for column, kind in sdf.dtypes:
            if kind in ("double", "float") and len(frame):
                frame[column] = frame[column].astype("float64")
        return frame

    def execute(self, sql: str, params=None):
        params = list(params or [])
        if self.local is not None:
            tables = spark_tables(sql)
            local = {t for t in tables if is_local_table(t) or t in self.local_tables}
            if tables and local == tables:
                return self.local.execute(sql, params)
            for table in local:  # a local table joined with the log: Spark gets a copy first
                self._ship(table)
        create = _CREATE_TEMP.match(sql)
        if create:
            sdf = self.spark.sql(to_spark(create.group(2)), args=params or None)
            sdf = sdf.cache()
            sdf.createOrReplaceTempView(_name(create.group(1)))
            # DuckDB answers CREATE TABLE AS with the number of rows written.
            return SparkResult(pd.DataFrame({"Count": [sdf.count()]}), [("Count", "bigint")])
        drop = _DROP.match(sql)
        if drop:
            self.spark.catalog.dropTempView(_name(drop.group(1)))
            return SparkResult(pd.DataFrame())
        try:
            sdf = self.spark.sql(to_spark(sql), args=params or None)
            return SparkResult(self._frame(sdf), sdf.dtypes)
        except Exception as exc:  # Spark's own errors: readable, one line
            raise ConfigError(f"Spark could not run a query: {spark_message(exc)}") from None

    def _ship(self, table: str) -> None:
        """A local table (metadata, validation-set members) as a Spark view of the same name.
        It travels as Arrow, so its types stay exact and a remote server needs no shared disk."""

        arrow = self.local.sql(f"SELECT * FROM {quote_ident(table)}").to_arrow_table()
        self.spark.createDataFrame(arrow).createOrReplaceTempView(table)
        self._views.append(table)

    def close(self) -> None:
        """Drop the temporary views this connection registered (the session stays)."""
        for view in reversed(self._views):
            try:
                self.spark.catalog.dropTempView(view)
            except Exception:  # noqa: BLE001 - a session already stopped has nothing to drop
                pass
        self._views.clear()

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self.spark.createDataFrame(frame).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)


def spark_tables(sql: str) -> set[str]:
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return set()
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table) if t.name not in ctes}


def is_local_table(table: str) -> bool:
    """Curation data stays in the local DuckDB: projects, saved slices, validation sets
    (and their members), product metrics, gates, reports."""

    return table in set(PROJECT_METADATA) | {"sb_meta"} or table.startswith("members_")


def register_log(connection: SparkConnection, table: str, parquet: str) -> None:
    """A project's log on Spark: a temporary view named like the stored log table."""
    connection.spark.read.parquet(parquet).createOrReplaceTempView(table)


def spark_path(uri: str) -> str:
    """Where Spark reads an external dataset: a folder (``…/**/*.parquet``, as DuckDB
    globs it) is read as the folder, so that Spark discovers its hive partitions."""
    for suffix in ("/**/*.parquet", "/**/*.parq", "/**/*.pq"):
        if uri.endswith(suffix):
            return uri[: -len(suffix)]
    return uri


def register_external(connection: SparkConnection, con, project) -> None:
    """An external project's log on Spark: the dataset read by Spark, under the same
    view DuckDB uses (the column mapping and conversions of the attach), translated."""
    row = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = ?", [project.log_table]).fetchall()
    if not row:
        raise ConfigError(f"{project.name}: the view over {project.external} is missing from the database.")
    raw = f"sb_raw_{int(project.project_id)}"
    select = sqlglot.parse_one(row[0][0], read="duckdb").expression
    for table in list(select.find_all(exp.Table)):
        if isinstance(table.this, exp.ReadParquet):
            table.replace(exp.to_table(raw))
    try:
        reader = connection.spark.read.option("mergeSchema", "true")
        reader.parquet(spark_path(project.external)).createOrReplaceTempView(raw)
        connection._views.append(raw)
        connection.spark.sql(
            f"CREATE OR REPLACE TEMPORARY VIEW `{project.log_table}` AS {to_spark(select.sql(dialect='duckdb'))}"
        )
        connection._views.append(project.log_table)
    except Exception as exc:  # noqa: BLE001 - Spark's refusal, as one line
        raise ConfigError(f"Spark could not read {project.external}: {spark_message(exc)}") from None

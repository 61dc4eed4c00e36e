"""Converting source columns to stored types, and checking that they convert.

Every conversion is a ``TRY_CAST``-style SQL expression so that a bad value
becomes NULL instead of an exception; a :class:`Check` then counts the rows
where a present value did not convert, and :func:`run_checks` turns failures
into one :class:`IngestError` naming the column, the first rows and the count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from analysis.errors import IngestError
from analysis.ingest.sources import FILE_COLUMN, Source
from analysis.store.sql import quote_ident
from analysis.wording import counted

_INTEGER = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
_FLOAT = {"FLOAT", "DOUBLE", "REAL"}


def type_family(dtype: str) -> str:
    """Coarse family of a DuckDB type name."""
    t = dtype.upper().strip()
    if t in _INTEGER:
        return "integer"
    if t in _FLOAT or t.startswith("DECIMAL"):
        return "float"
    if t == "BOOLEAN":
        return "boolean"
    if t in ("VARCHAR", "UUID") or t.startswith("ENUM") or t.startswith("VARCHAR"):
        return "string"
    if t == "DATE":
        return "date"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return "timestamptz"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    return "other"


# Storage type and default kind for a feature, by source family.
_FEATURE_STORAGE = {
    "integer": ("BIGINT", "numeric"),
    "float": ("DOUBLE", "numeric"),
    "boolean": ("BOOLEAN", "boolean"),
    "string": ("VARCHAR", "categorical"),
    "date": ("DATE", "timestamp"),
    "timestamp": ("TIMESTAMP", "timestamp"),
    "timestamptz": ("TIMESTAMP", "timestamp"),
}
_KIND_STORAGE = {
    "categorical": "VARCHAR",
    "text": "VARCHAR",
    "numeric": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
}


def feature_storage(family: str, kind_override: str | None) -> tuple[str, str] | None:
    """(storage type, kind) for a feature, or None if the type is unsupported."""
    if kind_override:
        if kind_override == "numeric" and family == "integer":
            return "BIGINT", "numeric"
        if kind_override == "timestamp" and family == "date":
            return "DATE", "timestamp"
        return _KIND_STORAGE[kind_override], kind_override
    return _FEATURE_STORAGE.get(family)


def col(name: str) -> str:
    return quote_ident(name)


# Infinity written so that Spark reads it too (the view of an external dataset is
# translated for Spark, which has no isinf()).
INFINITY = "CAST('Infinity' AS DOUBLE)"


def _finite_or_null(number: str) -> str:
    """``number`` (DOUBLE SQL), or NULL where it is NaN or infinite.

    NaN is seen only where DuckDB does not trust Parquet min/max statistics for it
    (``sources.parquet_scan`` reads with ``can_have_nan``)."""
    return f"CASE WHEN isnan({number}) OR abs({number}) = {INFINITY} THEN NULL ELSE {number} END"


def to_double(expr: str, family: str) -> str:
    """Number (DOUBLE) or NULL; NaN and infinities count as missing (see :func:`infinite`)."""
    if family == "integer":
        return f"CAST({expr} AS DOUBLE)"
    if family == "float":
        return _finite_or_null(f"CAST({expr} AS DOUBLE)")
    if family == "boolean":
        return f"CAST({expr} AS DOUBLE)"
    if family == "string":
        return _finite_or_null(f"TRY_CAST(NULLIF(trim({expr}), '') AS DOUBLE)")
    return f"TRY_CAST({expr} AS DOUBLE)"


def infinite(expr: str, family: str) -> str | None:
    """SQL that is true where the source holds +inf or -inf (text such as ``inf``,
    ``-Infinity`` or ``1e999`` included); None for types that cannot hold one. A score,
    label or prediction must be finite; a feature or outcome stores it as missing."""
    if family == "float":
        return f"(abs(CAST({expr} AS DOUBLE)) = {INFINITY})"
    if family == "string":
        return f"(abs(TRY_CAST(NULLIF(trim(CAST({expr} AS VARCHAR)), '') AS DOUBLE)) = {INFINITY})"
    return None


def to_timestamp(expr: str, family: str) -> str:
    """UTC TIMESTAMP or NULL. Text with an offset is converted to UTC."""
    if family == "timestamp":
        return f"CAST({expr} AS TIMESTAMP)"
    if family in ("timestamptz", "date"):
        return f"CAST({expr} AS TIMESTAMP)"
    if family == "string":
        return f"TRY_CAST(TRY_CAST(NULLIF(trim({expr}), '') AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"TRY_CAST({expr} AS TIMESTAMP)"


def to_text(expr: str, family: str) -> str:
    """Trimmed text; integral floats lose their ``.0`` so ids stay ids."""
    if family == "string":
        return f"NULLIF(trim(CAST({expr} AS VARCHAR)), '')"
    if family == "float":
        return (
            f"CASE WHEN isnan(CAST({expr} AS DOUBLE)) THEN NULL "
            f"WHEN CAST({expr} AS DOUBLE) = floor(CAST({expr} AS DOUBLE)) "
            f"AND abs(CAST({expr} AS DOUBLE)) < 9.0e18 "
            f"THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) ELSE CAST({expr} AS VARCHAR) END"
        )
    if family == "boolean":
        return f"CASE WHEN {expr} THEN 'true' WHEN NOT {expr} THEN 'false' END"
    return f"CAST({expr} AS VARCHAR)"


def to_class_value(expr: str, family: str) -> str:
    """Normalized class label text: 'true'/'false', '1' for 1.0, trimmed strings."""
    if family != "string":
        return to_text(expr, family)
    t = f"NULLIF(trim(CAST({expr} AS VARCHAR)), '')"
    d = f"TRY_CAST({t} AS DOUBLE)"
    return (
        f"CASE WHEN lower({t}) IN ('true', 'false') THEN lower({t}) "
        f"WHEN {d} IS NOT NULL AND NOT isnan({d}) AND {d} = floor({d}) AND abs({d}) < 9.0e18 "
        f"THEN CAST(CAST({d} AS BIGINT) AS VARCHAR) "
        f"WHEN lower({t}) = 'nan' THEN NULL ELSE {t} END"
    )


def to_boolean(expr: str, family: str) -> str:
    if family == "boolean":
        return expr
    if family in ("integer", "float"):
        return f"CASE WHEN {expr} = 1 THEN TRUE WHEN {expr} = 0 THEN FALSE END"
    if family == "string":
        return (
            f"CASE WHEN lower(trim({expr})) IN ('true', 't', 'yes', 'y', '1') THEN TRUE "
            f"WHEN lower(trim({expr})) IN ('false', 'f', 'no', 'n', '0') THEN FALSE END"
        )
    return f"TRY_CAST({expr} AS BOOLEAN)"


def to_storage(expr: str, family: str, dtype: str) -> str:
    """Convert a source expression to a feature's storage type (NULL if it cannot)."""
    if dtype == "DOUBLE":
        return to_double(expr, family)
    if dtype == "BIGINT":
        if family == "integer":
            return f"TRY_CAST({expr} AS BIGINT)"
        num = to_double(expr, family)
        return f"CASE WHEN {num} = floor({num}) THEN TRY_CAST({num} AS BIGINT) END"
    if dtype == "TIMESTAMP":
        return to_timestamp(expr, family)
    if dtype == "DATE":
        if family in ("date", "timestamp", "timestamptz"):
            return f"CAST({expr} AS DATE)"
        return f"TRY_CAST(NULLIF(trim(CAST({expr} AS VARCHAR)), '') AS DATE)"
    if dtype == "BOOLEAN":
        return to_boolean(expr, family)
    if dtype == "VARCHAR":
        if family == "string":
            return f"CAST({expr} AS VARCHAR)"
        return to_text(expr, family)
    raise ValueError(f"unsupported storage type {dtype}")


def present(expr: str, family: str, *, number: bool = False) -> str:
    """SQL that is true when the source holds a value (not NULL, not blank, not NaN).

    ``number``: the column is read as a number, so text that reads as NaN (``nan``,
    ``NaN``, as Spark and numpy write it in CSV) is missing too, as a Parquet NaN is."""
    if family == "string" and number:
        text = f"NULLIF(trim(CAST({expr} AS VARCHAR)), '')"
        return f"({text} IS NOT NULL AND NOT coalesce(isnan(TRY_CAST({text} AS DOUBLE)), FALSE))"
    if family == "string":
        return f"NULLIF(trim(CAST({expr} AS VARCHAR)), '') IS NOT NULL"
    if family == "float":
        return f"({expr} IS NOT NULL AND NOT isnan(CAST({expr} AS DOUBLE)))"
    return f"{expr} IS NOT NULL"


def source_family(src: Source, column: str) -> str:
    """The family conversions start from: CSV is read as text; other sources keep their types."""
    return "string" if src.raw_varchar else type_family(src.types[column])


@dataclass
class Check:
    """Rows for which ``condition`` is true are bad: ``column`` ``problem``."""

    column: str
    problem: str
    condition: str
    params: list = field(default_factory=list)
    value_sql: str | None = None  # shows the offending value in the message


def _row_numbers(src: Source) -> str:
    partition = f"PARTITION BY {quote_ident(FILE_COLUMN)}" if src.multi_file else ""
    return f"row_number() OVER ({partition})"


def _display_row(src: Source, n: int) -> int:
    return {"csv": n + 1, "parquet": n, "dataframe": n - 1}[src.kind]


def _short(value, limit: int = 60) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_checks(con: duckdb.DuckDBPyConnection, src: Source, checks: list[Check], *, limit: int = 5) -> None:
    """Run all checks in one pass; raise one IngestError describing every failure."""
    if not checks:
        return
    selects = ", ".join(f"sum(CASE WHEN {c.condition} THEN 1 ELSE 0 END)" for c in checks)
    params = [p for c in checks for p in c.params]
    try:
        counts = con.execute(f"SELECT {selects} FROM {quote_ident(src.view)}", params).fetchall()[0]
    except duckdb.Error as exc:
        raise IngestError(f"cannot be read: {str(exc).splitlines()[0]}", source=src.name) from None
    failures = [(c, int(n)) for c, n in zip(checks, counts) if n]
    if not failures:
        return
    lines = []
    first_rows: list = []
    for check, n in failures:
        file_sel = f", {quote_ident(FILE_COLUMN)}" if src.multi_file else ", NULL"
        value_sel = f", {check.value_sql}" if check.value_sql else ", NULL"
        sql = (
            f"SELECT __sb_row{file_sel}{value_sel} FROM ("
            f"SELECT *, {_row_numbers(src)} AS __sb_row FROM {quote_ident(src.view)}) "
            f"WHERE {check.condition} ORDER BY __sb_row LIMIT {int(limit)}"
        )
        rows = con.execute(sql, check.params).fetchall()
        shown = []
        for row_n, file_name, value in rows:
            where = f"{src.row_word} {_display_row(src, row_n)}"
            if file_name:
                where += f" of {file_name}"
            shown.append(f"{where}: {_short(value)}" if check.value_sql else where)
        if not first_rows:
            first_rows = [_display_row(src, r[0]) for r in rows]
        lines.append(f"column {check.column!r}: {counted(n, 'row', check.problem)} ({'; '.join(shown)})")
    header = "rejected, nothing was written."
    raise IngestError(
        header + "\n- " + "\n- ".join(lines),
        source=src.name,
        column=failures[0][0].column,
        rows=first_rows,
        count=failures[0][1],
    )


def finite_check(src: Source, column: str) -> Check | None:
    """Rows whose ``column`` is +inf or -inf (for a score, label or prediction, which must
    be finite); None when the column's type cannot hold an infinity."""
    inf = infinite(col(column), source_family(src, column))
    if inf is None:
        return None
    return Check(column, "are not finite numbers", inf, value_sql=f"CAST({col(column)} AS VARCHAR)")


def infinite_warnings(con: duckdb.DuckDBPyConnection, src: Source, columns: list[str]) -> list[str]:
    """Features and outcomes stored as numbers keep an infinite value as missing: one
    warning per column that had any, with the count (one scan for all the columns)."""
    conds = [(c, infinite(col(c), source_family(src, c))) for c in columns]
    conds = [(c, inf) for c, inf in conds if inf]
    if not conds:
        return []
    sel = ", ".join(f"sum(CASE WHEN {inf} THEN 1 ELSE 0 END)" for _, inf in conds)
    try:
        counts = con.execute(f"SELECT {sel} FROM {quote_ident(src.view)}").fetchall()[0]
    except duckdb.Error as exc:
        raise IngestError(f"cannot be read: {str(exc).splitlines()[0]}", source=src.name) from None
    out = []
    for (column, _), n in zip(conds, counts):
        if n == 1:
            out.append(f"1 value of column {column!r} was stored as missing because it was infinite")
        elif n:
            out.append(f"{n} values of column {column!r} were stored as missing because they were infinite")
    return out

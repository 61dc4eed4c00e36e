"""The one place where identifiers become SQL text.

Values never go through here: they are always bound parameters. Table and
column names come only from the project's own schema (``analysis.store.schema``) and
are quoted by :func:`quote_ident`, so a column called ``a"; DROP TABLE x; --``
is just an odd name.
"""

from __future__ import annotations

from analysis.errors import ConfigError


def quote_ident(name: str) -> str:
    """Quote a table or column name for DuckDB (and ANSI SQL)."""
    if not isinstance(name, str) or name == "":
        raise ConfigError(f"Invalid column or table name: {name!r}")
    if "\x00" in name:
        raise ConfigError(f"Column or table name contains a NUL character: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def and_all(fragments: list[tuple[str, list]]) -> tuple[str, list]:
    """Join ``(sql, params)`` fragments with AND; an empty list is ``TRUE``."""
    parts = [f"({sql})" for sql, _ in fragments if sql]
    params: list = []
    for sql, p in fragments:
        if sql:
            params.extend(p)
    return (" AND ".join(parts) if parts else "TRUE", params)


def in_transaction(con, work):
    """``work()`` inside one transaction: committed if it returns, rolled back if it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        result = work()
        con.execute("COMMIT")
        return result
    except BaseException:
        con.execute("ROLLBACK")
        raise


def sql_literal(value) -> str:
    """A value as a SQL literal, for the one place that cannot bind parameters: the
    definition of a view (an external dataset's log). Strings are quoted with their
    quotes doubled (DuckDB's standard strings have no other escape); NUL is refused."""
    from datetime import date, datetime

    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"CAST('{value!r}' AS DOUBLE)"
        return f"CAST({value!r} AS DOUBLE)"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        if "\x00" in value:
            raise ConfigError("A value contains a NUL character.")
        return "'" + value.replace("'", "''") + "'"
    raise ConfigError(f"Cannot write a {type(value).__name__} value into SQL.")

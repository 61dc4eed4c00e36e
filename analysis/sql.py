"""The one place where identifiers become SQL text.

Values never go through here: they are always bound parameters. Table and
column names come only from the project's own schema (``analysis.schema``) and
are quoted by :func:`quote_ident`, so a column called ``a"; DROP TABLE x; --``
is just an odd name.
"""

from __future__ import annotations

from .errors import ConfigError


def quote_ident(name: str) -> str:
    """Quote a table or column name for DuckDB (and ANSI SQL)."""
    if not isinstance(name, str) or name == "":
        raise ConfigError(f"Invalid column or table name: {name!r}")
    if "\x00" in name:
        raise ConfigError(f"Column or table name contains a NUL character: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(table: str, column: str) -> str:
    return f"{quote_ident(table)}.{quote_ident(column)}"


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

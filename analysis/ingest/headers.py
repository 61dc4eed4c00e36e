"""Column names a file's header repeats.

DuckDB reads a repeated name (``score, score`` or ``Age, age``: names compare without
case) as a second column ``score_1``: the file would be ingested with the wrong column
in a role, or a renamed feature, without a word. The raw header is read here instead.
"""

from __future__ import annotations

import duckdb


def _first_repeat(names: list[str]) -> tuple[str, str] | None:
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            return seen[name.lower()], name
        seen[name.lower()] = name
    return None


def _csv_header(con: duckdb.DuckDBPyConnection, file: str) -> list[str]:
    has_header = con.execute("SELECT HasHeader FROM sniff_csv(?)", [file]).fetchall()
    if not has_header or not has_header[0][0]:
        return []
    row = con.execute("SELECT * FROM read_csv(?, header = false, all_varchar = true) LIMIT 1", [file]).fetchall()
    return [v for v in row[0] if v is not None] if row else []


def _parquet_headers(con: duckdb.DuckDBPyConnection, files: list[str]) -> dict[str, list[str]]:
    """{file: top-level column names}; the schema lists elements depth first."""
    out: dict[str, list[str]] = {}
    pending: dict[str, list[int]] = {}  # per file: children still to read at each open level
    for file, name, children in con.execute(
        "SELECT file_name, name, num_children FROM parquet_schema(?)", [files]
    ).fetchall():
        stack = pending.setdefault(file, [])
        if file not in out:  # the root element
            out[file] = []
            stack.append(children or 0)
            continue
        if len(stack) == 1:
            out[file].append(name)
        stack[-1] -= 1
        if children:
            stack.append(children)
        while len(stack) > 1 and stack[-1] == 0:
            stack.pop()
    return out


def repeated_column(files: list[str], kind: str) -> tuple[str, str, str] | None:
    """``(file, first name, repeated name)`` for a local file whose header repeats a name,
    else None. (CSV: the first file's header, as DuckDB takes the names from it.)

    A header that cannot be read gives None: reading the data fails too, with the
    reader's own message.
    """
    if not files:
        return None
    con = duckdb.connect()
    try:
        if kind == "csv":
            headers = {files[0]: _csv_header(con, files[0])}
        else:
            headers = _parquet_headers(con, files)
    except duckdb.Error:
        return None
    finally:
        con.close()
    for file, names in headers.items():
        repeat = _first_repeat(names)
        if repeat:
            return (file, *repeat)
    return None

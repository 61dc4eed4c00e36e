"""The one place where identifiers become SQL text, and the one type of SQL fragment.

Values never go through here: they are always bound parameters. Table and
column names come only from the project's own schema (``analysis.store.schema``) and
are quoted by :func:`quote_ident`, so a column called ``a"; DROP TABLE x; --``
is just an odd name.

A fragment (:class:`Sql`) is text with ``?`` marks and its parameters in the order of the
marks. Fragments are put together by name (:meth:`Sql.compose`): a template names where
each goes, and the parameters follow the places, so no one keeps their order by hand.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Iterator

from analysis.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Sql:
    """SQL text and its bound parameters, in the order of its ``?`` marks. It unpacks
    as ``text, params = fragment``, indexes as ``[0]``, ``[1]`` and equals the ``(sql,
    params)`` pair it replaces."""

    text: str
    params: tuple = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))

    def __iter__(self) -> Iterator:
        return iter((self.text, list(self.params)))

    def __getitem__(self, index: int):
        return (self.text, list(self.params))[index]

    def __eq__(self, other) -> bool:
        if isinstance(other, (Sql, tuple)) and len(tuple(other)) == 2:
            text, params = other
            return self.text == text and list(self.params) == list(params)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.text, self.params))

    @staticmethod
    def of(part: "Sql | tuple[str, list] | str") -> "Sql":
        """A fragment from a fragment, an ``(sql, params)`` pair or plain text (no marks)."""
        if isinstance(part, Sql):
            return part
        if isinstance(part, str):
            return Sql(part)
        text, params = part
        return Sql(text, tuple(params))

    @staticmethod
    def compose(template: str, **parts: "Sql | tuple[str, list] | str") -> "Sql":
        """``template`` with each ``{name}`` replaced by that part; the parameters follow
        the places in the template (a part named twice gives its parameters twice).
        Literal braces are doubled (``{{``). A name without a part, or a part without a
        place, is a mistake in the code that builds the query."""
        text, params, used = [], [], set()
        for literal, name, spec, conversion in string.Formatter().parse(template):
            text.append(literal)
            if name is None:
                continue
            if spec or conversion or name not in parts:
                raise ValueError(
                    f"Sql.compose: no part for {{{name}}}" if name not in parts else f"{{{name}}}: no format"
                )
            part = Sql.of(parts[name])
            text.append(part.text)
            params.extend(part.params)
            used.add(name)
        unused = set(parts) - used
        if unused:
            raise ValueError(f"Sql.compose: parts without a place: {', '.join(sorted(unused))}")
        return Sql("".join(text), tuple(params))

    @staticmethod
    def join(separator: str, parts) -> "Sql":
        """The parts joined by ``separator`` (plain text), their parameters in order."""
        fragments = [Sql.of(p) for p in parts]
        return Sql(separator.join(f.text for f in fragments), tuple(p for f in fragments for p in f.params))


def quote_ident(name: str) -> str:
    """Quote a table or column name for DuckDB (and ANSI SQL)."""
    if not isinstance(name, str) or name == "":
        raise ConfigError(f"Invalid column or table name: {name!r}")
    if "\x00" in name:
        raise ConfigError(f"Column or table name contains a NUL character: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def and_all(fragments) -> Sql:
    """Fragments (or ``(sql, params)`` pairs) joined with AND; none is ``TRUE``."""
    kept = [Sql.of(f) for f in fragments if Sql.of(f).text]
    if not kept:
        return Sql("TRUE")
    return Sql.join(" AND ", [Sql.compose("({part})", part=f) for f in kept])


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

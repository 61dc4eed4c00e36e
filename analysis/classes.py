"""Class labels and stages: map the distinct raw values of a column once.

Rather than normalizing every row in SQL, the few distinct raw values of a
label, prediction or stage column are read once, normalized in Python, and
turned into a ``CASE WHEN raw IN (...) THEN ...`` expression with bound values.
"""

from __future__ import annotations

import math

import duckdb

from .convert import to_class_value
from .mapping import normalize_class_value
from .sources import Source
from .sql import quote_ident

MAX_MAPPED_VALUES = 500


def distinct_raw_values(con: duckdb.DuckDBPyConnection, src: Source, column: str,
                        limit: int = MAX_MAPPED_VALUES) -> list | None:
    """Distinct non-null raw values of a column, or None if there are more than ``limit``."""
    rows = con.execute(
        f"SELECT DISTINCT {quote_ident(column)} FROM {quote_ident(src.view)} "
        f"WHERE {quote_ident(column)} IS NOT NULL LIMIT {int(limit) + 1}"
    ).fetchall()
    if len(rows) > limit:
        return None
    return [r[0] for r in rows]


def normalized(raw) -> str | None:
    if isinstance(raw, float) and math.isnan(raw):
        return None
    return normalize_class_value(raw) or None


def mapped_case(column: str, mapping: dict, out_type: str) -> tuple[str, list]:
    """``CASE WHEN col IN (...) THEN out ... END`` for {raw value: output value}.

    Raw values that map to None are left out, so they become NULL.
    """
    by_out: dict = {}
    for raw, out in mapping.items():
        if out is not None:
            by_out.setdefault(out, []).append(raw)
    if not by_out:
        return f"CAST(NULL AS {out_type})", []
    parts, params = [], []
    for out, raws in by_out.items():
        parts.append(f"WHEN {quote_ident(column)} IN ({', '.join('?' for _ in raws)}) THEN CAST(? AS {out_type})")
        params += list(raws) + [out]
    return "CASE " + " ".join(parts) + " END", params


def class_value_sql(src: Source, column: str, family: str, raw_values: list | None) -> tuple[str, list]:
    """Normalized class text for a column (mapped when the raw values are few)."""
    if raw_values is None:
        return to_class_value(quote_ident(column), family), []
    return mapped_case(column, {r: normalized(r) for r in raw_values}, "VARCHAR")

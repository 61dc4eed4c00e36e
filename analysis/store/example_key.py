"""The example key: a number derived from an example id, equal on every engine.

Each log row keeps ``example_key``, the first 60 bits of the MD5 of its example id
(a non-negative BIGINT). A comparison joins the two versions' rows on it (a join on
integers is about twice as fast as one on text) and spreads examples over the
bootstrap's buckets by ``example_key % 1000``. MD5 exists with the same meaning in
DuckDB and Spark, unlike ``hash()``, so both engines draw the same buckets and give
the same intervals; 60 bits make a collision between two ids of a few million
improbable (and a collision is caught: the pairs are proved unique by their keys,
and a failed proof falls back to joining on the ids themselves).
"""

from __future__ import annotations

import hashlib

HEX_DIGITS = 15  # 60 bits: positive in a signed BIGINT on both engines


def example_key_sql(expr: str) -> str:
    """DuckDB SQL for the key of the text expression ``expr`` (Spark: see analysis.engines.portable)."""
    return f"CAST(('0x' || substr(md5({expr}), 1, {HEX_DIGITS})) AS BIGINT)"


def example_key(example_id: str) -> int:
    """The key of one example id, computed in Python (for checks and tests)."""
    return int(hashlib.md5(example_id.encode("utf-8")).hexdigest()[:HEX_DIGITS], 16)

"""How many rows of each bucket take each value, for several features in one scan.

One ``GROUP BY GROUPING SETS ((bucket, c0), (bucket, c1), ...)`` reads the rows once for
all the features (a ``UNION ALL`` of one grouping per feature reads them once per
feature). ``grouping(cK)`` is 0 in the rows of feature K's set, which tells a missing
value (grouped, NULL) from a feature that is not grouped in that row.
"""

from __future__ import annotations

from collections.abc import Callable

from analysis.store.sql import Sql


def value_counts_sql(base: Sql, features: int, value: Callable[[str], str]) -> Sql:
    """``SELECT feature, bucket, value, n`` over ``base`` (``bucket, c0 .. c{features-1}``):
    ``feature`` is the position of the column, ``value`` is ``value("cK")`` (NULL where the
    row's value is missing) and ``n`` the rows."""
    columns = [f"c{k}" for k in range(features)]
    sets = ", ".join(f"(bucket, {c})" for c in columns)
    flags = ", ".join(f"grouping({c}) AS g{k}, {value(c)} AS v{k}" for k, c in enumerate(columns))
    feature = " ".join(f"WHEN g{k} = 0 THEN {k}" for k in range(features))
    chosen = " ".join(f"WHEN g{k} = 0 THEN v{k}" for k in range(features))
    return Sql.compose(
        "SELECT CASE {feature} END AS feature, bucket, CASE {chosen} END AS value, n FROM ("
        "SELECT bucket, {flags}, count(*) AS n FROM ({base}) AS rows_in_buckets GROUP BY GROUPING SETS ({sets})"
        ") AS grouped",
        feature=feature,
        chosen=chosen,
        flags=flags,
        base=base,
        sets=sets,
    )

"""How many rows of each bucket take each value, for several features in one scan.

One ``GROUP BY GROUPING SETS ((bucket, c0), (bucket, c1), ...)`` reads the rows once for
all the features (a ``UNION ALL`` of one grouping per feature reads them once per
feature). ``grouping(cK)`` is 0 in the rows of feature K's set, which tells a missing
value (grouped, NULL) from a feature that is not grouped in that row.

The feature and its value are each one expression of the grouped query, with no
``grouping(cK)`` or ``cK`` named on its own: Spark derives what it knows of a query's
rows (its constraints, such as ``value IS NOT NULL``) through every named expression, and
a condition over K named parts of the grouping came back in 2^K forms, which with seven
features ran its planner out of memory.
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
    feature = " ".join(f"WHEN grouping({c}) = 0 THEN {k}" for k, c in enumerate(columns))
    chosen = " ".join(f"WHEN grouping({c}) = 0 THEN {value(c)}" for c in columns)
    return Sql.compose(
        "SELECT CASE {feature} END AS feature, bucket, CASE {chosen} END AS value, count(*) AS n "
        "FROM ({base}) AS rows_in_buckets GROUP BY GROUPING SETS ({sets})",
        feature=feature,
        chosen=chosen,
        base=base,
        sets=sets,
    )

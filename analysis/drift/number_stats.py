"""Drift of numeric features, per period against the reference, in one query: the
two-sample Kolmogorov–Smirnov statistic D, the Wasserstein-1 distance (both exact, as
scipy computes them from the two samples) and the share of values outside the
reference's range. Missing values are left out of both samples (the null rate counts
them).

Both figures compare the two empirical CDFs, which change only at values either sample
takes. The *grid* is every distinct value of the feature in the reference or any period,
in order, with the reference's CDF there (``F_R``, a window sum); each period's values
are joined to it by value. With ``F_P`` the period's CDF:

* D is the largest ``|F_R - F_P|``. Between two consecutive values of the period ``F_P``
  is flat and ``F_R`` rises, so the largest gap there is at one end: at a period value
  ``v`` (``F_R(v)`` against ``F_P(v)``) or just before it (``F_R(v-)`` against ``F_P`` of
  the value before). So one row per period value gives D.
* W1 is ``∫|F_R - F_P| dx``, a sum over the grid of ``Δx·|F_R - F_P|``. Over the grid
  points from one period value to the next, ``F_P`` is a constant ``c`` and ``F_R`` rises
  through it at most once, at the first grid point where ``F_R >= c``; with ``S``, the
  running sum of ``Δx·F_R`` along the grid, each side of that crossing is a difference of
  ``S`` and of ``x``. As ``F_R`` never falls, that first grid point's index is the number
  of grid points whose ``F_R`` is below ``c``: the periods' levels and the grid's, in one
  order (a level of a period before a grid point's equal one), counted in one running sum
  (no join on a range).

The work grows with the number of distinct values plus the periods' distinct values, not
with their product, so a feature with millions of distinct values stays exact.
"""

from __future__ import annotations

from analysis.drift.buckets import Buckets
from analysis.drift.counts import value_counts_sql
from analysis.store.sql import Sql

# Per (feature, period): rows, missing values, the reference's values, and (when both
# samples have values) D, W1 and the values outside the reference's [min, max].
NUMBER_STATS = """
WITH counts AS (SELECT feature, bucket, value, CAST(n AS DOUBLE) AS n FROM ({counts}) AS counted),
present AS (
  SELECT feature, bucket, sum(n) AS rows_, sum(CASE WHEN value IS NULL THEN n ELSE 0 END) AS nulls
  FROM counts WHERE bucket <> {reference_key} GROUP BY feature, bucket
),
grid AS (
  SELECT feature, value AS x, n_ref,
    row_number() OVER (PARTITION BY feature ORDER BY value) - 1 AS i,
    sum(n_ref) OVER (PARTITION BY feature ORDER BY value ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_ref,
    coalesce(lead(value) OVER (PARTITION BY feature ORDER BY value) - value, 0) AS dx
  FROM (
    SELECT feature, value, sum(CASE WHEN bucket = {reference_key} THEN n ELSE 0 END) AS n_ref
    FROM counts WHERE value IS NOT NULL GROUP BY feature, value
  ) AS distinct_values
),
area AS (
  SELECT feature, x, i, n_ref, cum_ref,
    coalesce(sum(dx * cum_ref) OVER (
      PARTITION BY feature ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS s
  FROM grid
),
reference AS (
  SELECT feature, sum(n_ref) AS m, min(CASE WHEN n_ref > 0 THEN x END) AS lo,
    max(CASE WHEN n_ref > 0 THEN x END) AS hi, max(i) AS last_i, max(x) AS last_x, max(s) AS last_s
  FROM area GROUP BY feature HAVING sum(n_ref) > 0
),
steps AS (
  SELECT c.feature, c.bucket, c.value AS x, c.n, g.i, g.s, g.cum_ref, g.n_ref, p.rows_ - p.nulls AS total,
    sum(c.n) OVER (PARTITION BY c.feature, c.bucket ORDER BY c.value
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
    lead(g.i) OVER (PARTITION BY c.feature, c.bucket ORDER BY c.value) AS next_i,
    lead(g.s) OVER (PARTITION BY c.feature, c.bucket ORDER BY c.value) AS next_s,
    lead(c.value) OVER (PARTITION BY c.feature, c.bucket ORDER BY c.value) AS next_x
  FROM counts AS c
  JOIN area AS g ON g.feature = c.feature AND g.x = c.value
  JOIN present AS p ON p.feature = c.feature AND p.bucket = c.bucket
  WHERE c.bucket <> {reference_key}
),
levels AS (
  SELECT g.feature, g.cum_ref / r.m AS level, 1 AS on_grid, g.i,
    CAST(NULL AS DATE) AS bucket, CAST(NULL AS DOUBLE) AS x
  FROM area AS g JOIN reference AS r ON r.feature = g.feature
  UNION ALL
  SELECT feature, cum / total AS level, 0 AS on_grid, CAST(NULL AS BIGINT) AS i, bucket, x FROM steps
),
crossings AS (
  SELECT feature, bucket, x, on_grid,
    sum(on_grid) OVER (
      PARTITION BY feature ORDER BY level, on_grid ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS j
  FROM levels
),
segments AS (
  SELECT t.feature, t.bucket, t.x, t.n, t.i, t.s, t.cum_ref, t.n_ref, t.cum, t.total, r.m, r.lo, r.hi,
    t.cum / t.total AS c,
    coalesce(t.next_s, r.last_s) AS end_s, coalesce(t.next_x, r.last_x) AS end_x,
    greatest(t.i, least(coalesce(t.next_i, r.last_i), k.j)) AS cross_i
  FROM steps AS t
  JOIN reference AS r ON r.feature = t.feature
  JOIN crossings AS k ON k.on_grid = 0 AND k.feature = t.feature AND k.bucket = t.bucket AND k.x = t.x
),
pieces AS (
  SELECT e.feature, e.bucket, e.n, e.total, e.x, e.lo, e.hi,
    greatest(abs(e.cum_ref / e.m - e.cum / e.total), abs((e.cum_ref - e.n_ref) / e.m - (e.cum - e.n) / e.total))
      AS gap,
    e.c * (g.x - e.x) - (g.s - e.s) / e.m + (e.end_s - g.s) / e.m - e.c * (e.end_x - g.x)
      + CASE WHEN e.cum = e.n THEN e.s / e.m ELSE 0 END AS area_piece
  FROM segments AS e JOIN area AS g ON g.feature = e.feature AND g.i = e.cross_i
),
distances AS (
  SELECT feature, bucket, max(gap) AS ks_d, sum(area_piece) AS wasserstein,
    sum(CASE WHEN x < lo OR x > hi THEN n ELSE 0 END) AS out_of_range
  FROM pieces GROUP BY feature, bucket
)
SELECT p.feature, p.bucket, p.rows_, p.nulls, r.m AS reference_values, d.ks_d, d.wasserstein,
  d.out_of_range
FROM present AS p
LEFT JOIN reference AS r ON r.feature = p.feature
LEFT JOIN distances AS d ON d.feature = p.feature AND d.bucket = p.bucket
"""


def number_stats_sql(buckets: Buckets, columns: list[str]) -> Sql:
    """The query of :data:`NUMBER_STATS` over ``columns`` (values compared as DOUBLE, exact
    for whole numbers below 2^53)."""
    counts = value_counts_sql(buckets.base_sql(columns), len(columns), lambda c: f"CAST({c} AS DOUBLE)")
    return Sql.compose(NUMBER_STATS, counts=counts, reference_key=Sql("?", [buckets.reference_key]))

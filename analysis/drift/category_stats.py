"""Drift of features read as categories, per period against the reference, in one query:
the sums that Pearson's chi-square and the Jensen–Shannon divergence are made of.

The table tested for a period is 2 × K: the reference's and the period's counts of the K
categories seen in either (a missing value is a category of its own, so a jump in
missing values is drift too). Only the categories the period has are joined to the
reference; the ones it lacks add a closed form:

* chi-square, cell by cell ``(O - E)² / E``: a category's two cells sum to
  ``(a·P - b·R)² / ((a + b)·R·P)`` (``a``, ``b`` its reference and period counts, ``R``,
  ``P`` the two totals); with ``b = 0`` that is ``a·P / R``, so the categories the period
  lacks add ``(R - Σ a over the period's categories)·P / R``;
* Jensen–Shannon, natural logarithm: ``Σ p ln(p/m) + Σ q ln(q/m)`` with ``p = a/R``,
  ``q = b/P``, ``m = (p + q)/2``; a category the period lacks adds ``p ln 2``.

In ``a·P - b·R`` both products are whole numbers below 2^53 up to billions of rows, so the
difference is exact before it is squared.
"""

from __future__ import annotations

from analysis.drift.buckets import Buckets
from analysis.drift.counts import value_counts_sql
from analysis.store.sql import Sql

# Per (feature, period): rows, missing values, new categories, categories in the table,
# the chi-square statistic and the Jensen–Shannon sum (natural log, before / 2).
CATEGORY_STATS = """
WITH counts AS ({counts}),
cells AS (
  SELECT feature, bucket, coalesce(value, '') AS value, CASE WHEN value IS NULL THEN 1 ELSE 0 END AS missing, n
  FROM counts
),
reference AS (SELECT feature, value, missing, n AS a FROM cells WHERE bucket = {reference_key}),
reference_totals AS (
  SELECT feature, CAST(sum(a) AS DOUBLE) AS r, count(*) AS k FROM reference GROUP BY feature
),
period_totals AS (
  SELECT feature, bucket, CAST(sum(n) AS DOUBLE) AS p
  FROM cells WHERE bucket <> {reference_key} GROUP BY feature, bucket
),
paired AS (
  SELECT c.feature, c.bucket, c.missing, CAST(c.n AS DOUBLE) AS b, CAST(coalesce(ra.a, 0) AS DOUBLE) AS a,
    pt.p, t.r, t.k
  FROM cells AS c
  JOIN period_totals AS pt ON pt.feature = c.feature AND pt.bucket = c.bucket
  JOIN reference_totals AS t ON t.feature = c.feature
  LEFT JOIN reference AS ra ON ra.feature = c.feature AND ra.value = c.value AND ra.missing = c.missing
)
SELECT feature, bucket, max(p) AS rows_, max(r) AS reference_rows,
  sum(CASE WHEN missing = 1 THEN b ELSE 0 END) AS nulls,
  sum(CASE WHEN a = 0 AND missing = 0 THEN 1 ELSE 0 END) AS new_categories,
  max(k) + sum(CASE WHEN a = 0 THEN 1 ELSE 0 END) AS categories,
  sum((a * p - b * r) * (a * p - b * r) / ((a + b) * r * p)) + (max(r) - sum(a)) * max(p) / max(r) AS chi_square,
  sum(CASE WHEN a > 0 THEN (a / r) * ln((a / r) / ((a / r + b / p) / 2)) ELSE 0 END)
    + sum((b / p) * ln((b / p) / ((a / r + b / p) / 2)))
    + (max(r) - sum(a)) / max(r) * ln(2) AS js_sum
FROM paired
GROUP BY feature, bucket
"""


def category_stats_sql(buckets: Buckets, columns: list[str]) -> Sql:
    """The query of :data:`CATEGORY_STATS` over ``columns`` (values compared as text)."""
    counts = value_counts_sql(buckets.base_sql(columns), len(columns), lambda c: f"CAST({c} AS VARCHAR)")
    return Sql.compose(CATEGORY_STATS, counts=counts, reference_key=Sql("?", [buckets.reference_key]))

"""SliceLine computed in DuckDB: the exact top-k slices where a model errs most.

Sagadeeva & Boehm, "SliceLine: Fast, Linear-Algebra-based Slice Finding for ML
Model Debugging" (SIGMOD 2021). A *slice* is a conjunction of ``feature = value``
predicates, at most one per feature and at most ``max_level`` of them. With
``n`` rows, mean error ``ē = total error / n``, and a slice of ``|S|`` rows whose
errors sum to ``se``, the score is

    sc = α·((se/|S|)/ē − 1) − (1−α)·(n/|S| − 1)

how much worse than average the slice is, minus a penalty for being small. A
slice is reported only with at least ``σ`` rows (the minimum support) and a
score above 0; the ``top_k`` best are returned.

Input
-----
``source_sql`` (with its bound ``params``) yields one row per example: the
``features`` already encoded as integer codes ``>= 0`` (categories, quantile
bins) or NULL, which is a value of its own (``None`` in ``predicates``,
:data:`NULL_CODE` in the per-feature result columns), and a non-negative numeric
``error_column`` (0/1 misclassification, or any real-valued loss or cost).

Minimum support
---------------
``min_support`` has the semantics of the ``sliceline`` package's ``min_sup``, so
results compare: an int is a row count (a slice needs ``size >= σ``); a float in
(0, 1) is a fraction of the rows, ``σ = int(min_support · n)`` (rounded down, as
the package does). The default ``None`` is the paper's ``σ = n/100``, exactly
``min_support=0.01``. (The package's own default is ``min_sup=10``.)

How a run goes
--------------
*Level 1*: one small query for the code ranges (which size the blocks below)
and whether the errors are 0/1 (then the maximum error of a slice is 1 if it has
an error, and is not aggregated); then one query with a ``GROUP BY`` per block of
features whose code ranges together fit DuckDB's perfect-hash budget (12 bits),
marginalised per feature, plus the totals. It gives size, error sum and maximum
error of every ``feature = value``.

Each further level ``l+1``:

1. **Candidates** (numpy, over the small candidate lists): the paper's
   generation. Two valid level-``l`` parents sharing ``l−1`` predicates are
   joined, and the result is kept only if *every* one of its ``l+1`` subsets of
   size ``l`` is a valid parent (size ``>= σ`` and errors ``> 0``).
2. **Pruning** (``prune=True``), with bounds from *all* its parents: size at most
   ``ss = min`` of the parents' sizes, error sum at most ``se = min`` of their
   error sums, largest row error at most ``sm = min`` of their maximum errors.
   A candidate is dropped when ``ss < σ``, or when its upper-bound score

       max over s in [σ, ss] of  α·(min(s·sm, se)/s/ē − 1) − (1−α)·(n/s − 1)

   (taken at ``σ``, at ``se/sm`` clipped to ``[σ, ss]`` and at ``ss``: the
   function is monotone on each side of ``se/sm``) is below the threshold: the
   k-th best score found so far once ``top_k`` positive scores exist, else 0
   (only positive scores are reported). Ties with the threshold are kept (with a
   relative tolerance of 1e-9 against rounding), so the pruned run returns
   exactly the unpruned top-k. A parent whose own bound is already below the
   threshold is not extended at all (its children's bounds can only be lower).
   This is the paper's bound; the ``sliceline`` package uses the number of
   one-hot columns where the paper has ``n`` and the bounds of one pair of
   parents, and prunes against the lowest score of a top-k list that is not yet
   full, which is not exact (see ``tests/test_sliceline.py``).
3. **Counting** (DuckDB): only the feature values that occur in some candidate
   matter now. The rows are *pre-grouped* once: every other value of a feature
   collapses into one code, and the rows are grouped by one packed integer key
   of the codes into a temporary table of counts, error sums and maximum errors
   (a few hundred thousand groups for ten million rows). All the candidates of
   a level are then counted in one ``GROUPING SETS`` query over that table, a
   set per combination of features, keeping the groups where each grouped
   feature has a value in play; the groups are matched to the candidates. At
   the next level the table is grouped again by the fewer values still in play,
   keeping only groups with at least ``l+1`` of them. Whether pre-grouping pays
   is judged from the level-1 value frequencies (the expected number of groups
   if features were independent); when it does not, each combination is one
   ``GROUP BY`` straight over the source. No Python loop touches rows.

   Searches of several errors over the same rows (a comparison's two directions
   of disagreement) may share a :class:`SharedCounts` instead: each combination
   of features is counted once over the rows, for every error, and kept for the
   next search that asks for it. Their candidates are mostly the same
   combinations (every pair of features at level 2), so the second search
   counts little.

``prune=False`` is the referee: every conjunction of up to ``max_level``
predicates whose parents all have ``size >= σ``, no bounds.

Ranking and ties
----------------
By score, descending. Scores within a relative 1e-12 of each other count as
tied (error sums may differ in the last bits depending on the order DuckDB adds
them); ties go to fewer predicates, then more rows, then the predicates compared
one by one in the order of ``features`` (earlier feature first) and by code
(NULL first).

The parts: :mod:`.scoring` (score, bound, threshold), :mod:`.candidates` (the join of
parents), :mod:`.source` (the source checked and projected, and level one),
:mod:`.counting` (the plan of :class:`Counting`, and :class:`SharedCounts`),
:mod:`.counter` (a level's candidates counted in DuckDB) and :mod:`.search` (the levels,
ranking, the result).

SQL hygiene: column names go through :func:`analysis.store.sql.quote_ident`; data values
(feature codes) are bound parameters. Only numbers this module makes up itself
(collapsed codes, radices, combination ids) appear in SQL text.
"""

from analysis.discovery.sliceline.counting import NULL_CODE, Counting, SharedCounts
from analysis.discovery.sliceline.search import SliceLineResult, find_slices

__all__ = ["NULL_CODE", "Counting", "SharedCounts", "SliceLineResult", "find_slices"]

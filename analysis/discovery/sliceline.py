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

SQL hygiene: column names go through :func:`analysis.store.sql.quote_ident`; data values
(feature codes) are bound parameters. Only numbers this module makes up itself
(collapsed codes, radices, combination ids) appear in SQL text.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.store.sql import quote_ident

NULL_CODE = -1
"""Code of a ``feature IS NULL`` predicate in the per-feature columns of the result."""

_PRUNE_RTOL = 1e-9  # an upper bound must fall this far below the threshold to prune
_TIE_RTOL = 1e-12  # scores this close count as tied
_RESERVED = ("predicates", "level", "size", "errors", "max_error", "error_rate", "score")
_MAX_GROUPED = 3_000_000  # never pre-group into more groups than this (memory)
_PERFECT_HASH_BITS = 12  # DuckDB's default perfect_ht_threshold
_COMBOS_PER_QUERY = 64  # GROUP BYs (or grouping sets) per query
_INT_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}


@dataclass(frozen=True)
class Counting:
    """How the search counts feature combinations, chosen by these thresholds: the
    defaults suit DuckDB on a laptop; a caller (or a test) that wants one path sets them.

    ``group_cost``: inserting one group costs about as much as scanning this many rows
    (when pre-grouping the source pays); ``max_packed_key``: the largest key that packs a
    group's codes or a candidate's item ids into one integer (beyond it, a column per
    feature); ``two_step_rows``: from this many rows on, pre-group in two statements;
    ``regroup_rows``: pre-grouped tables smaller than this are not grouped again."""

    group_cost: int = 20
    max_packed_key: int = 2**62
    two_step_rows: int = 2_000_000
    regroup_rows: int = 20_000


@dataclass
class SliceLineResult:
    """What :func:`find_slices` found.

    ``top_slices``: one row per reported slice, best first: ``predicates``
    (dict feature -> code, ``None`` for ``IS NULL``), one column per feature
    (nullable Int64: the code, :data:`NULL_CODE` for ``IS NULL``, ``<NA>`` when
    the feature is not in the slice; a feature named like one of the fixed
    columns gets the suffix ``" [feature]"``), ``level`` (number of predicates),
    ``size``, ``errors`` (error sum), ``max_error``, ``error_rate``
    (errors / size), ``score``.

    ``evaluated``: every slice whose statistics were computed in this run (all
    level-1 values, then every candidate that survived pruning), with
    ``predicates``, ``level``, ``size``, ``errors``, ``max_error``, ``score``
    (-inf for an empty slice or when there are no errors at all): the family
    for a multiple-testing correction.

    ``candidates_per_level``: per level, ``parents`` (valid slices of the level
    below), ``extendable`` (those whose own bound can still reach the
    threshold), ``generated`` (candidates formed), ``pruned`` (dropped by the
    size or score bound), ``evaluated`` (counted in DuckDB), ``valid``
    (evaluated with size >= σ and errors > 0), ``threshold`` (the score to beat
    after the level), ``seconds``, ``base`` (``"source"`` or ``"table"``:
    what the level was counted over) and ``counted`` (the same, saying when the table was
    grouped again: ``"table regrouped at level 3"``).
    """

    top_slices: pd.DataFrame
    evaluated: pd.DataFrame
    candidates_per_level: list[dict]
    n_rows: int
    total_errors: float
    min_support: int
    alpha: float
    features: tuple[str, ...] = ()
    top_k: int = 10
    max_level: int = 3
    pruned: bool = True


def find_slices(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    params: list,
    features: list[str],
    *,
    error_column: str = "err",
    alpha: float = 0.95,
    min_support: int | float | None = None,
    max_level: int = 3,
    top_k: int = 10,
    prune: bool = True,
    shared: tuple[SharedCounts, int] | None = None,
    counting: Counting = Counting(),
) -> SliceLineResult:
    """The ``top_k`` slices by SliceLine score, computed exactly (see the module docstring).

    ``source_sql`` is a SELECT with bound ``params`` giving one row per example,
    with integer-coded ``features`` (codes >= 0 or NULL) and a non-negative
    numeric ``error_column``. ``alpha`` in (0, 1] weighs error against size;
    ``min_support`` is a row count (int) or a fraction of the rows (float in
    (0, 1)), default ``0.01``; ``max_level`` bounds the number of predicates.
    ``prune=False`` enumerates every conjunction with enough support (the
    referee for the pruned run, whose top-k it must equal). ``shared`` is a
    :class:`SharedCounts` over the same rows and features and this search's error in
    it: the searches of several errors then count each feature combination once.
    ``counting`` sets the thresholds that choose how combinations are counted
    (:class:`Counting`); every choice gives the same numbers.
    """
    features = list(features)
    if not features:
        raise ConfigError("Choose at least one feature to search slices on.")
    if len(set(features)) != len(features):
        raise ConfigError("Each feature may be listed only once.")
    if error_column in features:
        raise ConfigError(f"{error_column} is the error column; it cannot also be a feature.")
    for name in [*features, error_column]:
        quote_ident(name)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
        raise ConfigError(f"alpha must be in (0, 1], not {alpha!r}.")
    if isinstance(max_level, bool) or not isinstance(max_level, int) or max_level < 1:
        raise ConfigError(f"max_level must be a positive integer, not {max_level!r}.")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top_k must be a positive integer, not {top_k!r}.")
    if min_support is not None:
        if isinstance(min_support, bool) or not isinstance(min_support, (int, float)):
            raise ConfigError(f"min_support must be a row count or a fraction, not {min_support!r}.")
        if isinstance(min_support, float) and not 0 < min_support < 1:
            raise ConfigError(f"A fractional min_support must be in (0, 1), not {min_support!r}.")
        if min_support < 0:
            raise ConfigError(f"min_support cannot be negative ({min_support!r}).")
    if shared is not None and list(shared[0].features) != features:
        raise ConfigError("The shared counts are of other features than this search's.")
    finder = _Finder(con, source_sql, list(params or []), features, error_column, float(alpha), bool(prune), counting)
    finder.shared = shared
    try:
        return finder.run(min_support, max_level, top_k)
    finally:
        finder.cleanup()


class SharedCounts:
    """Size, and error sum and maximum per error column, of every group of a feature
    combination over one set of encoded rows, counted once for several searches.

    The searches of several errors over the same rows (a comparison's two directions of
    disagreement) mostly ask for the same combinations: all pairs of features at level
    2, many of the same triples at level 3. Each combination is counted once, for every
    error, over the rows as they are (one ``GROUPING SETS`` query per batch), and kept
    for the next search that asks. Codes are the features' own (NULL as
    :data:`NULL_CODE`), so every search reads the same groups.
    """

    def __init__(self, con, source_sql: str, params: list, features: list[str], error_columns: list[str]):
        self.con, self.params = con, list(params or [])
        self.features = list(features)
        cols = ", ".join(
            f"coalesce(CAST({quote_ident(f)} AS BIGINT), {NULL_CODE}) AS c{j}" for j, f in enumerate(self.features)
        )
        errs = ", ".join(f"CAST({quote_ident(e)} AS DOUBLE) AS e{k}" for k, e in enumerate(error_columns))
        self.src = f"(SELECT {cols}, {errs} FROM ({source_sql}) AS sb_source)"
        self.n_errors = len(error_columns)
        self.groups: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def _count(self, combos: list[tuple[int, ...]]) -> None:
        aggs = ", ".join(
            f"CAST(sum(e{k}) AS DOUBLE) AS se{k}, CAST(max(e{k}) AS DOUBLE) AS sm{k}" for k in range(self.n_errors)
        )
        for i in range(0, len(combos), _COMBOS_PER_QUERY):
            batch = combos[i : i + _COMBOS_PER_QUERY]
            used = sorted({j for c in batch for j in c})
            pos = {j: q for q, j in enumerate(used)}
            sets = ", ".join("(" + ", ".join(f"c{j}" for j in c) + ")" for c in batch)
            res = self.con.execute(
                f"SELECT {', '.join(f'c{j} AS x{pos[j]}' for j in used)}, count(*) AS n, {aggs} "
                f"FROM {self.src} AS s GROUP BY GROUPING SETS ({sets})",
                self.params,
            ).fetchnumpy()
            cols = [res[f"x{q}"] for q in range(len(used))]
            grouped = (
                np.column_stack([~np.ma.getmaskarray(c) for c in cols])
                if len(res["n"])
                else np.zeros((0, len(used)), dtype=bool)
            )
            values = (
                np.column_stack([np.ma.filled(np.ma.asarray(c).astype(np.int64), 0) for c in cols])
                if len(res["n"])
                else np.zeros((0, len(used)), dtype=np.int64)
            )
            n = np.asarray(res["n"], dtype=np.int64)
            se = (
                np.column_stack(
                    [np.ma.filled(np.ma.asarray(res[f"se{k}"], dtype=np.float64), 0.0) for k in range(self.n_errors)]
                )
                if len(n)
                else np.zeros((0, self.n_errors))
            )
            sm = (
                np.column_stack(
                    [np.ma.filled(np.ma.asarray(res[f"sm{k}"], dtype=np.float64), 0.0) for k in range(self.n_errors)]
                )
                if len(n)
                else np.zeros((0, self.n_errors))
            )
            for combo in batch:  # a group belongs to the combination whose columns it is grouped by
                mask = np.zeros(len(used), dtype=bool)
                mask[[pos[j] for j in combo]] = True
                rows = np.flatnonzero((grouped == mask).all(axis=1))
                self.groups[combo] = (values[np.ix_(rows, [pos[j] for j in combo])], n[rows], se[rows], sm[rows])

    def stats(self, combos: np.ndarray, cand_rows: np.ndarray, index: int, binary: bool):
        """Size, error sum and maximum error (of error ``index``) of the candidates: rows
        ``(combination id, value, ...)`` over ``combos`` (feature indices, one row each)."""
        wanted = [tuple(int(j) for j in c) for c in combos.tolist()]
        self._count([c for c in dict.fromkeys(wanted) if c not in self.groups])
        size = len(cand_rows)
        ss, se, sm = np.zeros(size, dtype=np.int64), np.zeros(size), np.zeros(size)
        parts = [
            np.column_stack([np.full(len(self.groups[c][1]), cid, dtype=np.int64), self.groups[c][0]])
            for cid, c in enumerate(wanted)
        ]
        if not parts:
            return ss, se, sm
        rows = np.concatenate(parts)
        ci, ri = _match_rows(cand_rows.astype(np.int64), rows)
        n_all = np.concatenate([self.groups[c][1] for c in wanted])
        se_all = np.concatenate([self.groups[c][2][:, index] for c in wanted])
        sm_all = np.concatenate([self.groups[c][3][:, index] for c in wanted])
        ss[ci], se[ci] = n_all[ri], se_all[ri]
        sm[ci] = (se_all[ri] > 0).astype(np.float64) if binary else sm_all[ri]
        return ss, se, sm


# --------------------------------------------------------------------------------------------
# scores and bounds


def _scores(ss: np.ndarray, se: np.ndarray, n: int, ebar: float, alpha: float) -> np.ndarray:
    """The SliceLine score; -inf for empty slices."""
    ss = np.asarray(ss, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = alpha * ((se / ss) / ebar - 1) - (1 - alpha) * (n / ss - 1)
    sc[~(ss > 0)] = -np.inf
    return np.nan_to_num(sc, nan=-np.inf)


def _upper_bounds(
    ss: np.ndarray, se: np.ndarray, sm: np.ndarray, n: int, ebar: float, alpha: float, sigma: int
) -> np.ndarray:
    """Largest score any slice with at most ``ss`` rows, error sum ``se`` and
    row errors ``<= sm`` can reach with at least ``σ`` rows; -inf if none can."""
    ss = np.asarray(ss, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    sm = np.asarray(sm, dtype=np.float64)
    lo = float(max(sigma, 1))
    best = np.full(ss.shape, -np.inf)
    ok = (ss >= lo) & (se > 0) & (sm > 0)
    if not ok.any():
        return best
    s_ok, e_ok, m_ok = ss[ok], se[ok], sm[ok]
    top = np.full(s_ok.shape, -np.inf)
    for s in (np.full(s_ok.shape, lo), np.minimum(np.maximum(e_ok / m_ok, lo), s_ok), s_ok):
        g = alpha * ((np.minimum(s * m_ok, e_ok) / s) / ebar - 1) - (1 - alpha) * (n / s - 1)
        top = np.maximum(top, g)
    best[ok] = top
    return best


def _kth_best(scores: np.ndarray, k: int) -> float:
    """The k-th best positive score, 0 if there are fewer than k."""
    pos = scores[scores > 0]
    if len(pos) < k:
        return 0.0
    return float(np.partition(pos, len(pos) - k)[len(pos) - k])


def _prune_line(theta: float) -> float:
    return theta - _PRUNE_RTOL * max(1.0, abs(theta))


# --------------------------------------------------------------------------------------------
# candidate generation over item ids (an item is one feature = value; ids sort by feature, value)


def _row_keys(rows: np.ndarray, base: int, limit: int) -> np.ndarray | None:
    """Integer keys of item-id rows, ordered like the rows; None if they would reach ``limit``."""
    width = rows.shape[1]
    if base**width >= limit:
        return None
    keys = np.zeros(rows.shape[0], dtype=np.int64)
    for c in range(width):
        keys = keys * base + rows[:, c]
    return keys


def _pairs_level2(feat: np.ndarray, chunk: int = 1 << 22):
    """All pairs (i < j) of level-1 parents on different features, in chunks."""
    n = len(feat)
    if n < 2:
        return
    rows_per_chunk = max(1, chunk // n)
    cols = np.arange(n)
    for i0 in range(0, n, rows_per_chunk):
        rows = np.arange(i0, min(n, i0 + rows_per_chunk))
        mask = (cols[None, :] > rows[:, None]) & (feat[None, :] != feat[rows][:, None])
        a, b = np.nonzero(mask)
        if len(a):
            yield rows[a], b


def _join_parents(parents: np.ndarray, item_feat: np.ndarray, n_items: int, key_limit: int):
    """Apriori join of level-l parents (sorted item-id rows) into level-(l+1)
    candidates whose every l-subset is a parent.

    Returns ``(candidates, parent_index)``: candidate rows (sorted item ids) and,
    per candidate, the indices of all its l+1 parents.
    """
    n, level = parents.shape
    empty = (np.zeros((0, level + 1), dtype=np.int64), np.zeros((0, level + 1), dtype=np.int64))
    if n < 2:
        return empty
    # parents must be sorted lexicographically: rows with one prefix are then adjacent
    prefix = parents[:, : level - 1]
    change = np.any(prefix[1:] != prefix[:-1], axis=1)
    starts = np.flatnonzero(np.concatenate([[True], change]))
    ends = np.concatenate([starts[1:], [n]])
    group_end = np.repeat(ends, ends - starts)
    partners = group_end - np.arange(n) - 1
    total = int(partners.sum())
    if total == 0:
        return empty
    left = np.repeat(np.arange(n), partners)
    right = left + 1 + (np.arange(total) - np.repeat(np.cumsum(partners) - partners, partners))
    keep = item_feat[parents[left, -1]] != item_feat[parents[right, -1]]
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return empty
    cands = np.column_stack([parents[left], parents[right, -1]])
    index = [left, right]
    keys = _row_keys(parents, n_items, key_limit)
    lookup = None if keys is not None else {tuple(r): i for i, r in enumerate(parents.tolist())}
    found = np.ones(len(cands), dtype=bool)
    for p in range(level - 1):  # the subsets that leave out one of the shared predicates
        sub = np.delete(cands, p, axis=1)
        if keys is not None:
            sub_keys = _row_keys(sub, n_items, key_limit)
            pos = np.searchsorted(keys, sub_keys)
            pos_c = np.minimum(pos, n - 1)
            hit = (pos < n) & (keys[pos_c] == sub_keys)
            idx = np.where(hit, pos_c, 0)
        else:
            idx_list = [lookup.get(tuple(r), -1) for r in sub.tolist()]
            idx = np.array(idx_list, dtype=np.int64)
            hit = idx >= 0
            idx = np.where(hit, idx, 0)
        found &= hit
        index.append(idx)
    parent_index = np.column_stack(index)[found]
    return cands[found], parent_index


def _match_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j) with ``a[i] == b[j]`` (rows of equal width; rows unique within each)."""
    both = np.concatenate([a, b])
    tag = np.concatenate([np.zeros(len(a), dtype=np.int64), np.ones(len(b), dtype=np.int64)])
    order = np.lexsort([tag] + [both[:, c] for c in reversed(range(both.shape[1]))])
    srt = both[order]
    st = tag[order]
    eq = np.all(srt[1:] == srt[:-1], axis=1) & (st[:-1] == 0) & (st[1:] == 1)
    pos = np.flatnonzero(eq)
    return order[pos], order[pos + 1] - len(a)


def _expected_groups(dists: list[np.ndarray], n: int) -> float:
    """Expected number of distinct code combinations among n rows if features were
    independent with these code frequencies (an estimate of a pre-grouped table's size)."""
    p = np.ones(1)
    w = np.ones(1)
    for d in dists:
        d = np.asarray(d, dtype=np.float64)
        d = d[d > 0]
        if len(d) == 0:
            continue
        p = np.outer(p, d).ravel()
        w = np.repeat(w, len(d))
        if len(p) > 4096:  # merge cells of similar probability (log-spaced bins)
            lp = np.log(p)
            lo, hi = lp.min(), lp.max()
            b = ((lp - lo) * (1023 / max(hi - lo, 1e-12))).astype(np.int64)
            ww = np.bincount(b, weights=w, minlength=1024)
            wp = np.bincount(b, weights=w * p, minlength=1024)
            nz = ww > 0
            p, w = wp[nz] / ww[nz], ww[nz]
    return float(np.sum(w * -np.expm1(-n * p)))


# --------------------------------------------------------------------------------------------


@dataclass
class _Base:
    """What a level is counted over: the source itself, or a pre-grouped temp table.

    ``codes[j]`` maps a value of feature j to its code in the table (0: a value
    not in play), ``exprs[j]`` is the SQL giving that code from a table row."""

    kind: str  # "source" or "table"
    rows: int
    name: str = ""
    codes: dict = field(default_factory=dict)
    exprs: dict = field(default_factory=dict)
    regrouped: int | None = None  # the level at which the table was grouped again

    @property
    def shown(self) -> str:
        """What a level was counted over, as ``candidates_per_level`` says it."""
        return self.kind if self.regrouped is None else f"table regrouped at level {self.regrouped}"


@dataclass
class _Level:
    items: np.ndarray  # (N, level) item ids; for level 1 the (feature, value) pairs
    size: np.ndarray
    errors: np.ndarray
    max_error: np.ndarray
    score: np.ndarray
    level: int


class _Finder:
    def __init__(self, con, source_sql, params, features, error_column, alpha, prune, counting: Counting):
        self.con = con
        self.counting = counting
        self.source_sql = source_sql
        self.params = params
        self.features = features
        self.error_column = error_column
        self.alpha = alpha
        self.prune = prune
        self.m = len(features)
        self.tag = "sb_sl_" + uuid.uuid4().hex[:12]
        self.temp_tables: list[str] = []
        self.serial = 0
        self.binary = False
        self.shared: tuple[SharedCounts, int] | None = None

    # -- housekeeping ------------------------------------------------------------------------

    def _name(self) -> str:
        self.serial += 1
        return f"{self.tag}_g{self.serial}"

    def _drop(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS temp.{quote_ident(name)}")
        self.temp_tables.remove(name)

    def cleanup(self) -> None:
        for name in list(self.temp_tables):
            try:
                self._drop(name)
            except Exception:  # noqa: BLE001 - best effort, the connection may be gone
                pass

    def _aggs(self, over_table: bool) -> str:
        """Size, error sum (and maximum error unless errors are 0/1) of a group."""
        if over_table:
            out = "CAST(sum(n) AS BIGINT) AS n, sum(se) AS se"
            return out if self.binary else out + ", max(sm) AS sm"
        out = "count(*) AS n, CAST(sum(e) AS DOUBLE) AS se"
        return out if self.binary else out + ", CAST(max(e) AS DOUBLE) AS sm"

    def _stats(self, res: dict, rows=slice(None)):
        """Size, error sum and maximum error columns of a query result (NULL sums are 0)."""
        n = np.asarray(res["n"][rows], dtype=np.int64)
        se = np.ma.filled(np.ma.asarray(res["se"][rows], dtype=np.float64), 0.0)
        if self.binary:
            sm = (se > 0).astype(np.float64)
        else:
            sm = np.ma.filled(np.ma.asarray(res["sm"][rows], dtype=np.float64), 0.0)
        return n, se, sm

    # -- the source and level 1 --------------------------------------------------------------

    def _prepare_source(self) -> None:
        """Check the source's columns; build the projection every query reads; look at the
        code ranges (for level 1's blocks) and whether errors are 0/1."""
        desc = self.con.execute(f"SELECT * FROM ({self.source_sql}) AS sb_source LIMIT 0", self.params).description
        types = {d[0]: str(d[1]).upper() for d in desc}
        for f in self.features:
            if f not in types:
                raise ConfigError(f"The source has no column {f!r}. Columns: {', '.join(types)}.")
            if types[f] not in _INT_TYPES:
                raise ConfigError(
                    f"Feature {f} is {types[f]}; encode it as integer codes 0, 1, 2, ... (NULL allowed) first."
                )
        if self.error_column not in types:
            raise ConfigError(f"The source has no error column {self.error_column!r}.")
        et = types[self.error_column]
        err = quote_ident(self.error_column)
        if et == "BOOLEAN":
            err = f"CAST({err} AS INTEGER)"
        elif et.startswith("DECIMAL"):
            err = f"CAST({err} AS DOUBLE)"
        elif et not in _INT_TYPES and et not in ("FLOAT", "DOUBLE"):
            raise ConfigError(f"The error column {self.error_column} is {et}; it must be numeric.")
        cols = ", ".join(f"{quote_ident(f)} AS c{j}" for j, f in enumerate(self.features))
        self.src = f"(SELECT {cols}, {err} AS e FROM ({self.source_sql}) AS sb_source)"
        mm = self.con.execute(
            "SELECT "
            + ", ".join(f"min(c{j}), max(c{j})" for j in range(self.m))
            + f", min(e), max(e) FROM {self.src} AS s",
            self.params,
        ).fetchall()[0]
        bits = []
        for j in range(self.m):
            lo, hi = mm[2 * j], mm[2 * j + 1]
            if lo is not None and lo < 0:
                raise ConfigError(
                    f"Feature {self.features[j]} must hold integer codes >= 0 (or NULL); "
                    f"found {lo!r}. Encode categories and bins as 0, 1, 2, ... first."
                )
            bits.append(1 if lo is None else int(hi - lo + 2).bit_length())
        e_lo, e_hi = mm[-2], mm[-1]
        if e_lo is not None and e_lo < 0:
            raise ConfigError(f"Errors must be non-negative; {self.error_column} has {e_lo!r}.")
        if e_hi is not None and not math.isfinite(e_hi):
            raise ConfigError(f"Errors must be finite numbers; {self.error_column} has {e_hi!r}.")
        self.binary = (et in _INT_TYPES or et == "BOOLEAN") and (e_hi is None or e_hi <= 1)
        # first-fit decreasing: blocks of features whose code ranges need <= 12 bits together
        blocks: list[list[int]] = []
        room: list[int] = []
        for j in sorted(range(self.m), key=lambda j: (-bits[j], j)):
            for b in range(len(blocks)):
                if bits[j] <= room[b]:
                    blocks[b].append(j)
                    room[b] -= bits[j]
                    break
            else:
                blocks.append([j])
                room.append(max(0, _PERFECT_HASH_BITS - bits[j]))
        self.blocks = [sorted(b) for b in blocks]

    def _level_one(self):
        """Size, error sum and maximum error of every feature = value, and the totals:
        one GROUP BY per block of features, marginalised per feature."""
        blocks = self.blocks
        w = max(len(b) for b in blocks)
        tail = "" if self.binary else ", CAST(max(e) AS DOUBLE) AS sm"
        tx = ["CAST(count(e) AS BIGINT)"] + ["NULL::BIGINT"] * (w - 1)
        parts = [
            f"SELECT -1 AS blk, {', '.join(f'{x} AS x{p}' for p, x in enumerate(tx))}, "
            f"count(*) AS n, CAST(sum(e) AS DOUBLE) AS se{tail} FROM {self.src} AS s"
        ]
        for b, block in enumerate(blocks):
            xs = [f"coalesce(CAST(c{j} AS BIGINT), {NULL_CODE})" for j in block] + ["NULL::BIGINT"] * (w - len(block))
            parts.append(
                f"SELECT {b} AS blk, {', '.join(f'{x} AS x{p}' for p, x in enumerate(xs))}, "
                f"{self._aggs(False)} FROM {self.src} AS s GROUP BY {', '.join(f'c{j}' for j in block)}"
            )
        res = self.con.execute(" UNION ALL ".join(parts), self.params * (len(blocks) + 1)).fetchnumpy()
        blk = np.asarray(res["blk"], dtype=np.int64)
        n_all, se_all, sm_all = self._stats(res)
        t = int(np.flatnonzero(blk < 0)[0])
        n_rows, total, n_err = int(n_all[t]), float(se_all[t]), int(res["x0"][t])
        feat, val, cnt, se, sm = [], [], [], [], []
        for b, block in enumerate(blocks):
            rows = np.flatnonzero(blk == b)
            for p, j in enumerate(block):
                uniq, inv = np.unique(np.asarray(res[f"x{p}"][rows], dtype=np.int64), return_inverse=True)
                mx = np.zeros(len(uniq))
                np.maximum.at(mx, inv, sm_all[rows])
                feat.append(np.full(len(uniq), j, dtype=np.int64))
                val.append(uniq)
                cnt.append(np.bincount(inv, weights=n_all[rows], minlength=len(uniq)).round().astype(np.int64))
                se.append(np.bincount(inv, weights=se_all[rows], minlength=len(uniq)))
                sm.append(mx)
        return (
            n_rows,
            total,
            n_err,
            np.concatenate(feat),
            np.concatenate(val),
            np.concatenate(cnt),
            np.concatenate(se),
            np.concatenate(sm),
        )

    # -- the search --------------------------------------------------------------------------

    def run(self, min_support, max_level: int, top_k: int) -> SliceLineResult:
        t0 = time.perf_counter()
        self._prepare_source()
        n, total, n_err, feat, val, cnt, se, sm = self._level_one()
        if n_err < n:
            raise ConfigError("The error column has missing values; give every row an error (0 if none).")
        if min_support is None:
            min_support = 0.01
        sigma = int(min_support * n) if isinstance(min_support, float) else int(min_support)
        self.n, self.sigma = n, sigma
        ebar = total / n if n else 0.0
        self.ebar = ebar
        order = np.lexsort((val, feat))
        feat, val, cnt, se, sm = feat[order], val[order], cnt[order], se[order], sm[order]
        self.values_of = {j: val[feat == j] for j in range(self.m)}
        self.counts_of = {j: cnt[feat == j] for j in range(self.m)}
        score1 = _scores(cnt, se, n, ebar, self.alpha) if total > 0 else np.full(len(cnt), -np.inf)
        levels: list[_Level] = [_Level(np.column_stack([feat, val]), cnt, se, sm, score1, 1)]
        valid1 = (cnt >= sigma) & (se > 0)
        stats = [
            {
                "level": 1,
                "parents": None,
                "extendable": None,
                "generated": len(cnt),
                "pruned": 0,
                "evaluated": len(cnt),
                "valid": int(valid1.sum()),
            }
        ]
        # scores of the reportable slices so far (score > 0, size >= σ): the k-th best is the threshold
        pool_scores = [score1[(cnt >= sigma) & (score1 > 0)]]
        theta = _kth_best(np.concatenate(pool_scores), top_k)
        stats[0].update(threshold=theta, seconds=round(time.perf_counter() - t0, 4), base="source")

        # items: the level-1 slices that may be extended (the parents of level 2)
        parent_ok = valid1 if self.prune else (cnt >= sigma) & (cnt > 0)
        item_rows = np.flatnonzero(parent_ok)
        self.item_feat = feat[item_rows]
        self.item_val = val[item_rows]
        par_items = np.arange(len(item_rows)).reshape(-1, 1)
        par_ss, par_se, par_sm = cnt[item_rows], se[item_rows], sm[item_rows]
        self.base = _Base("source", n)
        max_level = min(max_level, self.m)
        level = 1
        while level < max_level and total > 0:
            level += 1
            t1 = time.perf_counter()
            entry = {
                "level": level,
                "parents": len(par_items),
                "extendable": len(par_items),
                "generated": 0,
                "pruned": 0,
                "evaluated": 0,
                "valid": 0,
                "threshold": theta,
            }
            stats.append(entry)
            if self.prune and len(par_items):
                # a parent whose own bound is below the threshold has no child that could reach it
                own = _upper_bounds(par_ss, par_se, par_sm, n, ebar, self.alpha, sigma)
                keep = own >= _prune_line(theta)
                par_items, par_ss, par_se, par_sm = par_items[keep], par_ss[keep], par_se[keep], par_sm[keep]
                entry["extendable"] = len(par_items)
            cands, generated, pruned = self._candidates(par_items, par_ss, par_se, par_sm, theta, level)
            entry.update(generated=generated, pruned=pruned)
            if len(cands) == 0:
                entry.update(seconds=round(time.perf_counter() - t1, 4), base=self.base.kind, counted=self.base.shown)
                break
            c_ss, c_se, c_sm = self._evaluate(cands, level)
            c_sc = _scores(c_ss, c_se, n, ebar, self.alpha)
            levels.append(_Level(cands, c_ss, c_se, c_sm, c_sc, level))
            pool_scores.append(c_sc[(c_ss >= sigma) & (c_sc > 0)])
            theta = _kth_best(np.concatenate(pool_scores), top_k)
            valid = (c_ss >= sigma) & (c_se > 0)
            entry.update(
                evaluated=len(cands),
                valid=int(valid.sum()),
                threshold=theta,
                seconds=round(time.perf_counter() - t1, 4),
                base=self.base.kind,
                counted=self.base.shown,
            )
            nxt = valid if self.prune else (c_ss >= sigma) & (c_ss > 0)
            par_items, par_ss, par_se, par_sm = cands[nxt], c_ss[nxt], c_se[nxt], c_sm[nxt]
        top, evaluated = self._results(levels, top_k)
        return SliceLineResult(
            top_slices=top,
            evaluated=evaluated,
            candidates_per_level=stats,
            n_rows=int(n),
            total_errors=total,
            min_support=sigma,
            alpha=self.alpha,
            features=tuple(self.features),
            top_k=top_k,
            max_level=max_level,
            pruned=self.prune,
        )

    def _candidates(self, par_items, par_ss, par_se, par_sm, theta, level):
        """Level-``level`` candidates from the parents, with the bound pruning applied;
        sorted lexicographically (the next level's join needs shared prefixes adjacent)."""
        line = _prune_line(theta)
        out, generated, pruned = [], 0, 0
        if level == 2:
            chunks = (
                (np.column_stack([par_items[a, 0], par_items[b, 0]]), np.column_stack([a, b]))
                for a, b in _pairs_level2(self.item_feat[par_items[:, 0]])
            )
        else:
            chunks = [_join_parents(par_items, self.item_feat, len(self.item_feat), self.counting.max_packed_key)]
        for cands, pidx in chunks:
            generated += len(cands)
            if len(cands) and self.prune:
                ss = par_ss[pidx].min(axis=1)
                ub = _upper_bounds(
                    ss, par_se[pidx].min(axis=1), par_sm[pidx].min(axis=1), self.n, self.ebar, self.alpha, self.sigma
                )
                keep = (ss >= self.sigma) & (ub >= line)
                pruned += int((~keep).sum())
                cands = cands[keep]
            if len(cands):
                out.append(cands)
        if not out:
            return np.zeros((0, level), dtype=np.int64), generated, pruned
        cands = np.concatenate(out)
        return cands[np.lexsort(cands.T[::-1])], generated, pruned

    # -- counting ----------------------------------------------------------------------------

    def _evaluate(self, cands: np.ndarray, level: int):
        """Size, error sum and maximum error of every candidate, counted in DuckDB."""
        if self.shared is not None:
            counts, index = self.shared
            combos, combo_id = self._combos(cands)
            return counts.stats(combos, np.column_stack([combo_id, self.item_val[cands]]), index, self.binary)
        items = np.unique(cands)
        feats = self.item_feat[items]
        rel = {int(j): self.item_val[items[feats == j]] for j in np.unique(feats)}
        n = self.n
        n_combos = len(np.unique(self.item_feat[cands], axis=0))
        if self.base.kind == "source":
            raw = {j: self._raw_ok(j, v) for j, v in rel.items()}
            est = _expected_groups([self._dist(j, None if raw[j] else v) for j, v in rel.items()], n)
            # pre-grouping costs about one scan plus inserting its groups; counting straight
            # over the source costs one scan per feature combination
            if est <= _MAX_GROUPED and n + self.counting.group_cost * est < n_combos * n:
                self.base = self._group_source(rel, raw)
        else:
            # grouping the table again pays once it is large; a small one is counted as it is
            if self.base.rows >= self.counting.regroup_rows:
                est = _expected_groups([self._dist(j, v) for j, v in rel.items()], n)
                if est <= self.base.rows / 2 or len(rel) < len(self.base.codes):
                    self.base = self._regroup(rel, level)
        if self.base.kind == "source":
            return self._count_over_source(cands)
        return self._count_over_table(cands)

    def _dist(self, j: int, values: np.ndarray | None) -> np.ndarray:
        """Code frequencies of feature j when only ``values`` keep their own code (None: all)."""
        freq = self.counts_of[j].astype(np.float64) / max(self.n, 1)
        if values is None:
            return freq
        mask = np.isin(self.values_of[j], values)
        return np.concatenate([freq[mask], [max(0.0, 1.0 - freq[mask].sum())]])

    def _raw_ok(self, j: int, values: np.ndarray) -> bool:
        """Keep feature j's own codes when (almost) all of its values are in play (cheaper than a CASE)."""
        allv = self.values_of[j]
        return len(allv) - len(values) <= 1 or len(values) >= 0.75 * len(allv)

    def _group_source(self, rel: dict, raw: dict) -> _Base:
        """Pre-group the source by the codes of the features in play, other values collapsed
        to 0, into a temp table ``(k, n, se[, sm])`` with one packed key ``k``."""
        exprs, params, radix, codes = [], [], [], {}
        for j, values in rel.items():
            col = f"c{j}"
            allv = self.values_of[j]
            if raw[j]:
                # the feature's own codes shifted by 2: NULL is 1, and 0 stays free
                top = int(allv.max()) if len(allv) else 0
                shifted = f"(CAST({col} AS {'INTEGER' if top < 2**30 else 'BIGINT'}) + 2)"
                exprs.append(f"coalesce{shifted[:-1]}, 1)" if (allv == NULL_CODE).any() else shifted)
                radix.append(max(top, 0) + 3)
                codes[j] = {int(v): (1 if v == NULL_CODE else int(v) + 2) for v in allv}
            else:
                parts, mapping = [], {}
                for k, v in enumerate(values.tolist(), start=1):
                    if v == NULL_CODE:
                        parts.append(f"WHEN {col} IS NULL THEN {k}")
                    else:
                        parts.append(f"WHEN {col} = ? THEN {k}")
                        params.append(int(v))
                    mapping[int(v)] = k
                exprs.append("CASE " + " ".join(parts) + " ELSE 0 END")
                radix.append(len(values) + 1)
                codes[j] = mapping
        feats = list(rel)
        name = self._name()
        product = math.prod(radix)
        tail = "" if self.binary else ", sm"
        ctype = {j: ("UTINYINT" if r <= 256 else "USMALLINT" if r <= 65536 else "BIGINT") for j, r in zip(feats, radix)}
        if product < self.counting.max_packed_key:
            # group by one packed integer key (much cheaper than grouping by several columns),
            # then unpack it into small code columns (cheap: the table is small by now)
            ktype = "INTEGER" if product < 2**31 else "BIGINT"
            key = f"CAST({exprs[0]} AS {ktype})"
            for e, r in zip(exprs[1:], radix[1:]):
                key = f"({key}) * {r} + ({e})"
            mults = [math.prod(radix[i + 1 :]) for i in range(len(radix))]
            dec = ", ".join(f"CAST((k // {mu}) % {r} AS {ctype[j]}) AS c{j}" for j, mu, r in zip(feats, mults, radix))
            grouped = f"SELECT {key} AS k, {self._aggs(False)} FROM {self.src} AS s GROUP BY k"
            if self.n < self.counting.two_step_rows:
                sql = f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {dec}, n, se{tail} FROM ({grouped}) AS t"
                params = params + self.params
                packed = None
            else:  # at scale it is faster to store the packed groups first, then unpack them
                packed = name + "k"
                self.temp_tables.append(packed)
                self.con.execute(
                    f"CREATE TEMP TABLE {quote_ident(packed)} AS {grouped}", params + self.params
                ).fetchall()
                sql = f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {dec}, n, se{tail} FROM {quote_ident(packed)}"
                params = []
        else:  # too many codes for one integer key: group by a column per feature
            sel = ", ".join(f"CAST({e} AS {ctype[j]}) AS c{j}" for j, e in zip(feats, exprs))
            sql = (
                f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {sel}, {self._aggs(False)} "
                f"FROM {self.src} AS s GROUP BY ALL"
            )
            params = params + self.params
            packed = None
        self.temp_tables.append(name)
        rows = self.con.execute(sql, params).fetchall()[0][0]
        if packed:
            self._drop(packed)
        return _Base("table", int(rows), name, codes, {j: f"c{j}" for j in feats})

    def _regroup(self, rel: dict, level: int) -> _Base:
        """Group the current pre-grouped table again by the values still in play, keeping only
        groups with at least ``level`` of them."""
        old = self.base
        exprs, params, codes = [], [], {}
        for j, values in rel.items():
            parts, mapping = [], {}
            for k, v in enumerate(values.tolist(), start=1):
                parts.append(f"WHEN ? THEN {k}")
                params.append(old.codes[j][int(v)])
                mapping[int(v)] = k
            exprs.append(f"CASE {old.exprs[j]} " + " ".join(parts) + f" ELSE 0 END AS c{j}")
            codes[j] = mapping
        enough = " + ".join(f"CAST(c{j} > 0 AS INTEGER)" for j in rel)
        tail = "" if self.binary else ", sm"
        name = self._name()
        sql = (
            f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {', '.join(f'c{j}' for j in rel)}, "
            f"{self._aggs(True)} FROM (SELECT {', '.join(exprs)}, n, se{tail} "
            f"FROM {quote_ident(old.name)}) AS t WHERE {enough} >= {int(level)} GROUP BY ALL"
        )
        self.temp_tables.append(name)
        rows = self.con.execute(sql, params).fetchall()[0][0]
        self._drop(old.name)
        return _Base("table", int(rows), name, codes, {j: f"c{j}" for j in rel}, regrouped=level)

    def _combos(self, cands: np.ndarray):
        combos, combo_id = np.unique(self.item_feat[cands], axis=0, return_inverse=True)
        return combos, combo_id.reshape(-1)

    def _run_batches(self, parts: list[str], params_per_part: list, cand_rows: np.ndarray):
        """Run ``SELECT cid, a0.., n, se[, sm]`` parts (UNION ALL, in batches) and match the
        groups to the candidates (rows ``cid, a0..``); returns size, error sum, max error."""
        size = len(cand_rows)
        ss = np.zeros(size, dtype=np.int64)
        se = np.zeros(size, dtype=np.float64)
        sm = np.zeros(size, dtype=np.float64)
        width = cand_rows.shape[1]
        for i in range(0, len(parts), _COMBOS_PER_QUERY):
            batch = parts[i : i + _COMBOS_PER_QUERY]
            res = self.con.execute(" UNION ALL ".join(batch), params_per_part * len(batch)).fetchnumpy()
            if len(res["n"]) == 0:
                continue
            rows = np.column_stack(
                [np.asarray(res["cid"], dtype=np.int64)]
                + [np.asarray(res[f"a{p}"], dtype=np.int64) for p in range(width - 1)]
            )
            ci, ri = _match_rows(cand_rows, rows)
            n_, se_, sm_ = self._stats(res, ri)
            ss[ci], se[ci], sm[ci] = n_, se_, sm_
        return ss, se, sm

    def _count_over_table(self, cands: np.ndarray):
        """Count the candidates over the pre-grouped table: GROUPING SETS with one set per
        feature combination, keeping the groups where every grouped feature is in play."""
        base = self.base
        level = cands.shape[1]
        combos, combo_id = self._combos(cands)
        codes = np.empty(cands.shape, dtype=np.int64)
        for p in range(level):
            f = self.item_feat[cands[:, p]].tolist()
            v = self.item_val[cands[:, p]].tolist()
            codes[:, p] = [base.codes[a][b] for a, b in zip(f, v)]
        cand_rows = np.column_stack([combo_id, codes])
        ss = np.zeros(len(cands), dtype=np.int64)
        se = np.zeros(len(cands), dtype=np.float64)
        sm = np.zeros(len(cands), dtype=np.float64)
        combo_list = combos.tolist()
        for i in range(0, len(combo_list), _COMBOS_PER_QUERY):
            batch = combo_list[i : i + _COMBOS_PER_QUERY]
            used = sorted({j for c in batch for j in c})
            pos = {j: q for q, j in enumerate(used)}
            sets = ", ".join("(" + ", ".join(base.exprs[j] for j in c) + ")" for c in batch)
            # By the output names: Spark resolves a HAVING over GROUPING SETS only so.
            having = " AND ".join(f"coalesce(x{pos[j]}, 1) > 0" for j in used)
            res = self.con.execute(
                f"SELECT {', '.join(f'{base.exprs[j]} AS x{pos[j]}' for j in used)}, {self._aggs(True)} "
                f"FROM {quote_ident(base.name)} GROUP BY GROUPING SETS ({sets}) HAVING {having}"
            ).fetchnumpy()
            if len(res["n"]) == 0:
                continue
            cols = [res[f"x{q}"] for q in range(len(used))]
            grouped = np.column_stack([~np.ma.getmaskarray(c) for c in cols])
            values = np.column_stack(
                [
                    np.ma.filled(c.astype(np.int64), -1) if np.ma.isMaskedArray(c) else np.asarray(c, dtype=np.int64)
                    for c in cols
                ]
            )
            # which combination each group belongs to, from the pattern of grouped columns
            weights = 1 << np.arange(len(used), dtype=np.int64)
            pattern = grouped.astype(np.int64) @ weights
            cid_of = {sum(1 << pos[j] for j in c): i + b for b, c in enumerate(batch)}
            keys = np.array(sorted(cid_of), dtype=np.int64)
            cids = np.array([cid_of[k] for k in keys.tolist()], dtype=np.int64)
            rows_cid = cids[np.searchsorted(keys, pattern)]
            take = np.argsort(~grouped, axis=1, kind="stable")[:, :level]
            rows = np.column_stack([rows_cid, np.take_along_axis(values, take, axis=1)])
            ci, ri = _match_rows(cand_rows, rows)
            ss[ci], se[ci], sm[ci] = self._stats(res, ri)
        return ss, se, sm

    def _count_over_source(self, cands: np.ndarray):
        """One GROUP BY per feature combination straight over the source."""
        combos, combo_id = self._combos(cands)
        parts = []
        for cid, combo in enumerate(combos.tolist()):
            cols = [f"c{j}" for j in combo]
            sel = ", ".join(f"coalesce(CAST({c} AS BIGINT), {NULL_CODE}) AS a{p}" for p, c in enumerate(cols))
            parts.append(
                f"SELECT {cid} AS cid, {sel}, {self._aggs(False)} FROM {self.src} AS s GROUP BY {', '.join(cols)}"
            )
        return self._run_batches(parts, self.params, np.column_stack([combo_id, self.item_val[cands]]))

    # -- results -----------------------------------------------------------------------------

    def _predicates(self, lv: _Level) -> tuple[np.ndarray, np.ndarray]:
        """(feature index, value) matrices of a level's slices."""
        if lv.level == 1:
            return lv.items[:, :1], lv.items[:, 1:2]
        return self.item_feat[lv.items], self.item_val[lv.items]

    def _results(self, levels: list[_Level], top_k: int):
        names = self.features
        feats, vals, lvl, size, err, mx, score = [], [], [], [], [], [], []
        width = max(lv.level for lv in levels)
        for lv in levels:
            f, v = self._predicates(lv)
            pad = width - lv.level
            feats.append(np.pad(f, ((0, 0), (0, pad)), constant_values=-1))
            vals.append(np.pad(v, ((0, 0), (0, pad)), constant_values=NULL_CODE - 1))
            lvl.append(np.full(len(lv.size), lv.level))
            size.append(lv.size)
            err.append(lv.errors)
            mx.append(lv.max_error)
            score.append(lv.score)
        feats, vals = np.concatenate(feats), np.concatenate(vals)
        lvl, size = np.concatenate(lvl), np.concatenate(size).astype(np.int64)
        err, mx, score = np.concatenate(err), np.concatenate(mx), np.concatenate(score)

        def preds(rows: np.ndarray) -> list[dict]:
            out = []
            for fr, vr, lv_ in zip(feats[rows].tolist(), vals[rows].tolist(), lvl[rows].tolist()):
                out.append({names[a]: (None if b == NULL_CODE else b) for a, b in zip(fr[:lv_], vr[:lv_])})
            return out

        all_rows = np.arange(len(size))
        evaluated = pd.DataFrame(
            {"predicates": preds(all_rows), "level": lvl, "size": size, "errors": err, "max_error": mx, "score": score}
        )

        ok = np.flatnonzero((size >= self.sigma) & (size > 0) & (score > 0))
        if len(ok):
            s = score[ok]
            order = np.argsort(-s, kind="stable")
            s_sorted = s[order]
            gaps = s_sorted[:-1] - s_sorted[1:]
            new_group = gaps > _TIE_RTOL * np.maximum(np.abs(s_sorted[:-1]), np.finfo(float).tiny)
            group = np.empty(len(order), dtype=np.int64)
            group[order] = np.concatenate([[0], np.cumsum(new_group)])
            keys = []
            for p in reversed(range(width)):
                keys += [vals[ok, p], feats[ok, p]]
            keys += [-size[ok], lvl[ok], group]
            ranked = ok[np.lexsort(keys)][:top_k]
        else:
            ranked = ok
        cols: dict = {"predicates": preds(ranked)}
        for j, name in enumerate(names):
            hit = feats[ranked] == j
            present = hit.any(axis=1)
            value = np.where(hit, vals[ranked], 0).sum(axis=1)
            cols[name if name not in _RESERVED else f"{name} [feature]"] = pd.arrays.IntegerArray(
                value.astype(np.int64), ~present
            )
        cols["level"] = lvl[ranked].astype(np.int64)
        cols["size"] = size[ranked]
        cols["errors"] = err[ranked]
        cols["max_error"] = mx[ranked]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["error_rate"] = err[ranked] / size[ranked]
        cols["score"] = score[ranked]
        top = pd.DataFrame(cols)
        return top.reset_index(drop=True), evaluated

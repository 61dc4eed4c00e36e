"""Counting a level's candidates in DuckDB: over the source, or over a pre-grouped table
when that pays (:class:`Counting` sets the thresholds), and counts shared between
searches of several errors over the same rows (:class:`SharedCounts`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.discovery.sliceline.candidates import match_rows
from analysis.store.sql import quote_ident

NULL_CODE = -1
"""Code of a ``feature IS NULL`` predicate in the per-feature columns of the result."""


MAX_GROUPED = 3_000_000  # never pre-group into more groups than this (memory)
PERFECT_HASH_BITS = 12  # DuckDB's default perfect_ht_threshold
COMBOS_PER_QUERY = 64  # GROUP BYs (or grouping sets) per query
INT_TYPES = {
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
        for i in range(0, len(combos), COMBOS_PER_QUERY):
            batch = combos[i : i + COMBOS_PER_QUERY]
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
        ci, ri = match_rows(cand_rows.astype(np.int64), rows)
        n_all = np.concatenate([self.groups[c][1] for c in wanted])
        se_all = np.concatenate([self.groups[c][2][:, index] for c in wanted])
        sm_all = np.concatenate([self.groups[c][3][:, index] for c in wanted])
        ss[ci], se[ci] = n_all[ri], se_all[ri]
        sm[ci] = (se_all[ri] > 0).astype(np.float64) if binary else sm_all[ri]
        return ss, se, sm


def expected_groups(dists: list[np.ndarray], n: int) -> float:
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
class Base:
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

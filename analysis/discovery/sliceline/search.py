"""SliceLine's search, level by level: level one in one pass, then candidates, pruning
and counting until no candidate can reach the top k (see the package docstring)."""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from analysis.discovery.sliceline.candidates import join_parents, match_rows, pairs_level2
from analysis.discovery.sliceline.counting import (
    COMBOS_PER_QUERY,
    INT_TYPES,
    MAX_GROUPED,
    NULL_CODE,
    PERFECT_HASH_BITS,
    Base,
    Counting,
    SharedCounts,
    expected_groups,
)
from analysis.discovery.sliceline.scoring import TIE_RTOL, kth_best, prune_line, scores, upper_bounds
from analysis.errors import ConfigError
from analysis.store.sql import quote_ident

_RESERVED = ("predicates", "level", "size", "errors", "max_error", "error_rate", "score")


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
            if types[f] not in INT_TYPES:
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
        elif et not in INT_TYPES and et not in ("FLOAT", "DOUBLE"):
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
        self.binary = (et in INT_TYPES or et == "BOOLEAN") and (e_hi is None or e_hi <= 1)
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
                room.append(max(0, PERFECT_HASH_BITS - bits[j]))
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
        score1 = scores(cnt, se, n, ebar, self.alpha) if total > 0 else np.full(len(cnt), -np.inf)
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
        theta = kth_best(np.concatenate(pool_scores), top_k)
        stats[0].update(threshold=theta, seconds=round(time.perf_counter() - t0, 4), base="source")

        # items: the level-1 slices that may be extended (the parents of level 2)
        parent_ok = valid1 if self.prune else (cnt >= sigma) & (cnt > 0)
        item_rows = np.flatnonzero(parent_ok)
        self.item_feat = feat[item_rows]
        self.item_val = val[item_rows]
        par_items = np.arange(len(item_rows)).reshape(-1, 1)
        par_ss, par_se, par_sm = cnt[item_rows], se[item_rows], sm[item_rows]
        self.base = Base("source", n)
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
                own = upper_bounds(par_ss, par_se, par_sm, n, ebar, self.alpha, sigma)
                keep = own >= prune_line(theta)
                par_items, par_ss, par_se, par_sm = par_items[keep], par_ss[keep], par_se[keep], par_sm[keep]
                entry["extendable"] = len(par_items)
            cands, generated, pruned = self._candidates(par_items, par_ss, par_se, par_sm, theta, level)
            entry.update(generated=generated, pruned=pruned)
            if len(cands) == 0:
                entry.update(seconds=round(time.perf_counter() - t1, 4), base=self.base.kind, counted=self.base.shown)
                break
            c_ss, c_se, c_sm = self._evaluate(cands, level)
            c_sc = scores(c_ss, c_se, n, ebar, self.alpha)
            levels.append(_Level(cands, c_ss, c_se, c_sm, c_sc, level))
            pool_scores.append(c_sc[(c_ss >= sigma) & (c_sc > 0)])
            theta = kth_best(np.concatenate(pool_scores), top_k)
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
        line = prune_line(theta)
        out, generated, pruned = [], 0, 0
        if level == 2:
            chunks = (
                (np.column_stack([par_items[a, 0], par_items[b, 0]]), np.column_stack([a, b]))
                for a, b in pairs_level2(self.item_feat[par_items[:, 0]])
            )
        else:
            chunks = [join_parents(par_items, self.item_feat, len(self.item_feat), self.counting.max_packed_key)]
        for cands, pidx in chunks:
            generated += len(cands)
            if len(cands) and self.prune:
                ss = par_ss[pidx].min(axis=1)
                ub = upper_bounds(
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
            est = expected_groups([self._dist(j, None if raw[j] else v) for j, v in rel.items()], n)
            # pre-grouping costs about one scan plus inserting its groups; counting straight
            # over the source costs one scan per feature combination
            if est <= MAX_GROUPED and n + self.counting.group_cost * est < n_combos * n:
                self.base = self._group_source(rel, raw)
        else:
            # grouping the table again pays once it is large; a small one is counted as it is
            if self.base.rows >= self.counting.regroup_rows:
                est = expected_groups([self._dist(j, v) for j, v in rel.items()], n)
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

    def _group_source(self, rel: dict, raw: dict) -> Base:
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
        return Base("table", int(rows), name, codes, {j: f"c{j}" for j in feats})

    def _regroup(self, rel: dict, level: int) -> Base:
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
        return Base("table", int(rows), name, codes, {j: f"c{j}" for j in rel}, regrouped=level)

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
        for i in range(0, len(parts), COMBOS_PER_QUERY):
            batch = parts[i : i + COMBOS_PER_QUERY]
            res = self.con.execute(" UNION ALL ".join(batch), params_per_part * len(batch)).fetchnumpy()
            if len(res["n"]) == 0:
                continue
            rows = np.column_stack(
                [np.asarray(res["cid"], dtype=np.int64)]
                + [np.asarray(res[f"a{p}"], dtype=np.int64) for p in range(width - 1)]
            )
            ci, ri = match_rows(cand_rows, rows)
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
        for i in range(0, len(combo_list), COMBOS_PER_QUERY):
            batch = combo_list[i : i + COMBOS_PER_QUERY]
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
            ci, ri = match_rows(cand_rows, rows)
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
            new_group = gaps > TIE_RTOL * np.maximum(np.abs(s_sorted[:-1]), np.finfo(float).tiny)
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

"""SliceLine's search, level by level: level one in one pass, then candidates, pruning
and counting until no candidate can reach the top k (see the package docstring)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from analysis.discovery.sliceline.candidates import join_parents, pairs_level2
from analysis.discovery.sliceline.counter import Counter
from analysis.discovery.sliceline.counting import (
    NULL_CODE,
    Counting,
    SharedCounts,
)
from analysis.discovery.sliceline.scoring import TIE_RTOL, kth_best, prune_line, scores, upper_bounds
from analysis.discovery.sliceline.source import CodedSource, level_one, prepare_source
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
    source = prepare_source(con, source_sql, list(params or []), features, error_column)
    return _search(con, source, features, float(alpha), bool(prune), counting, shared, min_support, max_level, top_k)


@dataclass
class _Level:
    items: np.ndarray  # (N, level) item ids; for level 1 the (feature, value) pairs
    size: np.ndarray
    errors: np.ndarray
    max_error: np.ndarray
    score: np.ndarray
    level: int


@dataclass(frozen=True)
class _Scale:
    """What scores and their bounds are measured against: the rows, their mean error,
    the weight of error against size, and the least size a slice may have."""

    n: int
    ebar: float
    alpha: float
    sigma: int


def _search(
    con,
    source: CodedSource,
    features: list[str],
    alpha: float,
    prune: bool,
    counting: Counting,
    shared: tuple[SharedCounts, int] | None,
    min_support,
    max_level: int,
    top_k: int,
) -> SliceLineResult:
    m = len(features)
    t0 = time.perf_counter()
    n, total, n_err, feat, val, cnt, se, sm = level_one(con, source)
    if n_err < n:
        raise ConfigError("The error column has missing values; give every row an error (0 if none).")
    if min_support is None:
        min_support = 0.01
    sigma = int(min_support * n) if isinstance(min_support, float) else int(min_support)
    ebar = total / n if n else 0.0
    scale = _Scale(n, ebar, alpha, sigma)
    order = np.lexsort((val, feat))
    feat, val, cnt, se, sm = feat[order], val[order], cnt[order], se[order], sm[order]
    score1 = scores(cnt, se, n, ebar, alpha) if total > 0 else np.full(len(cnt), -np.inf)
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
    parent_ok = valid1 if prune else (cnt >= sigma) & (cnt > 0)
    item_rows = np.flatnonzero(parent_ok)
    item_feat, item_val = feat[item_rows], val[item_rows]
    par_items = np.arange(len(item_rows)).reshape(-1, 1)
    par_ss, par_se, par_sm = cnt[item_rows], se[item_rows], sm[item_rows]
    with Counter(
        con,
        source,
        counting,
        n,
        values_of={j: val[feat == j] for j in range(m)},
        counts_of={j: cnt[feat == j] for j in range(m)},
        item_feat=item_feat,
        item_val=item_val,
        shared=shared,
    ) as counter:
        max_level = min(max_level, m)
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
            if prune and len(par_items):
                # a parent whose own bound is below the threshold has no child that could reach it
                own = upper_bounds(par_ss, par_se, par_sm, n, ebar, alpha, sigma)
                keep = own >= prune_line(theta)
                par_items, par_ss, par_se, par_sm = par_items[keep], par_ss[keep], par_se[keep], par_sm[keep]
                entry["extendable"] = len(par_items)
            cands, generated, pruned = _candidates(
                par_items, par_ss, par_se, par_sm, theta, level, item_feat, scale, prune, counting
            )
            entry.update(generated=generated, pruned=pruned)
            if len(cands) == 0:
                entry.update(
                    seconds=round(time.perf_counter() - t1, 4), base=counter.base.kind, counted=counter.base.shown
                )
                break
            c_ss, c_se, c_sm = counter.evaluate(cands, level)
            c_sc = scores(c_ss, c_se, n, ebar, alpha)
            levels.append(_Level(cands, c_ss, c_se, c_sm, c_sc, level))
            pool_scores.append(c_sc[(c_ss >= sigma) & (c_sc > 0)])
            theta = kth_best(np.concatenate(pool_scores), top_k)
            valid = (c_ss >= sigma) & (c_se > 0)
            entry.update(
                evaluated=len(cands),
                valid=int(valid.sum()),
                threshold=theta,
                seconds=round(time.perf_counter() - t1, 4),
                base=counter.base.kind,
                counted=counter.base.shown,
            )
            nxt = valid if prune else (c_ss >= sigma) & (c_ss > 0)
            par_items, par_ss, par_se, par_sm = cands[nxt], c_ss[nxt], c_se[nxt], c_sm[nxt]
    top, evaluated = _results(levels, top_k, features, item_feat, item_val, sigma)
    return SliceLineResult(
        top_slices=top,
        evaluated=evaluated,
        candidates_per_level=stats,
        n_rows=int(n),
        total_errors=total,
        min_support=sigma,
        alpha=alpha,
        features=tuple(features),
        top_k=top_k,
        max_level=max_level,
        pruned=prune,
    )


def _candidates(par_items, par_ss, par_se, par_sm, theta, level, item_feat, scale: "_Scale", prune, counting):
    """Level-``level`` candidates from the parents, with the bound pruning applied;
    sorted lexicographically (the next level's join needs shared prefixes adjacent)."""
    line = prune_line(theta)
    out, generated, pruned = [], 0, 0
    if level == 2:
        chunks = (
            (np.column_stack([par_items[a, 0], par_items[b, 0]]), np.column_stack([a, b]))
            for a, b in pairs_level2(item_feat[par_items[:, 0]])
        )
    else:
        chunks = [join_parents(par_items, item_feat, len(item_feat), counting.max_packed_key)]
    for cands, pidx in chunks:
        generated += len(cands)
        if len(cands) and prune:
            ss = par_ss[pidx].min(axis=1)
            ub = upper_bounds(
                ss, par_se[pidx].min(axis=1), par_sm[pidx].min(axis=1), scale.n, scale.ebar, scale.alpha, scale.sigma
            )
            keep = (ss >= scale.sigma) & (ub >= line)
            pruned += int((~keep).sum())
            cands = cands[keep]
        if len(cands):
            out.append(cands)
    if not out:
        return np.zeros((0, level), dtype=np.int64), generated, pruned
    cands = np.concatenate(out)
    return cands[np.lexsort(cands.T[::-1])], generated, pruned


def _predicates(lv: _Level, item_feat, item_val) -> tuple[np.ndarray, np.ndarray]:
    """(feature index, value) matrices of a level's slices."""
    if lv.level == 1:
        return lv.items[:, :1], lv.items[:, 1:2]
    return item_feat[lv.items], item_val[lv.items]


def _results(levels: list[_Level], top_k: int, names, item_feat, item_val, sigma: int):
    feats, vals, lvl, size, err, mx, score = [], [], [], [], [], [], []
    width = max(lv.level for lv in levels)
    for lv in levels:
        f, v = _predicates(lv, item_feat, item_val)
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

    ok = np.flatnonzero((size >= sigma) & (size > 0) & (score > 0))
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

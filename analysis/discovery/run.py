"""Slice discovery on a project: encode, find (SliceLine), test, fold, rank.

:func:`discover` is what the Discover page and ``python -m analysis discover``
call. It returns a :class:`Discovery` whose ``slices`` table has one row per
reported slice, best first:

``rank``, ``where`` (readable slice; a lump of less frequent values named as "any
of 93 less frequent values of uid"), ``slice`` (a :class:`~analysis.slices.Slice`),
``predicates`` (column -> value, ``{"low", "high"}`` range, or None for missing;
see :meth:`~analysis.discovery.encode.EncodedFeature.predicate`), ``level``, ``size``, ``errors`` (error
sum), ``error_rate`` (mean error) with ``ci_low`` / ``ci_high``,
``rest_error_rate``, ``score`` (SliceLine), ``impact`` (excess error over the
average, ``errors − size·ē``: excess misclassifications, or money for a cost),
``p_value`` (slice vs rest), ``q_value`` (Benjamini–Hochberg over every slice
evaluated in the run), ``significant`` (q below the threshold) and
``folded_under`` (the rank of a better slice this one nearly duplicates, or
NaN).

A slice is *folded* under a better-ranked one when the two select nearly the
same rows: their common rows are at least ``fold_overlap`` (90%) of the larger
one's. This covers a condition added to a slice that hardly changes its rows,
and two features that say the same thing (a device that only one channel uses).

Id-like features (nearly every value unique: :func:`analysis.breakdown.is_id_like`)
are left out of the search unless ``keep_id_like``; ``skipped_features`` and
``notes`` say which.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import duckdb
import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..expressions import first_line
from ..project import Project
from ..scope import Scope
from ..slices import Slice
from ..sql import quote_ident
from .encode import ERROR_COLUMN, Encoding, RowsError, encode, error_choices, materialized
from .significance import bh_qvalues, error_rate_interval, pooled_z_pvalues
from .sliceline import SharedCounts, find_slices

RANKINGS = ("score", "impact")
COLUMNS = ["rank", "where", "predicates", "level", "size", "errors", "error_rate", "ci_low", "ci_high",
           "rest_error_rate", "score", "impact", "p_value", "q_value", "significant", "folded_under", "slice"]


@dataclass
class Discovery:
    """The result of :func:`discover` (see the module docstring for ``slices``)."""

    project: str
    scope: Scope
    error: str
    slices: pd.DataFrame
    n_rows: int
    total_errors: float
    n_evaluated: int
    candidates_per_level: list[dict]
    min_support: int
    alpha: float
    max_level: int
    top_k: int
    rank_by: str = "score"
    q_threshold: float = 0.05
    seconds: float = 0.0
    features: list[str] = field(default_factory=list)
    evaluated: pd.DataFrame | None = None  # every slice tested: predicates, size, errors, score, p, q
    skipped_features: list[dict] = field(default_factory=list)  # id-like features left out: column, distinct, rows
    notes: list[str] = field(default_factory=list)  # what a reader must know about the search (features left out)

    @property
    def mean_error(self) -> float:
        return self.total_errors / self.n_rows if self.n_rows else math.nan

    def to_dict(self) -> dict:
        rows = []
        for r in self.slices.itertuples(index=False):
            rows.append({
                "rank": int(r.rank), "where": r.where, "predicates": r.predicates, "slice": r.slice.to_dict(),
                "level": int(r.level), "size": int(r.size), "errors": float(r.errors),
                "error_rate": float(r.error_rate), "ci_low": _num(r.ci_low), "ci_high": _num(r.ci_high),
                "rest_error_rate": _num(r.rest_error_rate), "score": float(r.score), "impact": float(r.impact),
                "p_value": _num(r.p_value), "q_value": _num(r.q_value), "significant": bool(r.significant),
                "folded_under": None if pd.isna(r.folded_under) else int(r.folded_under),
            })
        return {
            "project": self.project, "error": self.error, "rank_by": self.rank_by, "rows": self.n_rows,
            "total_errors": self.total_errors, "mean_error": _num(self.mean_error), "alpha": self.alpha,
            "min_support": self.min_support, "max_level": self.max_level, "top": self.top_k,
            "features": self.features, "evaluated": self.n_evaluated, "q_threshold": self.q_threshold,
            "candidates_per_level": self.candidates_per_level, "seconds": self.seconds, "slices": rows,
            "skipped_features": self.skipped_features, "notes": self.notes,
        }


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def discover(con: duckdb.DuckDBPyConnection, project: Project, scope: Scope = Scope(), *,
             error: str | RowsError = "misclassification", columns: list[str] | None = None, bins: int = 5,
             alpha: float = 0.95, min_support: int | float | None = None, max_level: int = 3, top_k: int = 10,
             rank_by: str = "score", q_threshold: float = 0.05, fold_overlap: float = 0.9,
             slice_: Slice = Slice(), keep_id_like: bool = False) -> Discovery:
    """The worst slices of ``scope`` by SliceLine, with significance (see the module docstring);
    id-like features are left out (with a note) unless ``keep_id_like``."""
    _check_options(rank_by, q_threshold)
    start = time.perf_counter()
    try:
        encoding = encode(con, project, scope, columns=columns, error=error, bins=bins, slice_=slice_,
                          keep_id_like=keep_id_like)
        with materialized(con, encoding) as enc:
            return _search(con, project, scope, enc, start, alpha=alpha, min_support=min_support,
                           max_level=max_level, top_k=top_k, rank_by=rank_by, q_threshold=q_threshold,
                           fold_overlap=fold_overlap)
    except duckdb.Error as exc:  # a cost is checked on every row first; this is the net behind that check
        if isinstance(error, str) and error not in error_choices(project):
            raise ConfigError(f"The cost {error!r} fails on {project.name}'s rows: {first_line(exc)}") from None
        raise


def discover_each(con: duckdb.DuckDBPyConnection, project: Project, scope: Scope, errors: list[RowsError], *,
                  columns: list[str] | None = None, bins: int = 5, cuts: list | None = None,
                  keep_id_like: bool = False, **options) -> list[Discovery | ConfigError]:
    """One search per error over the same rows (the errors share their rows and where
    they are defined, as a comparison's two directions of disagreement do): the rows
    are encoded once, with a column per error, and each search reads its own. A search
    that cannot run gives its :class:`ConfigError` in its place."""
    _check_options(options.get("rank_by", "score"), options.get("q_threshold", 0.05))
    first, more = errors[0], errors[1:]
    columns_of = {f"sb_error_{i}": e.error for i, e in enumerate(more, start=1)}
    encoding = encode(con, project, scope, columns=columns, error=first, bins=bins, more_errors=columns_of, cuts=cuts,
                      keep_id_like=keep_id_like)
    out: list[Discovery | ConfigError] = []
    with materialized(con, encoding) as enc:
        features = ", ".join(quote_ident(f.column) for f in enc.features)
        e = quote_ident(ERROR_COLUMN)
        error_columns = [ERROR_COLUMN, *columns_of]
        # The searches ask for mostly the same feature combinations: counted once for all.
        counts = SharedCounts(con, enc.sql, enc.params, [f.column for f in enc.features], error_columns)
        for index, (error, column) in enumerate(zip(errors, error_columns)):
            start = time.perf_counter()
            sql = f"SELECT {features}, {quote_ident(column)} AS {e} FROM ({enc.sql}) AS sb_encoded"
            totals = (f"SELECT count(*), coalesce(sum({e}), 0), coalesce(sum({e} * {e}), 0) FROM ({sql}) AS t", [])
            one = replace(enc, sql=sql, totals=totals, error=error.name, binary_error=error.binary)
            try:
                out.append(_search(con, project, scope, one, start, shared=(counts, index), **options))
            except ConfigError as exc:
                out.append(exc)
    return out


def _check_options(rank_by: str, q_threshold: float) -> None:
    if rank_by not in RANKINGS:
        raise ConfigError(f"Rank by one of {', '.join(RANKINGS)}, not {rank_by!r}.")
    if not 0 < q_threshold < 1:
        raise ConfigError(f"The q-value threshold must be in (0, 1), not {q_threshold!r}.")


def _search(con, project: Project, scope: Scope, enc: Encoding, start: float, *, alpha: float = 0.95,
            min_support: int | float | None = None, max_level: int = 3, top_k: int = 10, rank_by: str = "score",
            q_threshold: float = 0.05, fold_overlap: float = 0.9, shared=None) -> Discovery:
    """SliceLine over an encoding already materialized, then the tests, intervals and folding
    (``shared``: counts shared with the other searches over the same rows, see discover_each)."""
    n, total, total_sq = con.execute(*enc.totals).fetchall()[0]
    if not n:
        raise ConfigError(f"No rows with a defined {enc.error} in this scope: nothing to search.")
    features = [f.column for f in enc.features]
    found = find_slices(con, enc.sql, enc.params, features, error_column=ERROR_COLUMN, alpha=alpha,
                        min_support=min_support, max_level=max_level, top_k=top_k, shared=shared)
    evaluated = found.evaluated.copy()
    evaluated["p_value"] = pooled_z_pvalues(evaluated["size"], evaluated["errors"], n, total, total_sq)
    evaluated["q_value"] = bh_qvalues(evaluated["p_value"].to_numpy())
    evaluated["impact"] = evaluated["errors"] - evaluated["size"] * (total / n)
    if rank_by == "score":
        chosen = found.top_slices[["predicates", "level", "size", "errors", "score"]]
    else:  # the evaluated slices that cost the most errors beyond the average
        chosen = evaluated[evaluated["impact"] > 0].sort_values(["impact", "score"], ascending=False).head(top_k)
        chosen = chosen[["predicates", "level", "size", "errors", "score"]]
    table = _reported(enc, chosen, evaluated, n, total)
    _add_intervals(con, enc, table)
    _fold(con, enc, table, fold_overlap)
    table["significant"] = table["q_value"] < q_threshold
    return Discovery(project.name, scope, enc.error, table[COLUMNS], int(n), float(total), len(evaluated),
                     found.candidates_per_level, found.min_support, alpha, max_level, top_k, rank_by,
                     q_threshold, time.perf_counter() - start, features,
                     evaluated[["predicates", "level", "size", "errors", "score", "impact", "p_value", "q_value"]],
                     [{"column": c.column, "distinct": c.distinct, "rows": c.rows} for c in enc.skipped], enc.notes())


def _key(predicates: dict) -> tuple:
    return tuple(sorted((k, -1 if v is None else int(v)) for k, v in predicates.items()))


def _reported(enc: Encoding, chosen: pd.DataFrame, evaluated: pd.DataFrame, n: int, total: float) -> pd.DataFrame:
    stats = {_key(p): (pv, qv, im) for p, pv, qv, im in zip(evaluated["predicates"], evaluated["p_value"],
                                                            evaluated["q_value"], evaluated["impact"])}
    rows = []
    for rank, r in enumerate(chosen.itertuples(index=False), start=1):
        p_value, q_value, impact = stats.get(_key(r.predicates), (math.nan, math.nan, r.errors - r.size * total / n))
        slice_ = enc.slice_of(r.predicates)
        rest = n - r.size
        rows.append({
            "rank": rank, "where": enc.describe(r.predicates), "slice": slice_, "codes": r.predicates,
            "predicates": {c: enc.feature(c).predicate(v) for c, v in r.predicates.items()},
            "level": int(r.level), "size": int(r.size), "errors": float(r.errors),
            "error_rate": r.errors / r.size, "rest_error_rate": (total - r.errors) / rest if rest else math.nan,
            "score": float(r.score), "impact": float(impact), "p_value": p_value, "q_value": q_value,
        })
    return pd.DataFrame(rows, columns=[*COLUMNS, "codes"])


def _add_intervals(con, enc: Encoding, table: pd.DataFrame) -> None:
    """Each reported slice's error-rate interval (its own sum of squares for a real-valued error)."""
    squares = [math.nan] * len(table)
    if not enc.binary_error and len(table):
        sums, params = [], []
        for codes in table["codes"]:
            pred, pred_params = _predicate_sql(codes)
            params += pred_params
            e = quote_ident(ERROR_COLUMN)
            sums.append(f"sum(CASE WHEN {pred} THEN {e} * {e} END)")
        squares = list(con.execute(f"SELECT {', '.join(sums)} FROM ({enc.sql}) AS encoded",
                                   params + enc.params).fetchall()[0])
    ceiling = 1.0 if enc.error == "brier" else None
    bounds = [error_rate_interval(s, e, q or 0.0, enc.binary_error, ceiling)
              for s, e, q in zip(table["size"], table["errors"], squares)]
    table["ci_low"] = [b[0] for b in bounds]
    table["ci_high"] = [b[1] for b in bounds]


def _predicate_sql(codes: dict) -> tuple[str, list]:
    """A slice's predicate over the encoded columns."""
    conds, params = [], []
    for column, code in codes.items():
        if code is None:
            conds.append(f"{quote_ident(column)} IS NULL")
        else:
            conds.append(f"{quote_ident(column)} = ?")
            params.append(int(code))
    return " AND ".join(conds) or "TRUE", params


def _fold(con, enc: Encoding, table: pd.DataFrame, overlap: float) -> None:
    """Mark near-duplicates of a better-ranked slice (see the module docstring)."""
    sizes = list(table["size"])
    # Only pairs whose sizes are close enough can overlap that much; count their
    # common rows in one pass over the encoded rows.
    pairs = [(i, j) for j in range(len(table)) for i in range(j)
             if min(sizes[i], sizes[j]) >= overlap * max(sizes[i], sizes[j])]
    common: dict[tuple[int, int], int] = {}
    if pairs:
        preds = [_predicate_sql(c) for c in table["codes"]]
        sums, params = [], []
        for i, j in pairs:
            sums.append(f"count(*) FILTER (WHERE ({preds[i][0]}) AND ({preds[j][0]}))")
            params += preds[i][1] + preds[j][1]
        counts = con.execute(f"SELECT {', '.join(sums)} FROM ({enc.sql}) AS encoded", params + enc.params).fetchall()[0]
        common = dict(zip(pairs, counts))
    folded = [np.nan] * len(table)
    for j in range(len(table)):
        for i in range(j):  # i ranks better than j
            if np.isnan(folded[i]) and common.get((i, j), 0) >= overlap * max(sizes[i], sizes[j]):
                folded[j] = int(table["rank"].iloc[i])
                break
    table["folded_under"] = folded

"""Slice discovery on a project: encode, find (SliceLine), test, fold, rank.

:func:`discover` is what the Discover page and ``python -m analysis discover``
call. It returns a :class:`Discovery` whose ``slices`` table has one row per
reported slice, best first:

``rank``, ``where`` (readable slice; a lump of less frequent values named as "any
of 93 less frequent values of uid"), ``slice`` (a :class:`~analysis.slices.model.Slice`),
``predicates`` (column -> value, ``{"low", "high"}`` range, or None for missing;
see :meth:`~analysis.discovery.encode.EncodedFeature.predicate`), ``level``, ``size``, ``errors`` (error
sum), ``error_rate`` (mean error) with ``ci_low`` / ``ci_high``,
``rest_error_rate``, ``score`` (SliceLine), ``impact`` (excess error over the
average, ``errors − size·ē``: excess misclassifications, or money for a cost),
``p_value`` (slice vs rest), ``q_value`` (Benjamini–Hochberg over every slice
evaluated in the run), ``significant`` (q below the threshold) and
``folded_under`` (always NaN here: near-duplicates are listed under their entry)
and ``variants`` (the near-duplicates folded into this entry: ``where``, ``size``,
``error_rate``), and for the rankings against a baseline ``expected_errors``,
``expected_rate``, ``excess`` (errors beyond the baseline), ``excess_rate``,
``other_error_rate`` (the other version's, same slice) and ``z``.

*Ranking* (``ranking``): ``"expected"`` (the default: errors beyond what the model's
own scores predict for those rows), ``"version"`` (errors beyond another version's
error rate on the same slice, ``other_version``), both from
:mod:`analysis.discovery.expected`, or ``"error"`` (plain error, SliceLine, ordered by
``rank_by``: ``score`` or ``impact``). For a cost (an outcome column such as money
lost, or a cost expression: the scores say how likely an error is, not what it costs),
and without any score (or, for regression, prediction) in scope, ``"expected"`` falls
back to plain error and says so in ``notes``.

*Folding* (:mod:`analysis.discovery.fold`): a slice whose rows nearly equal a
better-ranked entry's (Jaccard index at least ``fold_overlap``, 0.8) is listed among
that entry's variants instead of taking a place of its own: a condition added to a
slice that hardly changes its rows, two features that say the same thing (a device
that only one channel uses).

Id-like features (nearly every value unique: :func:`analysis.slices.breakdown.is_id_like`)
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
from scipy import stats

from analysis.discovery import expected
from analysis.discovery.encode import (
    ERROR_COLUMN,
    Encoding,
    RowsError,
    codes_sql,
    encode,
    error_choices,
    is_cost,
    materialized,
)
from analysis.discovery.fold import contains, fold
from analysis.discovery.significance import error_rate_interval
from analysis.discovery.sliceline import SharedCounts, find_slices
from analysis.errors import ConfigError
from analysis.metrics.expressions import first_line
from analysis.slices import Slice
from analysis.stats.intervals import pooled_z_pvalues
from analysis.stats.multiple_testing import bh_qvalues
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident

RANKINGS = ("score", "impact")
AGAINST = ("expected", "version", "error")  # what a slice's errors are held against
RANKING_WORDS = {
    "expected": "worse than its scores predict",
    "version": "worse than another version",
    "error": "plain error",
}
COLUMNS = [
    "rank",
    "where",
    "predicates",
    "level",
    "size",
    "errors",
    "error_rate",
    "ci_low",
    "ci_high",
    "rest_error_rate",
    "score",
    "impact",
    "p_value",
    "q_value",
    "significant",
    "folded_under",
    "slice",
]
# Quantile bins per number: SliceLine's exact search stays with fifths; the rankings against
# a baseline search every one- and two-condition slice and every "below / from a cut point"
# run of bins, so they afford cut points fine enough for a band such as "age < 25".
DEFAULT_BINS = {"error": 5, "expected": 30, "version": 30}
CANDIDATES_PER_ENTRY = 20  # slices considered per entry reported (most fold into a better one)
Z_FOLD = 1.96  # a wider slice with less excess than this outside a better entry folds into it
EXCESS_COLUMNS = ["expected_errors", "expected_rate", "excess", "excess_rate", "other_error_rate", "z", "variants"]


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
    ranking: str = "error"  # what the errors are held against (AGAINST)
    other_version: str | None = None  # the version held against, for ranking "version"

    @property
    def ranking_words(self) -> str:
        """The ranking in words: "worse than its scores predict", "worse than credit-v1", "plain error"."""
        if self.ranking == "version" and self.other_version:
            return f"worse than {self.other_version}"
        return RANKING_WORDS[self.ranking]

    @property
    def mean_error(self) -> float:
        return self.total_errors / self.n_rows if self.n_rows else math.nan

    def to_dict(self) -> dict:
        rows = []
        for r in self.slices.itertuples(index=False):
            rows.append(
                {
                    "rank": int(r.rank),
                    "where": r.where,
                    "predicates": r.predicates,
                    "slice": r.slice.to_dict(),
                    "level": int(r.level),
                    "size": int(r.size),
                    "errors": float(r.errors),
                    "error_rate": float(r.error_rate),
                    "ci_low": _num(r.ci_low),
                    "ci_high": _num(r.ci_high),
                    "rest_error_rate": _num(r.rest_error_rate),
                    "score": float(r.score),
                    "impact": float(r.impact),
                    "p_value": _num(r.p_value),
                    "q_value": _num(r.q_value),
                    "significant": bool(r.significant),
                    "folded_under": None if pd.isna(r.folded_under) else int(r.folded_under),
                    "expected_errors": _num(r.expected_errors),
                    "expected_rate": _num(r.expected_rate),
                    "excess": _num(r.excess),
                    "excess_rate": _num(r.excess_rate),
                    "other_error_rate": _num(r.other_error_rate),
                    "z": _num(r.z),
                    "variants": [
                        {"where": v["where"], "size": int(v["size"]), "error_rate": _num(v["error_rate"])}
                        for v in r.variants
                    ],
                }
            )
        return {
            "project": self.project,
            "error": self.error,
            "rank_by": self.rank_by,
            "rows": self.n_rows,
            "total_errors": self.total_errors,
            "mean_error": _num(self.mean_error),
            "alpha": self.alpha,
            "min_support": self.min_support,
            "max_level": self.max_level,
            "top": self.top_k,
            "features": self.features,
            "evaluated": self.n_evaluated,
            "q_threshold": self.q_threshold,
            "candidates_per_level": self.candidates_per_level,
            "seconds": self.seconds,
            "slices": rows,
            "skipped_features": self.skipped_features,
            "notes": self.notes,
            "ranking": self.ranking,
            "ranking_words": self.ranking_words,
            "other_version": self.other_version,
        }


def _num(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def discover(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    scope: Scope = Scope(),
    *,
    error: str | RowsError = "misclassification",
    columns: list[str] | None = None,
    bins: int | None = None,
    alpha: float = 0.95,
    min_support: int | float | None = None,
    max_level: int = 3,
    top_k: int = 10,
    rank_by: str = "score",
    q_threshold: float = 0.05,
    fold_overlap: float = 0.8,
    slice_: Slice = Slice(),
    keep_id_like: bool = False,
    ranking: str = "expected",
    other_version: str | None = None,
) -> Discovery:
    """The slices of ``scope`` where the model is worse than it should be (``ranking``,
    see the module docstring), near-duplicates folded into their entry, with
    significance; id-like features are left out (with a note) unless ``keep_id_like``."""
    _check_options(rank_by, q_threshold)
    if ranking not in AGAINST:
        raise ConfigError(f"Rank against one of {', '.join(AGAINST)}, not {ranking!r}.")
    if not 0 < fold_overlap <= 1:
        raise ConfigError(f"The overlap that folds two slices must be in (0, 1], not {fold_overlap!r}.")
    start = time.perf_counter()
    notes = []
    if ranking == "expected" and isinstance(error, str) and is_cost(project, error):
        ranking = "error"
        notes.append(
            f"{error} is a cost: the scores say how likely an error is, not what it costs, so it is "
            "ranked by plain cost (hold it against another version to see where this one costs more)."
        )
    elif ranking == "expected" and not isinstance(error, RowsError) and not expected.has_basis(con, project, scope):
        ranking = "error"
        notes.append(
            f"No row in scope has a {expected.basis(project)}: ranked by plain error instead of "
            "errors beyond what the scores predict."
        )
    if bins is None:
        bins = DEFAULT_BINS[ranking]
    try:
        if ranking != "error":
            return _excess(
                con,
                project,
                scope,
                start,
                ranking=ranking,
                other_version=other_version,
                error=error,
                columns=columns,
                bins=bins,
                slice_=slice_,
                keep_id_like=keep_id_like,
                min_support=min_support,
                max_level=max_level,
                top_k=top_k,
                alpha=alpha,
                q_threshold=q_threshold,
                fold_overlap=fold_overlap,
            )
        encoding = encode(
            con, project, scope, columns=columns, error=error, bins=bins, slice_=slice_, keep_id_like=keep_id_like
        )
        with materialized(con, encoding) as enc:
            found = _search(
                con,
                project,
                scope,
                enc,
                start,
                alpha=alpha,
                min_support=min_support,
                max_level=max_level,
                top_k=top_k,
                rank_by=rank_by,
                q_threshold=q_threshold,
                fold_overlap=fold_overlap,
                entries=True,
            )
            found.notes = found.notes + notes
            return found
    except duckdb.Error as exc:  # a cost is checked on every row first; this is the net behind that check
        if isinstance(error, str) and error not in error_choices(project):
            raise ConfigError(f"The cost {error!r} fails on {project.name}'s rows: {first_line(exc)}") from None
        raise


def _excess(
    con,
    project: Project,
    scope: Scope,
    start: float,
    *,
    ranking: str,
    other_version: str | None,
    error,
    columns,
    bins: int,
    slice_: Slice,
    keep_id_like: bool,
    min_support,
    max_level: int,
    top_k: int,
    alpha: float,
    q_threshold: float,
    fold_overlap: float,
) -> Discovery:
    """The rankings against a baseline (:mod:`analysis.discovery.expected`)."""
    if isinstance(max_level, bool) or not isinstance(max_level, int) or max_level < 1:
        raise ConfigError(f"max_level must be a positive integer, not {max_level!r}.")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top_k must be a positive integer, not {top_k!r}.")
    with expected.prepared(
        con,
        project,
        scope,
        ranking=ranking,
        other_version=other_version,
        error=error,
        columns=columns,
        bins=bins,
        slice_=slice_,
        keep_id_like=keep_id_like,
    ) as rows:
        enc = rows.encoding
        tot = expected.totals(con, rows)
        n, total = tot["n1"], tot["o1"]
        if not n:
            raise ConfigError(f"No rows with a defined {enc.error} in this scope: nothing to search.")
        if ranking == "version" and not tot["n0"]:
            raise ConfigError(
                f"{other_version} has no rows with a defined {enc.error} in this scope: nothing to compare with."
            )
        sigma = expected.support(min_support, n)
        sigma0 = expected.support(min_support, tot["n0"]) if ranking == "version" else 0
        evaluated = expected.search(con, rows, min_support=sigma, min_other=sigma0, max_level=max_level, top_k=top_k)
        evaluated["q_value"] = bh_qvalues(evaluated["p_value"].to_numpy())
        evaluated = evaluated.assign(
            size=evaluated["n1"].astype(int),
            errors=evaluated["o1"],
            score=evaluated["z"],
            impact=evaluated["o1"] - evaluated["n1"] * (total / n),
        )
        chosen = expected.ranked(evaluated[evaluated["excess"] > 0]).head(CANDIDATES_PER_ENTRY * top_k)
        rows_out = []
        for r in chosen.itertuples(index=False):
            rest = n - r.n1
            rows_out.append(
                {
                    "rank": len(rows_out) + 1,
                    "where": enc.describe(r.predicates),
                    "slice": enc.slice_of(r.predicates),
                    "codes": r.predicates,
                    "level": int(r.level),
                    "size": int(r.n1),
                    "errors": float(r.o1),
                    "predicates": {c: enc.feature(c).predicate(v) for c, v in r.predicates.items()},
                    "error_rate": r.o1 / r.n1,
                    "rest_error_rate": (total - r.o1) / rest if rest else math.nan,
                    "score": float(r.z),
                    "impact": float(r.impact),
                    "p_value": r.p_value,
                    "q_value": r.q_value,
                    "expected_errors": float(r.expected),
                    "expected_rate": r.expected / r.n1,
                    "excess": float(r.excess),
                    "excess_rate": r.excess / r.n1,
                    "z": float(r.z),
                    "squares": float(r.q1),
                    "other_error_rate": r.o0 / r.n0 if ranking == "version" and r.n0 else math.nan,
                }
            )
        table = pd.DataFrame(rows_out, columns=[*COLUMNS, *EXCESS_COLUMNS, "codes", "squares"])
        ceiling = 1.0 if enc.error == "brier" else None
        bounds = [
            error_rate_interval(s, e, q, enc.binary_error, ceiling)
            for s, e, q in zip(table["size"], table["errors"], table["squares"])
        ]
        table["ci_low"] = [b[0] for b in bounds]
        table["ci_high"] = [b[1] for b in bounds]
        table = _entries(
            con,
            enc.sql,
            enc.params,
            table,
            fold_overlap,
            top_k,
            _relation(chosen.reset_index(drop=True), ranking, int((evaluated["level"] == 1).sum())),
        )
        table["significant"] = table["q_value"] < q_threshold
        per_level = [
            {"level": int(lv), "evaluated": int(k)} for lv, k in evaluated["level"].value_counts().sort_index().items()
        ]
        return Discovery(
            project.name,
            scope,
            enc.error,
            table[[*COLUMNS, *EXCESS_COLUMNS]],
            int(n),
            float(total),
            len(evaluated),
            per_level,
            sigma,
            alpha,
            max_level,
            top_k,
            "z",
            q_threshold,
            time.perf_counter() - start,
            [f.column for f in enc.features],
            evaluated[
                ["predicates", "level", "size", "errors", "score", "impact", "p_value", "q_value", "expected", "excess"]
            ],
            [{"column": c.column, "distinct": c.distinct, "rows": c.rows} for c in enc.skipped],
            enc.notes(),
            ranking,
            other_version if ranking == "version" else None,
        )


def _relation(chosen: pd.DataFrame, ranking: str, n_conditions: int):
    """How slice ``j`` relates to a better-ranked ``i`` when one holds the other's rows
    (:func:`analysis.discovery.fold.fold`): a refinement ``j`` of ``i`` folds into it
    unless its excess rate is significantly above that of ``i``'s other rows; a wider
    ``j`` *replaces* ``i`` when ``i`` is not significantly worse than ``j``'s other rows
    (the extra conditions of ``i`` add nothing: the simpler description wins), and else
    folds into ``i`` when its rows outside ``i`` are not significantly worse than they
    should be (``j`` is ``i`` diluted with ordinary rows). "Significantly": z of at least
    :data:`Z_FOLD`, and for a refinement's excess over the rest of its slice, at the 5%
    level Bonferroni-corrected for the ``n_conditions`` conditions that could have been
    added (the best of many looks sharper by chance); the rows outside are one slice's
    sums minus the other's."""
    preds = list(chosen["predicates"])
    sums = chosen[list(expected.STATS)].to_numpy(dtype=float)

    def sharper(inner: int, outer: int) -> bool:
        """Whether slice ``inner`` (which ``outer`` holds) is significantly worse than
        ``outer``'s other rows: its extra conditions matter."""
        rest = sums[outer] - sums[inner]
        if rest[0] < 1:
            return False
        _, excess, variance, _ = expected.excess_of(*np.column_stack([sums[inner], rest]), ranking)
        sizes = np.array([sums[inner][0], rest[0]])
        spread = math.sqrt(float(np.sum(variance / sizes**2)))
        gap = float(excess[0] / sizes[0] - excess[1] / sizes[1])
        return spread > 0 and gap / spread >= sharp

    # A refinement is the best of every condition that could have been added: it must beat
    # the rest of its slice at a level Bonferroni-corrected for that many conditions.
    sharp = float(stats.norm.isf(0.05 / max(n_conditions, 1)))

    def relate(i: int, j: int) -> str | None:
        if contains(preds[i], preds[j]):  # j refines i (ranked below it): kept only if it is sharper
            return None if sharper(j, i) else "fold"
        if contains(preds[j], preds[i]):  # j widens i
            if len(preds[j]) < len(preds[i]) and not sharper(i, j):
                return "replace"  # i's extra conditions add nothing: the wider j says it more simply
            z = float(expected.excess_of(*(sums[j] - sums[i]), ranking)[3])
            return None if z >= Z_FOLD else "fold"  # nothing wrong outside i: j is i diluted
        return None

    return relate


def _entries(con, sql: str, params: list, table: pd.DataFrame, overlap: float, top_k: int, relate=None) -> pd.DataFrame:
    """Near-duplicates folded into their entry (:mod:`analysis.discovery.fold`): the
    ``top_k`` best entries, renumbered, each with its ``variants``."""
    under = fold(con, sql, params, list(table["codes"]), [int(s) for s in table["size"]], overlap, relate, top_k)
    # Entries in the order of the ranking (an entry that replaced a better-ranked slice
    # takes its own place: the evidence of what it replaced did not hold up).
    heads = [i for i, u in enumerate(under) if u is None][:top_k]
    variants = {i: [] for i in heads}
    for j, u in enumerate(under):
        if u in variants:
            r = table.iloc[j]
            variants[u].append(
                {"where": r["where"], "size": int(r["size"]), "error_rate": float(r["error_rate"]), "slice": r["slice"]}
            )
    out = table.iloc[heads].copy().reset_index(drop=True)
    out["rank"] = range(1, len(out) + 1)
    out["folded_under"] = np.nan
    out["variants"] = [variants[i] for i in heads]
    for column in EXCESS_COLUMNS:
        if column not in out:
            out[column] = np.nan
    return out


def discover_each(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    scope: Scope,
    errors: list[RowsError],
    *,
    columns: list[str] | None = None,
    bins: int = 5,
    cuts: list | None = None,
    keep_id_like: bool = False,
    **options,
) -> list[Discovery | ConfigError]:
    """One search per error over the same rows (the errors share their rows and where
    they are defined, as a comparison's two directions of disagreement do): the rows
    are encoded once, with a column per error, and each search reads its own. A search
    that cannot run gives its :class:`ConfigError` in its place."""
    _check_options(options.get("rank_by", "score"), options.get("q_threshold", 0.05))
    first, more = errors[0], errors[1:]
    columns_of = {f"sb_error_{i}": e.error for i, e in enumerate(more, start=1)}
    encoding = encode(
        con,
        project,
        scope,
        columns=columns,
        error=first,
        bins=bins,
        more_errors=columns_of,
        cuts=cuts,
        keep_id_like=keep_id_like,
    )
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


def _search(
    con,
    project: Project,
    scope: Scope,
    enc: Encoding,
    start: float,
    *,
    alpha: float = 0.95,
    min_support: int | float | None = None,
    max_level: int = 3,
    top_k: int = 10,
    rank_by: str = "score",
    q_threshold: float = 0.05,
    fold_overlap: float = 0.9,
    shared=None,
    entries: bool = False,
) -> Discovery:
    """SliceLine over an encoding already materialized, then the tests, intervals and folding
    (``shared``: counts shared with the other searches over the same rows, see discover_each;
    ``entries``: near-duplicates folded into their entry, ``top_k`` entries, instead of marked
    with ``folded_under``)."""
    n, total, total_sq = con.execute(*enc.totals).fetchall()[0]
    if not n:
        raise ConfigError(f"No rows with a defined {enc.error} in this scope: nothing to search.")
    features = [f.column for f in enc.features]
    found = find_slices(
        con,
        enc.sql,
        enc.params,
        features,
        error_column=ERROR_COLUMN,
        alpha=alpha,
        min_support=min_support,
        max_level=max_level,
        top_k=3 * top_k if entries else top_k,
        shared=shared,
    )
    evaluated = found.evaluated.copy()
    evaluated["p_value"] = pooled_z_pvalues(evaluated["size"], evaluated["errors"], n, total, total_sq)
    evaluated["q_value"] = bh_qvalues(evaluated["p_value"].to_numpy())
    evaluated["impact"] = evaluated["errors"] - evaluated["size"] * (total / n)
    if rank_by == "score":
        chosen = found.top_slices[["predicates", "level", "size", "errors", "score"]]
    else:  # the evaluated slices that cost the most errors beyond the average
        chosen = evaluated[evaluated["impact"] > 0].sort_values(["impact", "score"], ascending=False)
        chosen = chosen.head(3 * top_k if entries else top_k)[["predicates", "level", "size", "errors", "score"]]
    table = _reported(enc, chosen, evaluated, n, total)
    _add_intervals(con, enc, table)
    if entries:
        table = _entries(con, enc.sql, enc.params, table, fold_overlap, top_k)
    else:
        _fold(con, enc, table, fold_overlap)
    table["significant"] = table["q_value"] < q_threshold
    if not entries:
        table = table.assign(**{c: np.nan for c in EXCESS_COLUMNS if c != "variants"}, variants=[[]] * len(table))
    table = table[[*COLUMNS, *EXCESS_COLUMNS]]
    return Discovery(
        project.name,
        scope,
        enc.error,
        table,
        int(n),
        float(total),
        len(evaluated),
        found.candidates_per_level,
        found.min_support,
        alpha,
        max_level,
        top_k,
        rank_by,
        q_threshold,
        time.perf_counter() - start,
        features,
        evaluated[["predicates", "level", "size", "errors", "score", "impact", "p_value", "q_value"]],
        [{"column": c.column, "distinct": c.distinct, "rows": c.rows} for c in enc.skipped],
        enc.notes(),
    )


def _key(predicates: dict) -> tuple:
    return tuple(sorted((k, -1 if v is None else int(v)) for k, v in predicates.items()))


def _reported(enc: Encoding, chosen: pd.DataFrame, evaluated: pd.DataFrame, n: int, total: float) -> pd.DataFrame:
    stats = {
        _key(p): (pv, qv, im)
        for p, pv, qv, im in zip(
            evaluated["predicates"], evaluated["p_value"], evaluated["q_value"], evaluated["impact"]
        )
    }
    rows = []
    for rank, r in enumerate(chosen.itertuples(index=False), start=1):
        p_value, q_value, impact = stats.get(_key(r.predicates), (math.nan, math.nan, r.errors - r.size * total / n))
        slice_ = enc.slice_of(r.predicates)
        rest = n - r.size
        rows.append(
            {
                "rank": rank,
                "where": enc.describe(r.predicates),
                "slice": slice_,
                "codes": r.predicates,
                "predicates": {c: enc.feature(c).predicate(v) for c, v in r.predicates.items()},
                "level": int(r.level),
                "size": int(r.size),
                "errors": float(r.errors),
                "error_rate": r.errors / r.size,
                "rest_error_rate": (total - r.errors) / rest if rest else math.nan,
                "score": float(r.score),
                "impact": float(impact),
                "p_value": p_value,
                "q_value": q_value,
            }
        )
    return pd.DataFrame(rows, columns=[*COLUMNS, "codes"])


def _add_intervals(con, enc: Encoding, table: pd.DataFrame) -> None:
    """Each reported slice's error-rate interval (its own sum of squares for a real-valued error)."""
    squares = [math.nan] * len(table)
    if not enc.binary_error and len(table):
        sums, params = [], []
        for codes in table["codes"]:
            pred, pred_params = codes_sql(codes)
            params += pred_params
            e = quote_ident(ERROR_COLUMN)
            sums.append(f"sum(CASE WHEN {pred} THEN {e} * {e} END)")
        squares = list(
            con.execute(f"SELECT {', '.join(sums)} FROM ({enc.sql}) AS encoded", params + enc.params).fetchall()[0]
        )
    ceiling = 1.0 if enc.error == "brier" else None
    bounds = [
        error_rate_interval(s, e, q or 0.0, enc.binary_error, ceiling)
        for s, e, q in zip(table["size"], table["errors"], squares)
    ]
    table["ci_low"] = [b[0] for b in bounds]
    table["ci_high"] = [b[1] for b in bounds]


def _fold(con, enc: Encoding, table: pd.DataFrame, overlap: float) -> None:
    """Mark near-duplicates of a better-ranked slice (see the module docstring)."""
    sizes = list(table["size"])
    # Only pairs whose sizes are close enough can overlap that much; count their
    # common rows in one pass over the encoded rows.
    pairs = [
        (i, j)
        for j in range(len(table))
        for i in range(j)
        if min(sizes[i], sizes[j]) >= overlap * max(sizes[i], sizes[j])
    ]
    common: dict[tuple[int, int], int] = {}
    if pairs:
        preds = [codes_sql(c) for c in table["codes"]]
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

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

import time
from dataclasses import replace

import duckdb
import numpy as np

from analysis.discovery import expected
from analysis.discovery.against import search_against
from analysis.discovery.encode import (
    ERROR_COLUMN,
    Encoding,
    RowsError,
    encode,
    error_choices,
    is_cost,
    materialized,
)
from analysis.discovery.entries import add_intervals, fold_into_entries, mark_folded, reported_rows
from analysis.discovery.result import AGAINST, COLUMNS, EXCESS_COLUMNS, RANKINGS, Discovery
from analysis.discovery.sliceline import SharedCounts, find_slices
from analysis.errors import ConfigError
from analysis.metrics.expressions import first_line
from analysis.slices import Slice
from analysis.stats.intervals import pooled_z_pvalues
from analysis.stats.multiple_testing import bh_qvalues
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident

# Quantile bins per number: SliceLine's exact search stays with fifths; the rankings against
# a baseline search every one- and two-condition slice and every "below / from a cut point"
# run of bins, so they afford cut points fine enough for a band such as "age < 25".
DEFAULT_BINS = {"error": 5, "expected": 30, "version": 30}


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
            return search_against(
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
    table = reported_rows(enc, chosen, evaluated, n, total)
    add_intervals(con, enc, table)
    if entries:
        table = fold_into_entries(con, enc.sql, enc.params, table, fold_overlap, top_k)
    else:
        mark_folded(con, enc, table, fold_overlap)
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

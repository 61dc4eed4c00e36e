"""The rankings against a baseline (the errors the model expects, or another version's):
the search on excess errors, and when a wider or narrower slice says the same as a better one."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
from scipy import stats

from analysis.discovery import expected
from analysis.discovery.entries import CANDIDATES_PER_ENTRY, fold_into_entries
from analysis.discovery.fold import contains
from analysis.discovery.result import COLUMNS, EXCESS_COLUMNS, Discovery
from analysis.discovery.significance import error_rate_interval
from analysis.errors import ConfigError
from analysis.slices import Slice
from analysis.stats.multiple_testing import bh_qvalues
from analysis.store.project import Project
from analysis.store.scope import Scope

Z_FOLD = 1.96  # a wider slice with less excess than this outside a better entry folds into it


def search_against(
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
        table = fold_into_entries(
            con,
            enc.sql,
            enc.params,
            table,
            fold_overlap,
            top_k,
            fold_relation(chosen.reset_index(drop=True), ranking, int((evaluated["level"] == 1).sum())),
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


def fold_relation(chosen: pd.DataFrame, ranking: str, n_conditions: int):
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

"""From the slices a search ranked to the entries it reports: near-duplicates folded into the
better-ranked entry they repeat (kept as its variants), intervals of each entry's error rate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.discovery.encode import (
    ERROR_COLUMN,
    Encoding,
    codes_sql,
)
from analysis.discovery.fold import fold
from analysis.discovery.result import COLUMNS, EXCESS_COLUMNS
from analysis.discovery.significance import error_rate_interval
from analysis.store.sql import Sql, quote_ident

CANDIDATES_PER_ENTRY = 20  # slices considered per entry reported (most fold into a better one)


def fold_into_entries(
    con, sql: str, params: list, table: pd.DataFrame, overlap: float, top_k: int, relate=None
) -> pd.DataFrame:
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


def slice_key(predicates: dict) -> tuple:
    return tuple(sorted((k, -1 if v is None else int(v)) for k, v in predicates.items()))


def reported_rows(enc: Encoding, chosen: pd.DataFrame, evaluated: pd.DataFrame, n: int, total: float) -> pd.DataFrame:
    stats = {
        slice_key(p): (pv, qv, im)
        for p, pv, qv, im in zip(
            evaluated["predicates"], evaluated["p_value"], evaluated["q_value"], evaluated["impact"]
        )
    }
    rows = []
    for rank, r in enumerate(chosen.itertuples(index=False), start=1):
        p_value, q_value, impact = stats.get(
            slice_key(r.predicates), (math.nan, math.nan, r.errors - r.size * total / n)
        )
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


def add_intervals(con, enc: Encoding, table: pd.DataFrame) -> None:
    """Each reported slice's error-rate interval (its own sum of squares for a real-valued error)."""
    squares = [math.nan] * len(table)
    if not enc.binary_error and len(table):
        e = quote_ident(ERROR_COLUMN)
        sums = Sql.join(
            ", ",
            [
                Sql.compose("sum(CASE WHEN {slice} THEN {square} END)", slice=codes_sql(c), square=f"{e} * {e}")
                for c in table["codes"]
            ],
        )
        query = Sql.compose("SELECT {sums} FROM ({rows}) AS encoded", sums=sums, rows=(enc.sql, enc.params))
        squares = list(con.execute(*query).fetchall()[0])
    ceiling = 1.0 if enc.error == "brier" else None
    bounds = [
        error_rate_interval(s, e, q or 0.0, enc.binary_error, ceiling)
        for s, e, q in zip(table["size"], table["errors"], squares)
    ]
    table["ci_low"] = [b[0] for b in bounds]
    table["ci_high"] = [b[1] for b in bounds]


def mark_folded(con, enc: Encoding, table: pd.DataFrame, overlap: float) -> None:
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
        both = "count(*) FILTER (WHERE ({a}) AND ({b}))"
        sums = Sql.join(", ", [Sql.compose(both, a=preds[i], b=preds[j]) for i, j in pairs])
        query = Sql.compose("SELECT {sums} FROM ({rows}) AS encoded", sums=sums, rows=(enc.sql, enc.params))
        counts = con.execute(*query).fetchall()[0]
        common = dict(zip(pairs, counts))
    folded = [np.nan] * len(table)
    for j in range(len(table)):
        for i in range(j):  # i ranks better than j
            if np.isnan(folded[i]) and common.get((i, j), 0) >= overlap * max(sizes[i], sizes[j]):
                folded[j] = int(table["rank"].iloc[i])
                break
    table["folded_under"] = folded

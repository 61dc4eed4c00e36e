"""Near-duplicate slices fold into one entry.

Two slices are near-duplicates when they select nearly the same rows: the
Jaccard index of their row sets, ``|A ∩ B| / |A ∪ B|``, is at least the
threshold (0.8 by default). This covers a condition added to a slice that
hardly changes its rows (``channel = partner_api AND employment = self_employed``
and the same with ``AND has_cosigner = false`` when nine in ten have no
cosigner), and the same rows under different names (``channel = partner_api``
and ``device = server`` when only the partner channel uses servers: Jaccard 1).

Walking the slices best first, a slice becomes an *entry* unless it nearly
duplicates an earlier entry, or the caller's ``relate`` rule says an earlier entry
holds it (the rankings against a baseline fold a refinement of an entry that is no
sharper than the rest of it, and a wider slice whose excess lies all inside an
entry) or should replace it (a wider slice that says the same more simply); a
folded slice is listed among that entry's *variants*.

The common rows are counted in DuckDB over the encoded rows (one scan groups the
rows by which of up to :data:`SLICES_PER_SCAN` slices hold them), only for pairs
whose sizes allow the threshold (``min/max >= threshold``, since ``J <= min/max``),
that do not ask one column for two values (no common row), and where neither slice
holds the other (then ``J = small / large``); no row leaves the database.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from analysis.discovery.encode import codes_sql
from analysis.store.sql import Sql

SLICES_PER_SCAN = 60  # slices whose membership packs into one integer per row


def _span(code) -> tuple[float, float] | None:
    """The codes a condition admits, as a half-open interval; None for missing."""
    if code is None:
        return None
    if isinstance(code, tuple):
        return (-math.inf, code[1]) if code[0] == "lt" else (code[1], math.inf)
    return (int(code), int(code) + 1)


def _holds(outer, inner) -> bool:
    a, b = _span(outer), _span(inner)
    if a is None or b is None:
        return a is None and b is None
    return a[0] <= b[0] and b[1] <= a[1]


def _disjoint(x, y) -> bool:
    a, b = _span(x), _span(y)
    if a is None or b is None:
        return (a is None) != (b is None)
    return a[1] <= b[0] or b[1] <= a[0]


def contains(outer: dict, inner: dict) -> bool:
    """Whether slice ``outer`` holds every row of ``inner``: each of its conditions
    holds the one ``inner`` has on the same column (exact for these conjunctions)."""
    return len(outer) <= len(inner) and all(c in inner and _holds(v, inner[c]) for c, v in outer.items())


def _known(codes, sizes, threshold, i, j) -> float | None:
    """A pair's Jaccard index when no count is needed: zero when the sizes cannot reach
    ``threshold`` or the two ask one column for different values, ``small / large``
    when one slice holds the other; else None."""
    if not (sizes[i] > 0 and sizes[j] > 0 and min(sizes[i], sizes[j]) >= threshold * max(sizes[i], sizes[j])):
        return 0.0
    if any(c in codes[j] and _disjoint(v, codes[j][c]) for c, v in codes[i].items()):
        return 0.0
    if contains(codes[i], codes[j]) or contains(codes[j], codes[i]):
        return min(sizes[i], sizes[j]) / max(sizes[i], sizes[j])
    return None


def jaccard_pairs(
    con,
    source_sql: str,
    params: list,
    codes: list[dict],
    sizes: list[int],
    threshold: float,
    pairs: list[tuple[int, int]] | None = None,
) -> dict[tuple[int, int], float]:
    """Jaccard index of the ``pairs`` (default: every pair ``(i, j)``, ``i < j``) that can
    reach ``threshold`` (others: 0); ``source_sql`` yields the encoded rows (``sizes``: each
    slice's rows in it). Pairs that need a count are counted in one scan per
    :data:`SLICES_PER_SCAN` slices involved: each row's membership of those slices is
    packed into one integer, the rows are grouped by it, and the common rows of every
    pair follow from the groups' counts (numpy over a few hundred groups)."""
    if pairs is None:
        pairs = [(i, j) for j in range(len(codes)) for i in range(j)]
    out: dict[tuple[int, int], float] = {}
    counted = []
    for i, j in pairs:
        known = _known(codes, sizes, threshold, i, j)
        if known is None:
            counted.append((i, j))
        else:
            out[(i, j)] = known
    while counted:
        involved: list[int] = []
        batch = []
        for i, j in counted:
            new = [k for k in (i, j) if k not in involved]
            if len(involved) + len(new) > SLICES_PER_SCAN:
                continue
            involved += new
            batch.append((i, j))
        done = set(batch)
        counted = [p for p in counted if p not in done]
        bits = Sql.join(
            " + ",
            [
                Sql.compose("CASE WHEN {slice} THEN {bit} ELSE 0 END", slice=codes_sql(codes[k]), bit=str(1 << b))
                for b, k in enumerate(involved)
            ],
        )
        query = Sql.compose(
            "SELECT CAST({bits} AS BIGINT) AS m, count(*) AS n FROM ({rows}) AS sb_rows GROUP BY m",
            bits=bits,
            rows=(source_sql, params),
        )
        groups = con.execute(*query).fetchnumpy()
        masks, counts = np.asarray(groups["m"], dtype=np.int64), np.asarray(groups["n"], dtype=np.int64)
        member = ((masks[:, None] >> np.arange(len(involved))[None, :]) & 1).astype(np.int64)
        common = member.T @ (member * counts[:, None])
        at = {k: b for b, k in enumerate(involved)}
        for i, j in batch:
            c = int(common[at[i], at[j]])
            union = sizes[i] + sizes[j] - c
            out[(i, j)] = c / union if union else 0.0
    return out


DROPPED = -1
"""What :func:`fold` says of a slice that is no entry's variant once ``limit`` entries exist."""


def fold(
    con,
    source_sql: str,
    params: list,
    codes: list[dict],
    sizes: list[int],
    threshold: float = 0.8,
    relate: Callable[[int, int], str | None] | None = None,
    limit: int | None = None,
    chunk: int = 25,
) -> list[int | None]:
    """For slices given best first: ``None`` for an entry, else the index of the
    entry it folds into: the entry it overlaps most among those it nearly duplicates
    (Jaccard at least ``threshold``), else the first entry for which
    ``relate(k, slice)`` (``k`` the entry or one of its variants) says ``"fold"``; when
    it says ``"replace"``, the slice takes that entry's place and the entry, with its
    variants, becomes the slice's variants (a wider slice that says the same more simply).
    With ``limit``, once that many entries exist a slice that folds into none is
    :data:`DROPPED`. Overlaps are counted a chunk of slices at a time, only against
    the entries so far and the chunk."""
    under: list[int | None] = []
    entries: list[int] = []
    overlap: dict[tuple[int, int], float] = {}
    for start in range(0, len(codes), chunk):
        block = range(start, min(len(codes), start + chunk))
        wanted = [(min(i, j), max(i, j)) for j in block for i in [*entries, *range(start, j)]]
        overlap.update(jaccard_pairs(con, source_sql, params, codes, sizes, threshold, wanted))
        for j in block:
            best, best_j = None, threshold
            for i in entries:
                if overlap.get((min(i, j), j), 0.0) >= best_j:
                    best, best_j = i, overlap[(min(i, j), j)]
            if best is None and relate is not None:  # an entry, or any of its variants, holds it
                for pos, i in enumerate(entries):
                    verdicts = [relate(k, j) for k in [i, *(m for m in range(j) if under[m] == i)]]
                    if "replace" in verdicts and verdicts[0] == "replace":
                        entries[pos] = j
                        under = [j if (m == i or u == i) else u for m, u in enumerate(under)]
                        best = "replaced"
                        break
                    if "fold" in verdicts:
                        best = i
                        break
            if best == "replaced":
                under.append(None)
                continue
            if best is None:
                if limit is not None and len(entries) >= limit:
                    best = DROPPED
                else:
                    entries.append(j)
            under.append(best)
    return under

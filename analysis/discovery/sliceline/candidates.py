"""A level's candidates from the level below: the paper's join of parents sharing all but
one predicate, kept only when every subset is a valid parent (numpy over item ids)."""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------------------------
# candidate generation over item ids (an item is one feature = value; ids sort by feature, value)


def row_keys(rows: np.ndarray, base: int, limit: int) -> np.ndarray | None:
    """Integer keys of item-id rows, ordered like the rows; None if they would reach ``limit``."""
    width = rows.shape[1]
    if base**width >= limit:
        return None
    keys = np.zeros(rows.shape[0], dtype=np.int64)
    for c in range(width):
        keys = keys * base + rows[:, c]
    return keys


def pairs_level2(feat: np.ndarray, chunk: int = 1 << 22):
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


def join_parents(parents: np.ndarray, item_feat: np.ndarray, n_items: int, key_limit: int):
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
    keys = row_keys(parents, n_items, key_limit)
    lookup = None if keys is not None else {tuple(r): i for i, r in enumerate(parents.tolist())}
    found = np.ones(len(cands), dtype=bool)
    for p in range(level - 1):  # the subsets that leave out one of the shared predicates
        sub = np.delete(cands, p, axis=1)
        if keys is not None:
            sub_keys = row_keys(sub, n_items, key_limit)
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


def match_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j) with ``a[i] == b[j]`` (rows of equal width; rows unique within each)."""
    both = np.concatenate([a, b])
    tag = np.concatenate([np.zeros(len(a), dtype=np.int64), np.ones(len(b), dtype=np.int64)])
    order = np.lexsort([tag] + [both[:, c] for c in reversed(range(both.shape[1]))])
    srt = both[order]
    st = tag[order]
    eq = np.all(srt[1:] == srt[:-1], axis=1) & (st[:-1] == 0) & (st[1:] == 1)
    pos = np.flatnonzero(eq)
    return order[pos], order[pos + 1] - len(a)

"""The rows a SliceLine search reads: the source checked and projected once (integer-coded
features ``c0, c1, ..`` and the error ``e``), and level one, every ``feature = value``
counted in one pass."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.discovery.sliceline.counting import INT_TYPES, NULL_CODE, PERFECT_HASH_BITS
from analysis.errors import ConfigError
from analysis.store.sql import Sql, quote_ident


@dataclass(frozen=True)
class CodedSource:
    """The projection every query reads (``sql`` with ``params``), whether errors are 0/1
    (then no maximum error is counted), and blocks of features whose codes pack into
    one small key (level one groups by a block at a time)."""

    sql: str
    params: list
    binary: bool
    blocks: list[list[int]]

    def aggs(self, over_table: bool) -> str:
        """Size, error sum (and maximum error unless errors are 0/1) of a group."""
        if over_table:
            out = "CAST(sum(n) AS BIGINT) AS n, sum(se) AS se"
            return out if self.binary else out + ", max(sm) AS sm"
        out = "count(*) AS n, CAST(sum(e) AS DOUBLE) AS se"
        return out if self.binary else out + ", CAST(max(e) AS DOUBLE) AS sm"

    def stats(self, res: dict, rows=slice(None)):
        """Size, error sum and maximum error columns of a query result (NULL sums are 0)."""
        n = np.asarray(res["n"][rows], dtype=np.int64)
        se = np.ma.filled(np.ma.asarray(res["se"][rows], dtype=np.float64), 0.0)
        if self.binary:
            sm = (se > 0).astype(np.float64)
        else:
            sm = np.ma.filled(np.ma.asarray(res["sm"][rows], dtype=np.float64), 0.0)
        return n, se, sm


def prepare_source(con, source_sql: str, params: list, features: list[str], error_column: str) -> CodedSource:
    """Check the source's columns; build the projection every query reads; look at the
    code ranges (for level 1's blocks) and whether errors are 0/1."""
    m = len(features)
    desc = con.execute(
        *Sql.compose("SELECT * FROM ({rows}) AS sb_source LIMIT 0", rows=(source_sql, params))
    ).description
    types = {d[0]: str(d[1]).upper() for d in desc}
    for f in features:
        if f not in types:
            raise ConfigError(f"The source has no column {f!r}. Columns: {', '.join(types)}.")
        if types[f] not in INT_TYPES:
            raise ConfigError(
                f"Feature {f} is {types[f]}; encode it as integer codes 0, 1, 2, ... (NULL allowed) first."
            )
    if error_column not in types:
        raise ConfigError(f"The source has no error column {error_column!r}.")
    et = types[error_column]
    err = quote_ident(error_column)
    if et == "BOOLEAN":
        err = f"CAST({err} AS INTEGER)"
    elif et.startswith("DECIMAL"):
        err = f"CAST({err} AS DOUBLE)"
    elif et not in INT_TYPES and et not in ("FLOAT", "DOUBLE"):
        raise ConfigError(f"The error column {error_column} is {et}; it must be numeric.")
    cols = ", ".join(f"{quote_ident(f)} AS c{j}" for j, f in enumerate(features))
    sql = f"(SELECT {cols}, {err} AS e FROM ({source_sql}) AS sb_source)"
    mm = con.execute(
        "SELECT " + ", ".join(f"min(c{j}), max(c{j})" for j in range(m)) + f", min(e), max(e) FROM {sql} AS s",
        params,
    ).fetchall()[0]
    bits = []
    for j in range(m):
        lo, hi = mm[2 * j], mm[2 * j + 1]
        if lo is not None and lo < 0:
            raise ConfigError(
                f"Feature {features[j]} must hold integer codes >= 0 (or NULL); "
                f"found {lo!r}. Encode categories and bins as 0, 1, 2, ... first."
            )
        bits.append(1 if lo is None else int(hi - lo + 2).bit_length())
    e_lo, e_hi = mm[-2], mm[-1]
    if e_lo is not None and e_lo < 0:
        raise ConfigError(f"Errors must be non-negative; {error_column} has {e_lo!r}.")
    if e_hi is not None and not math.isfinite(e_hi):
        raise ConfigError(f"Errors must be finite numbers; {error_column} has {e_hi!r}.")
    binary = (et in INT_TYPES or et == "BOOLEAN") and (e_hi is None or e_hi <= 1)
    # first-fit decreasing: blocks of features whose code ranges need <= 12 bits together
    blocks: list[list[int]] = []
    room: list[int] = []
    for j in sorted(range(m), key=lambda j: (-bits[j], j)):
        for b in range(len(blocks)):
            if bits[j] <= room[b]:
                blocks[b].append(j)
                room[b] -= bits[j]
                break
        else:
            blocks.append([j])
            room.append(max(0, PERFECT_HASH_BITS - bits[j]))
    return CodedSource(sql, list(params), binary, [sorted(b) for b in blocks])


def level_one(con, source: CodedSource):
    """Size, error sum and maximum error of every feature = value, and the totals:
    one GROUP BY per block of features, marginalised per feature."""
    blocks = source.blocks
    w = max(len(b) for b in blocks)
    tail = "" if source.binary else ", CAST(max(e) AS DOUBLE) AS sm"
    tx = ["CAST(count(e) AS BIGINT)"] + ["NULL::BIGINT"] * (w - 1)
    parts = [
        f"SELECT -1 AS blk, {', '.join(f'{x} AS x{p}' for p, x in enumerate(tx))}, "
        f"count(*) AS n, CAST(sum(e) AS DOUBLE) AS se{tail} FROM {source.sql} AS s"
    ]
    for b, block in enumerate(blocks):
        xs = [f"coalesce(CAST(c{j} AS BIGINT), {NULL_CODE})" for j in block] + ["NULL::BIGINT"] * (w - len(block))
        parts.append(
            f"SELECT {b} AS blk, {', '.join(f'{x} AS x{p}' for p, x in enumerate(xs))}, "
            f"{source.aggs(False)} FROM {source.sql} AS s GROUP BY {', '.join(f'c{j}' for j in block)}"
        )
    res = con.execute(" UNION ALL ".join(parts), source.params * (len(blocks) + 1)).fetchnumpy()
    blk = np.asarray(res["blk"], dtype=np.int64)
    n_all, se_all, sm_all = source.stats(res)
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

"""Counting a level's candidates: straight over the source, over a table pre-grouped by
the codes still in play, or from counts shared between searches; the choice follows
:class:`~analysis.discovery.sliceline.counting.Counting`'s thresholds and every choice
gives the same numbers."""

from __future__ import annotations

import math
import uuid

import numpy as np

from analysis.discovery.sliceline.candidates import match_rows
from analysis.discovery.sliceline.counting import (
    COMBOS_PER_QUERY,
    MAX_GROUPED,
    NULL_CODE,
    Base,
    Counting,
    SharedCounts,
    expected_groups,
)
from analysis.discovery.sliceline.source import CodedSource
from analysis.store.sql import quote_ident


class Counter:
    """Size, error sum and maximum error of candidates (rows of item ids), counted in the
    engine. ``item_feat``/``item_val`` give each item's feature and code; ``values_of`` and
    ``counts_of`` each feature's codes and their counts over the ``n`` rows."""

    def __init__(
        self,
        con,
        source: CodedSource,
        counting: Counting,
        n: int,
        values_of: dict,
        counts_of: dict,
        item_feat: np.ndarray,
        item_val: np.ndarray,
        shared: tuple[SharedCounts, int] | None = None,
    ):
        self.con = con
        self.source = source
        self.counting = counting
        self.n = n
        self.values_of = values_of
        self.counts_of = counts_of
        self.item_feat = item_feat
        self.item_val = item_val
        self.shared = shared
        self.base = Base("source", n)  # what the next level is counted over
        self.tag = "sb_sl_" + uuid.uuid4().hex[:12]
        self.temp_tables: list[str] = []
        self.serial = 0

    def _name(self) -> str:
        self.serial += 1
        return f"{self.tag}_g{self.serial}"

    def _drop(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS temp.{quote_ident(name)}")
        self.temp_tables.remove(name)

    def __enter__(self) -> "Counter":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Drop the temp tables this counter made."""
        for name in list(self.temp_tables):
            try:
                self._drop(name)
            except Exception:  # noqa: BLE001 - best effort, the connection may be gone
                pass

    def evaluate(self, cands: np.ndarray, level: int):
        """Size, error sum and maximum error of every candidate, counted in DuckDB."""
        if self.shared is not None:
            counts, index = self.shared
            combos, combo_id = self._combos(cands)
            return counts.stats(combos, np.column_stack([combo_id, self.item_val[cands]]), index, self.source.binary)
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
        tail = "" if self.source.binary else ", sm"
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
            grouped = f"SELECT {key} AS k, {self.source.aggs(False)} FROM {self.source.sql} AS s GROUP BY k"
            if self.n < self.counting.two_step_rows:
                sql = f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {dec}, n, se{tail} FROM ({grouped}) AS t"
                params = params + self.source.params
                packed = None
            else:  # at scale it is faster to store the packed groups first, then unpack them
                packed = name + "k"
                self.temp_tables.append(packed)
                self.con.execute(
                    f"CREATE TEMP TABLE {quote_ident(packed)} AS {grouped}", params + self.source.params
                ).fetchall()
                sql = f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {dec}, n, se{tail} FROM {quote_ident(packed)}"
                params = []
        else:  # too many codes for one integer key: group by a column per feature
            sel = ", ".join(f"CAST({e} AS {ctype[j]}) AS c{j}" for j, e in zip(feats, exprs))
            sql = (
                f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {sel}, {self.source.aggs(False)} "
                f"FROM {self.source.sql} AS s GROUP BY ALL"
            )
            params = params + self.source.params
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
        tail = "" if self.source.binary else ", sm"
        name = self._name()
        sql = (
            f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {', '.join(f'c{j}' for j in rel)}, "
            f"{self.source.aggs(True)} FROM (SELECT {', '.join(exprs)}, n, se{tail} "
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
            n_, se_, sm_ = self.source.stats(res, ri)
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
                f"SELECT {', '.join(f'{base.exprs[j]} AS x{pos[j]}' for j in used)}, {self.source.aggs(True)} "
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
            ss[ci], se[ci], sm[ci] = self.source.stats(res, ri)
        return ss, se, sm

    def _count_over_source(self, cands: np.ndarray):
        """One GROUP BY per feature combination straight over the source."""
        combos, combo_id = self._combos(cands)
        parts = []
        for cid, combo in enumerate(combos.tolist()):
            cols = [f"c{j}" for j in combo]
            sel = ", ".join(f"coalesce(CAST({c} AS BIGINT), {NULL_CODE}) AS a{p}" for p, c in enumerate(cols))
            counts = self.source.aggs(False)
            parts.append(f"SELECT {cid} AS cid, {sel}, {counts} FROM {self.source.sql} AS s GROUP BY {', '.join(cols)}")
        return self._run_batches(parts, self.source.params, np.column_stack([combo_id, self.item_val[cands]]))

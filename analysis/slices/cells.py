"""Many slices' rows from one scan of the log.

The rows are added up alike in every column the slices read (and in whatever keys the
caller asks for, such as a day); each distinct combination of those columns gets a number
(``sb_combo``), and each slice's condition is tested once per combination (a few thousand
for categories), not once per row. A slice's rows are then the entries of its
combinations: :meth:`SliceCells.positions` gives them, without another scan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analysis.slices.compile import compile_slice
from analysis.slices.model import Slice
from analysis.store.project import Project
from analysis.store.sql import Sql, quote_ident


class SliceCells:
    """The combinations of ``slices``' columns among the rows of ``source`` that ``where``
    selects (``source``: the log's quoted name, or a subquery standing for it)."""

    def __init__(self, project: Project, slices: Sequence[Slice], source: Sql | str, where: Sql) -> None:
        self.project, self.slices, self.source, self.where = project, list(slices), Sql.of(source), where
        self.columns = list(dict.fromkeys(c for s in self.slices for c in s.columns()))
        self.aliases = [f"sb_c{i}" for i in range(len(self.columns))]

    def _combo(self) -> str:
        """A combination's number: its rank among the distinct combinations (0, 1, …), the
        same in every query over the same rows."""
        if not self.aliases:
            return "0"
        return f"dense_rank() OVER (ORDER BY {', '.join(self.aliases)}) - 1"

    def counted_sql(self, keys: Sql | str, names: Sequence[str], totals: Sequence[tuple[str, Sql | str]]) -> Sql:
        """The rows added up by keys (``keys``: a select list of row expressions named
        ``names``) and combination: per entry the keys, ``sb_combo``, ``sb_key`` (the rank
        of the entry's keys among all entries', so equal keys of different combinations
        are one number) and each total (name, SQL of an aggregate), in no order
        (:meth:`read` sorts them)."""
        key_order = ", ".join(names) if names else "1"
        read = ([Sql.of(keys)] if names else []) + [
            Sql(f"{quote_ident(c)} AS {a}") for c, a in zip(self.columns, self.aliases)
        ]
        added = [Sql.compose(f"{{sql}} AS {name}", sql=Sql.of(sql)) for name, sql in totals]
        grouped = Sql.compose(
            "SELECT {read}, {added} FROM {source} WHERE {where} GROUP BY ALL",
            read=Sql.join(", ", read) if read else Sql("1 AS sb_one"),
            added=Sql.join(", ", added),
            source=self.source,
            where=self.where,
        )
        if not self.aliases:
            numbered, combo = Sql("sb_cells"), "0"
        else:  # the combinations numbered once, then joined to their entries (no sort of every entry)
            combos = f"SELECT {', '.join(self.aliases)}, {self._combo()} AS sb_combo FROM (SELECT DISTINCT "
            combos += f"{', '.join(self.aliases)} FROM sb_cells) AS sb_distinct"
            same = " AND ".join(f"sb_cells.{a} IS NOT DISTINCT FROM sb_combos.{a}" for a in self.aliases)
            numbered, combo = Sql(f"sb_cells JOIN ({combos}) AS sb_combos ON {same}"), "sb_combo"
        return Sql.compose(
            "WITH sb_cells AS ({grouped}) "
            "SELECT {names}{combo} AS sb_combo, dense_rank() OVER (ORDER BY {key_order}) - 1 AS sb_key, {totals} "
            "FROM {numbered}",
            names="".join(f"{n}, " for n in names),
            combo=combo,
            key_order=key_order,
            totals=", ".join(name for name, _ in totals),
            grouped=grouped,
            numbered=numbered,
        )

    def read(self, con, keys: Sql | str, names: Sequence[str], totals: Sequence[tuple[str, Sql | str]]) -> dict:
        """:meth:`counted_sql`'s entries as arrays, by combination, then by keys (sorted
        here: faster than the query's own sort of the windowed rows)."""
        data = con.execute(*self.counted_sql(keys, names, totals)).fetchnumpy()
        combo, key = np.asarray(data["sb_combo"], np.int64), np.asarray(data["sb_key"], np.int64)
        order = np.argsort(combo * (int(key.max(initial=0)) + 1) + key, kind="stable")
        return {name: values[order] for name, values in data.items()}

    def members(self, con) -> list[np.ndarray]:
        """Each slice's combination numbers, in order (one query for every slice)."""
        if not self.slices:
            return []
        numbers = [
            Sql.compose(
                "CASE WHEN {s} THEN {i} END", s=compile_slice(s, self.project), i=Sql("CAST(? AS INTEGER)", [i])
            )
            for i, s in enumerate(self.slices)
        ]
        distinct = Sql.compose(
            "SELECT DISTINCT {columns} FROM {source} WHERE {where}",
            columns=Sql(
                ", ".join(f"{quote_ident(c)} AS {a}" for c, a in zip(self.columns, self.aliases)) or "1 AS sb_one"
            ),
            source=self.source,
            where=self.where,
        )
        named = Sql.compose(
            "SELECT {originals}{combo} AS sb_combo FROM ({distinct}) AS sb_distinct",
            originals="".join(f"{a} AS {quote_ident(c)}, " for c, a in zip(self.columns, self.aliases)),
            combo=self._combo(),
            distinct=distinct,
        )
        query = Sql.compose(
            "SELECT sb_combo, slice_no FROM (SELECT sb_combo, "
            "UNNEST(list_filter(list_value({numbers}), lambda n: n IS NOT NULL)) AS slice_no "
            "FROM ({named}) AS sb_named) AS sb_members ORDER BY slice_no, sb_combo",
            numbers=Sql.join(", ", numbers),
            named=named,
        )
        found = con.execute(*query).fetchnumpy()
        slice_no = np.asarray(found["slice_no"], np.int64)
        combos = np.asarray(found["sb_combo"], np.int64)
        edges = np.searchsorted(slice_no, np.arange(len(self.slices) + 1))
        return [combos[a:b] for a, b in zip(edges[:-1], edges[1:])]

    def positions(self, con, combo: np.ndarray) -> list[np.ndarray]:
        """Each slice's entries of :meth:`counted_sql` (``combo``: its ``sb_combo`` column,
        in order): their places, combination by combination."""
        combo = np.asarray(combo, np.int64)
        out = []
        for numbers in self.members(con):
            starts = np.searchsorted(combo, numbers, side="left")
            ends = np.searchsorted(combo, numbers, side="right")
            lengths = ends - starts
            total = int(lengths.sum())
            offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
            out.append(offsets + np.arange(total))
        return out


__all__ = ["SliceCells"]

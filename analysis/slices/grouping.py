"""How a column's rows fall into groups: each category (missing values their own group), true /
false, or quantile bins of a number or timestamp (:class:`Grouping`, with its edges and the
SQL that labels each row), and each group as a slice condition."""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.slices.compile import compile_slice, slice_columns
from analysis.slices.model import Condition, Slice
from analysis.store.example_key import HEX_DIGITS
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, and_all, quote_ident

MISSING = "(missing)"
GROUPABLE = ("categorical", "boolean", "numeric", "timestamp")
KEY_RANGE = 16**HEX_DIGITS  # example keys are in [0, KEY_RANGE)


@dataclass(frozen=True)
class CutSample:
    """Where quantile cut points come from: up to ``exact_up_to`` rows, every row (exact
    quantiles, the same for any physical order of the rows); beyond, about ``rows`` of
    them, the rows of a fixed share of the examples (by their key)."""

    exact_up_to: int = 1_000_000
    rows: int = 100_000

    def key_bound(self, n: int, key_range: int) -> int | None:
        """The bound below which an example key is drawn, for ``n`` rows keyed in
        ``[0, key_range)``; None when every row is read."""
        if n <= self.exact_up_to:
            return None
        return min(key_range, -(-key_range * self.rows // n))  # ceil, in integers


CUT_SAMPLE = CutSample()
# A numeric column with at most this many distinct values in the sample is
# aggregated by value and binned afterwards (cheaper than binning every row).
RAW_DISTINCT = 20_000


@dataclass(frozen=True)
class Grouping:
    """How one column is cut into groups; ``label_sql`` gives each row's group label.

    Categories and booleans: the value itself (missing values in one group). ``top``:
    categories capped to those values, the rest one group named ``other``. Numbers and
    timestamps: bins cut at ``edges``, labelled by ``order`` (the missing group last);
    ``raw`` says the column has few enough distinct values that an aggregation may group
    by the value itself and bin the groups afterwards.
    """

    column: str
    kind: str
    edges: tuple[float, ...] = ()
    order: tuple[str, ...] = ()  # group labels in display order (bins only)
    raw: bool = True
    top: tuple[str, ...] | None = None
    other: str = ""
    missing: str = MISSING  # the missing values' group (capped categories: in ``other`` when rare)

    def label_sql(self, ref: str | None = None) -> tuple[str, tuple]:
        """``(sql, params)``: the group label of ``ref``, an expression holding this
        column's values (default: the column)."""
        col = ref or quote_ident(self.column)
        if self.top is not None:
            listed = f"CAST({col} AS VARCHAR) IN ({', '.join('?' for _ in self.top)})" if self.top else "FALSE"
            return (
                f"CASE WHEN {col} IS NULL THEN ? WHEN {listed} THEN CAST({col} AS VARCHAR) ELSE ? END",
                (self.missing, *self.top, self.other),
            )
        if not self.order:
            return f"coalesce(CAST({col} AS VARCHAR), ?)", (MISSING,)
        value = _numeric(col, self.kind)
        cases = " ".join(f"WHEN {value} < ? THEN ?" for _ in self.edges)
        params: list = [MISSING]
        for edge, label in zip(self.edges, self.order):
            params += [edge, label]
        return f"CASE WHEN {col} IS NULL THEN ? {cases} ELSE ? END", (*params, self.order[-2])

    @property
    def sql(self) -> str:
        return self.label_sql()[0]

    @property
    def params(self) -> tuple:
        return self.label_sql()[1]

    def key_for(self, ref: str | None = None) -> tuple[str, tuple]:
        """A cheap grouping key of ``ref`` (default: the column): for bins the
        bin's position in ``order`` (an integer hashes in half the time of its
        label), for categories the label itself. ``label_of`` turns keys into labels."""
        if not self.order:
            return self.label_sql(ref)
        col = ref or quote_ident(self.column)
        value = _numeric(col, self.kind)
        cases = " ".join(f"WHEN {value} < ? THEN {i}" for i in range(len(self.edges)))
        return (
            f"CASE WHEN {col} IS NULL THEN {len(self.order) - 1} {cases} ELSE {len(self.order) - 2} END",
            tuple(self.edges),
        )

    def label_of(self, keys: pd.Series) -> pd.Series:
        """The group labels of keys from ``key_for``."""
        return keys.map(lambda k: self.order[int(k)]) if self.order else keys


# A categorical column is *id-like* when it has more than ID_LIKE_DISTINCT distinct
# values and more distinct values than half its rows (see :func:`is_id_like`).
ID_LIKE_DISTINCT = 100
ID_LIKE_SHARE = 0.5


@dataclass(frozen=True)
class CategoryCounts:
    """One categorical column within a scope: its most frequent values (most rows
    first, equal counts in natural order: numbers by value, then text by text),
    how many distinct non-null values it has, and its non-null rows."""

    column: str
    top: list
    distinct: int
    rows: int

    @property
    def id_like(self) -> bool:
        return is_id_like(self.distinct, self.rows)

    def note(self) -> str:
        return (
            f"{self.column} looks like an identifier ({self.distinct:,} distinct values in "
            f"{self.rows:,} rows): left out"
        )


def is_id_like(distinct: int, rows: int) -> bool:
    """Nearly every value unique: more than ID_LIKE_DISTINCT distinct values, and more
    distinct values than ID_LIKE_SHARE of the rows (fewer than 2 rows per value on average).
    No single value of such a column can reach a slice's minimum support; only a lump
    of arbitrary identifiers could, and that is not a group anyone can act on. A column
    with at most ID_LIKE_DISTINCT values loses nothing: every value gets its own group."""
    return distinct > ID_LIKE_DISTINCT and distinct > ID_LIKE_SHARE * rows


def natural_order(column: str) -> str:
    """ORDER BY terms putting values in natural order: numbers by value first, then text."""
    text = f"CAST({column} AS VARCHAR)"
    return f"TRY_CAST({text} AS DOUBLE) NULLS LAST, {text}"


def category_counts(
    con, table: str, columns: list[str], where: tuple[str, list], top: int
) -> dict[str, CategoryCounts]:
    """:class:`CategoryCounts` of each column of ``table`` (an SQL table expression) in
    ``where``, with at most ``top`` values each; one scan, ranked in the database (only the
    top values leave it, however many distinct values there are)."""
    if not columns:
        return {}
    k = [f"k{i}" for i in range(len(columns))]
    keys = ", ".join(f"{quote_ident(c)} AS {key}" for c, key in zip(columns, k))
    flags = ", ".join(f"grouping({key}) AS g{i}" for i, key in enumerate(k))
    sets = ", ".join(f"({key})" for key in k)
    which = "CASE " + " ".join(f"WHEN g{i} = 0 THEN {i}" for i in range(len(k))) + " END"
    text = "CASE " + " ".join(f"WHEN g{i} = 0 THEN CAST({key} AS VARCHAR)" for i, key in enumerate(k)) + " END"
    grouped = (
        f"SELECT {', '.join(k)}, {flags}, count(*) AS n FROM (SELECT {keys} FROM {table} WHERE {where[0]}) "
        f"AS scoped GROUP BY GROUPING SETS ({sets})"
    )
    keyed = f"SELECT *, {which} AS sb_c, {text} AS sb_text FROM ({grouped}) AS grouped"
    ranked = (
        f"SELECT {', '.join(k)}, sb_c, sb_text, n, "
        "sum(CASE WHEN sb_text IS NULL THEN 0 ELSE 1 END) OVER (PARTITION BY sb_c) AS sb_distinct, "
        "sum(CASE WHEN sb_text IS NULL THEN 0 ELSE n END) OVER (PARTITION BY sb_c) AS sb_rows, "
        f"row_number() OVER (PARTITION BY sb_c ORDER BY sb_text IS NULL, n DESC, {natural_order('sb_text')}) "
        f"AS sb_r FROM ({keyed}) AS keyed"
    )
    frame = con.execute(
        f"SELECT * FROM ({ranked}) AS ranked WHERE sb_r <= ? ORDER BY sb_c, sb_r", [*where[1], max(int(top), 1)]
    ).df()
    out = {}
    for i, c in enumerate(columns):
        part = frame[frame["sb_c"] == i]
        values = part[part["sb_text"].notna()][f"k{i}"].head(max(int(top), 0))
        first = part.iloc[0] if len(part) else None
        out[c] = CategoryCounts(
            c,
            [v.item() if hasattr(v, "item") else v for v in values],
            int(first["sb_distinct"]) if first is not None else 0,
            int(first["sb_rows"]) if first is not None else 0,
        )
    return out


def scoped_where(project: Project, scope: Scope, slice_: Slice) -> tuple[str, list]:
    return and_all([scope.to_sql(), compile_slice(slice_, project)])


def _sample(
    con,
    project: Project,
    columns: list[str],
    where: tuple[str, list],
    rows: tuple[str, str] | None = None,
    sample: CutSample = CUT_SAMPLE,
) -> tuple[str, list]:
    """The scoped rows' ``columns`` or, beyond ``sample.exact_up_to`` rows, a sample
    of about ``sample.rows`` of them: the rows of a fixed share of the examples.
    ``rows``: ``(table, key column)`` to read instead of the log (a comparison's pairs)."""
    table, key = (
        (quote_ident(rows[0]), quote_ident(rows[1])) if rows else (quote_ident(project.log_table), "example_key")
    )
    cols = ", ".join(quote_ident(c) for c in columns)
    counted = Sql.compose("SELECT count(*) FROM {table} WHERE {where}", table=table, where=where)
    n = con.execute(*counted).fetchall()[0][0]
    sql = f"SELECT {cols} FROM {table} WHERE {where[0]}"
    bound = sample.key_bound(n, KEY_RANGE)
    if bound is not None:
        # The example key is a uniform 60-bit hash of the id, the same number on every
        # engine: the examples whose key is below a bound are the same rows on every run
        # and every engine, and the bound is a plain comparison in the scan. (DuckDB's
        # block samples, even with a seed, vary from run to run on more than one thread.)
        return (f"SELECT {cols} FROM {table} WHERE ({where[0]}) AND {key} < ?", [*where[1], bound])
    return sql, list(where[1])


def check_groupable(project: Project, columns: list[str], purpose: str = "break down by") -> dict[str, str]:
    """``{column: kind}`` of the project; a clear error for an unknown or ungroupable column."""
    kinds = slice_columns(project)
    for column in columns:
        if column not in kinds:
            raise ConfigError(f"Unknown column {column!r}. Columns of {project.name}: {', '.join(sorted(kinds))}.")
        if kinds[column] not in GROUPABLE:
            raise ConfigError(
                f"{column} is a {kinds[column]} column; {purpose} a categorical, boolean, numeric or timestamp column."
            )
    return kinds


def groupings(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    columns: list[str],
    scope: Scope = Scope(),
    slice_: Slice = Slice(),
    bins: int = 10,
    rows: tuple[str, str] | None = None,
    sample: CutSample = CUT_SAMPLE,
) -> list[Grouping]:
    """How each column is cut; the quantile edges of every numeric column in one pass.
    The edges are quantiles of the log's rows in ``scope`` and ``slice_``, or of every
    row of ``rows``, a ``(table, key column)`` such as a comparison's pairs; beyond a
    million rows, of a sample (``sample``)."""
    kinds = check_groupable(project, columns)
    if not 1 <= int(bins) <= 100:
        raise ConfigError("Use between 1 and 100 bins.")
    qs = [i / bins for i in range(1, bins)]
    binned = [c for c in columns if kinds[c] in ("numeric", "timestamp")]
    cuts: dict[str, list[float]] = {}
    distinct: dict[str, int] = {}
    if binned:
        # Cut points come from a sample of the rows (deterministic, and
        # milliseconds at any size); which bin a row falls in is then exact.
        # quantile_disc keeps cut points at values that occur (integers stay integers).
        where = scoped_where(project, scope, slice_) if rows is None else ("TRUE", [])
        sample_sql, params = _sample(con, project, binned, where, rows, sample)
        fractions = qs or [0.5]
        marks = ", ".join("?" for _ in fractions)  # one parameter per fraction: plain SQL on any engine
        exprs = [f"quantile_disc({_numeric(quote_ident(c), kinds[c])}, [{marks}])" for c in binned]
        exprs += [f"count(DISTINCT {quote_ident(c)})" for c in binned]  # exact: the same on every engine
        row = con.execute(
            f"SELECT {', '.join(exprs)} FROM ({sample_sql}) AS sampled",
            [*[q for _ in binned for q in fractions], *params],
        ).fetchall()[0]
        for i, c in enumerate(binned):
            cuts[c] = sorted({float(x) for x in (row[i] or []) if x is not None}) if qs else []
            distinct[c] = int(row[len(binned) + i] or 0)
    out = []
    for column in columns:
        kind = kinds[column]
        if kind in ("categorical", "boolean"):
            out.append(Grouping(column, kind))
            continue
        edges = cuts.get(column, [])
        out.append(
            Grouping(
                column,
                kind,
                tuple(edges),
                (*bin_labels(edges, kind), MISSING),
                raw=distinct.get(column, 0) <= RAW_DISTINCT,
            )
        )
    return out


def grouping(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    column: str,
    scope: Scope = Scope(),
    slice_: Slice = Slice(),
    bins: int = 10,
    sample: CutSample = CUT_SAMPLE,
) -> Grouping:
    return groupings(con, project, [column], scope, slice_, bins, sample=sample)[0]


def _numeric(col: str, kind: str) -> str:
    """``col`` (an expression) as a number: seconds for a timestamp."""
    return f"epoch({col})" if kind == "timestamp" else f"CAST({col} AS DOUBLE)"


def bin_labels(edges: list[float], kind: str) -> list[str]:
    def show(x: float) -> str:
        if kind == "timestamp":
            return pd.Timestamp(x, unit="s").strftime("%Y-%m-%d")
        if x == 0 or not math.isfinite(x):
            return f"{x:g}"
        # Four significant digits, as %g, but never in scientific notation (1.06e+04 read
        # badly as a bin of incomes): 10600, 28, 0.000123.
        decimals = max(0, 3 - math.floor(math.log10(abs(x))))
        text = f"{x:.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text

    bounds = [None, *edges, None]
    labels = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        left = "(-inf" if lo is None else f"[{show(lo)}"
        right = "inf)" if hi is None else f"{show(hi)})"
        labels.append(f"{i + 1:02d} {left}, {right}")
    return labels


def capped_grouping(
    con, project: Project, g: Grouping, where: tuple[str, list], limit: int
) -> tuple[Grouping, dict | None]:
    """A categorical grouping ``g`` cut to its ``limit`` largest groups (most rows first, equal
    counts in natural order) and one group for all the others, ranked in the database; with
    a description of that last group (``None``: ``g`` has at most ``limit`` groups, unchanged)."""
    col = quote_ident(g.column)
    ranked = con.execute(
        f"SELECT sb_v, n, count(*) OVER () AS sb_groups, count(*) OVER () - count(sb_v) OVER () AS sb_null "
        f"FROM (SELECT CAST({col} AS VARCHAR) AS sb_v, count(*) AS n FROM {quote_ident(project.log_table)} "
        f"WHERE {where[0]} GROUP BY 1) AS counted ORDER BY n DESC, sb_v IS NULL, {natural_order('sb_v')} LIMIT ?",
        [*where[1], limit],
    ).fetchall()
    groups = int(ranked[0][2]) if ranked else 0
    if groups <= limit:
        return g, None
    top = [v for v, _, _, _ in ranked if v is not None]
    missing = bool(ranked[0][3]) and len(top) == len(ranked)  # missing values, not among the largest: in the rest
    values = groups - int(ranked[0][3]) - len(top)
    label = f"{values:,} other values"
    while label in top:  # a real value of that name stays its own group
        label += "*"
    capped = Grouping(g.column, g.kind, top=tuple(top), other=label, missing=label if missing else MISSING)
    return capped, {"value": label, "groups": groups, "shown": limit, "values": values, "missing": missing}


def group_condition(g: Grouping, value: str) -> Condition:
    """The slice condition selecting one group of a grouping (for drilling into it)."""
    if value == MISSING:
        return Condition(g.column, "is_null")
    if g.kind == "boolean" and value in ("true", "false"):
        return Condition(g.column, "is_true" if value == "true" else "is_false")
    if not g.order:  # categories: the value itself
        return Condition(g.column, "in", values=(value,))
    labels = list(g.order[:-1])
    if value not in labels:
        raise ConfigError(f"{value!r} is not a group of {g.column}.")
    edges = list(g.edges)
    i = labels.index(value)
    low = edges[i - 1] if i > 0 else None
    high = edges[i] if i < len(edges) else None
    if g.kind == "timestamp":
        low, high = (None if x is None else pd.Timestamp(x, unit="s").isoformat() for x in (low, high))
    if low is None and high is None:
        return Condition(g.column, "not_null")
    return Condition(g.column, "between", low=low, high=high)

"""Where is the model worse than it should be? Slices ranked by errors beyond a baseline.

Plain error rankings answer "where is the error high", and the answer is the
intrinsically hard population (low bureau scores: every model errs there, and its
scores say so). These rankings hold each slice's errors against what they should be:

``expected`` — **worse than its scores predict.** A row's expected error is the mean
error of the rows in scope with about the same score (classification: ``score``; for
regression, the same ``prediction``): the scope's rows are cut into
:data:`EXPECTED_BINS` equal-count bins of it, and a row expects its bin's mean error
(with its bin's variance). For a calibrated binary model that is ``1 − p`` for a row
predicted positive with probability ``p`` of the positive class and ``p`` otherwise;
estimating it from the rows themselves takes out the model's *overall* miscalibration
(a model whose scores are overconfident everywhere errs more than its raw scores say on
every large slice, and the raw-score excess is largest where there are most rows),
so what remains is where the scores mislead *more than elsewhere*. A slice's excess is
``errors − expected errors``; under the null (the slice's rows err like other rows with
their scores) it has mean 0 and variance ``Σ row variance``.

``version`` — **worse than another version.** Both versions' rows in scope are cut by
the same cut points; a slice's excess is ``errors − size · (the other version's error
rate on the same slice)``, with variance ``size·s² + size²·s₀²/size₀`` (each side's own
error variance ``s²``; for a 0/1 error ``r(1−r)``).

Test and ranking: ``z = excess / sqrt(variance)``, one-sided p-value ``P(Z ≥ z)``
(normal approximation of the Poisson-binomial count), Benjamini–Hochberg q-values over
every slice evaluated, and slices ranked by ``z``: the strength of the evidence that
the slice is worse than it should be, which prefers the slice that holds the excess
over a wider one that dilutes it with ordinary rows, and over a narrower one that holds
only part of it.

Search: every slice of one and two conditions with at least ``σ`` rows (and, against a
version, at least ``σ₀`` of the other version's rows) is counted in one ``GROUPING
SETS`` query; each further level extends the :func:`beam_width` best slices of the
level below (positive excess, by ``z``) by one more condition. The first two levels are
exhaustive; deeper ones are a beam search, not SliceLine's exact pruning (its bounds
need a non-negative error, see the README).
"""

from __future__ import annotations

import itertools
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterator

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from analysis.discovery.encode import ERROR_COLUMN, Encoding, codes_sql, encode
from analysis.errors import ConfigError
from analysis.slices import Condition, Slice
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident

EXPECTED_BINS = 50
SETS_PER_QUERY = 128
STATS = ("n1", "o1", "q1", "x1", "v1", "n0", "o0", "q0")


def beam_width(top_k: int) -> int:
    """How many slices of a level are extended by one more condition."""
    return max(4 * top_k, 40)


@dataclass(frozen=True)
class Rows:
    """The rows of an excess search, in a temporary table ``table``: the encoded
    features, ``sb_e`` (error), ``sb_side`` (1 for the version searched, 0 for the
    other), ``sb_x`` and ``sb_v`` (a row's expected error and its variance)."""

    table: str
    encoding: Encoding
    ranking: str
    other_version: str | None = None

    @property
    def features(self) -> list[str]:
        return [f.column for f in self.encoding.features]


def basis(project: Project) -> str:
    """The column a row's expected error is read from: its score, or a regression's prediction."""
    return "prediction" if project.task == "regression" else "score"


def has_basis(con, project: Project, scope: Scope) -> bool:
    """Whether any row in scope has what ``expected`` needs (a score; a regression's prediction)."""
    where, params = scope.to_sql()
    col = quote_ident(basis(project))
    return con.execute(
        f"SELECT count({col}) > 0 FROM {quote_ident(project.log_table)} WHERE {where}", params
    ).fetchall()[0][0]


@contextmanager
def prepared(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    scope: Scope,
    *,
    ranking: str,
    other_version: str | None = None,
    error="misclassification",
    columns=None,
    bins: int = 5,
    slice_: Slice = Slice(),
    keep_id_like: bool = False,
) -> Iterator[Rows]:
    """The rows of ``scope`` for an excess search (see :class:`Rows`), dropped afterwards."""
    name = quote_ident(f"sb_excess_{uuid.uuid4().hex}")
    encoded = quote_ident(f"sb_excess_enc_{uuid.uuid4().hex}")
    if ranking == "expected":
        col = basis(project)
        enc = encode(
            con,
            project,
            scope,
            columns=columns,
            error=error,
            bins=bins,
            keep_id_like=keep_id_like,
            slice_=Slice((*slice_.conditions, Condition(col, "not_null"))),
            more_errors={"sb_basis": quote_ident(col)},
        )
    else:
        if not other_version:
            raise ConfigError("Choose the other version to hold this version's errors against.")
        if other_version in scope.versions:
            raise ConfigError(f"Choose another version than {other_version} to compare with.")
        both = replace(scope, versions=(*scope.versions, other_version))
        enc = encode(
            con,
            project,
            both,
            columns=columns,
            error=error,
            bins=bins,
            slice_=slice_,
            keep_id_like=keep_id_like,
            more_errors={"sb_version": "model_version"},
        )
    feats = ", ".join(quote_ident(f.column) for f in enc.features)
    e = quote_ident(ERROR_COLUMN)
    con.execute(f"CREATE TEMP TABLE {encoded} AS {enc.sql}", enc.params)
    try:
        if ranking == "expected":
            probs = [k / EXPECTED_BINS for k in range(1, EXPECTED_BINS)]
            marks = ", ".join("?" for _ in probs)  # one parameter per fraction: plain SQL on any engine
            edges = (
                con.execute(
                    f"SELECT quantile_disc(CAST(sb_basis AS DOUBLE), [{marks}]) FROM {encoded}", probs
                ).fetchall()[0][0]
                or []
            )
            edges = sorted({float(x) for x in edges})
            cases = " ".join(f"WHEN CAST(sb_basis AS DOUBLE) < ? THEN {i}" for i in range(len(edges)))
            bin_sql = f"CASE {cases} ELSE {len(edges)} END" if edges else "0"
            con.execute(
                f"CREATE TEMP TABLE {name} AS SELECT {feats}, CAST({e} AS DOUBLE) AS sb_e, 1 AS sb_side, "
                f"avg({e}) OVER w AS sb_x, var_pop({e}) OVER w AS sb_v "
                f"FROM (SELECT *, {bin_sql} AS sb_bin FROM {encoded}) AS b WINDOW w AS (PARTITION BY sb_bin)",
                edges,
            )
        else:
            con.execute(
                f"CREATE TEMP TABLE {name} AS SELECT {feats}, CAST({e} AS DOUBLE) AS sb_e, "
                f"CASE WHEN sb_version IN ({', '.join('?' for _ in scope.versions)}) THEN 1 ELSE 0 END "
                f"AS sb_side, CAST(NULL AS DOUBLE) AS sb_x, CAST(NULL AS DOUBLE) AS sb_v FROM {encoded}",
                list(scope.versions),
            )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {encoded}")
    try:
        yield Rows(name, replace(enc, sql=f"SELECT * FROM {name}", params=[]), ranking, other_version)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {name}")


_AGGREGATES = "count(*) AS n, sum(sb_e) AS o, sum(sb_e * sb_e) AS q, sum(sb_x) AS x, sum(sb_v) AS v"


def totals(con, rows: Rows) -> dict:
    got = con.execute(f"SELECT sb_side, {_AGGREGATES} FROM {rows.table} GROUP BY sb_side").fetchall()
    out = dict.fromkeys(STATS, 0.0)
    for side, *values in got:
        for name, v in zip("noqxv", values):
            if f"{name}{side}" in out:
                out[f"{name}{side}"] = float(v or 0)
    return out


def _grouped(
    con, rows: Rows, sets: list[tuple[str, ...]], where: tuple[str, list] = ("TRUE", []), fixed: dict | None = None
) -> pd.DataFrame:
    """Statistics of every group of each feature combination in ``sets`` (within ``where``):
    ``predicates`` (``fixed`` plus the group's codes) and :data:`STATS`."""
    parts = []
    for start in range(0, len(sets), SETS_PER_QUERY):
        batch = sets[start : start + SETS_PER_QUERY]
        parts.append(_query(con, rows, batch, where, fixed))
    return _combined(parts)


def _query(con, rows: Rows, batch, where, fixed, extra: str = "", id_column: str | None = None) -> pd.DataFrame:
    """One GROUPING SETS query; the sides of a version ranking are grouped apart (no FILTER)."""
    used = sorted({c for s in batch for c in s}, key=rows.features.index)
    cols = ", ".join(quote_ident(c) for c in used)
    flags = ", ".join(f"grouping({quote_ident(c)}) AS sb_g{i}" for i, c in enumerate(used))
    lead = [*([id_column] if id_column else []), *(["sb_side"] if rows.ranking == "version" else [])]
    spec = ", ".join("(" + ", ".join([*lead, *(quote_ident(c) for c in s)]) + ")" for s in batch)
    head = "".join(f"{c}, " for c in lead)
    frame = con.execute(
        f"SELECT {head}{cols}, {flags}, {_AGGREGATES} FROM {extra or rows.table} "
        f"WHERE {where[0]} GROUP BY GROUPING SETS ({spec})",
        where[1],
    ).df()
    codes = frame[used].to_numpy(dtype=object)
    grouped = frame[[f"sb_g{i}" for i in range(len(used))]].to_numpy() == 0
    base = [dict(fixed or {})] * len(frame) if id_column is None else [dict(fixed[int(i)]) for i in frame[id_column]]
    preds = []
    for k in range(len(frame)):
        p = dict(base[k])
        for i in np.flatnonzero(grouped[k]):
            v = codes[k, i]
            p[used[i]] = None if pd.isna(v) else int(v)
        preds.append(dict(sorted(p.items(), key=lambda kv: rows.features.index(kv[0]))))
    out = frame[["n", "o", "q", "x", "v"]].astype(float).fillna(0.0)
    out.insert(0, "predicates", preds)
    out.insert(0, "side", frame["sb_side"].to_numpy() if rows.ranking == "version" else 1)
    return out


def _combined(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The groups' statistics, both sides of a slice on one row (:data:`STATS`)."""
    if not parts or all(p.empty for p in parts):
        return pd.DataFrame(columns=["predicates", *STATS])
    f = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    f["key"] = f["predicates"].map(lambda p: str(_key(p)))
    one = f[f["side"] == 1].drop_duplicates("key").set_index("key")
    zero = f[f["side"] == 0].drop_duplicates("key").set_index("key")
    out = pd.DataFrame({"predicates": one["predicates"]})
    for name in "noqxv":
        out[f"{name}1"] = one[name]
    for name in "noq":
        out[f"{name}0"] = zero[name].reindex(one.index).fillna(0.0)
    return out.reset_index(drop=True)


def _extend(con, rows: Rows, parents: list[dict]) -> pd.DataFrame:
    """Every child of ``parents`` with one more condition, in one query: each parent's rows
    (a filtered scan each), tagged with the parent, grouped by parent and each other feature."""
    parts, params = [], []
    for i, codes in enumerate(parents):
        sql, bound = codes_sql(codes)
        parts.append(f"SELECT *, {i} AS sb_pid FROM {rows.table} WHERE {sql}")
        params += bound
    tagged = f"({' UNION ALL '.join(parts)}) AS tagged"
    sets = [(c,) for c in rows.features]
    out = _query(con, rows, sets, ("TRUE", params), parents, extra=tagged, id_column="sb_pid")
    grown = out["predicates"].map(len) > np.array([len(parents[0])] * len(out))
    return _combined([out[grown]])


def excess_of(n1, o1, q1, x1, v1, n0, o0, q0, ranking: str):
    """``(expected errors, excess, variance, z)`` of slices given their sums (arrays or
    numbers; see the module docstring); z is NaN where the variance is zero."""
    n1, o1, q1, x1, v1, n0, o0, q0 = (np.asarray(a, dtype=float) for a in (n1, o1, q1, x1, v1, n0, o0, q0))
    with np.errstate(divide="ignore", invalid="ignore"):
        if ranking == "expected":
            expected, variance = x1, v1
        else:
            r0, r1 = o0 / n0, o1 / n1
            s1 = np.maximum(q1 / n1 - r1 * r1, 0.0)
            s0 = np.maximum(q0 / n0 - r0 * r0, 0.0)
            expected = n1 * r0
            variance = n1 * s1 + n1 * n1 * s0 / n0
        excess = o1 - expected
        z = excess / np.sqrt(variance)
    z = np.where(np.isfinite(z) & (variance > 0), z, np.nan)
    return expected, excess, variance, z


def scored(frame: pd.DataFrame, ranking: str) -> pd.DataFrame:
    """Excess, its variance, z and the one-sided p-value of each slice (see the module docstring)."""
    f = frame.copy()
    expected, excess, variance, z = excess_of(*(f[s].to_numpy(float) for s in STATS), ranking)
    f["expected"] = expected
    f["excess"] = excess
    f["variance"] = variance
    f["z"] = z
    f["p_value"] = np.where(np.isnan(z), np.nan, stats.norm.sf(np.nan_to_num(z)))
    return f


def search(con, rows: Rows, *, min_support: int, min_other: int, max_level: int, top_k: int) -> pd.DataFrame:
    """Every slice evaluated, scored (see the module docstring), with ``level``."""
    feats = rows.features
    sets = [(c,) for c in feats]
    if max_level >= 2:
        sets += list(itertools.combinations(feats, 2))
    frame = _grouped(con, rows, sets)
    frame = pd.concat([frame, _ranges(frame[frame["predicates"].map(len) == 1], rows)], ignore_index=True)
    frame["level"] = [len(p) for p in frame["predicates"]]
    frame = _valid(scored(frame, rows.ranking), min_support, min_other, rows.ranking)
    levels = [frame]
    for level in range(3, max_level + 1):
        below = levels[-1] if level > 3 else frame[frame["level"] == 2]
        parents = list(_best(below, beam_width(top_k))["predicates"])
        if not parents or len(parents[0]) >= len(feats):
            break
        found = _extend(con, rows, parents)
        found["level"] = level
        found = _valid(scored(found, rows.ranking), min_support, min_other, rows.ranking)
        if found.empty:
            break
        levels.append(found)
    return pd.concat(levels, ignore_index=True)


def _valid(frame: pd.DataFrame, min_support: int, min_other: int, ranking: str) -> pd.DataFrame:
    keep = frame["n1"] >= max(min_support, 1)
    if ranking == "version":
        keep &= frame["n0"] >= max(min_other, 1)
    return frame[keep].reset_index(drop=True)


def _key(predicates: dict) -> tuple:
    return tuple(
        sorted((k, str(v) if isinstance(v, tuple) else (-1 if v is None else int(v))) for k, v in predicates.items())
    )


def _ranges(frame: pd.DataFrame, rows: Rows) -> pd.DataFrame:
    """Slices where a number lies below or from one of its cut points, ``("lt", k)`` and
    ``("ge", k)``, from the per-bin groups in ``frame``: the bins' sums cumulated along the
    number's axis, within each value of the other conditions (a band such as ``age < 25``
    is found even when no single bin is it)."""
    out = []
    for feature in rows.encoding.features:
        if feature.kind not in ("numeric", "timestamp") or len(feature.labels) < 3:
            continue
        column, width = feature.column, len(feature.labels)
        mine = frame[frame["predicates"].map(lambda p: isinstance(p.get(column, None), (int, np.integer)))]
        if mine.empty:
            continue
        rest = mine["predicates"].map(lambda p: str(_key({c: v for c, v in p.items() if c != column})))
        index, first = pd.factorize(rest)
        grid = np.zeros((len(first), width, len(STATS)))
        codes = mine["predicates"].map(lambda p: int(p[column])).to_numpy()
        np.add.at(grid, (index, codes), mine[list(STATS)].to_numpy(float))
        cum = np.cumsum(grid, axis=1)
        template = [dict(mine["predicates"].iloc[int(np.flatnonzero(index == g)[0])]) for g in range(len(first))]
        for k in range(1, width):
            for op, sums in (("lt", cum[:, k - 1]), ("ge", cum[:, -1] - cum[:, k - 1])):
                if (op == "lt" and k == 1) or (op == "ge" and k == width - 1):
                    continue  # one bin: already a slice of its own
                part = pd.DataFrame(sums, columns=list(STATS))
                part.insert(
                    0,
                    "predicates",
                    [
                        dict(sorted({**t, column: (op, k)}.items(), key=lambda kv: rows.features.index(kv[0])))
                        for t in template
                    ],
                )
                out.append(part)
    return pd.concat(out, ignore_index=True) if out else frame.iloc[0:0]


def _best(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    return ranked(frame[frame["excess"] > 0]).head(k)


def ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """Slices by z, highest first; ties to fewer conditions, then more rows, then the predicates.
    z is compared to 9 decimals: the same rows under two names (``channel = partner_api`` and
    ``device = server``) sum in whatever order the engine's threads take, and may differ in the
    last bits, which must not decide which name comes first."""
    z = frame["z"].fillna(-np.inf).round(9)
    f = frame.assign(sb_z=z, sb_key=frame["predicates"].map(lambda p: str(_key(p))))
    f = f.sort_values(["sb_z", "level", "n1", "sb_key"], ascending=[False, True, False, True], kind="stable")
    return f.drop(columns=["sb_z", "sb_key"])


def support(min_support: int | float | None, n: float) -> int:
    """``min_support`` as a row count (an int), a fraction of ``n`` (a float in (0, 1)), default 1%."""
    if min_support is None:
        min_support = 0.01
    if isinstance(min_support, bool) or not isinstance(min_support, (int, float)) or min_support < 0:
        raise ConfigError(f"min_support must be a row count or a fraction, not {min_support!r}.")
    if isinstance(min_support, float) and min_support < 1:
        return int(min_support * n)
    return int(min_support)

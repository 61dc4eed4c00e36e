"""Where is the candidate worse than the baseline? A search on the *difference* of the
two versions' errors, slice by slice, with false-discovery control.

**Candidate slices.** Every value of each categorical or boolean feature (and its
missing value), and for each numeric feature the one-sided thresholds ``x < c`` and
``x >= c`` at cut points fine enough to find a narrow band such as ``age < 25``: the
5%, 10%, …, 95% quantiles of the compared rows (beyond a million rows, of a fixed
sample of about 100,000 of their examples, the same on every run and engine; the
counts are always exact), each rounded to two significant digits (round values
people use; integers stay integers). Then every pair of
conditions on two different features (numeric features at every other cut point:
the deciles). A slice is tested only when it has at least ``min_support`` labeled
rows in both versions (paired: that many labeled pairs).

**Test** per slice, on the same slice in both versions (:mod:`analysis.stats.tests`):
unpaired, the two-proportion z-test of the error rates and the Wald interval of
their difference (regression: Welch's t-test on absolute errors); paired, McNemar's
test on the pairs the versions disagree on (regression: the paired t-test). Every
tested slice is one hypothesis: the Benjamini–Hochberg procedure runs over all of
them (and over the comparison's other slices), so a slice reported at q < 0.05 is
a discovery at a false-discovery rate of 5% whatever the number of slices tried.

**Counting** is one query per side over its labeled rows (the only ones a test
reads): a grouping set per feature and per pair of features counts every row's
bin; numpy adds the bins up into the thresholds.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.slices import Condition, Slice
from analysis.slices.grouping import CUT_SAMPLE, CutSample
from analysis.stats.multiple_testing import bh_qvalues, weighted_bh
from analysis.stats.tests import paired_mean_tests, paired_tests, unpaired_slice_tests, welch_tests
from analysis.store.project import Project
from analysis.store.sql import quote_ident

QUANTILES = [i / 10 for i in range(1, 10)]
MIN_SUPPORT = 100
MAX_VALUES = 50  # categories of one feature searched (the most frequent)
SOURCE = "found where the candidate is worse"


@dataclass(frozen=True)
class _Feature:
    name: str
    kind: str  # numeric, categorical, boolean
    code_sql: str  # a small integer per row: -1 missing, -2 a category not searched
    params: tuple
    atoms: list  # (Condition, codes it covers, used in pairs)
    size: int  # codes -2..size-3


@dataclass
class Found:
    """The search's result: the top slices and every tested slice's p-value."""

    slices: list[tuple[str, str, Slice]]
    tested: pd.DataFrame  # where, counts, delta, interval, p_value, q_value of every tested slice


def nice(x: float, integer: bool) -> float:
    """``x`` to two significant digits (617.3 → 620, 24.6 → 25, 0.0437 → 0.044)."""
    if x == 0 or not math.isfinite(x):
        return x
    digits = 1 - int(math.floor(math.log10(abs(x))))
    value = round(x, digits)
    return float(int(round(value))) if integer and digits <= 0 else (float(round(value)) if integer else value)


def cut_points(quantiles: list[float], low: float, high: float, integer: bool) -> list[float]:
    """The deciles (to two significant digits) and the round values between the 1% and
    99% quantiles (multiples of 1, 2, 2.5 or 5 × a power of ten, at most 15 of them)."""
    out = {nice(q, integer) for q in quantiles if math.isfinite(q)}
    if math.isfinite(low) and math.isfinite(high) and high > low:
        raw = (high - low) / 15
        power = 10 ** math.floor(math.log10(raw))
        step = next(m * power for m in (1, 2, 2.5, 5, 10) if (high - low) / (m * power) <= 15)
        if integer:
            step = max(1.0, round(step))
        k = math.ceil(low / step)
        while k * step <= high:
            out.add(round(k * step, 10))
            k += 1
    return sorted(x for x in out if math.isfinite(x))


def sample_rows(con, rows: tuple[str, list], buckets: int | None, sample: CutSample = CUT_SAMPLE) -> tuple[str, list]:
    """``rows``, or beyond ``sample.exact_up_to`` of them those of the first buckets
    (``sb_bucket``, one of ``buckets`` by the example's key): about ``sample.rows`` rows."""
    if not buckets:
        return rows
    n = con.execute(f"SELECT count(*) FROM ({rows[0]}) AS s", rows[1]).fetchall()[0][0]
    bound = sample.key_bound(n, buckets)
    if bound is None:
        return rows
    return f"SELECT * FROM ({rows[0]}) AS s WHERE sb_bucket < ?", [*rows[1], bound]


def _features(
    con,
    project: Project,
    rows: tuple[str, list],
    columns: list[str],
    buckets: int | None = None,
    sample: CutSample = CUT_SAMPLE,
) -> list[_Feature]:
    kinds = {f.name: f.kind for f in project.features}
    numeric = [c for c in columns if kinds[c] == "numeric"]
    cuts: dict[str, list[float]] = {}
    deciles: dict[str, set[float]] = {}
    if numeric:
        qs = [*QUANTILES, 0.01, 0.99]
        marks = ", ".join("?" for _ in qs)
        exprs = [f"quantile_disc(CAST({quote_ident(c)} AS DOUBLE), [{marks}])" for c in numeric]
        exprs += [
            f"bool_and(CAST({quote_ident(c)} AS DOUBLE) = round(CAST({quote_ident(c)} AS DOUBLE)))" for c in numeric
        ]
        drawn = sample_rows(con, rows, buckets, sample)
        got = con.execute(
            f"SELECT {', '.join(exprs)} FROM ({drawn[0]}) AS s", [*[q for _ in numeric for q in qs], *drawn[1]]
        ).fetchall()[0]
        for i, c in enumerate(numeric):
            integer = bool(got[len(numeric) + i])
            marks_ = [float(x) if x is not None else math.nan for x in (got[i] or [math.nan] * len(qs))]
            cuts[c] = cut_points(marks_[: len(QUANTILES)], marks_[-2], marks_[-1], integer)
            deciles[c] = {nice(q, integer) for q in marks_[: len(QUANTILES)] if math.isfinite(q)}
    categorical = [c for c in columns if kinds[c] == "categorical"]
    values: dict[str, list[str]] = {}
    for c in categorical:
        top = con.execute(
            f"SELECT CAST({quote_ident(c)} AS VARCHAR) AS v, count(*) AS n FROM ({rows[0]}) AS s "
            f"WHERE {quote_ident(c)} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {MAX_VALUES + 1}",
            rows[1],
        ).fetchall()
        if len(top) <= MAX_VALUES:  # more distinct values than that: an identifier, not a grouping
            values[c] = [str(v) for v, _ in top]
    out = []
    for c in columns:
        col = quote_ident(c)
        if c in cuts and cuts[c]:
            edges = cuts[c]
            sql = (
                f"CASE WHEN {col} IS NULL THEN -1 ELSE "
                + " + ".join(f"CAST(CAST({col} AS DOUBLE) >= ? AS INTEGER)" for _ in edges)
                + " END"
            )
            atoms = [(Condition(c, "is_null"), [-1], False)]
            # The deciles first (values that occur), then the round values: of two
            # thresholds that cut the rows the same way, the first is kept.
            order = sorted(range(1, len(edges) + 1), key=lambda k: (edges[k - 1] not in deciles[c], k))
            for k in order:
                edge = int(edges[k - 1]) if float(edges[k - 1]).is_integer() else edges[k - 1]
                decile = edges[k - 1] in deciles[c]  # pairs use the deciles only
                atoms.append((Condition(c, "between", high=edge), list(range(0, k)), decile))
                atoms.append((Condition(c, "between", low=edge), list(range(k, len(edges) + 1)), decile))
            out.append(_Feature(c, "numeric", sql, tuple(edges), atoms, len(edges) + 3))
        elif c in values:
            vals = values[c]
            sql = (
                f"CASE WHEN {col} IS NULL THEN -1 "
                + " ".join(f"WHEN CAST({col} AS VARCHAR) = ? THEN {i}" for i in range(len(vals)))
                + " ELSE -2 END"
            )
            atoms = [(Condition(c, "in", values=(v,)), [i], True) for i, v in enumerate(vals)]
            atoms.append((Condition(c, "is_null"), [-1], True))
            out.append(_Feature(c, "categorical", sql, tuple(vals), atoms, len(vals) + 2))
        elif kinds[c] == "boolean":
            sql = f"CASE WHEN {col} IS NULL THEN -1 WHEN {col} THEN 1 ELSE 0 END"
            atoms = [
                (Condition(c, "is_true"), [1], True),
                (Condition(c, "is_false"), [0], True),
                (Condition(c, "is_null"), [-1], True),
            ]
            out.append(_Feature(c, "boolean", sql, (), atoms, 4))
    return out


def _matrix(f: _Feature, pairs_only: bool = False) -> tuple[np.ndarray, list[Condition]]:
    atoms = [a for a in f.atoms if a[2] or not pairs_only]
    m = np.zeros((len(atoms), f.size))
    for i, (_, codes, _) in enumerate(atoms):
        m[i, [code + 2 for code in codes]] = 1.0
    return m, [a[0] for a in atoms]


def _tables(
    con, feats: list[_Feature], source: tuple[str, list], terms: dict[str, str], where: str
) -> tuple[dict, dict]:
    """Per feature (and pair of features) each statistic (a sum of ``terms`` over the rows
    meeting ``where``) as a vector (matrix) over codes, in one query with a grouping set
    per feature and per pair: the engine counts every table in one scan (on millions of
    rows each row is nearly a cell of its own, so counting cells in numpy would go over
    every row once per pair)."""
    names = [f"k{i}" for i in range(len(feats))]
    keys = ", ".join(f"CAST({f.code_sql} AS SMALLINT) AS {name}" for name, f in zip(names, feats))
    params = [p for f in feats for p in f.params] + list(source[1])
    sets = [f"({a})" for a in names] + [f"({a}, {b})" for i, a in enumerate(names) for b in names[i + 1 :]]
    # Each row's codes and terms first (narrow): the grouping sets then read only those.
    table = quote_ident(f"sb_codes_{uuid.uuid4().hex}")
    values = ", ".join(f"CAST({t} AS DOUBLE) AS {quote_ident(name)}" for name, t in terms.items())
    con.execute(f"CREATE TEMP TABLE {table} AS SELECT {keys}, {values} FROM ({source[0]}) AS s WHERE {where}", params)
    try:
        sums = ", ".join(f"sum({quote_ident(name)}) AS {quote_ident(name)}" for name in terms)
        got = con.execute(
            f"SELECT {', '.join(names)}, {sums} FROM {table} GROUP BY GROUPING SETS ({', '.join(sets)})"
        ).df()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    # A code is never NULL (a missing value has its own code): a NULL key is one the set leaves out.
    present = [got[name].notna().to_numpy() for name in names]
    codes = [got[name].fillna(-2).to_numpy(dtype=np.int64) + 2 for name in names]
    stats = {name: got[name].fillna(0).to_numpy(dtype=float) for name in terms}
    width = np.sum(present, axis=0)  # how many features the row's grouping set has

    def count(rows: np.ndarray, index: np.ndarray, size: int) -> dict:
        return {name: np.bincount(index[rows], weights=stats[name][rows], minlength=size) for name in terms}

    singles = {i: count((width == 1) & present[i], codes[i], f.size) for i, f in enumerate(feats)}
    pairs = {}
    for i, f in enumerate(feats):
        for j in range(i + 1, len(feats)):
            g = feats[j]
            table = count((width == 2) & present[i] & present[j], codes[i] * g.size + codes[j], f.size * g.size)
            pairs[(i, j)] = {name: v.reshape(f.size, g.size) for name, v in table.items()}
    return singles, pairs


def _candidates(feats: list[_Feature], singles: dict, pairs: dict, stats: list[str]) -> pd.DataFrame:
    frames = []
    for i, f in enumerate(feats):
        m, conds = _matrix(f)
        frames.append(pd.DataFrame({"slice": [Slice.of(c) for c in conds], **{s: m @ singles[i][s] for s in stats}}))
    for (i, j), table in pairs.items():
        (mi, ci), (mj, cj) = _matrix(feats[i], True), _matrix(feats[j], True)
        values = {s: (mi @ table[s] @ mj.T).ravel() for s in stats}
        frames.append(pd.DataFrame({"slice": [Slice.of(a, b) for a in ci for b in cj], **values}))
    return pd.concat(frames, ignore_index=True)


def search(
    con,
    project: Project,
    *,
    paired: bool,
    base: tuple[str, list],
    cand: tuple[str, list] | None,
    columns: list[str],
    top_k: int = 5,
    min_support: int = MIN_SUPPORT,
    alpha: float = 0.05,
    buckets: int | None = None,
    sample: CutSample = CUT_SAMPLE,
) -> Found:
    """The slices where the candidate's error is significantly above the baseline's.
    Unpaired, ``base`` and ``cand`` are each side's rows (label, prediction, features);
    paired, ``base`` is the pairs (label, prediction__b, prediction__c, features).
    ``buckets``: the rows carry ``sb_bucket``, one of that many by the example's key, and
    the cut points of millions of rows come from a sample of the buckets (None: every row;
    ``sample`` says from how many rows on, and how many)."""
    feats = _features(con, project, base, columns, buckets, sample)
    empty = Found([], pd.DataFrame(columns=["where", "p_value", "q_value"]))
    if not feats:
        return empty
    regression = project.task == "regression"
    if paired:
        both = "label IS NOT NULL AND prediction__b IS NOT NULL AND prediction__c IS NOT NULL"
        err = {
            t: (
                f"abs(label - prediction__{t})"
                if regression
                else f"CASE WHEN label = prediction__{t} THEN 0 ELSE 1 END"
            )
            for t in ("b", "c")
        }
        # Over the labeled pairs only (the tests read nothing else).
        terms = {"n_labeled_b": "1", "errors_b": err["b"], "errors_c": err["c"]}
        if regression:
            terms |= {
                "d_sum": f"{err['c']} - {err['b']}",
                "d_sq": f"({err['c']} - {err['b']}) * ({err['c']} - {err['b']})",
            }
        else:
            terms |= {
                "n01": "CASE WHEN prediction__b = label AND prediction__c <> label THEN 1 ELSE 0 END",
                "n10": "CASE WHEN prediction__b <> label AND prediction__c = label THEN 1 ELSE 0 END",
            }
        singles, pairs = _tables(con, feats, base, terms, both)
        frame = _candidates(feats, singles, pairs, list(terms))
        frame["n_labeled_c"] = frame["n_both"] = frame["n_labeled_b"]
    else:
        labeled = "label IS NOT NULL AND prediction IS NOT NULL"
        wrong = "abs(label - prediction)" if regression else "CASE WHEN label = prediction THEN 0 ELSE 1 END"
        terms = {"n_labeled": "1", "errors": wrong, "errors_sq": f"({wrong}) * ({wrong})"}
        sides = []
        for source in (base, cand):
            singles, pairs = _tables(con, feats, source, terms, labeled)
            sides.append(_candidates(feats, singles, pairs, list(terms)))
        frame = sides[0].rename(columns={s: f"{s}_b" for s in terms})
        for s in terms:
            frame[f"{s}_c"] = sides[1][s].to_numpy()
    frame = frame[(frame["n_labeled_b"] >= min_support) & (frame["n_labeled_c"] >= min_support)].copy()
    if frame.empty:
        return empty
    frame["where"] = [s.readable() for s in frame["slice"]]
    # One test per set of rows: thresholds that cut the rows alike (no value between
    # them) and a pair equal to one of its conditions have the same counts.
    counts = [c for c in frame.columns if c.startswith(("n_", "errors", "n01", "n10", "d_"))]
    frame = frame.drop_duplicates("where").drop_duplicates(counts)
    frame["error_rate_b"] = frame["errors_b"] / frame["n_labeled_b"]
    frame["error_rate_c"] = frame["errors_c"] / frame["n_labeled_c"]
    frame["delta"] = frame["error_rate_c"] - frame["error_rate_b"]
    if paired:
        (paired_mean_tests if regression else paired_tests)(frame)
    else:
        (welch_tests if regression else unpaired_slice_tests)(frame)
    # One-sided: the search asks whether the candidate is worse (the tests are symmetric).
    two = frame["p_value"].to_numpy(float)
    frame["p_value"] = np.where(frame["delta"] > 0, two / 2, 1 - two / 2)
    frame["level"] = [len(s.conditions) for s in frame["slice"]]
    frame["q_value"] = weighted_bh(frame["p_value"].to_numpy(float), frame["level"].to_numpy())
    frame["test"] = frame["test"] + f"; one-sided, weighted BH over {len(frame):,} slices searched"
    frame = frame.reset_index(drop=True)
    return Found(_top(frame, top_k, alpha), frame)


def with_search(frame: pd.DataFrame, found: Found) -> None:
    """A comparison's slices, with the searched ones' p- and q-values from the search's
    own family (they were chosen from it) and the rest's BH q-values over the rest."""
    mask = (frame["source"] == SOURCE).to_numpy()
    tested = found.tested.set_index("where")
    if mask.any():
        where = frame.loc[mask, "where"]
        for column in ("p_value", "q_value", "test"):
            frame.loc[mask, column] = where.map(tested[column]).to_numpy()
    frame.loc[~mask, "q_value"] = bh_qvalues(frame.loc[~mask, "p_value"].to_numpy(float))


def _top(frame: pd.DataFrame, top_k: int, alpha: float) -> list[tuple[str, str, Slice]]:
    """The ``top_k`` significant regressions with the largest sure worsening (the lower
    end of the interval), a refinement of one already chosen left out."""
    worse = frame[(frame["q_value"] < alpha) & (frame["delta"] > 0)].sort_values(
        ["ci_low", "q_value"], ascending=[False, True]
    )
    chosen: list[tuple[str, str, Slice]] = []
    taken: list[set] = []
    for where, slice_ in zip(worse["where"], worse["slice"]):
        if len(chosen) >= top_k:
            break
        conds = {c.readable() for c in slice_.conditions}
        if any(t <= conds or conds <= t for t in taken):
            continue
        taken.append(conds)
        chosen.append((SOURCE, where, slice_))
    return chosen

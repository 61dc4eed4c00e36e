"""SliceLine in DuckDB (analysis.discovery.find_slices): a hand-computed case, the
``sliceline`` package and an unpruned enumeration as referees, a brute-force pandas
enumeration, and the edge cases.

Comparing with the package: it returns every slice tied with its k-th score (so
possibly more than k) and orders ties its own way, so a top-k matches it when our
slices are all in the package's list with the same sizes, error sums and scores,
and every other slice it lists ties with our k-th. Where the package's pruning is
inexact, the unpruned enumeration (``prune=False``) and the brute force are the
referees; those datasets are kept below as documented cases.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd
import pytest
from sliceline import Slicefinder

import analysis.discovery.sliceline as sl
from analysis import ConfigError
from analysis.discovery import NULL_CODE, find_slices

REL = 1e-9


# --------------------------------------------------------------------------------------------
# helpers


def make_db(tmp_path, df: pd.DataFrame, name: str = "slices.duckdb") -> duckdb.DuckDBPyConnection:
    """A real DuckDB file holding ``df`` as table ``d``."""
    con = duckdb.connect(str(tmp_path / name))
    con.register("frame", df)
    con.execute("CREATE OR REPLACE TABLE d AS SELECT * FROM frame")
    con.unregister("frame")
    return con


def features_of(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c != "err"]


def run(con, df, prune=True, **kw):
    return find_slices(con, "SELECT * FROM d", [], features_of(df), prune=prune, **kw)


def ranked(result) -> list[tuple]:
    """(predicates, size, errors, score) of the reported slices, in order."""
    t = result.top_slices
    return [
        (frozenset(p.items()), int(s), float(e), float(sc))
        for p, s, e, sc in zip(t["predicates"], t["size"], t["errors"], t["score"])
    ]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)


def assert_same(a: list[tuple], b: list[tuple]) -> None:
    """Two ranked lists: same slices in the same order, same statistics."""
    assert [x[0] for x in a] == [x[0] for x in b]
    for x, y in zip(a, b):
        assert x[1] == y[1]
        assert close(x[2], y[2]) and close(x[3], y[3])


def package_slices(df: pd.DataFrame, alpha, k, max_l, min_sup) -> list[tuple]:
    """The ``sliceline`` package on the same encoded input (NULL as its own code, -1)."""
    feats = features_of(df)
    x = df[feats].astype("Int64").fillna(NULL_CODE).to_numpy(dtype=np.int64)
    sf = Slicefinder(alpha=alpha, k=k, max_l=max_l, min_sup=min_sup, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf.fit(x, df["err"].to_numpy(dtype=float))
    out = []
    for row, st in zip(sf.top_slices_, sf.top_slices_statistics_):
        preds = frozenset((feats[j], None if v == NULL_CODE else int(v)) for j, v in enumerate(row) if v is not None)
        out.append((preds, int(st["slice_size"]), float(st["sum_slice_error"]), float(st["slice_score"])))
    return out


def agrees_with_package(ours: list[tuple], pkg: list[tuple], k: int) -> bool:
    """Our top-k equals the package's, up to the package listing every slice tied at the k-th."""
    by_key = {p[0]: p for p in pkg}
    for key, size, err, score in ours:
        if key not in by_key:
            return False
        _, psize, perr, pscore = by_key[key]
        if psize != size or not close(perr, err) or not close(pscore, score):
            return False
    mine = {x[0] for x in ours}
    kth = ours[-1][3] if len(ours) == k else None
    return all(p[0] in mine or (kth is not None and close(p[3], kth)) for p in pkg)


def brute_force(df: pd.DataFrame, alpha, k, max_l, min_sup) -> list[tuple]:
    """Every conjunction of up to max_l predicates by pandas groupby, ranked by the
    documented rule (score desc, fewer predicates, more rows, predicates in feature order
    with NULL first)."""
    feats = features_of(df)
    n = len(df)
    ebar = df["err"].sum() / n
    codes = df[feats].astype("Int64").fillna(NULL_CODE).astype(int)
    codes["err"] = df["err"].astype(float)
    found = []
    for level in range(1, max_l + 1):
        for combo in itertools.combinations(range(len(feats)), level):
            cols = [feats[j] for j in combo]
            g = codes.groupby(cols)["err"].agg(sb_rows="size", sb_errors="sum").reset_index()
            for row in g.itertuples(index=False):
                vals, size, se = row[:level], int(row[level]), float(row[level + 1])
                if size < min_sup or size == 0:
                    continue
                score = alpha * ((se / size) / ebar - 1) - (1 - alpha) * (n / size - 1)
                if score <= 0:
                    continue
                order = tuple((j, int(v)) for j, v in zip(combo, vals))
                found.append(
                    (
                        (-score, level, -size, order),
                        (frozenset((feats[j], None if v == NULL_CODE else int(v)) for j, v in order), size, se, score),
                    )
                )
    found.sort(key=lambda x: x[0])
    return [x[1] for x in found[:k]]


def random_frame(
    seed: int,
    n: int = 1500,
    m: int = 5,
    *,
    nulls: bool = True,
    duplicate: bool = True,
    real_errors: bool = False,
    integer_errors: bool = False,
) -> pd.DataFrame:
    """Integer-coded features (some with NULLs, one an exact copy of another so that
    scores tie), errors driven by the features."""
    rng = np.random.default_rng(seed)
    cards = rng.integers(2, 7, m)
    x = np.column_stack([rng.integers(0, c, n) for c in cards]).astype(float)
    if nulls:
        for j in range(0, m, 2):
            x[rng.random(n) < 0.08, j] = np.nan
    lin = np.zeros(n)
    for j in range(m):
        w = rng.normal(0, 1.0, cards[j] + 1)
        lin += w[np.where(np.isnan(x[:, j]), cards[j], x[:, j]).astype(int)]
    err = (rng.random(n) < 1 / (1 + np.exp(-(lin - 1.0)))).astype(float)
    if real_errors:
        err = err * np.round(rng.gamma(2.0, 1.5, n), 3)
    df = pd.DataFrame(x, columns=[f"f{j}" for j in range(m)]).astype("Int64")
    if duplicate:
        df[f"f{m}"] = df["f1"]
    df["err"] = err.astype("int32") if integer_errors else err
    return df


# --------------------------------------------------------------------------------------------
# 1. hand-computed


def test_hand_computed_case(tmp_path):
    """12 rows, a in {0,1,2}, b in {0,1,NULL}; α = 0.95, σ = 2.

    n = 12, 5 errors, ē = 5/12, so rate/ē = 2.4·rate and
    sc = 0.95·(2.4·rate − 1) − 0.05·(12/size − 1):

    * b IS NULL: rows 3, 7, 11, all errors: 0.95·1.4 − 0.05·3  = 1.18
    * a=0 AND b=0: rows 0, 1, both errors:  0.95·1.4 − 0.05·5  = 1.08
    * a=0: rows 0–3, 3 errors (rate .75):   0.95·0.8 − 0.05·2  = 0.66
    * b=0: 5 rows, 2 errors: 0.95·(0.96 − 1) − 0.05·1.4 = −0.108; a=1, a=2:
      4 rows, 1 error: −0.48; b=1: 4 rows, no error: −1.05
    * a=0 AND b IS NULL: 1 row < σ; the other pairs have ≤ 2 rows and ≤ 0 score.
    """
    df = pd.DataFrame(
        {
            "a": [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
            "b": [0, 0, 1, None, 0, 0, 1, None, 0, 1, 1, None],
            "err": [1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],
        }
    )
    df["b"] = df["b"].astype("Int64")
    con = make_db(tmp_path, df)
    res = run(con, df, alpha=0.95, min_support=2, max_level=2, top_k=3)
    top = ranked(res)
    assert [t[0] for t in top] == [frozenset({("b", None)}), frozenset({("a", 0), ("b", 0)}), frozenset({("a", 0)})]
    assert [t[1] for t in top] == [3, 2, 4]
    assert [t[2] for t in top] == [3.0, 2.0, 3.0]
    for got, want in zip([t[3] for t in top], [1.18, 1.08, 0.66]):
        assert got == pytest.approx(want, rel=1e-12)
    t = res.top_slices
    assert [None if pd.isna(v) else v for v in t["a"]] == [None, 0, 0]
    assert [None if pd.isna(v) else v for v in t["b"]] == [NULL_CODE, 0, None]
    assert t["level"].tolist() == [1, 2, 1]
    assert t["error_rate"].tolist() == pytest.approx([1.0, 1.0, 0.75])
    assert res.n_rows == 12 and res.total_errors == 5 and res.min_support == 2 and res.alpha == 0.95

    # level 1: six values, five valid (b=1 has no error); only a=0, b=0 and b IS NULL can still
    # reach a positive score (a=1 and a=2 have one error in 4 rows: bound −0.06), so level 2
    # forms a=0 with b=0 and with b IS NULL, and both are counted
    lv = {c["level"]: c for c in res.candidates_per_level}
    assert (lv[1]["generated"], lv[1]["valid"]) == (6, 5)
    assert (lv[2]["parents"], lv[2]["extendable"], lv[2]["generated"], lv[2]["evaluated"], lv[2]["valid"]) == (
        5,
        3,
        2,
        2,
        1,
    )
    ev = res.evaluated
    assert len(ev) == 8
    lonely = ev[ev["predicates"] == {"a": 0, "b": None}].iloc[0]
    assert (lonely["size"], lonely["errors"]) == (1, 1.0)

    # the unpruned enumeration extends every value with >= 2 rows: 3 x 3 pairs
    ref = run(con, df, prune=False, alpha=0.95, min_support=2, max_level=2, top_k=3)
    assert_same(ranked(ref), top)
    assert ref.candidates_per_level[1]["generated"] == 9
    assert_same(brute_force(df, 0.95, 3, 2, 2), top)
    assert agrees_with_package(top, package_slices(df, 0.95, 3, 2, 2), 3)


def test_hand_computed_tie(tmp_path):
    """10 rows, 4 errors (ē = 0.4), α = 0.95, σ = 2. Positive scores:

    * a=0 AND b=0: 2 rows, 2 errors: 0.95·(2.5 − 1) − 0.05·4 = 1.225
    * a=0: 4 rows, 3 errors:          0.95·0.875 − 0.05·1.5 = 0.75625
    * a=0 AND b=1, a=1 AND b=1: 2 rows, 1 error each: 0.95·0.25 − 0.2 = 0.0375, a tie

    With k = 3 the tie at the k-th place goes to the predicates in feature order (a=0
    before a=1). Documented disagreement: the package misses a=1 AND b=1 at any k. Its
    top-k holds only a=0 after level 1 (not full), and it prunes the pair because the
    pair's bound (0.1625) does not exceed that lowest score (0.75625); the pair belongs in
    a top-4 (and, as a tie, in the package's own top-3 listing).
    """
    df = pd.DataFrame(
        {
            "a": [0, 0, 0, 0, 1, 1, 1, 1, 2, 2],
            "b": [0, 0, 1, 1, 0, 0, 1, 1, 0, 1],
            "err": [1, 1, 1, 0, 0, 0, 1, 0, 0, 0],
        }
    )
    con = make_db(tmp_path, df)
    res = run(con, df, alpha=0.95, min_support=2, max_level=2, top_k=3)
    top = ranked(res)
    assert [t[0] for t in top] == [
        frozenset({("a", 0), ("b", 0)}),
        frozenset({("a", 0)}),
        frozenset({("a", 0), ("b", 1)}),
    ]
    assert [t[3] for t in top] == pytest.approx([1.225, 0.75625, 0.0375], rel=1e-12)
    assert_same(brute_force(df, 0.95, 3, 2, 2), top)
    assert agrees_with_package(top, package_slices(df, 0.95, 3, 2, 2), 3)
    four = ranked(run(con, df, alpha=0.95, min_support=2, max_level=2, top_k=4))
    assert four[3][0] == frozenset({("a", 1), ("b", 1)}) and four[3][3] == four[2][3]
    assert_same(four, ranked(run(con, df, prune=False, alpha=0.95, min_support=2, max_level=2, top_k=4)))
    assert_same(four, brute_force(df, 0.95, 4, 2, 2))
    pkg = package_slices(df, 0.95, 4, 2, 2)
    assert frozenset({("a", 1), ("b", 1)}) not in {p[0] for p in pkg}
    assert not agrees_with_package(four, pkg, 4)


# --------------------------------------------------------------------------------------------
# 2. the package and the unpruned enumeration


CASES = [
    # seed, rows, features, options, alpha, k, max_level, min_support
    (1, 1500, 5, {}, 0.95, 10, 3, 15),
    (2, 2500, 4, {"integer_errors": True}, 0.95, 10, 3, 25),
    (3, 800, 5, {"real_errors": True}, 0.9, 8, 3, 10),
    (4, 3000, 6, {}, 0.95, 15, 3, 30),
    (5, 1200, 4, {"nulls": False, "duplicate": False}, 0.8, 5, 4, 5),
    (6, 2000, 5, {"integer_errors": True}, 0.99, 20, 2, 10),
    (7, 600, 3, {"real_errors": True}, 0.95, 12, 3, 3),
    (8, 5000, 5, {}, 0.95, 10, 3, 50),
]


@pytest.mark.parametrize("seed,n,m,opts,alpha,k,max_l,sigma", CASES)
def test_equals_package_and_unpruned(tmp_path, seed, n, m, opts, alpha, k, max_l, sigma):
    df = random_frame(seed, n, m, **opts)
    con = make_db(tmp_path, df)
    pruned_run = run(con, df, alpha=alpha, min_support=sigma, max_level=max_l, top_k=k)
    full_run = run(con, df, prune=False, alpha=alpha, min_support=sigma, max_level=max_l, top_k=k)
    pruned, full = ranked(pruned_run), ranked(full_run)
    assert pruned, "the dataset should have slices to find"
    assert_same(pruned, full)
    assert len(pruned_run.evaluated) <= len(full_run.evaluated)
    assert agrees_with_package(full, package_slices(df, alpha, k, max_l, sigma), k)
    if n <= 2500:
        assert_same(brute_force(df, alpha, k, max_l, sigma), full)


def test_pruning_is_exact_on_many_datasets(tmp_path):
    """Pruned and unpruned top-k are identical over many small random searches (0/1,
    integer and real-valued errors, up to four predicates, k from 1 to 25)."""
    rng = np.random.default_rng(2026)
    for i in range(40):
        opts = [{}, {"integer_errors": True}, {"real_errors": True}][i % 3]
        df = random_frame(1000 + i, int(rng.integers(100, 1500)), int(rng.integers(2, 6)), **opts)
        con = make_db(tmp_path, df, name=f"many{i}.duckdb")
        kw = dict(
            alpha=float(rng.choice([0.6, 0.9, 0.95, 0.99, 1.0])),
            min_support=int(rng.integers(1, 30)),
            max_level=int(rng.integers(1, 5)),
            top_k=int(rng.integers(1, 26)),
        )
        assert_same(ranked(run(con, df, **kw)), ranked(run(con, df, prune=False, **kw)))
        con.close()


def test_ties_from_a_duplicated_feature(tmp_path):
    """f5 is a copy of f1: every slice on f1 ties with the same slice on f5, and the
    one on f1 (earlier feature) ranks first, in the pruned and unpruned runs alike."""
    df = random_frame(11, 2000, 5)
    con = make_db(tmp_path, df)
    res = run(con, df, alpha=0.95, min_support=20, max_level=2, top_k=40)
    top = ranked(res)
    assert_same(top, ranked(run(con, df, prune=False, alpha=0.95, min_support=20, max_level=2, top_k=40)))
    keys = [t[0] for t in top]
    pairs = 0
    for i, key in enumerate(keys):
        if any(f == "f5" for f, _ in key) and not any(f == "f1" for f, _ in key):
            twin = frozenset(("f1" if f == "f5" else f, v) for f, v in key)
            if twin in keys:
                assert keys.index(twin) < i and close(top[keys.index(twin)][3], top[i][3])
                pairs += 1
    assert pairs >= 1


def test_package_inexact_when_top_k_not_full(tmp_path):
    """Documented disagreement: the package prunes against the lowest score of a top-k
    list that is not yet full.

    400 rows, α = 1, k = 10, σ = 5. a=0 (40 rows) is all errors: score 1/ē − 1 = 7/3,
    the only positive level-1 slice (b and c have exactly the mean error rate). With
    α = 1 every pair's bound is 7/3 too, which does not exceed the lowest score of the
    (not full) top-k, so the package drops all pairs. But four pairs a=0 AND ... tie at
    7/3 and b=0 AND c=0, b=1 AND c=1 (100 rows, 40 errors) score 1/3: all belong in a
    top-10. The unpruned enumeration and the brute force agree with our pruned run.
    """
    rows = []
    for (b, c), e in {(1, 1): 30, (1, 0): 10, (0, 1): 10, (0, 0): 30}.items():
        rows += [(0, b, c, 1)] * 10 + [(1, b, c, 1)] * e + [(1, b, c, 0)] * (90 - e)
    df = pd.DataFrame(rows, columns=["a", "b", "c", "err"])
    con = make_db(tmp_path, df)
    ours = ranked(run(con, df, alpha=1.0, min_support=5, max_level=2, top_k=10))
    assert_same(ours, ranked(run(con, df, prune=False, alpha=1.0, min_support=5, max_level=2, top_k=10)))
    assert_same(ours, brute_force(df, 1.0, 10, 2, 5))
    assert len(ours) == 7
    assert ours[-1][0] == frozenset({("b", 1), ("c", 1)}) and ours[-1][3] == pytest.approx(1 / 3)
    pkg = package_slices(df, 1.0, 10, 2, 5)
    assert [p[0] for p in pkg] == [frozenset({("a", 0)})]
    assert not agrees_with_package(ours, pkg, 10)


def test_package_inexact_with_more_one_hot_columns_than_rows(tmp_path):
    """Documented disagreement: the package's bound has the number of one-hot columns
    where the paper has the number of rows. Here 20 rows have 38 one-hot columns, the
    package's size penalty is too large, its "upper bound" falls below real scores and
    it prunes two pairs that score 1.8 (the single error's row, 2 rows each). The
    unpruned enumeration and the brute force agree with our pruned run."""
    df = pd.DataFrame(
        {
            "f0": [2, 3, 1, 3, 8, 4, 10, 4, 3, 8, 9, 9, 9, 0, 5, 2, 2, 2, 9, 8],
            "f1": [1, 2, 3, 0, 3, 2, 4, 3, 1, 4, 3, 1, 2, 3, 1, 1, 0, 0, 2, 0],
            "f2": [8, 5, 2, 5, 0, 2, 6, 1, 10, 3, 12, 2, 8, 7, 12, 8, 12, 6, 3, 2],
            "f3": [6, 1, 5, 3, 1, 2, 5, 3, 6, 6, 2, 3, 3, 3, 0, 2, 4, 6, 1, 4],
            "f4": [5, 6, 1, 4, 2, 3, 0, 5, 0, 2, 3, 4, 3, 5, 0, 1, 1, 2, 0, 3],
            "err": [0.0] * 11 + [1.0] + [0.0] * 8,
        }
    )
    con = make_db(tmp_path, df)
    ours = ranked(run(con, df, alpha=0.6, min_support=2, max_level=2, top_k=5))
    assert_same(ours, ranked(run(con, df, prune=False, alpha=0.6, min_support=2, max_level=2, top_k=5)))
    assert_same(ours, brute_force(df, 0.6, 5, 2, 2))
    assert {frozenset({("f0", 9), ("f3", 3)}), frozenset({("f3", 3), ("f4", 4)})} <= {t[0] for t in ours}
    pkg = package_slices(df, 0.6, 5, 2, 2)
    assert frozenset({("f0", 9), ("f3", 3)}) not in {p[0] for p in pkg}
    assert not agrees_with_package(ours, pkg, 5)


@pytest.mark.parametrize("path", ["source", "table"])
def test_both_counting_paths_agree(tmp_path, path):
    """Counting over the pre-grouped table and straight over the source give the same
    statistics (forced either way), and so do grouping the table again at the next level,
    the two-statement pre-grouping used at scale and a pre-grouped table with one column
    per feature instead of a packed key."""
    df = random_frame(21, 3000, 5, real_errors=True)
    con = make_db(tmp_path, df)
    want = ranked(run(con, df, prune=False, alpha=0.9, min_support=10, max_level=3, top_k=15))
    options = dict(alpha=0.9, min_support=10, max_level=3, top_k=15)
    plan = sl.Counting(group_cost=10**9 if path == "source" else 0)
    res = run(con, df, counting=plan, **options)
    assert {c["base"] for c in res.candidates_per_level[1:]} == {path}
    assert_same(ranked(res), want)
    if path == "table":
        plan = replace(plan, regroup_rows=0)  # the table grouped again at level 3
        regrouped = run(con, df, counting=plan, **options)
        assert_same(ranked(regrouped), want)
        assert len(regrouped.evaluated) == len(res.evaluated)
        plan = replace(plan, two_step_rows=0)  # packed groups stored first, then unpacked
        assert_same(ranked(run(con, df, counting=plan, **options)), want)
        plan = replace(plan, max_packed_key=4)  # no packed keys at all: a column per feature
        assert_same(ranked(run(con, df, counting=plan, **options)), want)


def test_searches_sharing_their_counts_equal_searches_alone(tmp_path):
    """Two errors over the same rows (one 0/1, one real-valued), searched with shared
    counts (as a comparison's two directions are): each gives exactly what it gives
    alone, and the second search counts only the combinations the first did not."""
    df = random_frame(33, 3000, 5)
    other = random_frame(34, 3000, 5, real_errors=True)["err"]
    df["err2"] = other.to_numpy()
    con = make_db(tmp_path, df)
    features = [c for c in df.columns if c not in ("err", "err2")]
    counts = sl.SharedCounts(con, "SELECT * FROM d", [], features, ["err", "err2"])
    options = dict(alpha=0.9, min_support=10, max_level=3, top_k=12)
    for index, column in enumerate(["err", "err2"]):
        source = f"SELECT {', '.join(features)}, {column} AS err FROM d"
        alone = find_slices(con, source, [], features, **options)
        before = len(counts.groups)
        shared = find_slices(con, source, [], features, shared=(counts, index), **options)
        assert_same(ranked(shared), ranked(alone))
        pd.testing.assert_frame_equal(shared.evaluated, alone.evaluated)
        pairs = len(list(itertools.combinations(features, 2)))
        if index == 0:
            assert len(counts.groups) >= pairs  # every pair of features, and some triples
        else:
            assert len(counts.groups) - before < pairs  # the pairs were counted already
    with pytest.raises(ConfigError, match="other features"):
        find_slices(con, "SELECT * FROM d", [], features[:3], shared=(counts, 0), **options)


def test_pre_grouping_chosen_at_scale(tmp_path):
    """With many rows and few distinct value combinations the levels are counted over the
    pre-grouped table; results still equal the unpruned run and the package."""
    df = random_frame(32, 20_000, 6, integer_errors=True)
    con = make_db(tmp_path, df)
    res = run(con, df, alpha=0.95, min_support=200, max_level=3, top_k=10)
    assert res.candidates_per_level[1]["base"] == "table"
    full = ranked(run(con, df, prune=False, alpha=0.95, min_support=200, max_level=3, top_k=10))
    assert_same(ranked(res), full)
    assert agrees_with_package(full, package_slices(df, 0.95, 10, 3, 200), 10)
    # grouping the pre-grouped table again at level 3 (what larger inputs do) changes nothing
    again = run(con, df, alpha=0.95, min_support=200, max_level=3, top_k=10, counting=sl.Counting(regroup_rows=0))
    assert_same(ranked(again), full)
    assert [c.get("counted") for c in again.candidates_per_level[1:]] == ["table", "table regrouped at level 3"]
    # pruning did its job: fewer candidates than the unpruned enumeration
    ev = sum(c["evaluated"] for c in res.candidates_per_level)
    ev_full = sum(
        c["evaluated"]
        for c in run(con, df, prune=False, alpha=0.95, min_support=200, max_level=3, top_k=10).candidates_per_level
    )
    assert ev < ev_full


def test_error_column_types_agree(tmp_path):
    """0/1 errors as INTEGER or BOOLEAN (maximum error not aggregated), DOUBLE or DECIMAL
    give the same result."""
    df = random_frame(41, 3000, 5, integer_errors=True)
    con = make_db(tmp_path, df)
    a = run(con, df, min_support=20, top_k=12)
    for cast in ("DOUBLE", "BOOLEAN", "DECIMAL(6, 2)", "UTINYINT"):
        b = find_slices(
            con, f"SELECT * REPLACE (CAST(err AS {cast}) AS err) FROM d", [], features_of(df), min_support=20, top_k=12
        )
        assert_same(ranked(a), ranked(b))
        assert a.top_slices["max_error"].tolist() == b.top_slices["max_error"].tolist()
        assert len(a.evaluated) == len(b.evaluated)


# --------------------------------------------------------------------------------------------
# 3. edge cases


def test_no_errors_at_all(tmp_path):
    df = random_frame(51, 500, 3)
    df["err"] = 0.0
    con = make_db(tmp_path, df)
    res = run(con, df, min_support=5)
    assert res.top_slices.empty and list(res.top_slices.columns)[:1] == ["predicates"]
    assert res.total_errors == 0 and len(res.candidates_per_level) == 1
    assert len(res.evaluated) == res.candidates_per_level[0]["evaluated"] > 0
    assert np.isneginf(res.evaluated["score"]).all()


def test_every_row_an_error(tmp_path):
    df = random_frame(52, 500, 3)
    df["err"] = 1.0
    con = make_db(tmp_path, df)
    for alpha in (0.95, 1.0):
        res = run(con, df, alpha=alpha, min_support=5)
        assert res.top_slices.empty
        assert package_slices(df, alpha, 10, 3, 5) == []


def test_a_feature_with_one_value(tmp_path):
    """A constant feature: its slice is every row (score 0, never reported); joined with
    another predicate it ties with that predicate alone and ranks after it."""
    df = random_frame(53, 1500, 4, duplicate=False)
    df.insert(0, "const", pd.array([3] * len(df), dtype="Int64"))
    con = make_db(tmp_path, df)
    res = run(con, df, alpha=0.95, min_support=15, max_level=2, top_k=30)
    top = ranked(res)
    assert frozenset({("const", 3)}) not in {t[0] for t in top}
    assert_same(top, ranked(run(con, df, prune=False, alpha=0.95, min_support=15, max_level=2, top_k=30)))
    assert_same(top, brute_force(df, 0.95, 30, 2, 15))
    assert agrees_with_package(top, package_slices(df, 0.95, 30, 2, 15), 30)
    keys = [t[0] for t in top]
    for i, key in enumerate(keys):
        if ("const", 3) in key:
            assert keys.index(key - {("const", 3)}) < i


def test_min_support_larger_than_rows(tmp_path):
    df = random_frame(54, 300, 3)
    con = make_db(tmp_path, df)
    res = run(con, df, min_support=301)
    assert res.top_slices.empty and res.min_support == 301
    assert res.candidates_per_level[0]["valid"] == 0
    assert all(c["generated"] == 0 for c in res.candidates_per_level[1:])


def test_max_level_one(tmp_path):
    df = random_frame(55, 1500, 4)
    con = make_db(tmp_path, df)
    res = run(con, df, min_support=15, max_level=1, top_k=5)
    assert [c["level"] for c in res.candidates_per_level] == [1]
    assert set(res.top_slices["level"]) <= {1} and set(res.evaluated["level"]) == {1}
    assert_same(ranked(res), brute_force(df, 0.95, 5, 1, 15))
    assert agrees_with_package(ranked(res), package_slices(df, 0.95, 5, 1, 15), 5)


def test_real_valued_errors(tmp_path):
    """A cost per row (e.g. money lost): scores use the error sums; the maximum error bounds
    the children; the package, the unpruned run and the brute force agree."""
    df = random_frame(56, 2000, 4, real_errors=True)
    con = make_db(tmp_path, df)
    res = run(con, df, alpha=0.95, min_support=20, max_level=3, top_k=10)
    top = ranked(res)
    assert top
    assert_same(top, ranked(run(con, df, prune=False, alpha=0.95, min_support=20, max_level=3, top_k=10)))
    assert_same(top, brute_force(df, 0.95, 10, 3, 20))
    assert agrees_with_package(top, package_slices(df, 0.95, 10, 3, 20), 10)
    first = res.top_slices.iloc[0]
    mask = np.ones(len(df), dtype=bool)
    for f, v in first["predicates"].items():
        mask &= (df[f].isna() if v is None else (df[f] == v).fillna(False)).to_numpy(dtype=bool)
    assert first["max_error"] == pytest.approx(df["err"][mask].max())
    assert first["errors"] == pytest.approx(df["err"][mask].sum(), rel=REL)


def test_min_support_semantics(tmp_path):
    """As the package's min_sup: a float in (0, 1) is a fraction of the rows, rounded down;
    the default is the paper's n/100."""
    df = random_frame(57, 1234, 3)
    con = make_db(tmp_path, df)
    assert run(con, df).min_support == 12
    assert run(con, df, min_support=0.05).min_support == int(0.05 * 1234) == 61
    assert run(con, df, min_support=7).min_support == 7
    top = ranked(run(con, df, min_support=0.05))
    assert agrees_with_package(top, package_slices(df, 0.95, 10, 3, 0.05), 10)
    with pytest.raises(ConfigError):
        run(con, df, min_support=1.5)
    with pytest.raises(ConfigError):
        run(con, df, min_support=-1)


def test_bad_inputs(tmp_path):
    df = pd.DataFrame(
        {
            "a": [0, 1, 2, 0],
            "s": ["x", "y", "x", "y"],
            "neg": [0, -1, 0, 1],
            "err": [1.0, 0.0, 0.0, 1.0],
            "nullerr": [1.0, None, 0.0, 1.0],
            "negerr": [1.0, -0.5, 0.0, 1.0],
            "inferr": [1.0, math.inf, 0.0, 1.0],
        }
    )
    con = make_db(tmp_path, df)
    cases = [
        dict(features=["a"], error_column="nullerr"),
        dict(features=["a"], error_column="negerr"),
        dict(features=["a"], error_column="inferr"),
        dict(features=["neg"]),
        dict(features=["s"]),
        dict(features=["missing"]),
        dict(features=[]),
        dict(features=["a", "a"]),
        dict(features=["a"], alpha=0.0),
        dict(features=["a"], top_k=0),
        dict(features=["a"], max_level=0),
        dict(features=["a"], min_support="ten"),
        dict(features=["a"], error_column="s"),
        dict(features=["a"], error_column="nothing"),
        dict(features=["a", "err"]),
    ]
    for kw in cases:
        feats = kw.pop("features")
        with pytest.raises(ConfigError):
            find_slices(con, "SELECT * FROM d", [], feats, **kw)


def test_parameters_names_and_cleanup(tmp_path):
    """Values reach the source as bound parameters; odd column names are quoted; the run
    leaves no temporary table behind and works on a read-only connection."""
    df = random_frame(58, 3000, 3, duplicate=False)
    df = df.rename(columns={"f0": 'odd "name"; --', "f1": "size"})
    df["part"] = np.where(np.arange(len(df)) % 3 == 0, "x'; DROP TABLE d; --", "keep")
    con = make_db(tmp_path, df)
    feats = ['odd "name"; --', "size", "f2"]
    res = find_slices(con, "SELECT * FROM d WHERE part = ?", ["keep"], feats, min_support=10, top_k=8)
    sub = df[df["part"] == "keep"].drop(columns="part").reset_index(drop=True)
    assert res.n_rows == len(sub)
    assert_same(ranked(res), brute_force(sub, 0.95, 8, 3, 10))
    assert "size [feature]" in res.top_slices.columns and 'odd "name"; --' in res.top_slices.columns
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()[0][0] == 0
    con.close()
    ro = duckdb.connect(str(tmp_path / "slices.duckdb"), read_only=True)
    again = find_slices(ro, "SELECT * FROM d WHERE part = ?", ["keep"], feats, min_support=10, top_k=8)
    assert_same(ranked(again), ranked(res))
    assert ro.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()[0][0] == 0


def test_result_shape_and_bookkeeping(tmp_path):
    df = random_frame(59, 2000, 4)
    con = make_db(tmp_path, df)
    res = run(con, df, min_support=20, top_k=6)
    t = res.top_slices
    assert list(t.columns) == [
        "predicates",
        *features_of(df),
        "level",
        "size",
        "errors",
        "max_error",
        "error_rate",
        "score",
    ]
    assert (t["score"].diff().dropna() <= 0).all()
    assert (t["size"] >= res.min_support).all() and (t["score"] > 0).all()
    assert (t["level"] == t["predicates"].map(len)).all()
    for _, row in t.iterrows():
        for f in features_of(df):
            v = row[f]
            if f in row["predicates"]:
                p = row["predicates"][f]
                assert v == (NULL_CODE if p is None else p)
            else:
                assert pd.isna(v)
    ev = res.evaluated
    assert set(ev.columns) >= {"predicates", "level", "size", "errors", "score"}
    assert len(ev) == sum(c["evaluated"] for c in res.candidates_per_level)
    keyed = {frozenset(p.items()) for p in ev["predicates"]}
    assert {frozenset(p.items()) for p in t["predicates"]} <= keyed
    for c in res.candidates_per_level[1:]:
        assert c["evaluated"] == c["generated"] - c["pruned"]
        assert c["extendable"] <= c["parents"]

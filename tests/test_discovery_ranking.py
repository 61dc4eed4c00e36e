"""Discovery's rankings against a baseline (issue 21, item 5): errors beyond what the
model's own scores predict, or beyond another version's on the same slice; near-duplicates
folded into one entry; the demo's planted slices found by default."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import Mapping, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.discovery.expected import EXPECTED_BINS
from analysis.discovery.run import discover
from analysis.slices import compile_slice
from analysis.store.scope import Scope

PLANTED = {  # analysis/demo.py's docstring: the version-specific failures
    "credit-v1": "channel = 'partner_api' AND employment = 'self_employed'",
    "credit-v2": "age < 25",
    "credit-v3": "region = 'east' AND device = 'android' AND term_months = 60",
}


def ingest(path, frame, **mapping):
    store = Store(path)
    with store.write() as con:
        ingest_predictions(con, frame, project="p", mapping=Mapping(id="id", version="v", **mapping))
    with store.read() as con:
        return store, get_project(con, "p")


def calibrated_frame(seed: int, n: int = 20000) -> pd.DataFrame:
    """A binary model whose scores are the true probabilities everywhere but one slice:
    ``hard`` rows have probabilities near the 0.5 threshold (many errors, all predicted by
    the scores), ``city = ber AND tier = free`` rows default far more than their scores say."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "city": rng.choice(["ams", "ber", "cph", "dub"], n),
            "tier": rng.choice(["gold", "free"], n),
            "hard": rng.random(n) < 0.3,
        }
    )
    p = np.where(frame.hard, rng.uniform(0.35, 0.65, n), rng.beta(1, 6, n))
    bad = (frame.city == "ber") & (frame.tier == "free")
    truth = np.where(bad, np.minimum(p + 0.35, 0.95), p)  # the scores miss this slice's risk
    frame["score"] = p.round(4)
    frame["label"] = (rng.random(n) < truth).astype(int)
    frame["hard"] = frame["hard"].map({True: "yes", False: "no"})
    return frame


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    frame = calibrated_frame(3)
    store, project = ingest(
        tmp_path_factory.mktemp("sim") / "s.duckdb",
        frame,
        task="binary",
        score="score",
        label="label",
        positive_label="1",
        threshold=0.5,
        features=["city", "tier", "hard"],
    )
    return store, project, frame


def test_planted_miscalibrated_slice_ranks_first_and_the_hard_population_does_not(simulated):
    """Known truth: the plain error ranking puts the hard (but honestly scored) rows first;
    the default ranking puts the slice the scores get wrong first, and ranks nothing about
    the hard population above it."""
    store, project, frame = simulated
    with store.read() as con:
        plain = discover(con, project, max_level=2, top_k=5, ranking="error")
        found = discover(con, project, max_level=2, top_k=5)
    assert "hard = yes" in plain.slices["where"].iloc[0]
    assert found.ranking == "expected" and found.ranking_words == "worse than its scores predict"
    first = found.slices.iloc[0]
    assert first["where"] == "city = ber AND tier = free" and first["significant"]
    hard = found.slices[found.slices["where"].str.contains("hard = yes")]
    assert hard.empty or hard["rank"].min() > 1
    assert not found.slices[found.slices["where"] == "hard = yes"]["significant"].any()


def test_excess_by_hand(simulated):
    """Expected errors of a slice = the sum over its rows of the mean error of rows in the
    same score bin (50 equal-count bins of the score); z = excess / sqrt(sum of the bins'
    variances); one-sided p = P(Z >= z). Recomputed in pandas on the same rows."""
    store, project, frame = simulated
    with store.read() as con:
        found = discover(con, project, max_level=2, top_k=5)
    f = frame.copy()
    f["err"] = ((f.score >= 0.5).astype(int) != f.label).astype(float)
    edges = np.unique(np.quantile(f.score, np.arange(1, EXPECTED_BINS) / EXPECTED_BINS, method="lower"))
    f["bin"] = np.searchsorted(edges, f.score, side="right")
    by_bin = f.groupby("bin")["err"]
    f["x"] = by_bin.transform("mean")
    f["var"] = by_bin.transform(lambda e: e.var(ddof=0))
    row = found.slices.iloc[0]
    rows = f[(f.city == "ber") & (f.tier == "free")]
    assert row["size"] == len(rows) and row["errors"] == rows.err.sum()
    assert row["expected_errors"] == pytest.approx(rows.x.sum(), rel=1e-9)
    assert row["excess"] == pytest.approx(rows.err.sum() - rows.x.sum(), rel=1e-9)
    z = (rows.err.sum() - rows.x.sum()) / np.sqrt(rows["var"].sum())
    assert row["z"] == pytest.approx(z, rel=1e-9)
    assert row["p_value"] == pytest.approx(sps.norm.sf(z), rel=1e-6, abs=1e-300)
    assert row["error_rate"] == pytest.approx(rows.err.mean()) and row["expected_rate"] == pytest.approx(rows.x.mean())


def test_nothing_going_on_gives_almost_no_significant_slices(tmp_path):
    """Calibrated scores everywhere: Benjamini-Hochberg keeps false discoveries rare."""
    runs_with_discoveries = 0
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        n = 3000
        p = rng.beta(2, 3, n)
        frame = pd.DataFrame(
            {
                "id": [f"r{i}" for i in range(n)],
                "v": "m",
                "a": rng.choice(list("xyz"), n),
                "b": rng.choice(list("pqrs"), n),
                "d": rng.integers(0, 100, n).astype(float),
                "score": p.round(4),
                "label": (rng.random(n) < p).astype(int),
            }
        )
        store, project = ingest(
            tmp_path / f"n{seed}.duckdb",
            frame,
            task="binary",
            score="score",
            label="label",
            positive_label="1",
            threshold=0.5,
            features=["a", "b", "d"],
        )
        with store.read() as con:
            found = discover(con, project, max_level=2, top_k=5, min_support=0.02)
        runs_with_discoveries += bool((found.evaluated["q_value"] < 0.05).any())
    assert runs_with_discoveries <= 1


def test_identical_row_sets_and_refinements_fold_into_one_entry(tmp_path):
    """``till = kiosk`` selects exactly ``shop = a``'s rows (Jaccard 1); a condition that keeps
    97% of them (Jaccard 0.97) and a refinement no worse than the rest of its slice fold too."""
    rng = np.random.default_rng(5)
    n = 12000
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "shop": rng.choice(list("abcd"), n),
            "colour": rng.choice(["red", "blue"], n),
        }
    )
    frame["till"] = np.where(frame.shop == "a", "kiosk", rng.choice(["desk", "phone"], n))
    frame["channel"] = np.where((frame.shop == "a") & (rng.random(n) < 0.97), "app", "web")
    p = rng.beta(1, 5, n)
    truth = np.where(frame.shop == "a", np.minimum(p + 0.3, 0.95), p)
    frame["score"] = p.round(4)
    frame["label"] = (rng.random(n) < truth).astype(int)
    store, project = ingest(
        tmp_path / "f.duckdb",
        frame,
        task="binary",
        score="score",
        label="label",
        positive_label="1",
        threshold=0.5,
        features=["shop", "till", "channel", "colour"],
    )
    with store.read() as con:
        found = discover(con, project, max_level=2, top_k=5)
    entries = list(found.slices["where"])
    first = entries[0]
    assert first in ("shop = a", "till = kiosk")
    variants = {v["where"] for v in found.slices.iloc[0]["variants"]}
    assert ({"shop = a", "till = kiosk"} - {first}) <= variants
    assert {"shop = a AND channel = app", "shop = a AND colour = red"} & variants
    assert not any(("shop = a" in w or "till = kiosk" in w) for w in entries[1:])


def test_worse_than_another_version_by_hand(tmp_path):
    """Version ``new`` fails on ``city = ber``; excess = errors − size × old's error rate there."""
    rng = np.random.default_rng(9)
    n = 8000
    frames = []
    for version in ("old", "new"):
        f = pd.DataFrame(
            {
                "id": [f"{version}{i}" for i in range(n)],
                "v": version,
                "city": rng.choice(["ams", "ber", "cph"], n),
                "label": rng.integers(0, 2, n),
            }
        )
        wrong = rng.random(n) < np.where((f.city == "ber") & (version == "new"), 0.4, 0.15)
        f["prediction"] = np.where(wrong, 1 - f.label, f.label)
        frames.append(f)
    frame = pd.concat(frames, ignore_index=True)
    store, project = ingest(
        tmp_path / "v.duckdb",
        frame,
        task="binary",
        prediction="prediction",
        label="label",
        positive_label="1",
        features=["city"],
    )
    with store.read() as con:
        found = discover(con, project, Scope.of(versions="new"), ranking="version", other_version="old", top_k=3)
        with pytest.raises(Exception, match="other version"):
            discover(con, project, Scope.of(versions="new"), ranking="version")
    row = found.slices.iloc[0]
    assert row["where"] == "city = ber" and found.ranking_words == "worse than old"
    new = frame[(frame.v == "new") & (frame.city == "ber")]
    old = frame[(frame.v == "old") & (frame.city == "ber")]
    e1, e0 = (new.label != new.prediction).astype(float), (old.label != old.prediction).astype(float)
    excess = e1.sum() - len(new) * e0.mean()
    var = len(new) * e1.var(ddof=0) + len(new) ** 2 * e0.var(ddof=0) / len(old)
    assert row["excess"] == pytest.approx(excess, rel=1e-9)
    assert row["z"] == pytest.approx(excess / np.sqrt(var), rel=1e-9)
    assert row["other_error_rate"] == pytest.approx(e0.mean()) and row["significant"]


def test_without_scores_the_default_falls_back_to_plain_error_and_says_so(tmp_path):
    rng = np.random.default_rng(1)
    n = 2000
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "a": rng.choice(list("xy"), n),
            "label": rng.integers(0, 2, n),
            "prediction": rng.integers(0, 2, n),
        }
    )
    store, project = ingest(
        tmp_path / "n.duckdb",
        frame,
        task="binary",
        prediction="prediction",
        label="label",
        positive_label="1",
        features=["a"],
    )
    with store.read() as con:
        found = discover(con, project, max_level=1)
    assert found.ranking == "error" and any("ranked by plain error" in n for n in found.notes)


# --- the demo -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_db):
    con = duckdb.connect(str(demo_db), read_only=True)
    yield con, get_project(con, "lending-demo")
    con.close()


def _jaccard(con, project, version, found_slice, planted_sql) -> float:
    where, params = compile_slice(found_slice, project)
    log = '"' + project.log_table + '"'
    a, b, both = con.execute(
        f"SELECT count(*) FILTER (WHERE {where}), count(*) FILTER (WHERE {planted_sql}), "
        f"count(*) FILTER (WHERE ({where}) AND ({planted_sql})) FROM {log} "
        "WHERE model_version = ? AND label IS NOT NULL AND score IS NOT NULL",
        params + params + [version],
    ).fetchall()[0]
    return both / (a + b - both) if a + b - both else 0.0


@pytest.mark.parametrize("version", sorted(PLANTED))
def test_demo_planted_slice_is_in_the_default_top_five(demo, version):
    """By default (worse than its scores predict), each version's planted slice is one of
    its top five entries: the entry, or one of its folded variants, selects the planted rows
    (Jaccard of the row sets at least 0.8, counted in DuckDB)."""
    con, project = demo
    found = discover(con, project, Scope.of(versions=version), top_k=5)
    assert found.ranking == "expected"
    best = 0.0
    for r in found.slices.itertuples():
        for s in [r.slice, *(v["slice"] for v in r.variants)]:
            best = max(best, _jaccard(con, project, version, s, PLANTED[version]))
    assert best >= 0.8, list(found.slices["where"])
    # and the intrinsically hard population (low bureau scores) no longer comes first
    assert "bureau_score" not in found.slices["where"].iloc[0]


def test_demo_credit_v2_is_worse_than_credit_v1_on_the_young(demo):
    con, project = demo
    found = discover(
        con, project, Scope.of(versions="credit-v2"), ranking="version", other_version="credit-v1", top_k=5
    )
    first = found.slices.iloc[0]
    assert _jaccard(con, project, "credit-v2", first["slice"], PLANTED["credit-v2"]) >= 0.8
    assert first["significant"] and first["error_rate"] > first["other_error_rate"]


def test_cli_says_which_ranking(demo_db, capsys):
    code = main(
        [
            "discover",
            "--db",
            str(demo_db),
            "--project",
            "lending-demo",
            "--version",
            "credit-v3",
            "--top",
            "3",
            "--format",
            "json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ranking"] == "expected" and out["ranking_words"] == "worse than its scores predict"
    first = out["slices"][0]
    assert {"excess", "expected_errors", "z", "variants", "where", "size", "q_value", "folded_under"} <= set(first)
    assert first["where"] == "term_months >= 60 AND region = east AND device = android"
    code = main(
        [
            "discover",
            "--db",
            str(demo_db),
            "--project",
            "lending-demo",
            "--version",
            "credit-v1",
            "--top",
            "2",
            "--ranking",
            "error",
            "--error",
            "loss",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "Ranked by: plain error." in text
    assert "18,523,881" in text  # the impact of the partner slice, in money, whole


def test_report_block_says_which_ranking(tmp_path):
    """A discovery block added to a report ranks by default against the scores and its words
    say so; the numbers are those of the engine on the same parameters."""
    from analysis.reports import add_block
    from analysis.reports.blocks import lines

    frame = calibrated_frame(4, n=6000)
    store, project = ingest(
        tmp_path / "r.duckdb",
        frame,
        task="binary",
        score="score",
        label="label",
        positive_label="1",
        threshold=0.5,
        features=["city", "tier", "hard"],
    )
    with store.write() as con:
        project = get_project(con, "p")
        block = add_block(con, project, "review", "discovery", {"top_k": 3, "max_level": 2})
        found = discover(con, project, max_level=2, top_k=3)
    assert block.params["ranking"] == "expected"
    snap = block.snapshot
    assert snap["ranking_words"] == "worse than its scores predict"
    assert [r["where"] for r in snap["slices"]] == list(found.slices["where"])
    words = lines("discovery", snap)
    assert words[0].startswith("Ranked by: worse than its scores predict.")
    # how many of the ranked slices are findings: the engine's significant ones, no more
    kept = found.slices[found.slices["folded_under"].isna()]
    significant = int((kept["q_value"] < 0.05).sum())
    assert f"{significant or 'none'} of them significant (q < 0.05)" in words[0]
    first = found.slices.iloc[0]
    assert f"where its scores predict {100 * first['expected_rate']:.1f}%" in words[1]
    # a snapshot made before the rankings reads as plain error
    old = {**snap, "slices": [dict(r) for r in snap["slices"]]}
    for key in ("ranking", "ranking_words"):
        old.pop(key)
    assert lines("discovery", old)[0].startswith("Ranked by: plain error.")


def test_jaccard_of_row_sets_counted_in_duckdb_equals_pandas():
    """The overlaps folding reads: exact Jaccard indices, including bands ("lt"/"ge" runs
    of bins), nested slices (small / large, no count) and conflicting conditions (0)."""
    from analysis.discovery.fold import jaccard_pairs

    rng = np.random.default_rng(0)
    n = 5000
    frame = pd.DataFrame({"a": rng.integers(0, 3, n), "b": rng.integers(0, 6, n).astype(float)})
    frame.loc[rng.random(n) < 0.1, "b"] = np.nan
    con = duckdb.connect()
    con.register("rows_df", frame)
    codes = [
        {"a": 0},
        {"a": 0, "b": 1},
        {"b": ("lt", 3)},
        {"b": ("ge", 2)},
        {"a": 1},
        {"b": None},
        {"a": 0, "b": ("lt", 3)},
    ]

    def rows(c):
        m = pd.Series(True, index=frame.index)
        for col, v in c.items():
            x = frame[col]
            m &= (
                x.isna()
                if v is None
                else (x < v[1])
                if isinstance(v, tuple) and v[0] == "lt"
                else (x >= v[1])
                if isinstance(v, tuple)
                else (x == v)
            )
        return m

    sizes = [int(rows(c).sum()) for c in codes]
    got = jaccard_pairs(con, "SELECT * FROM rows_df", [], codes, sizes, threshold=0.0)
    for (i, j), value in got.items():
        a, b = rows(codes[i]), rows(codes[j])
        assert value == pytest.approx((a & b).sum() / (a | b).sum()), (codes[i], codes[j])
    assert len(got) == len(codes) * (len(codes) - 1) // 2

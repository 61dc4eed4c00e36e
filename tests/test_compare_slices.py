"""The search of the difference (issue 21, item 4): slices where the candidate's error
exceeds the baseline's on the same slice. Known truth by simulation (a planted band is
found; with no difference the false-discovery rate stays at the level), the figures
refereed against pandas and statsmodels, and the demo's planted credit-v2 slice."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from analysis import Mapping, Store, get_project, ingest_predictions
from analysis.compare.comparison import Side, compare
from analysis.compare.gate import GateCriteria, run_gate
from analysis.compare.slices import SOURCE, cut_points
from analysis.stats.multiple_testing import SINGLE_SHARE

BAND = 25  # the planted band: x < 25


def side(rng, version: str, n: int, worse: float, offset: int = 0, pair_ids: bool = False) -> pd.DataFrame:
    """``n`` rows of one version: error 20% everywhere, ``20% + worse`` where x < BAND."""
    x = np.clip(np.round(rng.gamma(4.0, 5.5, n) + 18), 18, 80).astype(int)  # like the demo's age
    kind = rng.choice(["a", "b", "c", "d"], n)
    flag = rng.random(n) < 0.3
    amount = rng.normal(500, 150, n).round(1)
    label = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where(x < BAND, 0.2 + worse, 0.2)
    pred = np.where(wrong, 1 - label, label)
    ids = np.arange(offset, offset + n)
    return pd.DataFrame(
        {
            "id": [f"{version}-{i}" for i in ids],
            "example": [f"e{i}" for i in ids],
            "v": version,
            "prediction": pred,
            "score": np.where(pred == 1, 0.8, 0.2),
            "label": label,
            "x": x,
            "kind": kind,
            "flag": flag,
            "amount": amount,
        }
    )


MAPPING = Mapping(
    id="id",
    example="example",
    version="v",
    task="binary",
    prediction="prediction",
    score="score",
    label="label",
    positive_label="1",
    features=["x", "kind", "flag", "amount"],
)


def ingest(path, frame: pd.DataFrame) -> Store:
    store = Store(path)
    with store.write() as con:
        ingest_predictions(con, frame, project="s", mapping=MAPPING)
    return store


def test_cut_points_are_deciles_and_round_values():
    cuts = cut_points([24.0, 26.0, 28.0, 31.0, 33.0, 36.0, 39.0, 43.0, 49.0], 19.0, 70.0, integer=True)
    assert {20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70} <= set(cuts)
    assert {24, 26, 28, 31} <= set(cuts)
    assert cut_points([617.3, 650.1], 480.0, 860.0, integer=False)[:3] == [500.0, 550.0, 600.0]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    rng = np.random.default_rng(11)
    frame = pd.concat([side(rng, "v1", 30_000, 0.0), side(rng, "v2", 6_000, 0.15, offset=10**6)], ignore_index=True)
    store = ingest(tmp_path_factory.mktemp("band") / "b.duckdb", frame)
    with store.read() as con:
        project = get_project(con, "s")
        comp = compare(con, project, Side("v1"), Side("v2"))
        verdict = run_gate(
            con,
            project,
            Side("v1"),
            Side("v2"),
            comparison=comp,
            criteria=GateCriteria(slice_min_rows=100, required_sets=()),
        )
    return frame, comp, verdict


def test_a_planted_band_is_found_and_fails_the_gate(planted):
    frame, comp, verdict = planted
    found = comp.slices[comp.slices["source"] == SOURCE]
    worse = found[found["verdict"] == "regression"]
    assert len(worse) >= 1
    assert worse.iloc[0]["where"] == "x < 25"  # the band itself, first
    slice_check = next(r for r in verdict.results if r.criterion.startswith("no slice"))
    assert not slice_check.passed and "x < 25" in slice_check.detail


def test_the_found_slice_is_refereed_by_pandas_and_statsmodels(planted):
    frame, comp, _ = planted
    row = comp.slices.set_index("where").loc["x < 25"]
    b, c = frame[frame.v == "v1"], frame[frame.v == "v2"]
    bi, ci = b[b.x < BAND], c[c.x < BAND]
    eb, ec = int((bi.prediction != bi.label).sum()), int((ci.prediction != ci.label).sum())
    assert (row["n_rows_b"], row["n_rows_c"]) == (len(bi), len(ci))
    assert row["error_rate_b"] == pytest.approx(eb / len(bi)) and row["error_rate_c"] == pytest.approx(ec / len(ci))
    # One-sided pooled two-proportion z-test: is the candidate's error higher?
    _, p = proportions_ztest([ec, eb], [len(ci), len(bi)], alternative="larger")
    assert row["p_value"] == pytest.approx(p, rel=1e-6)
    se = np.sqrt(
        row["error_rate_b"] * (1 - row["error_rate_b"]) / len(bi)
        + row["error_rate_c"] * (1 - row["error_rate_c"]) / len(ci)
    )
    half = 1.959964 * se
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((row["delta"] - half, row["delta"] + half))


def test_the_search_q_values_are_weighted_bh_over_every_slice_tested(tmp_path, planted):
    """Recompute the family from its p-values: weights by level, then statsmodels' BH."""
    from analysis.compare.pairs import own_sources
    from analysis.compare.slices import search

    frame, comp, _ = planted
    store = ingest(tmp_path / "again.duckdb", frame)
    with store.read() as con:
        project = get_project(con, "s")
        src = own_sources(project, Side("v1"), Side("v2"), None, None)
        found = search(
            con, project, paired=False, base=src.base, cand=src.cand, columns=["x", "kind", "flag", "amount"]
        )
    t = found.tested
    singles = (t["level"] == 1).to_numpy()
    w = np.where(singles, SINGLE_SHARE * len(t) / singles.sum(), (1 - SINGLE_SHARE) * len(t) / (~singles).sum())
    assert w.mean() == pytest.approx(1.0)
    want = np.minimum(multipletests(t["p_value"] / w, method="fdr_bh")[1], 1.0)
    assert t["q_value"].to_numpy() == pytest.approx(want)
    assert comp.slices.set_index("where").loc["x < 25", "q_value"] == pytest.approx(
        t.set_index("where").loc["x < 25", "q_value"]
    )
    assert (t["n_labeled_b"] >= 100).all() and (t["n_labeled_c"] >= 100).all()


def test_with_no_difference_the_false_discovery_rate_stays_at_the_level(tmp_path):
    """Forty comparisons of two versions of the same quality (each side drawn afresh):
    with nothing to find, any discovery is false, so the FDR is the share of runs that
    report one. Expected at most 5%; with 40 runs, four or more would be unlikely
    (P < 0.14 at 5%), so the test allows at most 4."""
    rng = np.random.default_rng(2026)
    runs = 40
    frames = [side(rng, f"n{i}", 3000 if i % 2 else 2000, 0.0, offset=i * 10_000) for i in range(2 * runs)]
    store = ingest(tmp_path / "null.duckdb", pd.concat(frames, ignore_index=True))
    false_runs = 0
    with store.read() as con:
        project = get_project(con, "s")
        for i in range(runs):
            comp = compare(con, project, Side(f"n{2 * i}"), Side(f"n{2 * i + 1}"), bins=5)
            found = comp.slices[comp.slices["source"] == SOURCE]
            false_runs += bool((found["verdict"] == "regression").any())
    assert false_runs <= 4, false_runs


def test_paired_comparisons_search_the_difference_with_the_same_cut_points(tmp_path):
    rng = np.random.default_rng(5)
    n = 8000
    base = side(rng, "v1", n, 0.0)
    cand = base.copy()
    cand["v"] = "v2"
    cand["id"] = "v2-" + cand["example"]
    flip = (cand.x < BAND) & (rng.random(n) < 0.2)  # the candidate errs on a fifth more of the band
    cand.loc[flip, "prediction"] = 1 - cand.loc[flip, "label"]
    store = ingest(tmp_path / "paired.duckdb", pd.concat([base, cand], ignore_index=True))
    with store.read() as con:
        comp = compare(con, get_project(con, "s"), Side("v1"), Side("v2"))
    assert comp.paired
    found = comp.slices[(comp.slices["source"] == SOURCE) & (comp.slices["verdict"] == "regression")]
    assert "x < 25" in set(found["where"]), list(found["where"])


def test_the_demos_planted_credit_v2_slice_is_found_and_fails_the_gate(demo_db):
    """credit-v2 (canary) is close to guessing for applicants under 25."""
    with Store(demo_db).read() as con:
        project = get_project(con, "lending-demo")
        verdict = run_gate(con, project, Side("credit-v1", "production"), Side("credit-v2", "canary"))
        table = project.log_table
    comp = verdict.comparison
    worse = comp.slices[(comp.slices["verdict"] == "regression") & (comp.slices["n_rows_c"] >= 500)]
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        young = []
        for where in worse["where"]:
            from analysis.slices import compile_slice, parse_slice

            sql, params = compile_slice(parse_slice(where), project)
            young.append(
                con.execute(
                    f'SELECT avg(CAST(age < 25 AS INTEGER)) FROM "{table}" WHERE model_version = '
                    f"'credit-v2' AND {sql}",
                    params,
                ).fetchall()[0][0]
            )
    finally:
        con.close()
    assert max(young) > 0.5, list(zip(worse["where"], young))
    row = comp.slices.set_index("where").loc["age < 25"]
    assert row["verdict"] == "regression" and row["error_rate_c"] > row["error_rate_b"] + 0.08
    check = next(r for r in verdict.results if r.criterion.startswith("no slice"))
    assert not check.passed and "age < 25" in check.detail
    assert not verdict.passed
    revenue = next(r for r in verdict.results if "revenue" in r.criterion)
    assert revenue.passed and "per prediction" in revenue.criterion


def test_cut_points_from_a_sample_and_counts_of_labeled_rows_are_exact(tmp_path):
    """Beyond a million rows the cut points come from a fixed sample of the examples (forced
    here on 36,000 rows) and only labeled rows are counted: the band is still found, and its
    counts are every labeled row's (pandas), not the sample's."""
    from analysis.compare.slices import sample_rows
    from analysis.slices.grouping import CutSample

    sample = CutSample(exact_up_to=5_000, rows=3_000)
    rng = np.random.default_rng(8)
    frame = pd.concat([side(rng, "v1", 30_000, 0.0), side(rng, "v2", 6_000, 0.15, offset=10**6)], ignore_index=True)
    frame["label"] = frame["label"].astype("Int64")
    frame.loc[rng.random(len(frame)) < 0.3, "label"] = pd.NA  # labels still to come
    store = ingest(tmp_path / "sampled.duckdb", frame)
    with store.read() as con:
        project = get_project(con, "s")
        rows = f'SELECT *, example_key % 1000 AS sb_bucket FROM "{project.log_table}"'
        sampled = sample_rows(con, (rows, []), 1000, sample)
        n_sample = con.execute(f"SELECT count(*) FROM ({sampled[0]}) AS s", sampled[1]).fetchall()[0][0]
        comp = compare(con, project, Side("v1"), Side("v2"), sample=sample)
    assert 2_000 <= n_sample <= 4_500  # about QUANTILE_SAMPLE rows of the 36,000
    found = comp.slices[(comp.slices["source"] == SOURCE) & (comp.slices["verdict"] == "regression")]
    assert found.iloc[0]["where"] == "x < 25", list(found["where"])
    row = found.iloc[0]
    labeled = frame[frame.label.notna()]
    for tag, version in (("b", "v1"), ("c", "v2")):
        band = labeled[(labeled.v == version) & (labeled.x < BAND)]
        assert row[f"n_labeled_{tag}"] == len(band)
        assert row[f"errors_{tag}"] == (band.prediction != band.label).sum()

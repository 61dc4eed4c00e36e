"""Comparing versions: deltas, intervals and tests against independent computations
(scikit-learn, statsmodels, numpy), per-slice verdicts, the demo's planted slices,
hostile product metrics, and the gate's exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import db_digest, repeat_flags_wrong
from sklearn import metrics as skm
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep
from statsmodels.stats.proportion import test_proportions_2indep as two_proportion_test

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.compare.comparison import Comparison, Side, compare
from analysis.compare.gate import GateCriteria, run_gate, set_criteria
from analysis.metrics.product import ProductMetric, define_metric
from analysis.slices import parse_slice
from analysis.slices.saved import save_slice
from analysis.stats.tests import mcnemar_p


def two_versions(seed: int = 5, n: int = 6000) -> pd.DataFrame:
    """v1 and v2 score the same n examples; v2 is worse where city = ber and tier = free."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["ams", "ber", "cph"], n)
    tier = rng.choice(["gold", "free"], n)
    label = rng.integers(0, 2, n)
    loss = rng.gamma(2.0, 50.0, n).round(2)
    rows = []
    for version, worse in (("v1", 0.0), ("v2", 0.35)):
        noise = np.where((city == "ber") & (tier == "free"), 0.2 + worse, 0.2)
        wrong = rng.random(n) < noise
        pred = np.where(wrong, 1 - label, label)
        score = np.clip(np.where(pred == 1, 0.7, 0.3) + rng.normal(0, 0.15, n), 0.01, 0.99)
        for i in range(n):
            rows.append(
                {
                    "id": f"{version}-{i}",
                    "example": f"e{i}",
                    "v": version,
                    "stage": "production" if version == "v1" else "shadow",
                    "prediction": int(pred[i]),
                    "score": float(score[i]),
                    "label": int(label[i]),
                    "city": city[i],
                    "tier": tier[i],
                    "loss": float(loss[i]) if pred[i] == 0 and label[i] == 1 else 0.0,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    frame = two_versions()
    store = Store(tmp_path_factory.mktemp("cmp") / "c.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="p",
            mapping=Mapping(
                id="id",
                example="example",
                version="v",
                stage="stage",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["city", "tier"],
                outcomes=["loss"],
            ),
        )
        project = get_project(con, "p")
        define_metric(
            con,
            project,
            ProductMetric("missed_loss", "sum(loss) FILTER (WHERE NOT prediction AND label)", "lower", "$"),
        )
        define_metric(con, project, ProductMetric("approval_rate", "avg((NOT prediction)::int)", "higher"))
        save_slice(con, project, "planted", parse_slice("city = ber AND tier = free"))
    with store.read() as con:
        return store, get_project(con, "p"), frame


def by_version(frame: pd.DataFrame):
    b = frame[frame.v == "v1"].set_index("example")
    c = frame[frame.v == "v2"].set_index("example").loc[b.index]
    return b, c


def test_paired_overall_matches_sklearn_statsmodels_and_numpy(pair):
    store, project, frame = pair
    with store.read() as con:
        comp = compare(con, project, Side("v1"), Side("v2"), discovered=0)
    assert comp.paired and comp.n_pairs == 6000
    rows = comp.overall.set_index("metric")
    b, c = by_version(frame)
    for name, f in (
        ("accuracy", skm.accuracy_score),
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        assert rows.loc[name, "baseline"] == pytest.approx(f(b.label, b.prediction), abs=1e-12)
        assert rows.loc[name, "delta"] == pytest.approx(f(c.label, c.prediction) - f(b.label, b.prediction), abs=1e-12)
    assert rows.loc["roc_auc", "delta"] == pytest.approx(
        skm.roc_auc_score(c.label, c.score) - skm.roc_auc_score(b.label, b.score), abs=1e-9
    )
    right_b, right_c = b.prediction == b.label, c.prediction == c.label
    table = [
        [int((right_b & right_c).sum()), int((right_b & ~right_c).sum())],
        [int((~right_b & right_c).sum()), int((~right_b & ~right_c).sum())],
    ]
    assert rows.loc["accuracy", "p_value"] == pytest.approx(mcnemar(table, exact=False, correction=True).pvalue)
    # The bootstrap interval of the accuracy delta is close to the analytic paired one.
    n, n01, n10 = len(b), table[0][1], table[1][0]
    se = np.sqrt(n01 + n10 - (n01 - n10) ** 2 / n) / n
    width = rows.loc["accuracy", "ci_high"] - rows.loc["accuracy", "ci_low"]
    assert width == pytest.approx(2 * 1.96 * se, rel=0.15)
    # Product metrics: the point deltas are pandas', the interval near the analytic one for a paired sum.
    missed_b = b.loss[(b.prediction == 0) & (b.label == 1)].sum()
    missed_c = c.loss[(c.prediction == 0) & (c.label == 1)].sum()
    assert rows.loc["missed_loss", "delta"] == pytest.approx(missed_c - missed_b)
    d = np.where((c.prediction == 0) & (c.label == 1), c.loss, 0) - np.where(
        (b.prediction == 0) & (b.label == 1), b.loss, 0
    )
    width = rows.loc["missed_loss", "ci_high"] - rows.loc["missed_loss", "ci_low"]
    assert width == pytest.approx(2 * 1.96 * np.sqrt(n) * d.std(ddof=1), rel=0.15)
    assert rows.loc["approval_rate", "delta"] == pytest.approx((c.prediction == 0).mean() - (b.prediction == 0).mean())


def test_unpaired_accuracy_uses_statsmodels_two_sample_tests(pair):
    store, project, frame = pair
    with store.read() as con:
        comp = compare(con, project, Side("v1"), Side("v2"), pair=False, slices=False)
    assert not comp.paired and comp.method.startswith("unpaired: 6,000 and 6,000 rows")
    row = comp.overall.set_index("metric").loc["accuracy"]
    b, c = by_version(frame)
    kb, kc = int((b.prediction == b.label).sum()), int((c.prediction == c.label).sum())
    assert row["p_value"] == pytest.approx(two_proportion_test(kc, 6000, kb, 6000, method="wald").pvalue)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        confint_proportions_2indep(kc, 6000, kb, 6000, method="newcomb")
    )


def test_slices_find_the_planted_regression_with_exact_tests(pair):
    store, project, frame = pair
    with store.read() as con:
        comp = compare(con, project, Side("v1"), Side("v2"), discovered=3)
    s = comp.slices.set_index("where")
    planted = s.loc["city = ber AND tier = free"]
    assert planted["source"] == "saved" and planted["verdict"] == "regression"
    b, c = by_version(frame)
    inside = (b.city == "ber") & (b.tier == "free")
    assert planted["error_rate_b"] == pytest.approx((b.prediction != b.label)[inside].mean())
    assert planted["error_rate_c"] == pytest.approx((c.prediction != c.label)[inside].mean())
    n01 = int(((b.prediction == b.label) & (c.prediction != c.label))[inside].sum())
    n10 = int(((b.prediction != b.label) & (c.prediction == c.label))[inside].sum())
    assert planted["p_value"] == pytest.approx(mcnemar([[0, n01], [n10, 0]], exact=False, correction=True).pvalue)
    assert list(comp.slices["q_value"]) == pytest.approx(
        list(multipletests(comp.slices["p_value"], method="fdr_bh")[1])
    )
    # Regressions: the planted slice and the groups that contain it, nothing else.
    for where in comp.slices.loc[comp.slices.verdict == "regression", "where"]:
        assert "ber" in where or "free" in where, where
    assert comp.slices.verdict.iloc[0] == "regression"
    assert "improvement" not in set(comp.slices.verdict)
    assert comp.slices["where"].is_unique
    assert s.loc["tier = free", "missed_loss_delta"] == pytest.approx(
        c.loss[(c.tier == "free") & (c.prediction == 0) & (c.label == 1)].sum()
        - b.loss[(b.tier == "free") & (b.prediction == 0) & (b.label == 1)].sum()
    )


def test_mcnemar_helper_matches_statsmodels_exact_and_asymptotic():
    for n01, n10 in ((3, 9), (12, 30), (0, 0), (40, 41)):
        exact = n01 + n10 < 25
        want = 1.0 if n01 + n10 == 0 else mcnemar([[0, n01], [n10, 0]], exact=exact, correction=True).pvalue
        assert mcnemar_p(n01, n10) == pytest.approx(want)


def test_the_gate_exit_codes(pair, capsys):
    store, project, _ = pair
    db = ["--db", str(store.path), "--project", "p"]
    assert main(["gate", *db, "--baseline", "v1", "--candidate", "v2", "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert not out["passed"]
    failed = [r for r in out["results"] if not r["passed"]]
    assert any("city = ber AND tier = free" in r["detail"] for r in failed)
    # The other way round the candidate is better everywhere that matters.
    assert main(["gate", *db, "--baseline", "v2", "--candidate", "v1"]) == 0
    assert capsys.readouterr().out.startswith("PASS: v1 vs v2")
    assert main(["gate", *db, "--baseline", "v1", "--candidate", "nope"]) == 2
    assert "nope has no predictions" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # no candidate: argparse's usage error
        main(["gate", *db, "--baseline", "v1"])
    assert usage.value.code == 2
    with store.write() as con:
        set_criteria(con, project, GateCriteria(slice_max_worse=0.5, product_max_worse=5.0, overall_max_worse=0.5))
    assert main(["gate", *db, "--baseline", "v1", "--candidate", "v2"]) == 0
    with store.write() as con:
        set_criteria(con, project, GateCriteria())
        with pytest.raises(ConfigError, match="slice_min_rows"):
            set_criteria(con, project, GateCriteria(slice_min_rows=0))


def test_hostile_product_metrics_from_the_cli_change_nothing(pair, capsys):
    store, _, _ = pair
    before = db_digest(store.path)
    db = ["--db", str(store.path), "--project", "p"]
    for expression in (
        "sum(loss); DROP TABLE log_1",
        "(SELECT count(*) FROM sb_projects)",
        "sum(length(read_text('/etc/passwd')))",
        "count(*) FROM read_csv('x.csv')",
        "ATTACH 'other.duckdb'",
        "sum(loss) FILTER (WHERE getenv('HOME') IS NOT NULL)",
    ):
        assert main(["product-metrics", "define", *db, "--name", "evil", "--expression", expression]) == 2
        assert "error:" in capsys.readouterr().err
    assert db_digest(store.path) == before


def test_demo_shadow_is_judged_on_the_planted_slices(demo_copy):
    """credit-v3 (shadow) against credit-v1 (production), paired: better where v1 misses
    defaults, worse where v3 flags good applicants."""
    with Store(demo_copy).write() as con:
        project = get_project(con, "lending-demo")
        save_slice(
            con, project, "v1 misses defaults", parse_slice("channel = partner_api AND employment = self_employed")
        )
        save_slice(
            con,
            project,
            "v3 flags good applicants",
            parse_slice("region = east AND device = android AND term_months >= 60"),
        )
    with Store(demo_copy).read() as con:
        comp = compare(
            con,
            get_project(con, "lending-demo"),
            Side("credit-v1", "production"),
            Side("credit-v3", "shadow"),
            discovered=5,
        )
    assert comp.paired and comp.n_pairs > 10_000
    s = comp.slices.set_index("where")
    assert s.loc["channel = partner_api AND employment = self_employed", "verdict"] == "improvement"
    assert s.loc["region = east AND device = android AND term_months >= 60", "verdict"] == "regression"
    regressions = comp.slices[comp.slices.verdict == "regression"]["where"]
    assert all(any(k in w for k in ("east", "android", "term_months")) for w in regressions), list(regressions)

    # Discovery on the pairs' disagreements finds both planted slices by itself.
    found = comp.slices[comp.slices.source.str.startswith("found")]
    worst = found[found.verdict == "regression"].iloc[0]
    assert {"region = east", "device = android"} <= set(worst["where"].split(" AND "))
    assert worst["source"] == "found where the candidate errs"
    better = set(found.loc[found.verdict == "improvement", "where"])
    assert any({"employment = self_employed", "channel = partner_api"} <= set(w.split(" AND ")) for w in better)


def test_gate_criteria_from_the_cli_decide_the_verdict(pair, capsys):
    store, _, _ = pair
    db = ["--db", str(store.path), "--project", "p"]
    assert (
        main(
            [
                "gate-criteria",
                "set",
                *db,
                "--slice-max-worse",
                "0.5",
                "--product-max-worse",
                "5",
                "--overall-max-worse",
                "0.5",
                "--format",
                "json",
            ]
        )
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert (shown["slice_max_worse"], shown["overall_max_worse"]) == (0.5, 0.5)
    assert main(["gate", *db, "--baseline", "v1", "--candidate", "v2"]) == 0
    assert main(["gate-criteria", "set", *db, "--slice-min-rows", "0"]) == 2
    assert "slice_min_rows" in capsys.readouterr().err
    assert main(["gate-criteria", "set", *db, "--slice-max-worse", "0.02", "--product-max-worse", "0"]) == 0
    assert main(["gate", *db, "--baseline", "v1", "--candidate", "v2"]) == 1


def test_a_candidate_worse_overall_fails_the_gate_on_the_overall_error(pair):
    """Worse everywhere by a little (no one slice over its limit) is still worse: the
    overall error rate is a criterion of its own. Its numbers are pandas' and statsmodels'."""
    store, project, frame = pair
    b, c = by_version(frame)
    err_b, err_c = (b.prediction != b.label).mean(), (c.prediction != c.label).mean()
    loose = dict(slice_max_worse=0.5, product_max_worse=5.0, required_sets=())
    with store.read() as con:
        strict = run_gate(con, project, Side("v1"), Side("v2"), criteria=GateCriteria(**loose))
        lenient = run_gate(
            con,
            project,
            Side("v1"),
            Side("v2"),
            criteria=GateCriteria(**loose, overall_max_worse=err_c - err_b + 0.001),
        )
        better = run_gate(con, project, Side("v2"), Side("v1"), criteria=GateCriteria(**loose))
    overall = strict.results[0]
    assert not strict.passed and not overall.passed and overall.criterion.startswith("overall error rate")
    assert f"{err_b:.1%} → {err_c:.1%}" in overall.detail
    # The interval is the paired one of the accuracy, turned round (McNemar's test gives p).
    right_b, right_c = b.prediction == b.label, c.prediction == c.label
    n01, n10 = int((right_b & ~right_c).sum()), int((~right_b & right_c).sum())
    p = mcnemar([[0, n01], [n10, 0]], exact=False, correction=True).pvalue
    assert strict.comparison.overall.set_index("metric").loc["accuracy", "p_value"] == pytest.approx(p)
    assert lenient.passed and lenient.results[0].passed  # within the limit: passes, and says it is worse
    assert "worse, but not significantly or within the limit" in lenient.results[0].detail
    assert better.results[0].passed and "worse" not in better.results[0].detail


def test_regression_slices_use_t_tests_like_scipy(tmp_path):
    """Regression: per slice, the paired t-test on absolute errors (pairs) and Welch's
    test (no pairs) equal scipy's on the same rows."""
    from scipy import stats as sps

    rng = np.random.default_rng(2)
    n = 3000
    truth = rng.normal(100, 20, n)
    kind = rng.choice(["a", "b"], n)
    rows = []
    for version, noise in (("v1", 5.0), ("v2", 5.0)):
        extra = np.where((kind == "b") & (version == "v2"), 6.0, 0.0)
        pred = truth + rng.normal(0, noise + extra, n)
        rows += [
            {
                "id": f"{version}-{i}",
                "example": f"e{i}",
                "v": version,
                "prediction": pred[i],
                "label": truth[i],
                "kind": kind[i],
            }
            for i in range(n)
        ]
    frame = pd.DataFrame(rows)
    store = Store(tmp_path / "r.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="r",
            mapping=Mapping(
                id="id",
                example="example",
                version="v",
                task="regression",
                prediction="prediction",
                label="label",
                features=["kind"],
            ),
        )
    b, c = (frame[frame.v == v].set_index("example") for v in ("v1", "v2"))
    err_b, err_c = (b.label - b.prediction).abs(), (c.label - c.prediction).abs().loc[b.index]
    inside = b.kind == "b"
    with store.read() as con:
        project = get_project(con, "r")
        paired = compare(con, project, Side("v1"), Side("v2"), discovered=0).slices.set_index("where")
        unpaired = compare(con, project, Side("v1"), Side("v2"), pair=False, discovered=0).slices.set_index("where")
    row = paired.loc["kind = b"]
    assert row["delta"] == pytest.approx(err_c[inside].mean() - err_b[inside].mean())
    assert row["p_value"] == pytest.approx(sps.ttest_rel(err_c[inside], err_b[inside]).pvalue, rel=1e-6)
    assert row["verdict"] == "regression" and paired.loc["kind = a", "verdict"] == ""
    want = sps.ttest_ind(err_c[inside], err_b[inside], equal_var=False)
    assert unpaired.loc["kind = b", "p_value"] == pytest.approx(want.pvalue, rel=1e-6)
    low, high = want.confidence_interval()
    assert (unpaired.loc["kind = b", "ci_low"], unpaired.loc["kind = b", "ci_high"]) == pytest.approx((low, high))


def test_an_example_scored_twice_is_paired_on_its_latest_predictions(tmp_path):
    frame = two_versions(seed=9, n=400)
    frame["ts"] = pd.Timestamp("2026-01-01")
    again = frame[(frame.v == "v2")].head(40).copy()  # v2 scored 40 examples again a day later
    again["id"] = again["id"] + "-again"
    again["ts"] = pd.Timestamp("2026-01-02")
    again["prediction"] = 1 - again["prediction"]
    frame = pd.concat([frame, again], ignore_index=True)
    store = Store(tmp_path / "twice.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="p",
            mapping=Mapping(
                id="id",
                example="example",
                version="v",
                stage="stage",
                timestamp="ts",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["city", "tier"],
            ),
        )
    with store.read() as con:
        comp = compare(con, get_project(con, "p"), Side("v1"), Side("v2"), discovered=0)
    assert comp.paired and comp.n_pairs == 400
    latest = frame.sort_values("ts").groupby(["v", "example"]).tail(1)
    b = latest[latest.v == "v1"].set_index("example")
    c = latest[latest.v == "v2"].set_index("example").loc[b.index]
    rows = comp.overall.set_index("metric")
    assert rows.loc["accuracy", "candidate"] == pytest.approx(skm.accuracy_score(c.label, c.prediction), abs=1e-12)
    assert rows.loc["accuracy", "baseline"] == pytest.approx(skm.accuracy_score(b.label, b.prediction), abs=1e-12)
    assert rows.loc["roc_auc", "candidate"] == pytest.approx(skm.roc_auc_score(c.label, c.score), abs=1e-9)


def test_pairs_proven_unique_by_the_store_equal_pairs_counted(pair):
    """With both stages named, the store's flags prove that no example repeats and the
    pairs are not counted; over every stage, they are counted. Same comparison."""
    store, project, _ = pair
    with store.read() as con:
        flagged = compare(con, project, Side("v1", "production"), Side("v2", "shadow"), discovered=0)
        counted = compare(con, project, Side("v1"), Side("v2"), discovered=0)
    assert flagged.paired and flagged.n_pairs == counted.n_pairs > 0
    pd.testing.assert_frame_equal(flagged.overall, counted.overall)
    pd.testing.assert_frame_equal(flagged.slices.drop(columns=["slice"]), counted.slices.drop(columns=["slice"]))


def test_a_repeat_written_later_is_flagged_and_the_pairs_are_the_latest_predictions(tmp_path):
    """The second ingest scores 40 of v2's examples again: the write marks v2's stage as
    repeating an example (analysis.ingest.key_repeats), and the comparison of the two stages
    pairs each example's latest predictions without counting the pairs first."""
    frame = two_versions(seed=9, n=400)
    frame["ts"] = pd.Timestamp("2026-01-01")
    again = frame[(frame.v == "v2")].head(40).copy()
    again["id"] = again["id"] + "-again"
    again["ts"] = pd.Timestamp("2026-01-02")
    again["prediction"] = 1 - again["prediction"]
    mapping = Mapping(
        id="id",
        example="example",
        version="v",
        stage="stage",
        timestamp="ts",
        task="binary",
        prediction="prediction",
        score="score",
        label="label",
        positive_label="1",
        features=["city", "tier"],
    )
    store = Store(tmp_path / "later.duckdb")
    stages = {v: frame[frame.v == v]["stage"].iloc[0] for v in ("v1", "v2")}

    def flags():
        with store.read() as con:
            return dict(
                ((v, s), r)
                for v, s, r in con.execute("SELECT model_version, stage, repeats FROM sb_key_repeats").fetchall()
            )

    with store.write() as con:
        ingest_predictions(con, frame, project="p", mapping=mapping)
    assert flags() == {("v1", stages["v1"]): False, ("v2", stages["v2"]): False}
    with store.write() as con:
        ingest_predictions(con, again, project="p", mapping=mapping)
    assert flags() == {("v1", stages["v1"]): False, ("v2", stages["v2"]): True}
    with store.read() as con:
        comp = compare(con, get_project(con, "p"), Side("v1", stages["v1"]), Side("v2", stages["v2"]), discovered=0)
    assert comp.paired and comp.n_pairs == 400
    both = pd.concat([frame, again], ignore_index=True)
    latest = both.sort_values("ts").groupby(["v", "example"]).tail(1)
    c = latest[latest.v == "v2"]
    rows = comp.overall.set_index("metric")
    assert rows.loc["accuracy", "candidate"] == pytest.approx(skm.accuracy_score(c.label, c.prediction), abs=1e-12)
    assert repeat_flags_wrong(store.path) == []


def test_the_gate_can_skip_discovery(pair, capsys):
    store, project, _ = pair
    db = ["--db", str(store.path), "--project", "p"]
    with store.read() as con:
        thorough = run_gate(con, project, Side("v1"), Side("v2"), criteria=GateCriteria())
        quick = run_gate(con, project, Side("v1"), Side("v2"), criteria=GateCriteria(discovered_slices=0))
    assert thorough.comparison.slices["source"].str.startswith("found where").any()
    assert not quick.comparison.slices["source"].str.startswith("found where").any()
    assert set(quick.comparison.slices["source"]) == {"saved", "feature value"}
    assert main(["gate-criteria", "set", *db, "--discovered-slices", "51"]) == 2
    assert "discovered_slices" in capsys.readouterr().err
    assert main(["gate-criteria", "set", *db, "--discovered-slices", "0", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["discovered_slices"] == 0
    assert main(["gate-criteria", "set", *db, "--discovered-slices", "5"]) == 0


@pytest.mark.parametrize("paired", [True, False])
def test_a_boolean_feature_with_missing_values_is_compared_per_value(tmp_path, paired):
    """Missing booleans come back from DuckDB as pandas' NA, which cannot be compared in
    Python: they are the "(missing)" slice, and the counts per value equal pandas'."""
    frame = two_versions(n=900)
    rng = np.random.default_rng(2)
    member = pd.Series(rng.random(900) < 0.5, dtype="boolean")
    member[rng.random(900) < 0.2] = pd.NA
    frame["member"] = pd.concat([member, member], ignore_index=True)
    store = Store(tmp_path / "c.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="p",
            mapping=Mapping(
                id="id",
                example="example",
                version="v",
                stage="stage",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["member"],
            ),
        )
        comp = compare(con, get_project(con, "p"), Side("v1"), Side("v2"), pair=paired)
    rows = comp.slices[comp.slices["where"].str.startswith("member")].set_index("where")
    truth = (
        frame[frame.v == "v1"]["member"]
        .map(lambda v: "member is null" if pd.isna(v) else f"member is {str(bool(v)).lower()}")
        .value_counts()
    )
    assert rows["n_rows_b"].astype(int).to_dict() == truth.to_dict()


@pytest.mark.parametrize("paired", [True, False])
def test_saved_slices_may_name_the_rows_time_and_stage(tmp_path, paired):
    """A saved slice on the prediction's time, stage or version (not features) crashed
    Compare ("column timestamp not found"): the rows compared did not carry them. Paired,
    a row's own columns are the baseline's, as its features are."""
    frame = two_versions(n=2000)
    day = frame["example"].str[1:].astype(int) % 20
    frame["ts"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(day, unit="D")
    store = Store(tmp_path / "t.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="p",
            mapping=Mapping(
                id="id",
                example="example",
                version="v",
                stage="stage",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["city", "tier"],
                timestamp="ts",
            ),
        )
    wheres = ["timestamp < 2026-01-11", "stage = production AND city = ber", "model_version = v2"]
    with store.read() as con:
        comp = compare(con, get_project(con, "p"), Side("v1"), Side("v2"), pair=paired, discovered=0, saved=wheres)
    assert comp.paired == paired
    got = comp.slices[comp.slices.source == "saved"].set_index("where")
    b, c = by_version(frame)
    early_b, early_c = b[b.ts < "2026-01-11"], c[c.ts < "2026-01-11"]
    row = got.loc["timestamp < 2026-01-11"]
    assert (row.n_rows_b, row.n_rows_c) == (len(early_b), len(early_c)) == (1000, 1000)
    assert row.errors_b == (early_b.prediction != early_b.label).sum()
    assert row.errors_c == (early_c.prediction != early_c.label).sum()
    ber = got.loc["stage = production AND city = ber"]
    assert ber.n_rows_b == (b.city == "ber").sum()
    # Unpaired, the candidate serves in shadow: none of its rows is in production.
    assert ber.n_rows_c == ((c.city == "ber").sum() if paired else 0)
    # Paired, the version is the baseline's: no pair is in the slice (an empty slice is not listed).
    if paired:
        assert "model_version = v2" not in got.index
    else:
        assert tuple(got.loc["model_version = v2", ["n_rows_b", "n_rows_c"]]) == (0, 2000)


@pytest.mark.parametrize("paired", [True, False])
def test_the_gate_says_each_step_as_it_starts(pair, paired):
    """A page shows the gate's progress while it runs: the steps come in order, from 0,
    the searches among them, and the verdict is the same as without listening."""
    store, project, _ = pair
    said = []
    with store.read() as con:
        listened = run_gate(
            con,
            project,
            Side("v1"),
            Side("v2"),
            criteria=GateCriteria(),
            progress=lambda fraction, text: said.append((fraction, text)),
            comparison=None
            if paired
            else compare(con, project, Side("v1"), Side("v2"), pair=False, progress=lambda f, t: said.append((f, t))),
        )
        quiet = run_gate(
            con,
            project,
            Side("v1"),
            Side("v2"),
            criteria=GateCriteria(),
            comparison=None if paired else compare(con, project, Side("v1"), Side("v2"), pair=False),
        )
    fractions = [f for f, _ in said]
    assert fractions[0] == 0.0 and fractions == sorted(fractions) and fractions[-1] < 1
    texts_said = [t for _, t in said]
    assert "searching where the candidate is worse than the baseline" in texts_said
    assert ("searching where each version errs and the other does not" in texts_said) == paired
    assert texts_said[-1] == "the validation sets"
    assert [(r.criterion, r.passed, r.detail) for r in listened.results] == [
        (r.criterion, r.passed, r.detail) for r in quiet.results
    ]


@pytest.mark.parametrize("paired", [True, False])
def test_the_overall_figures_come_before_the_slices_and_equal_the_final_ones(pair, paired):
    """A page shows the overall figures while the gate searches the slices: they are told
    once, before any slice is searched, and are the final comparison's overall figures
    (and the gate passes them on)."""
    store, project, _ = pair
    events, gate_told = [], []
    with store.read() as con:
        full = compare(
            con,
            project,
            Side("v1"),
            Side("v2"),
            pair=paired,
            progress=lambda fraction, text: events.append(text),
            figures=events.append,
        )
        alone = compare(con, project, Side("v1"), Side("v2"), slices=False, discovered=0, pair=paired)
        run_gate(con, project, Side("v1"), Side("v2"), criteria=GateCriteria(), figures=gate_told.append)
    told = [e for e in events if isinstance(e, Comparison)]
    assert len(told) == 1 and told[0].slices.empty and not full.slices.empty
    said_before = events[: events.index(told[0])]
    assert "the overall figures" in said_before
    assert not any(text.startswith("searching") for text in said_before)
    pd.testing.assert_frame_equal(told[0].overall, full.overall)
    pd.testing.assert_frame_equal(told[0].overall, alone.overall)
    assert (
        (told[0].paired, told[0].rows, told[0].n_pairs)
        == (full.paired, full.rows, full.n_pairs)
        == (paired, alone.rows, alone.n_pairs)
    )
    assert len(gate_told) == 1 and gate_told[0].paired


def test_a_search_that_cannot_run_says_why(tmp_path, capsys):
    """No label has arrived yet: the searches of where each version errs and the other does
    not have no rows to search. The comparison says so (page, CLI JSON and its warning
    lines) instead of leaving them out silently, and still compares what it can."""
    frame = two_versions(n=2000)
    frame["label"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    path = tmp_path / "unlabeled.duckdb"
    with Store(path).write() as con:
        ingest_predictions(
            con,
            frame,
            project="p",
            mapping=Mapping(
                id="id",
                example="example",
                version="v",
                stage="stage",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["city", "tier"],
            ),
        )
    with Store(path).read() as con:
        comp = compare(con, get_project(con, "p"), Side("v1"), Side("v2"))
    assert comp.paired
    for direction in ("where the candidate errs", "where the baseline errs"):
        assert [n for n in comp.notes if n.startswith(f"No slices found {direction}") and "nothing to search" in n], (
            comp.notes
        )
    assert (comp.slices["source"] == "feature value").any()  # the rest is compared
    code = main(
        ["--db", str(path), "--format", "json", "compare", "--project", "p", "--baseline", "v1", "--candidate", "v2"]
    )
    out = capsys.readouterr()
    assert code == 0 and json.loads(out.out)["notes"] == comp.notes
    assert "warning: No slices found where the candidate errs" in out.err


def test_the_gates_failing_branches_for_validation_sets_and_product_metrics(tmp_path):
    """Each way the gate fails on what it is asked to require, with its numbers from pandas:
    a required set the candidate does worse on than its criterion, a set the candidate
    never scored, a set that does not exist, and a product metric significantly worse by
    more than its limit."""
    from analysis.store.scope import Scope
    from analysis.valsets import Selection, commit, create_set, promote

    frame = two_versions(n=3000)
    only_v1 = frame[frame.v == "v1"].head(60).copy()  # examples the candidate never scored
    only_v1["example"] = "x" + only_v1["example"]
    only_v1["id"] = "v1-x" + only_v1["id"]
    path = tmp_path / "gate.duckdb"
    with Store(path).write() as con:
        ingest_predictions(
            con,
            pd.concat([frame, only_v1], ignore_index=True),
            project="p",
            mapping=Mapping(
                id="id",
                example="example",
                version="v",
                stage="stage",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["city", "tier"],
                outcomes=["loss"],
            ),
        )
        project = get_project(con, "p")
        define_metric(
            con,
            project,
            ProductMetric("missed_loss", "sum(loss) FILTER (WHERE NOT prediction AND label)", "lower", "$"),
        )
        create_set(con, project, "ber free", criteria=["accuracy >= 0.75"])
        promote(
            con,
            project,
            "ber free",
            Selection(scope=Scope.of(versions="v1"), slice_=parse_slice("city = ber AND tier = free")),
        )
        commit(con, project, "ber free", "the planted slice")
        create_set(con, project, "v1 only", criteria=["accuracy >= 0.5"])
        promote(con, project, "v1 only", Selection(prediction_ids=tuple(only_v1["id"])))
        commit(con, project, "v1 only", "examples only v1 scored")
    loose = dict(slice_max_worse=0.9, overall_max_worse=0.9)
    with Store(path).read() as con:
        project = get_project(con, "p")
        verdict = run_gate(
            con,
            project,
            Side("v1"),
            Side("v2"),
            criteria=GateCriteria(**loose, product_max_worse=0.05, required_sets=("ber free", "v1 only")),
        )
        with pytest.raises(ConfigError, match="requires validation set\\(s\\) nowhere, which do not exist"):
            run_gate(con, project, Side("v1"), Side("v2"), criteria=GateCriteria(**loose, required_sets=("nowhere",)))
    results = {r.criterion: r for r in verdict.results}
    assert not verdict.passed
    # The planted slice: v2's accuracy on the members, as pandas counts it.
    logged = pd.concat([frame, only_v1])
    members = logged[(logged.v == "v1") & (logged.city == "ber") & (logged.tier == "free")]["example"]
    scored = frame[(frame.v == "v2") & frame.example.isin(members)]
    accuracy = (scored.prediction == scored.label).mean()
    ber = results["validation set ber free v1"]
    assert accuracy < 0.75 and not ber.passed
    assert ber.detail == (
        f"fail on {len(scored):,} labeled of {len(members):,} members (stage shadow); failed: accuracy >= 0.75"
    )
    never = results["validation set v1 only"]
    assert not never.passed and never.detail == "v2 has not scored any labeled member of it"
    # missed_loss: v2 misses more defaults (its loss is the baseline's and more), beyond 5%.
    b, c = by_version(frame)
    loss_b = b.loss[(b.prediction == 0) & (b.label == 1)].sum()
    loss_c = c.loss[(c.prediction == 0) & (c.label == 1)].sum()
    product = next(
        (r for r in verdict.results if r.criterion.startswith("product metric missed")),
        [r.criterion for r in verdict.results],
    )
    assert loss_c > loss_b * 1.05
    assert not product.passed and "significantly worse by" in product.detail
    assert f"{(loss_c - loss_b) / loss_b:.2%}" in product.detail

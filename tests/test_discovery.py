"""Slice discovery on projects: encoding, significance (against statsmodels and
scipy), false-discovery control on data with no effect, folding, the planted
failures of the demo, the CLI and bad requests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import db_digest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.discovery.encode import encode
from analysis.discovery.run import discover
from analysis.slices import compile_slice
from analysis.stats.intervals import pooled_z_pvalues
from analysis.stats.multiple_testing import bh_qvalues
from analysis.store.scope import Scope


def ingest(path, frame, **mapping) -> tuple[Store, object]:
    store = Store(path)
    with store.write() as con:
        ingest_predictions(con, frame, project="p", mapping=Mapping(id="id", version="v", **mapping))
    with store.read() as con:
        return store, get_project(con, "p")


def null_frame(seed: int, n: int = 4000) -> pd.DataFrame:
    """Features independent of the errors: any slice found is chance."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "a": rng.choice(["x", "y", "z"], n),
            "b": rng.choice(["p", "q", "r", "s"], n),
            "c": rng.choice(["u", "w"], n),
            "d": rng.integers(0, 100, n).astype(float),
            "label": rng.integers(0, 2, n),
            "prediction": rng.integers(0, 2, n),
        }
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A slice with three times the error rate, a near-duplicate of it, and missing values."""
    rng = np.random.default_rng(4)
    n = 6000
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "city": rng.choice(["ams", "ber", "cph", "dub"], n),
            "tier": rng.choice(["gold", "free"], n),
            "age": rng.integers(18, 80, n).astype(float),
            "cost": rng.gamma(2.0, 10.0, n).round(2),
        }
    )
    frame.loc[rng.random(n) < 0.1, "city"] = None
    bad = (frame.city == "ber") & (frame.tier == "free")
    p_wrong = np.where(bad, 0.45, 0.15)
    frame["label"] = rng.integers(0, 2, n)
    wrong = rng.random(n) < p_wrong
    frame["prediction"] = np.where(wrong, 1 - frame.label, frame.label)
    frame.loc[bad, "cost"] *= 4
    store, project = ingest(
        tmp_path_factory.mktemp("planted") / "p.duckdb",
        frame,
        task="binary",
        prediction="prediction",
        label="label",
        positive_label="1",
        features=["city", "tier", "age"],
        outcomes=["cost"],
    )
    return store, project, frame


def test_every_code_maps_back_to_the_rows_of_its_slice(planted):
    """Rows and errors per code of the encoding equal those of the slice the code
    opens as (compiled by the one slice compiler, over the labeled rows)."""
    store, project, _ = planted
    with store.read() as con:
        enc = encode(con, project, bins=4)
        for feature in enc.features:
            col = f'"{feature.column}"'
            per_code = {
                None if c is None else int(c): (n, e)
                for c, n, e in con.execute(
                    f"SELECT {col}, count(*), sum(sb_error) FROM ({enc.sql}) GROUP BY 1", enc.params
                ).fetchall()
            }
            assert len(per_code) >= 2
            for code, (n, errors) in per_code.items():
                sql, params = compile_slice(enc.slice_of({feature.column: code}), project)
                got = con.execute(
                    f'SELECT count(*), sum(CASE WHEN label = prediction THEN 0 ELSE 1 END) FROM "{project.log_table}" '
                    f"WHERE label IS NOT NULL AND prediction IS NOT NULL AND {sql}",
                    params,
                ).fetchall()[0]
                assert got == (n, errors), (feature.column, code)


def test_planted_slice_is_found_first_with_tests_matching_statsmodels(planted):
    store, project, frame = planted
    with store.read() as con:
        found = discover(con, project, max_level=2, top_k=5, alpha=0.95)
    top = found.slices.iloc[0]
    assert top["where"] == "city = ber AND tier = free"
    inside = frame[(frame.city == "ber") & (frame.tier == "free")]
    wrong = (inside.label != inside.prediction).sum()
    total_wrong = (frame.label != frame.prediction).sum()
    assert (top["size"], top["errors"]) == (len(inside), wrong)
    assert (top["ci_low"], top["ci_high"]) == pytest.approx(
        proportion_confint(wrong, len(inside), method="wilson"), abs=1e-12
    )
    assert top["p_value"] == pytest.approx(
        proportions_ztest([wrong, total_wrong - wrong], [len(inside), len(frame) - len(inside)])[1], rel=1e-6
    )
    assert top["significant"]
    assert top["impact"] == pytest.approx(wrong - len(inside) * total_wrong / len(frame), rel=1e-12)


def test_real_valued_cost_uses_t_intervals_and_the_pooled_test(planted):
    store, project, frame = planted
    with store.read() as con:
        found = discover(con, project, error="cost", max_level=2, top_k=3)
    top = found.slices.iloc[0]
    assert top["where"] == "city = ber AND tier = free"
    inside = frame[(frame.city == "ber") & (frame.tier == "free")].cost
    assert top["error_rate"] == pytest.approx(inside.mean(), rel=1e-9)
    # A cost is never negative: the log-scale interval m exp(v/2 ± t sqrt(v)), v = s² / (n m²).
    m, n = inside.mean(), len(inside)
    v, t = inside.var(ddof=1) / (n * m * m), sps.t.ppf(0.975, n - 1)
    assert (top["ci_low"], top["ci_high"]) == pytest.approx(
        (m * np.exp(v / 2 - t * np.sqrt(v)), m * np.exp(v / 2 + t * np.sqrt(v))), rel=1e-9
    )
    rest = frame.cost.drop(inside.index)
    var = frame.cost.var(ddof=0)
    z = (inside.mean() - rest.mean()) / np.sqrt(var * (1 / len(inside) + 1 / len(rest)))
    assert top["p_value"] == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-6)


def test_a_cost_defined_on_no_row_says_so(planted):
    """No row where the cost is known (an outcome not yet reported): a message, not broken SQL."""
    store, project, _ = planted
    with store.read() as con:
        with pytest.raises(ConfigError, match="No rows with a defined .* in this scope"):
            discover(con, project, error="CASE WHEN cost < 0 THEN cost END", max_level=2)


def test_cost_expressions_find_what_their_columns_find(planted):
    """A per-row expression ranks slices exactly as the same cost from a column:
    ``label <> prediction`` is misclassification, ``cost / 4`` a quarter of cost."""
    store, project, frame = planted
    keys = ["where", "size", "errors", "score"]
    with store.read() as con:
        by_flag = discover(con, project, error="(label <> prediction)::int", max_level=2, top_k=5).slices
        by_measure = discover(con, project, error="misclassification", max_level=2, top_k=5).slices
        quarter = discover(
            con, project, error="CASE WHEN cost IS NULL THEN NULL ELSE cost / 4 END", max_level=2, top_k=5
        ).slices
        whole = discover(con, project, error="cost", max_level=2, top_k=5).slices
    pd.testing.assert_frame_equal(by_flag[keys], by_measure[keys], check_dtype=False)
    assert list(quarter["where"]) == list(whole["where"])
    assert list(quarter["size"]) == list(whole["size"])
    assert quarter["errors"].to_numpy() == pytest.approx(whole["errors"].to_numpy() / 4, rel=1e-9)
    assert quarter["score"].to_numpy() == pytest.approx(whole["score"].to_numpy(), rel=1e-9)
    inside = frame[(frame.city == "ber") & (frame.tier == "free")]
    assert quarter.iloc[0]["errors"] == pytest.approx(inside.cost.sum() / 4, rel=1e-9)


def test_benjamini_hochberg_and_pooled_test_helpers():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.2])
    q = bh_qvalues(p)
    assert np.isnan(q[3])
    assert q[[0, 1, 2, 4]] == pytest.approx(multipletests(p[[0, 1, 2, 4]], method="fdr_bh")[1])
    # 0/1 errors: the pooled z-test is statsmodels' two-proportion test.
    got = pooled_z_pvalues(np.array([40]), np.array([12]), 200, 30.0, 30.0)[0]
    assert got == pytest.approx(proportions_ztest([12, 18], [40, 160])[1], rel=1e-12)


def test_no_real_effect_gives_almost_no_significant_slices(tmp_path):
    """Benjamini-Hochberg at q < 0.05 over all evaluated slices: on data where
    nothing is going on, at most a few runs in twenty may find anything."""
    runs_with_discoveries, reported, tested = 0, 0, 0
    for seed in range(20):
        store, project = ingest(
            tmp_path / f"null{seed}.duckdb",
            null_frame(seed),
            task="binary",
            prediction="prediction",
            label="label",
            positive_label="1",
            features=["a", "b", "c", "d"],
        )
        with store.read() as con:
            # alpha near 1 barely penalises small slices, so chance slices do get reported.
            found = discover(con, project, max_level=2, top_k=10, min_support=0.02, alpha=0.999)
        runs_with_discoveries += bool((found.evaluated["q_value"] < 0.05).any())
        reported += len(found.slices)
        tested += len(found.evaluated)
    assert reported > 0 and tested > 20 * 20
    assert runs_with_discoveries <= 3


def test_near_duplicates_fold_under_the_better_slice(tmp_path):
    """An added condition that keeps 97% of the rows, and a feature that says the
    same as another (every app order comes from shop a's kiosk), fold under the
    better slice; a real sub-slice does not."""
    rng = np.random.default_rng(2)
    n = 3000
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "shop": rng.choice(["a", "b", "c"], n),
            "label": rng.integers(0, 2, n),
        }
    )
    frame["channel"] = np.where((frame.shop == "a") & (rng.random(n) < 0.97), "app", "web")
    frame["till"] = np.where(frame.shop == "a", "kiosk", rng.choice(["desk", "phone"], n))
    bad = frame.shop == "a"
    frame["prediction"] = np.where(rng.random(n) < np.where(bad, 0.5, 0.1), 1 - frame.label, frame.label)
    store, project = ingest(
        tmp_path / "f.duckdb",
        frame,
        task="binary",
        prediction="prediction",
        label="label",
        positive_label="1",
        features=["shop", "channel", "till"],
    )
    with store.read() as con:
        found = discover(con, project, max_level=2, top_k=8, alpha=0.95, ranking="error")
    table = found.slices.set_index("where")
    best = table.index[0]
    assert best in ("shop = a", "till = kiosk")
    assert table["folded_under"].isna().all()  # one entry each; near-duplicates are listed under it
    variants = {v["where"] for v in table.loc[best, "variants"]}
    others = {"shop = a", "till = kiosk", "shop = a AND channel = app"} - {best}
    assert others & variants and not others & set(table.index)
    # Jaccard of the row sets, by hand: every folded variant shares at least 80% of the union.
    rows = {
        "shop = a": frame.shop == "a",
        "till = kiosk": frame.till == "kiosk",
        "shop = a AND channel = app": (frame.shop == "a") & (frame.channel == "app"),
    }
    labeled = frame.label.notna()
    for where in others & variants:
        a, b = rows[best] & labeled, rows[where] & labeled
        assert (a & b).sum() / (a | b).sum() >= 0.8


def test_demo_planted_failures_are_found_at_the_top(demo_copy):
    store = Store(demo_copy)
    with store.read() as con:
        project = get_project(con, "lending-demo")
        money = discover(
            con, project, Scope.of(versions="credit-v1"), error="loss", max_level=2, top_k=5, ranking="error"
        )
        calibration = discover(
            con,
            project,
            Scope.of(versions="credit-v1"),
            error="logloss",
            alpha=0.99,
            max_level=2,
            top_k=5,
            ranking="error",
        )
        v3 = discover(con, project, Scope.of(versions="credit-v3"), alpha=0.99, top_k=3, ranking="error")
    assert money.slices["where"].iloc[0] == "employment = self_employed AND channel = partner_api"
    assert "credit_history_years is null" in list(calibration.slices["where"].head(4))
    assert v3.slices["where"].iloc[0] == "term_months >= 60 AND region = east AND device = android"
    assert money.slices["significant"].iloc[0] and v3.slices["significant"].iloc[0]


def test_cli_discover_json(planted, capsys):
    store, _, _ = planted
    code = main(
        ["discover", "--db", str(store.path), "--project", "p", "--max-level", "2", "--top", "3", "--format", "json"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    first = out["slices"][0]
    assert first["predicates"] == {"city": "ber", "tier": "free"}
    assert set(first) >= {
        "predicates",
        "size",
        "errors",
        "error_rate",
        "score",
        "ci_low",
        "ci_high",
        "p_value",
        "q_value",
    }
    assert out["evaluated"] >= len(out["slices"])


def test_bad_requests_are_named_and_change_nothing(planted, tmp_path, capsys):
    store, project, frame = planted
    before = db_digest(store.path)
    with store.read() as con:
        with pytest.raises(ConfigError, match="not valid SQL"):
            discover(con, project, error="'; DROP TABLE x; --")
        with pytest.raises(ConfigError, match="Unknown error measure 'missclassification'"):
            discover(con, project, error="missclassification")
        with pytest.raises(ConfigError, match="read_csv"):
            discover(con, project, error="read_csv('/etc/passwd')")
        with pytest.raises(ConfigError, match="Unknown column"):
            discover(con, project, columns=["nope"])
        with pytest.raises(ConfigError, match="Rank by"):
            discover(con, project, rank_by="luck")
    assert main(["discover", "--db", str(store.path), "--project", "p", "--error", "abs_residual"]) == 2
    assert "Unknown error measure" in capsys.readouterr().err
    assert db_digest(store.path) == before
    frame = frame.assign(refund=np.where(np.arange(len(frame)) % 2, -5.0, 3.0))
    other, project2 = ingest(
        tmp_path / "neg.duckdb",
        frame,
        task="binary",
        prediction="prediction",
        label="label",
        positive_label="1",
        features=["city"],
        outcomes=["refund"],
    )
    with other.read() as con:
        with pytest.raises(ConfigError, match="refund has negative values"):
            discover(con, project2, error="refund")


def test_error_tree_leaves_cover_every_row_once_and_match_their_slices(planted):
    from analysis.discovery.tree import error_tree

    store, project, frame = planted
    with store.read() as con:
        tree = error_tree(con, project, max_depth=3, min_leaf=100)
        leaves = tree.leaves
        assert leaves["size"].sum() == tree.n_rows == len(frame)
        assert leaves["errors"].sum() == (frame.label != frame.prediction).sum()
        assert tree.nodes.loc[tree.nodes.parent.isna(), "size"].item() == len(frame)
        # Each leaf that reads as a slice selects exactly its rows.
        covered = 0
        for leaf in leaves.itertuples():
            if leaf.slice is None:
                continue
            sql, params = compile_slice(leaf.slice, project)
            n, errors = con.execute(
                f'SELECT count(*), sum(CASE WHEN label = prediction THEN 0 ELSE 1 END) FROM "{project.log_table}" '
                f"WHERE {sql}",
                params,
            ).fetchall()[0]
            assert (n, errors) == (leaf.size, leaf.errors), leaf.where
            covered += n
        assert covered >= 0.5 * len(frame)
    # Two levels deep, the planted slice is the worst leaf.
    with store.read() as con:
        leaves = error_tree(con, project, max_depth=2, min_leaf=100).leaves
    assert leaves["where"].iloc[0] == "city = ber AND tier = free"
    inside = frame[(frame.city == "ber") & (frame.tier == "free")]
    assert leaves["error_rate"].iloc[0] == pytest.approx((inside.label != inside.prediction).mean(), abs=1e-12)


# --- id-like columns and the (other) lump (issue 20, item 5) ---------------------------------------------------


@pytest.fixture(scope="module")
def with_uid(tmp_path_factory):
    """2,000 rows; uid 1..800 twice each, 801..1200 once (id-like: 1,200 distinct values in 2,000 rows).
    The rows of uid 1..100 (the top 100 in natural order) never err, so the lump of the
    other 1,100 values is worse than the rest by construction; region NG is a planted slice."""
    rng = np.random.default_rng(12)
    uid = [str(i) for i in range(1, 801) for _ in range(2)] + [str(i) for i in range(801, 1201)]
    n = len(uid)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "uid": uid,
            "region": rng.choice(["NG", "US", "DE", "FR", "BR"], n, p=[0.15, 0.25, 0.2, 0.2, 0.2]),
        }
    )
    p_wrong = np.where(frame.region == "NG", 0.7, 0.15)
    p_wrong = np.where(frame.uid.astype(int) <= 100, 0.0, p_wrong)
    frame["label"] = rng.integers(0, 2, n)
    frame["prediction"] = np.where(rng.random(n) < p_wrong, 1 - frame.label, frame.label)
    store, project = ingest(
        tmp_path_factory.mktemp("uid") / "u.duckdb",
        frame,
        task="binary",
        prediction="prediction",
        label="label",
        positive_label="1",
        features=["uid", "region"],
        kinds={"uid": "categorical"},
    )  # declared: ingest alone would call it free text
    return store, project, frame


def test_id_like_column_is_left_out_with_a_note_and_the_planted_slice_is_found(with_uid):
    store, project, frame = with_uid
    before = db_digest(store.path)
    with store.read() as con:
        found = discover(con, project, max_level=2, top_k=5, ranking="error")
    assert found.skipped_features == [{"column": "uid", "distinct": 1200, "rows": 2000}]
    assert (
        len(found.notes) == 1 and "uid looks like an identifier (1,200 distinct values in 2,000 rows)" in found.notes[0]
    )
    assert found.features == ["region"]
    assert found.slices.iloc[0]["where"] == "region = NG"
    assert not any("uid" in w for w in found.slices["where"])
    assert db_digest(store.path) == before


def test_kept_id_like_column_ties_in_natural_order_and_the_lump_is_named(with_uid):
    store, project, frame = with_uid
    with store.read() as con:
        enc = encode(con, project, columns=["uid", "region"], keep_id_like=True)
        found = discover(con, project, max_level=2, top_k=10, keep_id_like=True, min_support=50, ranking="error")
    uid = enc.feature("uid")
    # 800 values tie at two rows: the first 100 by number, not "1", "10", "100", "101", ...
    assert uid.labels[:100] == tuple(str(i) for i in range(1, 101))
    assert uid.labels[100] == "(other)" and uid.lumped == 1100
    wheres = list(found.slices["where"])
    assert not any("uid not in" in w for w in wheres)
    lumps = found.slices[found.slices["where"].str.contains("less frequent values of uid")]
    assert len(lumps), wheres  # the lump is worse than the rest by construction, and named for what it is
    top = lumps.iloc[0]
    assert "any of 1,100 less frequent values of uid" in top["where"]
    rows = frame[~frame.uid.astype(int).between(1, 100)]
    if "region = NG" in top["where"]:
        rows = rows[rows.region == "NG"]
    assert top["size"] == len(rows)  # the slice behind the name selects exactly the lumped rows
    assert top["errors"] == (rows.label != rows.prediction).sum()
    assert found.notes == [] and found.skipped_features == []


def test_category_counts_natural_order_numbers_then_text(tmp_path):
    import duckdb

    from analysis.slices.grouping import category_counts

    con = duckdb.connect(str(tmp_path / "c.duckdb"))
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES ('x'), ('10'), ('9'), ('a'), ('2.5'), ('b'), ('b'), (NULL), "
        "(NULL), (NULL)) AS v(c)"
    )
    got = category_counts(con, "t", ["c"], ("TRUE", []), 10)["c"]
    assert got.top == ["b", "2.5", "9", "10", "a", "x"]
    assert (got.distinct, got.rows) == (6, 7)
    assert category_counts(con, "t", ["c"], ("TRUE", []), 2)["c"].top == ["b", "2.5"]


def test_cli_discover_says_which_features_it_left_out(with_uid, capsys):
    store, project, frame = with_uid
    code = main(["discover", "--project", "p", "--db", str(store.path), "--format", "json", "--max-level", "1"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["skipped_features"][0]["column"] == "uid" and "identifier" in out["notes"][0]
    code = main(["discover", "--project", "p", "--db", str(store.path), "--column", "uid"])
    assert code == 2 and "uid looks like an identifier" in capsys.readouterr().err
    code = main(
        [
            "discover",
            "--project",
            "p",
            "--db",
            str(store.path),
            "--column",
            "uid",
            "--keep-id-like",
            "--format",
            "json",
            "--max-level",
            "1",
            "--min-support",
            "50",
            "--ranking",
            "error",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["features"] == ["uid"] and out["notes"] == [] and out["ranking"] == "error"


def test_leaderboard_leaves_id_like_columns_out_with_a_note(with_uid):
    from analysis.slices.breakdown import leaderboard

    store, project, frame = with_uid
    with store.read() as con:
        board = leaderboard(con, project)
        kept = leaderboard(con, project, keep_id_like=True)
    assert set(board.column) == {"region"} and "uid looks like an identifier" in board.attrs["notes"][0]
    assert board.attrs["skipped_features"] == [{"column": "uid", "distinct": 1200, "rows": 2000}]
    assert set(kept.column) == {"uid", "region"} and kept.attrs["notes"] == []


def test_discover_page_shows_which_features_it_left_out(monkeypatch, with_uid):
    from test_app import app_on

    store, project, frame = with_uid
    at = app_on(monkeypatch, store.path, timeout=120)
    at.query_params["project"] = "p"
    at.run()
    at.switch_page("pages/discover.py").run()
    assert not at.exception
    shown = "\n".join(t.value for t in at.text)
    assert "Note: uid looks like an identifier (1,200 distinct values in 2,000 rows): left out" in shown
    table = next(d.value for d in at.dataframe if "where" in d.value)
    assert table["where"].iloc[0] == "region = NG" and not table["where"].str.contains("uid").any()

"""Validation sets on real DuckDB files: promotion, immutable versions, exact diffs,
evaluation against scikit-learn (with labels that arrive after promotion), the
export -> offline scoring -> ingest loop, concurrent writers, the CLI and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, db_digest
from sklearn import metrics as skm

from analysis import ConfigError, IngestError, Mapping, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.ingest.labels import attach_labels
from analysis.slices import parse_slice
from analysis.store.scope import Scope
from analysis.valsets import (
    Selection,
    commit,
    create_set,
    delete_set,
    diff,
    evaluate,
    export_set,
    history,
    ingest_scores,
    members,
    parse_criterion,
    preview_promotion,
    promote,
    remove_members,
)


def make_log(seed: int = 3, n: int = 400) -> pd.DataFrame:
    """Two versions scoring the same 400 examples (v2 also twice for some), a city feature,
    and labels for most of them."""
    rng = np.random.default_rng(seed)
    examples = [f"e{i:03d}" for i in range(n)]
    city = rng.choice(["ams", "ber", "cph"], n)
    label = rng.integers(0, 2, n)
    rows = []
    for version, noise in (("v1", 0.35), ("v2", 0.2)):
        score = np.clip(label * 0.6 + rng.normal(0.2, noise, n), 0, 1)
        for i in range(n):
            rows.append(
                {
                    "id": f"{version}-{i}",
                    "example": examples[i],
                    "ts": f"2026-01-0{1 + i % 5} 10:00:00",
                    "version": version,
                    "score": score[i],
                    "prediction": int(score[i] >= 0.5),
                    "label": None if i % 10 == 0 else int(label[i]),
                    "city": city[i],
                }
            )
    # v2 scored the first 50 examples again later, with a different score: the latest one counts.
    for i in range(50):
        rows.append(
            {
                "id": f"v2b-{i}",
                "example": examples[i],
                "ts": "2026-01-09 10:00:00",
                "version": "v2",
                "score": 0.99,
                "prediction": 1,
                "label": None if i % 10 == 0 else int(label[i]),
                "city": city[i],
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture()
def shop(tmp_path):
    frame = make_log()
    store = Store(tmp_path / "v.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="p",
            mapping=Mapping(
                id="id",
                example="example",
                timestamp="ts",
                version="version",
                task="binary",
                prediction="prediction",
                score="score",
                label="label",
                positive_label="1",
                features=["city"],
            ),
        )
    with store.read() as con:
        return store, get_project(con, "p"), frame


def latest(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["ts", "id"]).groupby(["version", "example"], as_index=False).last()


def test_promotion_counts_adds_each_example_once_and_keeps_its_record(shop):
    store, project, frame = shop
    errors = Selection(scope=Scope.of(versions="v1"), slice_=parse_slice("city = ber"), only_errors=True)
    with store.write() as con:
        create_set(con, project, "ber", criteria=["recall >= 0.5"])
        preview = preview_promotion(con, project, "ber", errors)
        first = promote(con, project, "ber", errors, reason="wrong in Berlin")
        again = promote(
            con,
            project,
            "ber",
            Selection(scope=Scope.of(versions="v1"), slice_=parse_slice("city = ber")),
            reason="all of Berlin",
        )
        got = members(con, project, "ber")
    v1 = frame[(frame.version == "v1") & (frame.city == "ber")]
    wrong = v1[v1.label.notna() & (v1.label != v1.prediction)]
    assert (preview.selected, preview.already, preview.added) == (len(wrong), 0, 0)
    assert (first.selected, first.already, first.added) == (len(wrong), 0, len(wrong))
    assert (again.selected, again.already, again.added) == (len(v1), len(wrong), len(v1) - len(wrong))
    assert got["example_id"].is_unique and len(got) == len(v1)
    kept = got.set_index("example_id")
    assert set(kept.index[kept.reason == "wrong in Berlin"]) == set(wrong.example)
    row = kept.loc[wrong.example.iloc[0]]
    assert row["prediction_id"] == wrong.id.iloc[0] and row["city"] == "ber"
    assert json.loads(row["source"]) == {
        "kind": "slice",
        "where": "city = ber",
        "only_errors": True,
        "slice": parse_slice("city = ber").to_dict(),
        "scope": {"versions": ["v1"], "stages": [], "start": None, "end": None},
    }


def test_latest_prediction_bucket_sample_and_hand_picked(shop):
    store, project, frame = shop
    with store.write() as con:
        create_set(con, project, "s")
        promote(con, project, "s", Selection(scope=Scope.of(versions="v2"), slice_=parse_slice("city = ams")))
        got = members(con, project, "s").set_index("example_id")
        ams = latest(frame[(frame.version == "v2") & (frame.city == "ams")]).set_index("example")
        assert got["prediction_id"].to_dict() == ams["id"].to_dict()  # the rescored ones: v2b-*
        create_set(con, project, "fp")
        done = promote(
            con, project, "fp", Selection(scope=Scope.of(versions="v1"), bucket="FP confident", confidence=0.8)
        )
        v1 = frame[frame.version == "v1"]
        assert done.added == int(((v1.label == 0) & (v1.prediction == 1) & (v1.score >= 0.8)).sum())
        create_set(con, project, "sample")
        one = preview_promotion(con, project, "sample", Selection(scope=Scope.of(versions="v1"), sample=25, seed=4))
        two = promote(con, project, "sample", Selection(scope=Scope.of(versions="v1"), sample=25, seed=4))
        assert one.selected == two.added == 25
        drawn = set(members(con, project, "sample")["example_id"])
        three = promote(con, project, "sample", Selection(scope=Scope.of(versions="v1"), sample=25, seed=4))
        assert (three.already, three.added) == (25, 0)  # the same seed draws the same examples
        create_set(con, project, "picked")
        picked = promote(
            con, project, "picked", Selection(prediction_ids=("v1-3", "v2-3", "v1-7")), reason="looked odd"
        )
        assert (picked.selected, picked.added) == (2, 2)  # v1-3 and v2-3 are one example
        assert json.loads(members(con, project, "picked")["source"].iloc[0]) == {
            "kind": "hand-picked",
            "predictions": 3,
        }
    assert len(drawn) == 25


def test_committed_versions_are_immutable_and_diffs_are_exact(shop):
    store, project, _ = shop
    with store.write() as con:
        create_set(con, project, "d")
        promote(con, project, "d", Selection(prediction_ids=("v1-1", "v1-2", "v1-3")), reason="first")
        v1 = commit(con, project, "d", "three")
        remove_members(con, project, "d", ["e001"])
        promote(con, project, "d", Selection(prediction_ids=("v1-4",)), reason="later")
        v2 = commit(con, project, "d", "swap one")
    with store.read() as con:
        assert list(members(con, project, "d", 1)["example_id"]) == ["e001", "e002", "e003"]
        assert sorted(members(con, project, "d", 2)["example_id"]) == ["e002", "e003", "e004"]
        change = diff(con, project, "d", 1, 2)
        assert change[["change", "example_id", "reason"]].values.tolist() == [
            ["added", "e004", "later"],
            ["removed", "e001", "first"],
        ]
        assert diff(con, project, "d", 2, "draft").empty
        h = history(con, project, "d")
        assert h[["version", "n_members", "added", "removed"]].values.tolist() == [[2, 3, 1, 1], [1, 3, 3, 0]]
    assert (v1.version, v2.version) == (1, 2) and v1.content_hash != v2.content_hash
    before = db_digest(store.path)
    with store.write() as con:
        with pytest.raises(ConfigError, match="nothing to commit"):
            commit(con, project, "d", "again")
        with pytest.raises(ConfigError, match="never deleted"):
            delete_set(con, project, "d")
        with pytest.raises(ConfigError, match="no version 3"):
            members(con, project, "d", 3)
        with pytest.raises(ConfigError, match="message"):
            commit(con, project, "d", "  ")
        with pytest.raises(ConfigError, match="already exists"):
            create_set(con, project, "d")
        with pytest.raises(ConfigError, match="Unknown metric 'luck'"):
            create_set(con, project, "e", criteria=["luck >= 1"])
        with pytest.raises(ConfigError, match="No validation set named 'nope'"):
            promote(con, project, "nope", Selection())
    assert db_digest(store.path) == before
    # Removing from the draft never touches a committed version.
    with store.write() as con:
        remove_members(con, project, "d", ["e002", "e003", "e004"])
        assert list(members(con, project, "d", 1)["example_id"]) == ["e001", "e002", "e003"]


def test_content_hash_is_sha256_of_the_members_in_id_order(shop):
    import hashlib

    store, project, _ = shop
    with store.write() as con:
        for name in ("h1", "h2"):
            create_set(con, project, name)
            promote(con, project, name, Selection(prediction_ids=("v1-5", "v1-1", "v2-9")), reason="same")
        first, second = commit(con, project, "h1", "a"), commit(con, project, "h2", "b")
        rows = members(con, project, "h1", 1).sort_values("example_id")
    text = chr(30).join(
        chr(31).join([r.example_id, r.prediction_id, "true" if r.label else "false", r.city, r.reason, r.source])
        for r in rows.itertuples()
    )
    assert first.content_hash == second.content_hash == hashlib.sha256(text.encode()).hexdigest()
    assert parse_criterion(" recall>=0.8 ", project).value == 0.8


def expected_metrics(frame: pd.DataFrame, ids: list[str], late: dict | None = None) -> dict:
    """scikit-learn on the joined rows: each member's latest prediction per version, its label."""
    out = {}
    for version, rows in latest(frame[frame.example.isin(ids)]).groupby("version"):
        rows = rows.set_index("example")
        label = rows["label"].copy()
        for example, value in (late or {}).items():
            if example in label.index:
                label[example] = value
        known = label.notna()
        y, pred, score = label[known].astype(int), rows.prediction[known], rows.score[known]
        out[version] = {
            "scored": len(rows),
            "labeled": int(known.sum()),
            "accuracy": skm.accuracy_score(y, pred),
            "recall": skm.recall_score(y, pred),
            "precision": skm.precision_score(y, pred),
            "roc_auc": skm.roc_auc_score(y, score),
        }
    return out


def test_evaluation_equals_scikit_learn_and_picks_up_late_labels(shop):
    store, project, frame = shop
    with store.write() as con:
        create_set(con, project, "all-ams", criteria=["accuracy >= 0.7", "recall >= 0.5"])
        promote(con, project, "all-ams", Selection(scope=Scope.of(versions="v1"), slice_=parse_slice("city = ams")))
        commit(con, project, "all-ams", "ams")
        result = evaluate(con, project)
    ids = list(frame[(frame.version == "v1") & (frame.city == "ams")].example)
    truth = expected_metrics(frame, ids)
    for version, want in truth.items():
        row = result[result.model_version == version].iloc[0]
        assert (row["members"], row["scored"], row["labeled"]) == (len(ids), want["scored"], want["labeled"])
        assert row["unlabeled"] == want["scored"] - want["labeled"]
        for m in ("accuracy", "recall", "precision", "roc_auc"):
            assert row[m] == pytest.approx(want[m], abs=1e-12), (version, m)
        assert row["recall_low"] < row["recall"] < row["recall_high"]
        fails = [
            c
            for c, ok in (("accuracy >= 0.7", want["accuracy"] >= 0.7), ("recall >= 0.5", want["recall"] >= 0.5))
            if not ok
        ]
        assert row["verdict"] == ("fail" if fails else "pass") and row["failed"] == "; ".join(fails)
    # Labels that arrive after promotion (for the examples that had none) are used.
    unlabeled = sorted(set(frame[frame.label.isna() & frame.example.isin(ids)].example))
    late = {e: 1 for e in unlabeled}
    with store.write() as con:
        attach_labels(
            con,
            pd.DataFrame({"example": unlabeled, "label": [1] * len(unlabeled)}),
            project="p",
            key="example",
            id_column="example",
            label_column="label",
        )
        after = evaluate(con, project)
    for version, want in expected_metrics(frame, ids, late).items():
        row = after[after.model_version == version].iloc[0]
        assert row["labeled"] == want["labeled"] == want["scored"]
        assert row["accuracy"] == pytest.approx(want["accuracy"], abs=1e-12)


def test_export_score_offline_ingest_fills_the_matrix(shop, tmp_path):
    store, project, frame = shop
    with store.write() as con:
        create_set(con, project, "loop")
        promote(
            con,
            project,
            "loop",
            Selection(scope=Scope.of(versions="v1"), slice_=parse_slice("city = cph"), only_errors=True),
        )
        commit(con, project, "loop", "cph errors")
        done = export_set(con, project, "loop", str(tmp_path / "loop.parquet"))
    exported = pd.read_parquet(tmp_path / "loop.parquet")
    assert done.rows == len(exported) and set(exported.columns) >= {"example_id", "city", "label"}
    assert set(exported.label) <= {"1", "0"}
    # "Offline scoring": a model that gets every second example right.
    exported["prediction"] = [
        lab if i % 2 == 0 else ("0" if lab == "1" else "1") for i, lab in enumerate(exported.label)
    ]
    exported["score"] = [0.9 if p == "1" else 0.1 for p in exported.prediction]
    exported.to_csv(tmp_path / "scored.csv", index=False)
    with store.write() as con:
        ingest_scores(con, project, "loop", str(tmp_path / "scored.csv"), model_version="v3")
        result = evaluate(con, project, ["loop"])
    row = result[(result.model_version == "v3") & (result.stage == "offline")].iloc[0]
    y, p = exported.label.astype(int), exported.prediction.astype(int)
    assert (row["scored"], row["labeled"]) == (len(exported), len(exported))
    assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert row["roc_auc"] == pytest.approx(skm.roc_auc_score(y, exported.score))
    before = db_digest(store.path)
    with store.write() as con:
        with pytest.raises(IngestError, match="already stored"):
            ingest_scores(con, project, "loop", str(tmp_path / "scored.csv"), model_version="v3")
        stranger = exported.head(2).assign(example_id=["zzz", "e000x"])
        with pytest.raises(IngestError, match="2 example ids are not members of 'loop' version 1"):
            ingest_scores(con, project, "loop", stranger, model_version="v4")
        with pytest.raises(IngestError, match="1 example id is not a member of 'loop' version 1, such as 'zzz'"):
            ingest_scores(con, project, "loop", stranger.head(1), model_version="v4")
        with pytest.raises(IngestError, match="more than once"):
            ingest_scores(con, project, "loop", pd.concat([exported.head(2)] * 2), model_version="v4")
        with pytest.raises(IngestError, match="no column 'prediction'"):
            ingest_scores(con, project, "loop", exported.drop(columns=["prediction"]), model_version="v4")
    assert db_digest(store.path) == before


def _promote_ids(path: str, ids: list[str]) -> None:
    store = Store(path, busy_timeout=60)
    with store.write() as con:
        promote(con, get_project(con, "p"), "shared", Selection(prediction_ids=tuple(ids)), reason="thread")


def test_concurrent_writers_lose_nothing(shop):
    """Threads and separate processes promote overlapping examples into one set at once."""
    store, project, _ = shop
    with store.write() as con:
        create_set(con, project, "shared")
    batches = [[f"v1-{i}" for i in range(k, 400, 7)] for k in range(4)]  # overlapping examples across versions
    batches += [[f"v2-{i}" for i in range(k, 400, 5)] for k in range(2)]
    threads = [threading.Thread(target=_promote_ids, args=(str(store.path), b)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wheres = ["city = ams", "city = ber", "city = cph", "city = ams"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "analysis",
                "promote",
                "--db",
                str(store.path),
                "--project",
                "p",
                "--set",
                "shared",
                "--version",
                "v2",
                "--where",
                w,
                "--wait",
                "60",
                "--format",
                "json",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in wheres
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [o[1] for o in outs]
    added = sum(json.loads(o[0])["added"] for o in outs)
    with store.read() as con:
        got = members(con, project, "shared")
    expected = {f"e{int(i.split('-')[1]):03d}" for b in batches for i in b} | {f"e{i:03d}" for i in range(400)}
    assert got["example_id"].is_unique
    assert set(got["example_id"]) == expected
    assert added == 400 - len({f"e{int(i.split('-')[1]):03d}" for b in batches for i in b})


def test_cli_round_trip(shop, tmp_path, capsys):
    store, _, _ = shop
    db = ["--db", str(store.path), "--project", "p"]
    assert main(["valsets", "create", *db, "--set", "c", "--criterion", "accuracy >= 0.6", "--tag", "x"]) == 0
    assert (
        main(
            [
                "promote",
                *db,
                "--set",
                "c",
                "--version",
                "v1",
                "--where",
                "city = ams",
                "--only-errors",
                "--reason",
                "cli",
            ]
        )
        == 0
    )
    assert main(["valsets", "commit", *db, "--set", "c", "--message", "first"]) == 0
    capsys.readouterr()
    assert main(["valsets", "show", *db, "--set", "c", "--set-version", "1", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["latest_version"] == 1 and shown["history"][0]["n_members"] == shown["members"] > 0
    assert main(["valsets", "evaluate", *db, "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert {r["model_version"] for r in results} == {"v1", "v2"}
    assert main(["valsets", "export", *db, "--set", "c", "--out", str(tmp_path / "c.csv")]) == 0
    capsys.readouterr()
    assert main(["valsets", "diff", *db, "--set", "c", "--old", "1", "--new", "draft", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == []
    assert main(["valsets", "commit", *db, "--set", "c", "--message", "again"]) == 2
    assert "nothing to commit" in capsys.readouterr().err
    assert main(["valsets", "show", *db]) == 2
    assert "needs --set" in capsys.readouterr().err


def test_regression_sets_promote_large_residuals_and_evaluate_like_scikit_learn(tmp_path):
    rng = np.random.default_rng(8)
    n = 300
    label = rng.normal(50, 10, n)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "example": [f"x{i}" for i in range(n)],
            "v": "m1",
            "prediction": label + rng.normal(0, 5, n),
            "label": label,
            "kind": rng.choice(["a", "b"], n),
        }
    )
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
        project = get_project(con, "r")
        create_set(con, project, "big misses", criteria=["mae <= 3"])
        done = promote(con, project, "big misses", Selection(only_errors=True), reason="beyond the MAE")
        commit(con, project, "big misses", "first")
        result = evaluate(con, project)
    residual = (frame.label - frame.prediction).abs()
    big = frame[residual > residual.mean()]
    assert done.added == len(big)
    row = result.iloc[0]
    assert row["mae"] == pytest.approx(skm.mean_absolute_error(big.label, big.prediction), rel=1e-9)
    assert row["rmse"] == pytest.approx(skm.root_mean_squared_error(big.label, big.prediction), rel=1e-9)
    assert row["verdict"] == "fail" and row["failed"] == "mae <= 3"


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_export_keeps_members_without_a_label(shop, tmp_path, suffix):
    """Members whose label has not arrived are exported with an empty label (they are
    most of a fresh set), and the export -> score -> ingest loop still closes."""
    store, project, frame = shop
    unlabeled = frame[(frame.version == "v1") & frame.label.isna()]
    labeled = frame[(frame.version == "v1") & frame.label.notna()].head(5)
    picked = tuple(unlabeled.id.head(4)) + tuple(labeled.id)
    with store.write() as con:
        create_set(con, project, "fresh")
        promote(con, project, "fresh", Selection(prediction_ids=picked), reason="new failures")
        commit(con, project, "fresh", "first")
        done = export_set(con, project, "fresh", str(tmp_path / f"fresh.{suffix}"))
    exported = (pd.read_parquet if suffix == "parquet" else pd.read_csv)(tmp_path / f"fresh.{suffix}")
    exported["example_id"] = exported["example_id"].astype(str)
    assert done.rows == len(exported) == len(picked)
    by_example = exported.set_index("example_id")["label"]
    assert by_example[list(unlabeled.example.head(4))].isna().all()
    want = {e: str(int(v)) for e, v in zip(labeled.example, labeled.label)}
    assert {e: str(int(float(by_example[e]))) for e in want} == want
    scored = exported.assign(prediction="1", score=0.8)
    with store.write() as con:
        ingest_scores(con, project, "fresh", scored, model_version="v9")
        result = evaluate(con, project, ["fresh"])
    row = result[result.model_version == "v9"].iloc[0]
    assert (row["scored"], row["labeled"]) == (len(picked), 5)


def test_a_large_set_commits_in_bounded_memory_with_the_same_hash(tmp_path):
    """The content hash is fed row batch by row batch: a set whose members joined into one
    string would exceed the memory limit commits, and the hash equals SHA-256 of that string."""
    import hashlib

    n = 120_000
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "ts": "2026-01-01 10:00:00",
            "version": "v1",
            "score": rng.random(n),
            "label": rng.integers(0, 2, n),
            "note": ["x" * 200] * n,
        }
    )
    with Store(tmp_path / "big.duckdb").write() as con:
        ingest_predictions(
            con,
            frame,
            project="big",
            mapping=Mapping(
                id="id",
                timestamp="ts",
                version="version",
                task="binary",
                score="score",
                label="label",
                positive_label="1",
                features=["note"],
                kinds={"note": "categorical"},
            ),
        )
        project = get_project(con, "big")
        create_set(con, project, "all")
        promote(con, project, "all", Selection(), reason="everything")
    # The members joined into one string take about 31 MB.
    with Store(tmp_path / "big.duckdb", memory_limit="64MB").write() as con:
        done = commit(con, project, "all", "all rows")
    assert done.n_members == n
    rows = frame.assign(example_id=frame.id).sort_values("example_id")
    text = chr(30).join(
        chr(31).join([e, e, "true" if lab else "false", note, "everything", src])
        for e, lab, note, src in zip(
            rows.example_id, rows.label, rows.note, [json.dumps(Selection().source(), sort_keys=True)] * n
        )
    )
    assert done.content_hash == hashlib.sha256(text.encode()).hexdigest()

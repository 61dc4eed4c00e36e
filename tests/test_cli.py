"""The command line, run for real (subprocesses) and in-process (``analysis.cli.main``):
documented JSON output, exit codes, and metrics checked against scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SMALL_MAPPING, db_digest, small_predictions
from sklearn import metrics as skm

from analysis import Store
from analysis.cli.main import main

TOL = 1e-9
INGEST_KEYS = [
    "project",
    "source",
    "task",
    "rows_read",
    "inserted",
    "skipped_duplicates",
    "replaced",
    "labels_applied_from_pending",
    "pending_conflicts",
    "created_project",
    "ingest_id",
    "seconds",
    "warnings",
    "db",
]
LABEL_KEYS = [
    "project",
    "source",
    "key",
    "rows_read",
    "matched_predictions",
    "applied",
    "unchanged",
    "conflicting",
    "overwritten",
    "pending",
    "outcomes",
    "conflict_examples",
    "ingest_id",
    "seconds",
    "warnings",
    "db",
]
SUMMARY_KEYS = [
    "name",
    "task",
    "positive_label",
    "negative_label",
    "n_rows",
    "n_labeled",
    "pending_labels",
    "versions",
    "stages",
    "first_timestamp",
    "last_timestamp",
    "features",
    "outcomes",
    "last_ingest",
    "metrics",
    "external",
]
BINARY = ["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier"]


@pytest.fixture(autouse=True)
def default_db(tmp_path, monkeypatch):
    """Whatever a test does, the repository's default database is never touched."""
    path = tmp_path / "default.duckdb"
    monkeypatch.setenv("SLICEBOARD_DB", str(path))
    yield path
    assert not path.exists(), "a command ignored --db"


def run(*args):
    """The CLI in a subprocess; returns (exit code, parsed JSON stdout or raw text, stderr)."""
    p = subprocess.run(
        [sys.executable, "-m", "analysis", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    out = json.loads(p.stdout) if "json" in args and p.stdout.strip() else p.stdout
    return p.returncode, out, p.stderr


def cli(capsys, *args):
    """The CLI in-process; returns (exit code, parsed JSON stdout or raw text, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "json" in args and out.strip() else out), err


def write_csv(frame, path):
    frame.to_csv(path, index=False)
    return path


def query(db_path, sql):
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_ingest_then_reingest_rejected_subprocess(tmp_path, db_path):
    csv = write_csv(small_predictions(12), tmp_path / "preds.csv")
    code, out, err = run("ingest", csv, "--project", "shop", "--db", db_path, "--format", "json")
    assert code == 0, err
    assert list(out) == INGEST_KEYS and 0 <= out.pop("seconds") < 60
    assert out == {
        "project": "shop",
        "source": str(csv),
        "task": "binary",
        "rows_read": 12,
        "inserted": 12,
        "skipped_duplicates": 0,
        "replaced": 0,
        "labels_applied_from_pending": 0,
        "pending_conflicts": 0,
        "created_project": True,
        "ingest_id": 1,
        "warnings": ["task not given; inferred 'binary' from the values of 'score'"],
        "db": str(db_path),
    }
    stored = query(db_path, "SELECT prediction_id, score, prediction FROM log_1 ORDER BY age")
    expected = small_predictions(12)
    assert stored == [(r, s, s >= 0.5) for r, s in zip(expected.request_id, expected.score)]
    before = db_digest(db_path)
    code, out, err = run("--db", db_path, "--format", "json", "ingest", csv, "--project", "shop")
    assert code == 2 and list(out) == ["error"] and out["error"]["type"] == "IngestError"
    message = out["error"]["message"]
    assert message.startswith(f"{csv}: 12 of 12 prediction ids are already stored in project 'shop'")
    assert "--on-duplicate skip" in message and "nothing was written" in message
    assert err.startswith("error: ") and message in err
    assert db_digest(db_path) == before


def test_on_duplicate_skip_and_replace(capsys, tmp_path, db_path):
    assert (
        cli(capsys, "ingest", write_csv(small_predictions(6), tmp_path / "a.csv"), "--project", "p", "--db", db_path)[0]
        == 0
    )
    second = small_predictions(7, start=3).assign(score=0.99)  # r3..r9, r3..r5 already stored
    code, out, _ = cli(
        capsys,
        "ingest",
        write_csv(second, tmp_path / "b.csv"),
        "--project",
        "p",
        "--on-duplicate",
        "skip",
        "--db",
        db_path,
        "--format",
        "json",
    )
    assert (code, out["rows_read"], out["inserted"], out["skipped_duplicates"], out["replaced"]) == (0, 7, 4, 3, 0)
    assert (out["created_project"], out["ingest_id"]) == (False, 2)
    third = small_predictions(3).assign(score=0.01)  # r0..r2
    code, out, _ = cli(
        capsys,
        "--format",
        "json",
        "ingest",
        write_csv(third, tmp_path / "c.csv"),
        "--project",
        "p",
        "--on-duplicate",
        "replace",
        "--db",
        db_path,
    )
    assert (code, out["rows_read"], out["skipped_duplicates"], out["replaced"]) == (0, 3, 0, 3)
    scores = dict(query(db_path, "SELECT prediction_id, score FROM log_1"))
    original = dict(zip(small_predictions(6).request_id, small_predictions(6).score))
    assert scores == {
        **{f"r{i}": 0.01 for i in range(3)},
        **{f"r{i}": original[f"r{i}"] for i in (3, 4, 5)},
        **{f"r{i}": 0.99 for i in range(6, 10)},
    }


def test_ingest_with_config_file_version_and_stage(capsys, tmp_path, db_path):
    frame = pd.DataFrame(
        {
            "rid": ["a", "b", "c", "d"],
            "when": ["2026-05-01 10:00:00"] * 4,
            "p": [0.9, 0.65, 0.7, 0.1],
            "y": ["yes", "no", "yes", ""],
            "country": ["NG", "US", "NG", "DE"],
            "age": [30, 40, 50, 60],
            "revenue": [1.5, 2.5, None, 4.0],
        }
    )
    toml = tmp_path / "mapping.toml"
    toml.write_text(
        '[project]\ntask = "binary"\npositive_label = "yes"\nthreshold = 0.7\n\n'
        '[columns]\nid = "rid"\ntimestamp = "when"\nscore = "p"\nlabel = "y"\n'
        'features = ["country"]\noutcomes = ["revenue"]\n',
        encoding="utf-8",
    )
    code, out, err = cli(
        capsys,
        "ingest",
        write_csv(frame, tmp_path / "x.csv"),
        "--project",
        "cfg",
        "--config",
        toml,
        "--version",
        "v9",
        "--stage",
        "canary",
        "--db",
        db_path,
        "--format",
        "json",
    )
    assert code == 0, err
    assert out["warnings"] == [] and out["task"] == "binary" and out["inserted"] == 4
    code, info, _ = cli(capsys, "info", "--project", "cfg", "--db", db_path, "--format", "json")
    assert (info["positive_label"], info["negative_label"]) == ("yes", "no")
    assert info["features"] == {"country": "categorical"} and info["outcomes"] == ["revenue"]
    assert (info["versions"], info["stages"], info["n_labeled"]) == (["v9"], ["canary"], 3)
    got = query(db_path, "SELECT prediction_id, prediction, label, revenue FROM log_1 ORDER BY 1")
    # prediction = p >= 0.7 (the configured threshold), label "yes" is the positive class.
    assert got == [("a", True, True, 1.5), ("b", False, False, 2.5), ("c", True, True, None), ("d", False, None, 4.0)]


def test_bad_config_is_rejected_before_the_database_is_created(capsys, tmp_path, db_path):
    toml, csv = tmp_path / "m.toml", write_csv(small_predictions(3), tmp_path / "a.csv")
    toml.write_text('[columns]\nid = "request_id"\nlabels = "label"\n', encoding="utf-8")
    code, out, _ = cli(capsys, "ingest", csv, "--project", "p", "--config", toml, "--db", db_path, "--format", "json")
    assert code == 2 and out["error"]["type"] == "ConfigError"
    assert out["error"]["message"].startswith(f"{toml}: unknown key(s) in [columns]: labels.")
    code, _, err = cli(capsys, "ingest", csv, "--project", "p", "--config", tmp_path / "nope.toml", "--db", db_path)
    assert code == 2 and "Cannot read mapping file" in err and "nope.toml" in err and not db_path.exists()


def test_labels_json_on_a_hand_made_case(capsys, tmp_path, db_path):
    (tmp_path / "m.toml").write_text(SMALL_MAPPING, encoding="utf-8")
    preds = small_predictions(4)  # r0..r3, no label column: labels come later
    db = ["--db", db_path, "--format", "json"]
    assert (
        cli(
            capsys,
            "ingest",
            write_csv(preds, tmp_path / "p.csv"),
            "--project",
            "p",
            "--config",
            tmp_path / "m.toml",
            *db,
        )[0]
        == 0
    )
    first = pd.DataFrame(
        {"request_id": ["r0", "r1", "r9"], "label": ["true", "false", "true"], "revenue": [10.0, None, 5.0]}
    )
    code, out, _ = cli(capsys, "labels", write_csv(first, tmp_path / "l1.csv"), "--project", "p", *db)
    assert code == 0 and list(out) == LABEL_KEYS
    assert {k: out[k] for k in LABEL_KEYS[2:12]} == {
        "key": "prediction",
        "rows_read": 3,
        "matched_predictions": 2,
        "applied": 2,
        "unchanged": 0,
        "conflicting": 0,
        "overwritten": 0,
        "pending": 1,
        "outcomes": ["revenue"],
        "conflict_examples": [],
    }
    assert cli(capsys, "info", "--project", "p", *db)[1]["pending_labels"] == 1
    second = pd.DataFrame({"request_id": ["r0", "r1", "r2"], "label": ["false", "false", "true"]})
    l2 = write_csv(second, tmp_path / "l2.csv")
    code, out, _ = cli(capsys, "labels", l2, "--project", "p", *db)
    assert (
        out["matched_predictions"],
        out["applied"],
        out["unchanged"],
        out["conflicting"],
        out["overwritten"],
        out["pending"],
    ) == (3, 1, 1, 1, 0, 0)
    assert out["conflict_examples"] == [{"prediction_id": "r0", "stored_label": True, "new_label": False}]
    assert any("--overwrite" in w for w in out["warnings"])
    code, out, _ = cli(capsys, "labels", l2, "--project", "p", "--overwrite", *db)
    assert (out["applied"], out["unchanged"], out["conflicting"], out["overwritten"]) == (1, 2, 1, 1)
    late = small_predictions(1, start=9)  # r9 arrives: its waiting label and revenue apply
    code, out, _ = cli(capsys, "ingest", write_csv(late, tmp_path / "p9.csv"), "--project", "p", *db)
    assert (out["labels_applied_from_pending"], out["pending_conflicts"]) == (1, 0)
    got = query(db_path, "SELECT prediction_id, label, revenue FROM log_1 ORDER BY 1")
    assert got == [("r0", False, 10.0), ("r1", False, None), ("r2", True, None), ("r3", None, None), ("r9", True, 5.0)]
    assert cli(capsys, "info", "--project", "p", *db)[1]["pending_labels"] == 0


def test_info(capsys, tmp_path, db_path):
    code, _, err = cli(capsys, "info", "--db", db_path)
    assert code == 2 and f"There is no Sliceboard database at {db_path}" in err
    Store(db_path).initialize()
    assert cli(capsys, "info", "--db", db_path, "--format", "json")[1] == {"db": str(db_path), "projects": []}
    code, text, _ = cli(capsys, "info", "--db", db_path)
    assert code == 0 and "no projects yet" in text and str(db_path) in text
    cli(capsys, "ingest", write_csv(small_predictions(12), tmp_path / "a.csv"), "--project", "shop", "--db", db_path)
    code, out, _ = cli(capsys, "--format", "json", "info", "--db", db_path)
    assert code == 0 and out["db"] == str(db_path) and [p["name"] for p in out["projects"]] == ["shop"]
    code, summary, _ = cli(capsys, "info", "--project", "shop", "--db", db_path, "--format", "json")
    assert summary == out["projects"][0] and list(summary) == SUMMARY_KEYS
    last_ingest = datetime.fromisoformat(summary.pop("last_ingest"))  # UTC, naive
    assert abs(last_ingest - datetime.now(timezone.utc).replace(tzinfo=None)) < timedelta(minutes=5)
    assert summary == {
        "name": "shop",
        "task": "binary",
        "positive_label": None,
        "negative_label": None,
        "n_rows": 12,
        "n_labeled": 0,
        "pending_labels": 0,
        "versions": ["m1", "m2"],
        "stages": ["production"],
        "first_timestamp": "2026-01-01T00:00:00",
        "last_timestamp": "2026-01-01T11:00:00",
        "features": {"country": "categorical", "age": "numeric", "vip": "boolean"},
        "outcomes": [],
        "metrics": BINARY,
        "external": None,
    }
    code, text, _ = cli(capsys, "info", "--db", db_path)
    assert code == 0 and ["shop", "binary", "12", "0", "0", "[m1,", "m2]"] in [ln.split() for ln in text.splitlines()]
    code, text, _ = cli(capsys, "info", "--project", "shop", "--db", db_path)
    assert code == 0 and "country (categorical), age (numeric), vip (boolean)" in text


@pytest.fixture(scope="module")
def metrics_db(tmp_path_factory):
    """300 labeled-or-not binary predictions over 3 version/stage pairs and 6 days."""
    folder = tmp_path_factory.mktemp("metrics")
    rng = np.random.default_rng(11)
    n = 300
    version = rng.choice(["m1", "m2"], n)
    score = np.round(np.clip(rng.beta(2, 2, n), 0.001, 0.999), 2)  # 2 decimals: many ties
    truth = rng.random(n) < score
    frame = pd.DataFrame(
        {
            "request_id": [f"q{i}" for i in range(n)],
            "model": version,
            "score": score,
            "ts": pd.Timestamp("2026-03-01") + pd.to_timedelta(np.arange(n) * 29, unit="min"),
            "stage": np.where(version == "m1", "production", rng.choice(["canary", "shadow"], n)),
            "label": np.where(rng.random(n) < 0.2, None, np.where(truth, "true", "false")),
            "revenue": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.uniform(0, 100, n), 2)),
        }
    )
    db = folder / "m.duckdb"
    (folder / "m.toml").write_text(SMALL_MAPPING.replace('version = "model"', 'version = "model"\nstage = "stage"'))
    assert (
        main(
            [
                "ingest",
                str(write_csv(frame, folder / "m.csv")),
                "--project",
                "m",
                "--config",
                str(folder / "m.toml"),
                "--db",
                str(db),
            ]
        )
        == 0
    )
    return db, frame.rename(columns={"model": "model_version"}).assign(day=frame.ts.dt.normalize())


def expected_rows(frame, keys):
    """Every metric of a binary task per group, computed by scikit-learn and pandas."""
    out = {}
    for key, g in frame.groupby(keys):
        lab, rev = g[g.label.notna()], g.revenue.dropna()
        y, s = (lab.label == "true").to_numpy(), lab.score.to_numpy()
        p = s >= 0.5  # no prediction column: prediction = score >= threshold (0.5)
        tn, fp, fn, tp = skm.confusion_matrix(y, p, labels=[False, True]).ravel()
        out[key] = dict(
            n_rows=len(g),
            n_labeled=len(lab),
            n_scored=len(lab),
            labeled_share=len(lab) / len(g),
            tp=tp,
            fp=fp,
            fn=fn,
            tn=tn,
            accuracy=skm.accuracy_score(y, p),
            precision=skm.precision_score(y, p, zero_division=np.nan),
            recall=skm.recall_score(y, p, zero_division=np.nan),
            f1=skm.f1_score(y, p, zero_division=np.nan),
            roc_auc=skm.roc_auc_score(y, s) if 0 < y.sum() < len(y) else None,
            pr_auc=skm.average_precision_score(y, s) if y.any() else None,
            log_loss=skm.log_loss(y, s, labels=[False, True]),
            brier=skm.brier_score_loss(y, s),
            revenue_sum=rev.sum(),
            revenue_count=len(rev),
            revenue_mean=rev.mean(),
        )
    return out


def assert_matches(rows, frame, keys):
    expected = expected_rows(frame, keys)
    got = {tuple(r[k] if k != "day" else pd.Timestamp(r[k]) for k in keys): r for r in rows}
    assert set(got) == set(expected) and len(rows) == len(expected)
    for key, exp in expected.items():
        for name, value in exp.items():
            actual = got[key][name]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                assert actual is None, (key, name, actual)
            else:
                assert actual == pytest.approx(float(value), rel=TOL, abs=TOL), (key, name, actual, value)


@pytest.mark.parametrize(
    "args, keep",
    [
        ([], lambda f: f.score >= 0),
        (["--version", "m2"], lambda f: f.model_version == "m2"),
        (
            ["--version", "m1", "--version", "m2", "--stage", "canary", "--stage", "production"],
            lambda f: f.stage.isin(["canary", "production"]),
        ),
        (["--start", "2026-03-02", "--end", "2026-03-03"], lambda f: (f.ts >= "2026-03-02") & (f.ts < "2026-03-04")),
        (
            ["--start", "2026-03-02T06:30:00", "--end", "2026-03-04T12:00:00"],  # not whole days: read from the log
            lambda f: (f.ts >= "2026-03-02 06:30:00") & (f.ts < "2026-03-04 12:00:00"),
        ),
        (["--daily", "--stage", "shadow"], lambda f: f.stage == "shadow"),
        (["--daily", "--start", "2026-03-03", "--end", "2026-03-03"], lambda f: f.day == "2026-03-03"),
    ],
)
def test_metrics_json_against_sklearn(capsys, metrics_db, args, keep):
    db, frame = metrics_db
    code, out, _ = cli(capsys, "metrics", "--project", "m", *args, "--db", db, "--format", "json")
    assert (code, out["project"], out["task"], out["metrics"]) == (0, "m", "binary", BINARY)
    given = lambda option: [value for name, value in zip(args, args[1:]) if name == option]  # noqa: E731
    assert out["scope"] == {
        "versions": given("--version"),
        "stages": given("--stage"),
        "start": (given("--start") or [None])[0],
        "end": (given("--end") or [None])[0],
    }
    sub = frame[keep(frame)]
    assert len(sub) > 0
    assert_matches(out["rows"], sub, (["day"] if "--daily" in args else []) + ["model_version", "stage"])


def test_metrics_table_format_and_subprocess(metrics_db):
    db, frame = metrics_db
    code, text, err = run("--db", db, "metrics", "--project", "m", "--daily")
    assert code == 0, err
    lines = text.strip().splitlines()
    assert lines[0].split() == ["day", "model_version", "stage", "n_rows", "n_labeled", "labeled_share", *BINARY]
    assert len(lines) == 1 + frame.groupby(["day", "model_version", "stage"]).ngroups
    code, text, err = run("metrics", "--project", "m", "--version", "none", "--db", db)
    assert code == 0 and text.strip() == "no rows"
    code, _, err = run("metrics", "--db", db)  # bad usage: --project is required
    assert code == 2 and "the following arguments are required: --project" in err


def test_errors_exit_2_with_readable_messages(capsys, metrics_db, tmp_path):
    db, _ = metrics_db
    before = db_digest(db)
    missing = tmp_path / "no such file.csv"
    for argv, error_type, text in [
        (["metrics", "--project", "nope"], "ProjectNotFoundError", "No project named 'nope'. Projects: m."),
        (["info", "--project", "nope"], "ProjectNotFoundError", "No project named 'nope'. Projects: m."),
        (
            ["metrics", "--project", "m", "--stage", "prod"],
            "ConfigError",
            "Unknown stage(s) prod; stages are offline, shadow, canary, production.",
        ),
        (["metrics", "--project", "m", "--start", "March"], "ConfigError", "'March' is not a date (use YYYY-MM-DD)."),
        (["ingest", missing, "--project", "m"], "IngestError", f"{missing}: file not found"),
        (["labels", missing, "--project", "m"], "IngestError", f"{missing}: file not found"),
    ]:
        code, out, err = cli(capsys, *argv, "--db", db, "--format", "json")
        assert (code, out["error"]["type"], out["error"]["message"]) == (2, error_type, text)
        assert err == f"error: {text}\n"
    for argv in (["metrics", "--db", str(db)], ["ingest", str(missing), "--db", str(db)], ["labels", "--project", "m"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "the following arguments are required: --project" in capsys.readouterr().err
    assert db_digest(db) == before


def test_rejected_command_does_not_create_the_database(capsys, tmp_path, db_path):
    code, _, err = cli(capsys, "ingest", tmp_path / "missing.csv", "--project", "p", "--db", db_path)
    assert code == 2 and "file not found" in err
    assert not db_path.exists()

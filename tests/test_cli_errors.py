"""Errors reach people as one readable line and exit code 2, never a traceback:
bad option values, expressions nested too deeply or failing on the data, slice JSON
of the wrong shape, database files that are not databases; and a product metric
that fails on the data is reported as failing while the rest of the comparison
and the gate still work."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, db_digest

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.compare.comparison import Side, compare
from analysis.compare.gate import run_gate
from analysis.metrics.product import ProductMetric, define_metric, list_metrics

MAPPING = Mapping(
    id="id",
    version="v",
    task="binary",
    prediction="prediction",
    label="label",
    score="score",
    positive_label="1",
    features=["region", "code"],
    outcomes=["revenue"],
)


def frame(n: int, *, start: int = 0, code=None) -> pd.DataFrame:
    rng = np.random.default_rng(start + 3)
    i = np.arange(start, start + n)
    label = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "id": [f"p{k}" for k in i],
            "v": np.where(i % 2 == 0, "v1", "v2"),
            "score": rng.random(n).round(3),
            "prediction": rng.integers(0, 2, n),
            "label": label,
            "revenue": rng.integers(0, 100, n).astype(float),
            "region": np.array(["north", "south", "east"])[i % 3],
            "code": code if code is not None else (i % 7).astype(str),
        }
    )


@pytest.fixture
def db(tmp_path):
    store = Store(tmp_path / "e.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame(400), project="p", mapping=MAPPING)
    return tmp_path / "e.duckdb"


def run(*args, env=None):
    p = subprocess.run(
        [sys.executable, "-m", "analysis", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    return p.returncode, p.stdout, p.stderr


def one_line(err: str) -> str:
    """stderr is exactly one line, no traceback; the line."""
    assert "Traceback" not in err, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["discover", "--min-support", "abc"], "--min-support"),
        (["discover", "--min-support", "-3"], "--min-support"),
        (["discover", "--error", "(" * 300 + "1" + ")" * 300], "nest"),
        (["discover", "--error", "abs(" * 300 + "score" + ")" * 300], "nest"),
        (["discover", "--error", "NOT " * 400 + "label"], "nest"),
        (["discover", "--error", "CASE WHEN region::INT > 3 THEN 1 ELSE 0 END"], "north"),
        (["slice", "--slice-json", "[" * 20000 + "]" * 20000], "slice"),
        (["slice", "--slice-json", '{"conditions": ' + '{"a": ' * 5000 + "1" + "}" * 5001], "slice"),
        (["slice", "--slice-json", '{"conditions": [{"column": "region", "op": "in", "values": "north"}]}'], "values"),
        (["product-metrics", "define", "--name", "m", "--expression", "sum(region::INT)"], "region"),
        (["product-metrics", "define", "--name", "m", "--expression", "sum(1 % 0)"], "zero"),
        (["metrics", "--wait", "soon"], "--wait"),
    ],
)
def test_cli_errors_exit_2_with_one_line(db, argv, needle):
    before = db_digest(db)
    code, _, err = run(*argv, "--project", "p", "--db", db)
    line = one_line(err)
    assert code == 2 and line.startswith("error") and needle in line, err
    assert db_digest(db) == before


def test_database_files_that_are_not_databases(tmp_path, db):
    folder = tmp_path / "folder"
    folder.mkdir()
    truncated = tmp_path / "truncated.duckdb"
    truncated.write_bytes(db.read_bytes()[:5000])
    text = tmp_path / "text.duckdb"
    text.write_text("hello, I am not a database\n")
    noise = tmp_path / "noise.duckdb"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 300_000, dtype=np.uint8).tobytes())
    under_file = text / "x.duckdb"
    for path, argv in [
        (folder, ["info"]),
        (folder, ["ingest", "x.csv", "--project", "p"]),
        (truncated, ["info"]),
        (text, ["info"]),
        (noise, ["metrics", "--project", "p"]),
        (text, ["product-metrics", "list", "--project", "p"]),
        (under_file, ["demo"]),
    ]:
        before = path.read_bytes() if path.is_file() else None
        code, _, err = run(*argv, "--db", path)
        line = one_line(err)
        assert code == 2 and str(path) in line, (path, err)
        assert (path.read_bytes() if path.is_file() else None) == before


def test_the_last_resort_handler_gives_one_line_and_exit_2(capsys, monkeypatch):
    from analysis.cli.errors import guarded

    def broken(args):
        raise RuntimeError("something nobody planned for\nsecond line")

    class Args:
        format = "table"

    monkeypatch.delenv("SLICEBOARD_DEBUG", raising=False)
    assert guarded(broken, Args()) == 2
    err = capsys.readouterr().err
    assert one_line(err) == (
        "error: unexpected RuntimeError: something nobody planned for (set SLICEBOARD_DEBUG=1 for the details)"
    )
    monkeypatch.setenv("SLICEBOARD_DEBUG", "1")
    assert guarded(broken, Args()) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "second line" in err  # the detail, on request


@pytest.fixture
def broken_metric(db):
    """A metric that held when it was defined and fails on rows that arrived later."""
    store = Store(db)
    with store.write() as con:
        project = get_project(con, "p")
        define_metric(con, project, ProductMetric("revenue", "sum(revenue)", "higher", "$"))
        define_metric(con, project, ProductMetric("coded", "sum(code::INT)", "higher"))
        ingest_predictions(con, frame(60, start=400, code="NG"), project="p")
    return store


def test_a_stored_metric_failing_on_the_data(broken_metric):
    store = broken_metric
    with store.read() as con:
        project = get_project(con, "p")
        assert [m.name for m in list_metrics(con, project)] == ["revenue", "coded"]
        comp = compare(con, project, Side("v1"), Side("v2"), discovered=0)
        verdict = run_gate(con, project, Side("v1"), Side("v2"))
        rows = con.execute(f'SELECT model_version, sum(revenue) FROM "{project.log_table}" GROUP BY 1').fetchall()
    revenue = dict(rows)
    overall = comp.overall.set_index("metric")
    # Unpaired, a total is compared per prediction; the totals are kept beside it.
    assert overall.loc["revenue", "baseline_total"] == pytest.approx(revenue["v1"])
    assert overall.loc["revenue", "candidate_total"] == pytest.approx(revenue["v2"])
    assert "accuracy" in overall.index and overall.loc["accuracy", "error"] is None
    assert "Could not convert string 'NG'" in overall.loc["coded", "error"]
    assert np.isnan(overall.loc["coded", "delta"])
    assert not comp.slices.empty
    coded = [r for r in verdict.results if "coded" in r.criterion]
    assert len(coded) == 1 and not coded[0].passed and "could not be computed" in coded[0].detail
    assert "NG" in coded[0].detail and not verdict.passed


def test_cli_compare_and_gate_with_a_failing_metric(broken_metric):
    db = ["--db", broken_metric.path, "--project", "p", "--baseline", "v1", "--candidate", "v2"]
    code, out, err = run("compare", *db, "--discovered", "0", "--format", "json")
    assert code == 0, err
    overall = {r["metric"]: r for r in json.loads(out)["overall"]}
    assert "NG" in overall["coded"]["error"] and overall["revenue"]["error"] is None
    assert "warning: product metric coded could not be computed" in err
    code, out, err = run("gate", *db, "--format", "json")
    assert code == 1 and "Traceback" not in err  # a verdict: the gate failed, naming the metric
    failed = [r for r in json.loads(out)["results"] if not r["passed"]]
    assert any("coded" in r["criterion"] and "could not be computed" in r["detail"] for r in failed)
    code, out, err = run("gate", *db)
    assert code == 1 and "[FAIL] product metric coded" in out


def test_defining_a_metric_checks_the_real_rows(db):
    store = Store(db)
    before = db_digest(db)
    with store.write(create=False) as con:
        project = get_project(con, "p")
        for expression, message in [
            ("sum(region::INT)", "Could not convert string 'north'"),
            ("sum(1 % 0)", "Division by zero"),
            ("count(*) // (count(*) - count(*))", "Division by zero"),
        ]:
            with pytest.raises(ConfigError, match=message):
                define_metric(con, project, ProductMetric("m", expression))
        assert list_metrics(con, project) == []
    assert db_digest(db) == before


def test_the_compare_page_names_a_failing_metric(monkeypatch, broken_metric):
    from test_app import app_on

    at = app_on(monkeypatch, broken_metric.path)
    at.query_params["project"] = "p"
    at.query_params["baseline"] = "v1"
    at.query_params["candidate"] = "v2"
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Product metric coded could not be computed") and "'NG'" in w for w in warnings)
    overall = next(d.value for d in at.dataframe if "candidate is" in d.value)
    assert {"Accuracy", "Revenue per prediction", "Coded"} <= set(overall["metric"])
    shown = (at.info or at.warning)[0].value  # the gate's verdict: PASS blue, FAIL orange
    assert "product metric coded" in shown and "could not be computed" in shown


@pytest.mark.parametrize("text, value", [("0", 0), ("50", 50), ("1e3", 1000), ("0.01", 0.01), ("5e-1", 0.5)])
def test_min_support_is_a_count_or_a_fraction(text, value):
    from analysis.cli.errors import support

    got = support(text)
    assert got == value and type(got) is type(value)


def test_a_report_block_names_a_failing_metric(broken_metric):
    from analysis.reports.blocks import compute, lines, pin

    with broken_metric.read() as con:
        project = get_project(con, "p")
        for kind in ("comparison", "gate", "series"):
            params = pin(
                con, project, kind, {"baseline": {"version": "v1"}, "candidate": {"version": "v2"}, "discovered": 0}
            )
            snapshot = compute(con, project, kind, params)
            if kind == "comparison":
                said = lines(kind, snapshot)
                assert any(line.startswith("Coded: could not be computed (") and "'NG'" in line for line in said)
                assert any(line.startswith("Revenue per prediction: ") for line in said)
            if kind == "gate":
                assert "could not be computed" in json.dumps(snapshot)

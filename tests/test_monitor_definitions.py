"""Monitors stored with a project (analysis/monitors/definitions.py) through the command
line's contract: ``monitor add`` (one, or ``--auto``), ``monitor list``, ``monitor budget``;
defaults filled in as the metric says, and bad input named with the database left as it was."""

from __future__ import annotations

import json

import pytest
from conftest import db_digest

from analysis import Store, get_project
from analysis.cli.main import main
from analysis.monitors.definitions import get_budget, list_monitors
from analysis.slices import parse_slice
from analysis.slices.saved import save_slice

FIELDS = {"name", "slice", "metric", "kind", "direction", "tolerance", "version", "stage"}


def run(db, capsys, *args) -> tuple[int, str, str]:
    code = main(["--db", str(db), "monitor", *args, "--project", "lending-demo"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_monitors_are_added_with_their_defaults_and_listed(demo_copy, capsys):
    assert run(demo_copy, capsys, "add", "--name", "east", "--metric", "accuracy", "--where", "region = east")[0] == 0
    assert run(demo_copy, capsys, "add", "--name", "loss", "--metric", "log_loss", "--kind", "realized")[0] == 0
    args = ("--name", "income drift", "--metric", "income", "--kind", "drift", "--version", "credit-v1")
    assert run(demo_copy, capsys, "add", *args, "--stage", "production", "--tolerance", "0.1")[0] == 0
    args = (
        "--name",
        "labels of the east",
        "--metric",
        "labeled_share",
        "--kind",
        "coverage",
        "--where",
        "region = east",
    )
    assert run(demo_copy, capsys, "add", *args)[0] == 0
    code, out, _ = run(demo_copy, capsys, "list", "--format", "json")
    listed = {m["name"]: m for m in json.loads(out)}
    assert code == 0 and all(set(m) == FIELDS for m in listed.values())
    assert listed["east"] == {
        "name": "east",
        "slice": "region = east",
        "metric": "accuracy",
        "kind": "combined",  # the default kind
        "direction": "lower",  # the metric's bad direction
        "tolerance": 0.0,
        "version": None,  # whatever serves production
        "stage": None,
    }
    assert listed["loss"]["direction"] == "higher" and listed["loss"]["slice"] == "all rows"
    assert (listed["income drift"]["direction"], listed["income drift"]["tolerance"]) == ("higher", 0.1)
    assert listed["labels of the east"]["direction"] == "lower"


def test_auto_monitors_every_saved_slice_and_every_value_once(demo_copy, capsys):
    with Store(demo_copy).write() as con:
        save_slice(con, get_project(con, "lending-demo"), "young", parse_slice("age < 25"))
        demo_monitors = len(list_monitors(con, get_project(con, "lending-demo")))  # the demo comes with some
    code, out, _ = run(demo_copy, capsys, "add", "--auto", "--feature", "region", "--format", "json")
    added = json.loads(out)
    with Store(demo_copy).read() as con:
        project = get_project(con, "lending-demo")
        regions = [r for (r,) in con.execute(f"SELECT DISTINCT region FROM {project.log_table} ORDER BY 1").fetchall()]
    assert code == 0
    assert [m["slice"] for m in added] == ["age < 25", *[f"region = {r}" for r in regions]]
    assert {m["metric"] for m in added} == {"roc_auc"} and {m["kind"] for m in added} == {"combined"}
    # Again: nothing new, nothing duplicated.
    code, out, _ = run(demo_copy, capsys, "add", "--auto", "--feature", "region", "--format", "json")
    assert code == 0 and json.loads(out) == []
    with Store(demo_copy).read() as con:
        assert len(list_monitors(con, get_project(con, "lending-demo"))) == demo_monitors + len(added)


def test_auto_monitors_take_the_metric_and_kind_asked(demo_copy, capsys):
    """A project without scores, or a person who wants the labels only, asks `--auto --kind realized`."""
    code, out, _ = run(
        demo_copy, capsys, "add", "--auto", "--feature", "channel", "--metric", "accuracy", "--kind", "realized",
        "--tolerance", "0.02", "--format", "json",
    )  # fmt: skip
    added = json.loads(out)
    with Store(demo_copy).read() as con:
        project = get_project(con, "lending-demo")
        query = f"SELECT DISTINCT channel FROM {project.log_table} ORDER BY 1"
        channels = [c for (c,) in con.execute(query).fetchall()]
    assert code == 0
    assert [m["name"] for m in added] == [f"accuracy (realized) on channel = {c}" for c in channels]
    assert {(m["metric"], m["kind"], m["tolerance"]) for m in added} == {("accuracy", "realized", 0.02)}
    # One monitor's options are refused, and a kind that cannot watch the metric is named.
    code, _, err = run(demo_copy, capsys, "add", "--auto", "--name", "mine")
    assert code == 2 and "--name, --where and --slice-json are for one monitor" in err
    with Store(demo_copy).write() as con:
        save_slice(con, get_project(con, "lending-demo"), "young", parse_slice("age < 25"))
    code, _, err = run(demo_copy, capsys, "add", "--auto", "--kind", "realized")  # the headline, ROC AUC
    assert code == 2 and "roc_auc" in err
    with Store(demo_copy).read() as con:
        names = {m.name for m in list_monitors(con, get_project(con, "lending-demo"))}
    assert "roc_auc (realized) on young" not in names


def test_the_budget_is_stored_and_sets_the_alert_level(demo_copy, capsys):
    run(demo_copy, capsys, "add", "--auto", "--feature", "region")
    code, out, _ = run(demo_copy, capsys, "budget", "--format", "json")
    default = json.loads(out)
    assert code == 0 and default["false_alerts_per_month"] == 1.0
    code, out, _ = run(demo_copy, capsys, "budget", "2", "--format", "json")
    stored = json.loads(out)
    assert stored["false_alerts_per_month"] == 2.0
    assert stored["alert_level"] == pytest.approx(stored["monitors"] * 30 / 2)
    with Store(demo_copy).read() as con:
        assert get_budget(con, get_project(con, "lending-demo")).false_alerts_per_month == 2.0


def test_the_budget_may_follow_the_options_as_the_contract_writes_it(demo_copy, capsys):
    """`monitor budget --project P N`: the amount after the options, as in the issue's contract."""
    code = main(["--db", str(demo_copy), "monitor", "budget", "--project", "lending-demo", "4", "--format", "json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["false_alerts_per_month"] == 4.0
    with Store(demo_copy).read() as con:
        assert get_budget(con, get_project(con, "lending-demo")).false_alerts_per_month == 4.0


BAD_INPUT = [
    (("add", "--name", "x", "--metric", "nope"), "watches one of accuracy"),
    (("add", "--name", "x", "--metric", "accuracy", "--kind", "vibes"), "kind is one of realized"),
    (("add", "--name", "x", "--metric", "accuracy", "--direction", "sideways"), "lower or higher"),
    (("add", "--name", "x", "--metric", "accuracy", "--tolerance", "-0.1"), "tolerance is a change of 0"),
    (("add", "--name", "x", "--metric", "accuracy", "--version", "credit-v9"), "has no version 'credit-v9'"),
    (("add", "--name", "x", "--metric", "accuracy", "--stage", "canary"), "A stage is given with a version"),
    (("add", "--name", "x", "--metric", "accuracy", "--version", "credit-v1", "--stage", "x"), "has no x"),
    (("add", "--name", "x", "--metric", "accuracy", "--where", "regio = east"), "regio"),
    (("add", "--name", "x", "--metric", "salary", "--kind", "drift"), "watches one of"),
    (("add", "--name", "   ", "--metric", "accuracy"), "needs a name"),
    (("add", "--metric", "accuracy"), "needs --name and --metric"),
    (("add", "--auto", "--feature", "income"), "numeric feature"),
    (("add", "--auto", "--feature", "nope"), "has no feature 'nope'"),
    (("budget", "0"), "above 0"),
]


def test_bad_input_is_named_and_nothing_is_written(demo_copy, capsys):
    run(demo_copy, capsys, "add", "--name", "kept", "--metric", "accuracy")
    before = db_digest(demo_copy)
    for args, words in BAD_INPUT:
        code, _, err = run(demo_copy, capsys, *args)
        assert code == 2 and words in err and "Traceback" not in err, (args, err)
    assert db_digest(demo_copy) == before


def test_a_name_is_taken_once(demo_copy, capsys):
    assert run(demo_copy, capsys, "add", "--name", "east", "--metric", "accuracy")[0] == 0
    before = db_digest(demo_copy)
    code, _, err = run(demo_copy, capsys, "add", "--name", "east", "--metric", "roc_auc")
    assert code == 2 and "has a monitor named 'east' already" in err
    assert db_digest(demo_copy) == before

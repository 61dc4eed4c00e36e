"""Saved slices: revisions, history, deletion, tracking over time and versions,
the CLI, and the schema migration that adds them."""

from __future__ import annotations

import json
import re

import duckdb
import pandas as pd
import pytest
from conftest import db_digest, labeled_out_of_step, repeat_flags_wrong
from test_slices import MAPPING, shop_frame

from analysis import ConfigError, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.slices import parse_slice, validate_slice
from analysis.slices.saved import (
    delete_slice,
    get_slice,
    list_slices,
    save_slice,
    slice_by_version,
    slice_history,
    slice_over_time,
)
from analysis.store.example_key import example_key
from analysis.store.migrations import SCHEMA_VERSION


@pytest.fixture
def shop(tmp_path):
    frame = shop_frame(300, seed=21)
    store = Store(tmp_path / "saved.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame, project="shop", mapping=MAPPING)
    with store.read() as con:
        project = get_project(con, "shop")
    frame["prediction"] = frame["score"] >= 0.5
    return store, project, frame


def test_revisions_history_and_delete(shop):
    store, project, _ = shop
    with store.write() as con:
        first = save_slice(con, project, "nigeria", parse_slice("country = NG"), "weak market")
        second = save_slice(con, project, "nigeria", parse_slice("country = NG AND age < 30"))
        save_slice(con, project, "vip", parse_slice("vip is true"), "")
    assert (first.revision, second.revision) == (1, 2)
    with store.read() as con:
        assert list(list_slices(con, project).name) == ["nigeria", "vip"]
        latest = get_slice(con, project, "nigeria")
        assert latest.slice == validate_slice(parse_slice("country = NG AND age < 30"), project)
        assert latest.description == "weak market"
        assert get_slice(con, project, "nigeria", revision=1).slice == parse_slice("country = NG")
        assert list(slice_history(con, project, "nigeria")["where"]) == ["country = NG", "country = NG AND age < 30"]
    with store.write() as con:
        delete_slice(con, project, "nigeria")
    with store.read() as con:
        assert list(list_slices(con, project).name) == ["vip"]
        assert list(slice_history(con, project, "nigeria")["deleted"]) == [False, False, True]
        with pytest.raises(ConfigError, match="No saved slice named 'nigeria'.*Saved slices: vip"):
            get_slice(con, project, "nigeria")


def test_bad_saves_change_nothing(shop):
    store, project, _ = shop
    before = db_digest(store.path)
    with store.write() as con:
        with pytest.raises(ConfigError, match="Give the slice a name"):
            save_slice(con, project, "  ", parse_slice("country = NG"))
        with pytest.raises(ConfigError, match="Unknown column 'nope'"):
            save_slice(con, project, "x", parse_slice("nope = 1"))
        with pytest.raises(ConfigError, match="No saved slice named 'ghost'"):
            delete_slice(con, project, "ghost")
    assert db_digest(store.path) == before


def test_tracking_over_time_and_versions_matches_pandas(shop):
    store, project, frame = shop
    s = parse_slice("country in (NG, US)")
    with store.read() as con:
        daily = slice_over_time(con, project, s)
        versions = slice_by_version(con, project, s)
    frame["part"] = frame.country.isin(["NG", "US"]).map({True: "slice", False: "rest"})
    frame["day"] = frame.ts.dt.normalize()
    expected = frame.groupby(["day", "part"]).apply(
        lambda g: pd.Series({"n": len(g), "acc": (g.label.astype(bool) == g.prediction).mean()}), include_groups=False
    )
    for row in daily.itertuples():
        assert row.n_rows == expected.loc[(row.day, row.part), "n"]
        assert row.accuracy == pytest.approx(expected.loc[(row.day, row.part), "acc"], abs=1e-9)
    by_version = frame.groupby(["v", "part"]).size()
    assert {(r.model_version, r.part): r.n_rows for r in versions.itertuples()} == by_version.to_dict()


def test_cli_slices(shop, capsys):
    store, project, _ = shop
    db = str(store.path)
    assert (
        main(
            [
                "slices",
                "save",
                "--project",
                "shop",
                "--db",
                db,
                "--name",
                "ng",
                "--where",
                "country = NG",
                "--description",
                "d",
                "--format",
                "json",
            ]
        )
        == 0
    )
    saved = json.loads(capsys.readouterr().out)
    assert saved["revision"] == 1 and saved["where"] == "country = NG"
    assert main(["slices", "list", "--project", "shop", "--db", db, "--format", "json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)["slices"]] == ["ng"]
    assert main(["slices", "show", "--project", "shop", "--db", db, "--name", "ng", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["history"][0]["where"] == "country = NG"
    assert main(["slices", "delete", "--project", "shop", "--db", db, "--name", "ng"]) == 0
    capsys.readouterr()
    assert main(["slices", "show", "--project", "shop", "--db", db, "--name", "ng"]) == 2
    assert main(["slices", "save", "--project", "shop", "--db", db]) == 2
    assert "needs --name" in capsys.readouterr().err


def test_a_version_1_database_is_migrated(shop):
    store, _, _ = shop
    con = duckdb.connect(str(store.path))
    # What a version-1 database lacks: saved slices (2), validation sets (3), product
    # metrics and gates (4), reports (5), external datasets (6).
    for table in (
        "sb_saved_slices",
        "sb_valsets",
        "sb_valset_versions",
        "members_1",
        "sb_product_metrics",
        "sb_gates",
        "sb_reports",
        "sb_report_blocks",
        "sb_external",
        "sb_engine",
    ):
        con.execute(f"DROP TABLE {table}")
    con.execute("ALTER TABLE log_1 DROP COLUMN example_key")  # (7)
    con.execute(
        "UPDATE log_1 SET label = score > 0.5 WHERE prediction_id IN "
        "(SELECT prediction_id FROM log_1 ORDER BY prediction_id LIMIT 40)"
    )
    con.execute("DROP TABLE labeled_1")  # (8)
    con.execute("DROP TABLE sb_key_repeats")  # (9)
    con.execute("DROP TABLE sb_reference_windows")  # (11)
    con.execute("DROP TABLE sb_monitors")  # (12)
    con.execute("DROP TABLE sb_monitor_settings")
    for table in (
        "sb_monitor_state",
        "sb_monitor_observations",
        "sb_alerts",
        "sb_alert_events",
        "sb_webhooks",
        "sb_deliveries",
    ):
        con.execute(f"DROP TABLE {table}")  # (13)
    con.execute("UPDATE sb_meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    fresh = Store(store.path)
    with fresh.write() as con:
        project = get_project(con, "shop")
        save_slice(con, project, "after migration", parse_slice("vip is true"))
        # Every existing project gets its validation-set members table, with its features.
        columns = [r[0] for r in con.execute("DESCRIBE members_1").fetchall()]
        assert [f.name for f in project.features] == columns[5 : 5 + len(project.features)]
        # Every stored row gets its example key, as Python's MD5 gives it.
        keys = con.execute("SELECT example_id, example_key FROM log_1").fetchall()
        assert keys and all(key == example_key(example) for example, key in keys)
        # The labeled rows get their copy.
        assert (
            con.execute("SELECT count(*) FROM labeled_1").fetchall()[0][0]
            == con.execute("SELECT count(*) FROM log_1 WHERE label IS NOT NULL").fetchall()[0][0]
            >= 40
        )
        assert con.execute("SELECT value FROM sb_meta WHERE key = 'schema_version'").fetchall()[0][0] == str(
            SCHEMA_VERSION
        )
        # Each version x stage learns whether it repeats an example (the shop's do not).
        assert sorted(con.execute("SELECT model_version, stage, repeats FROM sb_key_repeats").fetchall()) == sorted(
            con.execute("SELECT DISTINCT model_version, stage, false FROM log_1").fetchall()
        )
    assert labeled_out_of_step(store.path) == {}
    assert repeat_flags_wrong(store.path) == []


def test_a_saved_slice_remembers_its_versions_and_stages(shop):
    """Issue 21: saved slices remember their version (and stages); a slice saved before
    (no scope in its definition) means every version and stage."""
    from analysis.store.scope import Scope

    store, project, frame = shop
    with store.write() as con:
        saved = save_slice(
            con,
            project,
            "ng on m2",
            parse_slice("country = NG"),
            "",
            scope=Scope.of(versions="m2", stages=["production"]),
        )
        save_slice(con, project, "anywhere", parse_slice("vip is true"))
        con.execute(
            "INSERT INTO sb_saved_slices VALUES (?, 'old', 1, '', ?, FALSE, now()::TIMESTAMP)",
            [project.project_id, '{"conditions": [{"column": "country", "op": "in", "values": ["US"]}]}'],
        )
    assert (saved.versions, saved.stages) == (("m2",), ("production",))
    with store.read() as con:
        got = get_slice(con, project, "ng on m2")
        assert (got.versions, got.stages) == (("m2",), ("production",))
        assert got.scope == Scope.of(versions="m2", stages="production")
        assert get_slice(con, project, "anywhere").versions == () and get_slice(con, project, "old").stages == ()
        listed = list_slices(con, project).set_index("name")
        assert listed.loc["ng on m2", "versions"] == ["m2"] and listed.loc["ng on m2", "stages"] == ["production"]
        assert listed.loc["old", "versions"] == [] and listed.loc["old", "where"] == "country = US"
        assert list(slice_history(con, project, "ng on m2")["versions"]) == [["m2"]]
        # Tracking the saved slice in its own scope counts its own rows.
        by_version = slice_by_version(con, project, got.slice, got.scope)
    assert set(by_version["model_version"]) == {"m2"}
    assert by_version.set_index("part").loc["slice", "n_rows"] == ((frame.v == "m2") & (frame.country == "NG")).sum()
    with store.write() as con:  # a deletion keeps the scope in the history
        delete_slice(con, project, "ng on m2")
    with store.read() as con:
        assert list(slice_history(con, project, "ng on m2")["versions"]) == [["m2"], ["m2"]]


def test_cli_saves_and_shows_a_slices_version(shop, capsys):
    store, project, _ = shop
    db = str(store.path)
    assert (
        main(
            [
                "slices",
                "save",
                "--project",
                "shop",
                "--db",
                db,
                "--name",
                "ng",
                "--where",
                "country = NG",
                "--version",
                "m1",
                "--stage",
                "production",
                "--format",
                "json",
            ]
        )
        == 0
    )
    saved = json.loads(capsys.readouterr().out)
    assert (saved["versions"], saved["stages"], saved["where"], saved["revision"]) == (
        ["m1"],
        ["production"],
        "country = NG",
        1,
    )
    assert main(["slices", "show", "--project", "shop", "--db", db, "--name", "ng"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^versions\s+m1$", text, re.M) and re.search(r"^stages\s+production$", text, re.M)
    assert re.search(r"^where\s+country = NG$", text, re.M) and re.search(r"^revision\s+1$", text, re.M)
    assert main(["slices", "save", "--project", "shop", "--db", db, "--name", "all", "--where", "vip is true"]) == 0
    assert re.search(r"^versions\s+all$", capsys.readouterr().out, re.M)
    assert main(["slices", "list", "--project", "shop", "--db", db, "--format", "json"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)["slices"]}
    assert listed["ng"]["versions"] == ["m1"] and listed["all"]["versions"] == []
    assert (
        main(
            [
                "slices",
                "save",
                "--project",
                "shop",
                "--db",
                db,
                "--name",
                "x",
                "--where",
                "vip is true",
                "--stage",
                "nowhere",
            ]
        )
        == 2
    )
    assert "Unknown stage(s) nowhere" in capsys.readouterr().err

"""Choosing the engine of a project: settings checked and stored (TOML, Python, CLI),
refused for a log Spark cannot read, clear errors for an unreachable server; nothing is
written when a setting is wrong. (Spark answering is in test_spark.py.)"""

from __future__ import annotations

import json
import socket

import pytest
from conftest import db_digest
from test_external import MAPPING, frame, write_lake

from analysis import ConfigError, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.engines.settings import EngineSettings, engine_connection, get_settings, set_settings, spark_session
from analysis.ingest.external import attach_parquet
from analysis.ingest.mapping import mapping_to_toml, parse_mapping


@pytest.fixture()
def lake(tmp_path):
    rows = frame(n=400)
    write_lake(rows, tmp_path / "lake")
    store = Store(tmp_path / "x.duckdb")
    with store.write() as con:
        ingest_predictions(con, rows.drop(columns=["day"]), project="stored", mapping=MAPPING)
    return store, tmp_path / "lake"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_settings_are_checked():
    assert EngineSettings().check() == EngineSettings("duckdb", None)
    assert EngineSettings("spark", " sc://spark.internal:15002 ").check().spark_remote == "sc://spark.internal:15002"
    assert EngineSettings("spark", "local[4]").check().label == "Spark (local[4])"
    # A token never shows in a label or a message.
    assert EngineSettings("spark", "sc://db.example:443/;token=secret").label == "Spark (sc://db.example:443)"
    for wrong, message in [
        (EngineSettings("postgres"), "Unknown engine 'postgres'"),
        (EngineSettings("spark", "http://x:1"), "neither a Spark Connect URL"),
        (EngineSettings("spark", "sc://:15002"), "names no host"),
        (EngineSettings("spark", "sc://host:notaport"), "no valid port"),
        (EngineSettings("duckdb", "sc://host:1"), "only with engine = spark"),
    ]:
        with pytest.raises(ConfigError, match=message):
            wrong.check()


def test_the_mapping_carries_the_engine():
    text = mapping_to_toml(parse_mapping('[engine]\nname = "spark"\nspark_remote = "local[2]"\n'))
    assert parse_mapping(text).engine == {"name": "spark", "spark_remote": "local[2]"}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[engine\]: master"):
        parse_mapping('[engine]\nname = "spark"\nmaster = "x"\n')
    with pytest.raises(ConfigError, match="Unknown engine 'spork'"):
        parse_mapping('[engine]\nname = "spork"\n')


def test_attaching_with_an_engine_that_cannot_be_reached_writes_nothing(lake):
    """Attaching a lake with [engine] has that engine aggregate the lake for the rollup
    (test_spark.py attaches one with a local Spark and reads the engine back): an engine
    that cannot be reached is named, and nothing is written. Without PySpark the message
    is another (it says PySpark is missing): skipped, as its neighbours are."""
    pytest.importorskip("pyspark")
    store, folder = lake
    mapping = parse_mapping(
        mapping_to_toml(MAPPING.with_(version="model_version"))
        + '\n[engine]\nname = "spark"\nspark_remote = "sc://127.0.0.1:9"\n'
    )
    before = db_digest(store.path)
    with store.write() as con:
        with pytest.raises(ConfigError, match="Cannot reach Spark Connect at 127.0.0.1:9"):
            attach_parquet(con, str(folder), project="lake", mapping=mapping)
        assert get_settings(con, get_project(con, "stored")) == EngineSettings()
    assert db_digest(store.path) == before


def test_spark_is_refused_for_a_log_stored_in_the_database(lake, capsys):
    store, _ = lake
    digest = db_digest(store.path)
    with store.write() as con:
        project = get_project(con, "stored")
        with pytest.raises(ConfigError, match="keeps its log inside the local database.*attach"):
            set_settings(con, project, EngineSettings("spark"))
        with pytest.raises(ConfigError, match="keeps its log inside the local database"):
            with engine_connection(con, project, EngineSettings("spark")):
                pass
    assert main(["engine", "set", "--project", "stored", "--db", str(store.path), "--engine", "spark"]) == 2
    assert "keeps its log inside the local database" in capsys.readouterr().err
    # Ingesting with [engine] spark is refused whole: the project is not even created.
    spark_mapping = MAPPING.with_(engine={"name": "spark"})
    with store.write() as con, pytest.raises(ConfigError, match="keeps its log inside"):
        ingest_predictions(con, frame(n=50).drop(columns=["day"]), project="other", mapping=spark_mapping)
    assert db_digest(store.path) == digest


def test_the_cli_shows_and_sets_the_engine(lake, capsys):
    store, folder = lake
    db = str(store.path)
    with store.write() as con:
        attach_parquet(con, str(folder), project="lake", mapping=MAPPING.with_(version="model_version"))
    assert main(["engine", "show", "--project", "lake", "--db", db, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["answers"] == "DuckDB"
    assert (
        main(
            [
                "engine",
                "set",
                "--project",
                "lake",
                "--db",
                db,
                "--spark-remote",
                "sc://10.0.0.7:15002",
                "--format",
                "json",
            ]
        )
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert (shown["engine"], shown["spark_remote"], shown["answers"]) == (
        "spark",
        "sc://10.0.0.7:15002",
        "Spark (sc://10.0.0.7:15002)",
    )
    digest = db_digest(store.path)
    assert main(["engine", "set", "--project", "lake", "--db", db, "--engine", "spark", "--spark-remote", "yarn"]) == 2
    assert "neither a Spark Connect URL" in capsys.readouterr().err
    assert db_digest(store.path) == digest
    # A command on the DuckDB engine says so, and how long it took.
    assert (
        main(
            [
                "slice",
                "--project",
                "lake",
                "--db",
                db,
                "--where",
                "city = ber",
                "--engine",
                "duckdb",
                "--format",
                "json",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert json.loads(out.out)["engine"]["name"] == "DuckDB"
    assert "answered by DuckDB in" in out.err


def test_an_unreachable_spark_connect_server_is_a_clear_message(lake, capsys):
    pytest.importorskip("pyspark")
    store, folder = lake
    port = closed_port()
    with pytest.raises(ConfigError, match=f"Cannot reach Spark Connect at 127.0.0.1:{port}"):
        spark_session(f"sc://127.0.0.1:{port}")
    with store.write() as con:
        attach_parquet(con, str(folder), project="lake", mapping=MAPPING.with_(version="model_version"))
    code = main(
        [
            "slice",
            "--project",
            "lake",
            "--db",
            str(store.path),
            "--where",
            "city = ber",
            "--spark-remote",
            f"sc://127.0.0.1:{port}/;token=secret",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"Cannot reach Spark Connect at 127.0.0.1:{port}" in err
    assert "secret" not in err and "Traceback" not in err


# -- the Spark Connect token never shows -----------------------------------------------------------

TOKEN = "dapi0123SECRETtoken"


def run_cli(*args):
    import subprocess
    import sys

    from conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "analysis", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stdout, done.stderr


def test_the_token_is_masked_in_every_output_of_engine_set_and_show(lake):
    store, folder = lake
    db = str(store.path)
    with store.write() as con:
        attach_parquet(con, str(folder), project="lake", mapping=MAPPING.with_(version="model_version"))
    remote = f"sc://db.example:443/;token={TOKEN};x-databricks-cluster-id=0123-abc"
    for fmt in ("json", "table"):
        code, out, err = run_cli(
            "engine", "set", "--project", "lake", "--db", db, "--spark-remote", remote, "--format", fmt
        )
        assert code == 0, err
        assert TOKEN not in out + err
        assert "sc://db.example:443/;token=****;x-databricks-cluster-id=0123-abc" in out
        code, out, err = run_cli("engine", "show", "--project", "lake", "--db", db, "--format", fmt)
        assert code == 0 and TOKEN not in out + err
        assert "token=****" in out
    shown = json.loads(run_cli("engine", "show", "--project", "lake", "--db", db, "--format", "json")[1])
    assert shown["spark_remote"] == "sc://db.example:443/;token=****;x-databricks-cluster-id=0123-abc"
    # The token is stored (the engine needs it), only never shown.
    with store.read() as con:
        assert get_settings(con, get_project(con, "lake")).spark_remote == remote


@pytest.mark.parametrize(
    "remote",
    [
        f"sc://db.example:notaport/;token={TOKEN}",  # a wrong port
        f"sc://db.example:443;token={TOKEN}",  # parameters without the slash
        f"https://db.example/;token={TOKEN}",  # not a Spark Connect URL at all
        f"sc://user:{TOKEN}@db.example:443",  # a password in the address
    ],
)
def test_a_wrong_remote_is_named_without_its_token(lake, remote):
    store, folder = lake
    with store.write() as con:
        attach_parquet(con, str(folder), project="lake", mapping=MAPPING.with_(version="model_version"))
    digest = db_digest(store.path)
    code, out, err = run_cli("engine", "set", "--project", "lake", "--db", str(store.path), "--spark-remote", remote)
    assert code == 2 and TOKEN not in out + err and "Traceback" not in err
    assert "db.example" in err  # the message still names the address
    assert db_digest(store.path) == digest


def test_an_unreachable_server_is_named_without_its_token(lake):
    pytest.importorskip("pyspark")
    store, folder = lake
    port = closed_port()
    with store.write() as con:
        attach_parquet(con, str(folder), project="lake", mapping=MAPPING.with_(version="model_version"))
    code, out, err = run_cli(
        "engine",
        "set",
        "--project",
        "lake",
        "--db",
        str(store.path),
        "--spark-remote",
        f"sc://127.0.0.1:{port}/;token={TOKEN}",
    )
    assert code == 0 and TOKEN not in out + err
    for fmt in ("json", "table"):
        code, out, err = run_cli(
            "slice", "--project", "lake", "--db", str(store.path), "--where", "city = ber", "--format", fmt
        )
        assert code == 2 and f"Cannot reach Spark Connect at 127.0.0.1:{port}" in err
        assert TOKEN not in out + err and "Traceback" not in err

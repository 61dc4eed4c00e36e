"""A real Spark Connect server on loopback: the engine's sc:// path end to end.

PySpark ships the server (``sbin/start-connect-server.sh`` and its jar). The fixture
starts it with a local[2] master on a free 127.0.0.1 port and waits for the line that
says it listens. A process cannot hold a local Spark session and a Spark Connect one at
once, and the parity suite (test_spark.py) holds a local one, so the CLI runs here in a
process of its own, as it would on a user's machine.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_external import MAPPING, frame, write_lake

from analysis import Store
from analysis.cli.main import main
from analysis.ingest.external import attach_parquet
from analysis.ingest.mapping import mapping_to_toml

ROOT = Path(__file__).resolve().parent.parent
READY = "Spark Connect server started at"
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (bash tests/run.sh installs it)")
    pyspark = pytest.importorskip("pyspark")
    spark_home = Path(pyspark.__file__).parent
    logs = tmp_path_factory.mktemp("connect-logs")
    port = _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOG_DIR": str(logs),
        "SPARK_PID_DIR": str(logs),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    server = subprocess.Popen(
        [
            "bash",
            str(spark_home / "sbin" / "start-connect-server.sh"),
            "--wait",
            "--master",
            "local[2]",
            "--conf",
            f"spark.connect.grpc.binding.port={port}",
            "--conf",
            "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf",
            "spark.driver.host=127.0.0.1",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.sql.shuffle.partitions=4",
            "--conf",
            "spark.sql.session.timeZone=UTC",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in server.stdout] + [lines.put(None)], daemon=True
    ).start()
    seen = []
    try:
        while True:
            try:
                line = lines.get(timeout=180)
            except queue.Empty:
                pytest.fail("The Spark Connect server did not start within 3 minutes:\n" + "".join(seen[-20:]))
            if line is None:
                pytest.fail("The Spark Connect server stopped while starting:\n" + "".join(seen[-20:]))
            seen.append(line)
            if READY in line:
                break
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


@pytest.fixture(scope="module")
def connect_lake(connect_url, tmp_path_factory):
    """A hive-partitioned lake attached with its engine set to the Connect server."""
    folder = tmp_path_factory.mktemp("connect-lake")
    write_lake(frame(n=1500), folder / "lake")
    config = folder / "lake.toml"
    config.write_text(
        mapping_to_toml(MAPPING.with_(version="model_version"))
        + f'\n[engine]\nname = "spark"\nspark_remote = "{connect_url}"\n'
    )
    store = Store(folder / "lake.duckdb")
    # Attaching aggregates the lake on the project's engine, the Connect server: in a
    # process of its own too.
    attached = _cli(
        ["attach", str(folder / "lake"), "--project", "lake", "--config", str(config), "--db", str(store.path)]
    )
    assert attached.returncode == 0, attached.stderr[-2000:]
    return store


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    """The CLI in a process of its own (no local Spark session beside the Connect one)."""
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def _assert_same(a, b, where: str = "") -> None:
    """Equal JSON values, floats to 1e-9."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), where
    else:
        assert a == b, where


@pytest.mark.parametrize(
    "command",
    [
        ["slice", "--where", "city = ber", "--where", "tier = free", "--version", "v2"],
        ["breakdown", "--by", "city"],
        # (the paired comparison's parity on Spark is test_spark's; here: that a server answers)
    ],
    ids=["slice", "breakdown"],
)
def test_a_spark_connect_server_gives_duckdbs_numbers(connect_lake, connect_url, command, capsys):
    args = [*command, "--project", "lake", "--db", str(connect_lake.path), "--format", "json"]
    remote = _cli(args)  # the project's own engine: the Connect server
    assert remote.returncode == 0, remote.stderr[-2000:]
    assert f"answered by Spark ({connect_url})" in remote.stderr
    on_spark = json.loads(remote.stdout)
    assert main([*args, "--engine", "duckdb"]) == 0
    on_duckdb = json.loads(capsys.readouterr().out)
    assert on_spark.pop("engine")["name"] == f"Spark ({connect_url})"
    assert on_duckdb.pop("engine")["name"] == "DuckDB"
    _assert_same(on_spark, on_duckdb)


def test_a_dataset_the_server_cannot_find_is_named(connect_url, tmp_path):
    write_lake(frame(n=300), tmp_path / "lake")
    store = Store(tmp_path / "gone.duckdb")
    with store.write() as con:
        attach_parquet(con, str(tmp_path / "lake"), project="gone", mapping=MAPPING.with_(version="model_version"))
    shutil.rmtree(tmp_path / "lake")
    result = _cli(
        [
            "slice",
            "--project",
            "gone",
            "--db",
            str(store.path),
            "--where",
            "city = ber",
            "--engine",
            "spark",
            "--spark-remote",
            connect_url,
        ]
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "not where the project says" in result.stderr
    assert "Traceback" not in result.stderr


def test_sessions_are_shared_between_threads_and_a_stopped_one_is_replaced(connect_url):
    """The app asks for the session from several threads at once (pages and the workers of
    slow answers): they get one session. A session stopped since (a server restart, a
    closed channel) is not handed out again: the next request opens a new one."""
    from concurrent.futures import ThreadPoolExecutor

    from analysis.engines.settings import spark_session

    with ThreadPoolExecutor(max_workers=4) as pool:
        sessions = list(pool.map(lambda _: spark_session(connect_url), range(8)))
    assert all(s is sessions[0] for s in sessions)
    sessions[0].stop()
    fresh = spark_session(connect_url)
    assert fresh is not sessions[0] and not fresh.is_stopped
    assert fresh.sql("SELECT 41 + 1 AS answer").collect()[0]["answer"] == 42

"""Which engine answers a project's read-side analyses: embedded DuckDB or Spark.

A project's settings name its engine (``sb_engine``; the mapping TOML's ``[engine]``
section; ``python -m analysis engine set``; the Import page), and any command can
override them (``--engine duckdb|spark --spark-remote URL``):

* ``duckdb`` (the default): the local database answers everything.
* ``spark``: the project's log is read by Spark from the project's external Parquet
  dataset (see :mod:`analysis.ingest.external`; a log stored inside the local database is
  out of Spark's reach). ``spark_remote`` is a Spark Connect URL (``sc://host:port``,
  with ``/;token=...`` for Databricks and other servers that want one) or a local
  master such as ``local[2]`` (the default). The per-day rollup and every piece of
  curation data (saved slices, validation sets, product metrics, reports) stay in the
  local database; :class:`analysis.engines.spark.SparkConnection` sends each statement to the
  side that holds its tables.

:func:`engine_connection` gives the connection the analyses take, and
:func:`answered` times what it ran, so that the app and the CLI can say which engine
answered and how long it took.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError

from analysis.engines.connection import Connection
from analysis.engines.spark import SparkConnection, register_external, spark_message
from analysis.errors import ConfigError
from analysis.store.project import Project
from analysis.store.sql import in_transaction

ENGINES = ("duckdb", "spark")
DEFAULT_SPARK = "local[2]"
_LOCAL_MASTER = re.compile(r"^local(\[(\d+|\*)\])?$")
CONNECT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class EngineSettings:
    """``engine`` is ``duckdb`` or ``spark``; ``spark_remote`` a Spark Connect URL or local master."""

    engine: str = "duckdb"
    spark_remote: str | None = None

    def check(self) -> "EngineSettings":
        if self.engine not in ENGINES:
            raise ConfigError(f"Unknown engine {self.engine!r}: use one of {', '.join(ENGINES)}.")
        remote = (self.spark_remote or "").strip() or None
        if remote is not None:
            if self.engine != "spark":
                raise ConfigError("A Spark remote is set only with engine = spark.")
            if not (_LOCAL_MASTER.match(remote) or remote.startswith("sc://")):
                raise ConfigError(
                    f"Spark remote {masked_remote(remote)!r} is neither a Spark Connect URL "
                    "(sc://host:port) nor a local master (local[2])."
                )
            if remote.startswith("sc://"):
                address = remote.partition(";")[0]
                if "@" in address:
                    raise ConfigError(
                        f"Spark remote {masked_remote(remote)!r}: a Spark Connect URL carries its "
                        "credentials as parameters (sc://host:port/;token=...), not as user@host."
                    )
                if ";" in remote and not address.endswith("/"):
                    raise ConfigError(
                        f"Spark remote {masked_remote(remote)!r}: parameters such as the token "
                        "follow '/;' (sc://host:port/;token=...)."
                    )
                _host_port(remote)
        return EngineSettings(self.engine, remote)

    @property
    def label(self) -> str:
        """How the app and the CLI name it: ``DuckDB`` or ``Spark (sc://host:15002)``."""
        if self.engine == "duckdb":
            return "DuckDB"
        return f"Spark ({_without_secrets(self.spark_remote or DEFAULT_SPARK)})"


# Spark Connect parameters that carry no secret; every other value (token, custom
# headers such as x-api-key) is shown as MASK.
PUBLIC_PARAMETERS = frozenset(
    {"use_ssl", "user_id", "user_agent", "session_id", "grpc_max_message_size", "x-databricks-cluster-id"}
)
MASK = "****"


def _split_remote(remote: str) -> tuple[str, str | None, list[str]]:
    """``(scheme://host:port/..., userinfo or None, [parameters])`` of a remote as written."""
    address, _, params = remote.partition(";")
    userinfo = None
    scheme, sep, rest = address.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        userinfo, _, rest = rest.partition("@")
        address = f"{scheme}://{rest}"
    return address, userinfo, [p for p in params.split(";") if p] if params else []


def masked_remote(remote: str | None) -> str | None:
    """A remote as Sliceboard shows it: the token (every parameter value but a few harmless
    ones) and any user:password as ``****``, e.g. ``sc://host:443/;token=****``."""
    if remote is None:
        return None
    address, userinfo, params = _split_remote(remote)
    if userinfo is not None:
        scheme, _, rest = address.partition("://")
        address = f"{scheme}://{MASK}@{rest}"
    shown = []
    for param in params:
        key, eq, value = param.partition("=")
        shown.append(f"{key}={value if key.strip().lower() in PUBLIC_PARAMETERS else MASK}" if eq else MASK)
    return ";".join([address, *shown])


def redact(text: str, remote: str | None) -> str:
    """``text`` (a message from Spark or gRPC) with the remote's secret values replaced by ``****``."""
    if not remote:
        return text
    _, userinfo, params = _split_remote(remote)
    secrets = [userinfo] if userinfo else []
    for param in params:
        key, eq, value = param.partition("=")
        if key.strip().lower() not in PUBLIC_PARAMETERS:
            secrets.append(value if eq else param)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _without_secrets(remote: str) -> str:
    """A Spark Connect URL with its parameters (tokens) and any user:password left out, for labels."""
    return _split_remote(remote)[0].rstrip("/") if remote.startswith("sc://") else masked_remote(remote)


def _host_port(remote: str) -> tuple[str, int]:
    parsed = urlparse(_split_remote(remote)[0])
    try:
        port = parsed.port or 15002
    except ValueError:
        raise ConfigError(f"Spark remote {_without_secrets(remote)!r} has no valid port.") from None
    if not parsed.hostname:
        raise ConfigError(f"Spark remote {_without_secrets(remote)!r} names no host (sc://host:port).")
    return parsed.hostname, port


def get_settings(con, project: Project) -> EngineSettings:
    row = con.execute(
        "SELECT engine, spark_remote FROM sb_engine WHERE project_id = ?", [project.project_id]
    ).fetchall()
    return EngineSettings(*row[0]) if row else EngineSettings()


def set_settings(con, project: Project, settings: EngineSettings) -> EngineSettings:
    """Store a project's engine, in a transaction of its own (checked first; nothing is
    stored when it is wrong)."""
    return in_transaction(con, lambda: store_settings(con, project, settings))


def store_settings(con, project: Project, settings: EngineSettings) -> EngineSettings:
    """:func:`set_settings` inside the caller's transaction (an ingest, an attach)."""
    checked = settings.check()
    if checked.engine == "spark" and project.external is None:
        raise ConfigError(_stored_log_message(project))
    con.execute("DELETE FROM sb_engine WHERE project_id = ?", [project.project_id])
    con.execute("INSERT INTO sb_engine VALUES (?, ?, ?)", [project.project_id, checked.engine, checked.spark_remote])
    return checked


class EngineSection(BaseModel):
    """The declared ``[engine]`` section of a mapping file."""

    model_config = ConfigDict(strict=True, extra="forbid")
    name: StrictStr = "duckdb"
    spark_remote: StrictStr | None = None


def settings_from_mapping(section: dict | None, *, origin: str = "mapping") -> EngineSettings | None:
    """The ``[engine]`` section of a mapping TOML (``name``, ``spark_remote``)."""
    if not section:
        return None
    try:
        declared = EngineSection.model_validate(section)
    except ValidationError as exc:
        unknown = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden")
        if unknown:
            raise ConfigError(
                f"{origin}: unknown key(s) in [engine]: {', '.join(unknown)}. Allowed: name, spark_remote."
            ) from None
        raise ConfigError(f"{origin}: [engine] name and spark_remote are strings.") from None
    return EngineSettings(declared.name, declared.spark_remote).check()


def _stored_log_message(project: Project) -> str:
    return (
        f"{project.name} keeps its log inside the local database, which Spark cannot read. Spark answers "
        "projects whose log is a Parquet dataset: attach one (python -m analysis attach), or use DuckDB."
    )


# -- Spark sessions ------------------------------------------------------------------------------

_SESSIONS: dict[str, object] = {}  # one per Spark Connect URL for the process: a session takes seconds
_SESSIONS_LOCK = threading.Lock()  # the app asks from several threads (pages, the slow answers' workers)


def spark_session(remote: str | None):
    """A SparkSession for ``remote`` (Spark Connect URL or local master), reused per process:
    one at a time is created, and a stopped one is replaced rather than handed out again."""
    remote = remote or DEFAULT_SPARK
    with _SESSIONS_LOCK:
        cached = _SESSIONS.get(remote)  # Spark Connect sessions; a local one is the process's active session
        if cached is not None and not getattr(cached, "is_stopped", False):
            return cached
        _SESSIONS.pop(remote, None)
        return _new_session(remote)


def _new_session(remote: str):
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "The Spark engine needs PySpark: pip install -r tests/requirements-spark.txt "
            "(PySpark and the Spark Connect client)."
        ) from None
    if remote.startswith("sc://"):
        host, port = _host_port(remote)
        try:  # gRPC would retry for minutes: say at once that nothing listens there
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS).close()
        except OSError as exc:
            raise ConfigError(
                f"Cannot reach Spark Connect at {host}:{port}: "
                f"{exc.strerror or type(exc).__name__}. Is the server running, and the "
                "address right?"
            ) from None
        try:
            session = SparkSession.builder.remote(remote).getOrCreate()
            session.sql("SELECT 1").collect()  # credentials and protocol are checked here
            # Timestamps and days mean UTC, as in the local store, whatever the server's zone.
            session.conf.set("spark.sql.session.timeZone", "UTC")
        except ImportError as exc:
            raise ConfigError(
                f"Spark Connect needs its client packages ({exc.name}): pip install -r tests/requirements-spark.txt"
            ) from None
        except Exception as exc:  # noqa: BLE001 - the server's refusal, as one readable line
            # Spark's message may quote the URL it was given: never its token.
            raise ConfigError(
                f"Spark Connect at {host}:{port} refused the session: {redact(spark_message(exc), remote)}"
            ) from None
    else:
        if not _LOCAL_MASTER.match(remote):
            raise ConfigError(f"Spark remote {masked_remote(remote)!r} is neither sc://host:port nor local[N].")
        import shutil

        if shutil.which("java") is None:
            raise ConfigError(
                "A local Spark needs a Java runtime (17): install one (apt-get install "
                "openjdk-17-jre-headless) or point the project at a Spark Connect server."
            )
        session = (
            SparkSession.builder.master(remote)
            .appName("sliceboard")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        return session  # getOrCreate gives the active session back, or a new one after a stop
    _SESSIONS[remote] = session
    return session


# -- the connection the analyses take ------------------------------------------------------------


@contextmanager
def engine_connection(con, project: Project, settings: EngineSettings | None = None) -> Iterator[Connection]:
    """``con`` itself on DuckDB; on Spark, a :class:`~analysis.engines.spark.SparkConnection` with
    the project's log registered (``settings`` default to the project's own). Either is a
    :class:`~analysis.engines.connection.Connection`: what every analysis takes."""
    settings = (settings or get_settings(con, project)).check()
    if settings.engine == "duckdb":
        yield con
        return
    if project.external is None:
        raise ConfigError(_stored_log_message(project))

    session = spark_session(settings.spark_remote)
    if not (settings.spark_remote or "").startswith("sc://"):
        # Temporary views are per session: a session of its own (sharing the local Spark)
        # keeps two projects' log_<id> views apart.
        session = session.newSession()
    # The rollup is built locally when the dataset is attached or refreshed; waiting labels
    # (none for a lake, whose labels are its own) are local too.
    remote = SparkConnection(
        session, con, local_tables={project.rollup_table, project.ranks_table, project.pending_table}
    )
    try:
        register_external(remote, con, project)
        yield remote
    finally:
        remote.close()


@dataclass
class Answer:
    """Which engine answered, and how long the work took."""

    engine: str
    seconds: float


@contextmanager
def answered(settings: EngineSettings) -> Iterator[Answer]:
    """Times the body; the :class:`Answer` is filled in when it ends."""
    answer = Answer(settings.label, 0.0)
    start = time.perf_counter()
    try:
        yield answer
    finally:
        answer.seconds = time.perf_counter() - start

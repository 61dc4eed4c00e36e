"""The same read-side analyses on embedded DuckDB and on a local Spark (PySpark,
``local[2]``), both reading the same Parquet copy of the project's log.

    .venv/bin/python benchmarks/bench_spark.py [--runs 3] [--db PATH]
        [--analyses "overview,leaderboard,..."] [--spark-memory 6g]

Copies the labeled database that ``bench_scale.py`` leaves in
``benchmarks/output/work/labels-0.duckdb`` (run that first; ``--db`` for another
one) into a temporary folder. In the copy it commits a validation set when the
database has none (``region = east`` of credit-v1, at most 100,000 examples), writes
the log, rollup and ranks tables of ``lending-demo`` as Parquet files, and replaces
the stored log table by a view of the same name over the log's Parquet file: DuckDB
and Spark then read exactly the same file. DuckDB keeps its stored rollup and ranks;
Spark reads them from their Parquet files, and gets the curation data (projects,
validation-set members) shipped from the local DuckDB as the engine does (the
parity test ``tests/test_spark.py`` sets both engines up the same way).

Each analysis runs ``--runs`` times on each engine on one read-only DuckDB connection
(``Store.read()``) and on one Spark session (``local[2]``, the parity test's
settings, ``spark.driver.memory`` = ``--spark-memory``); the table gives min / median
seconds (Spark's first run includes the JVM's warm-up), Spark / DuckDB of the
medians, and whether the two engines' results are equal (``assert_frame_equal``,
rtol 1e-9, atol 1e-12, dtypes not compared) or the first line of the difference.
Analyses that return several tables (slice metrics, comparisons) are timed as one
call and every table is compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from labeled_db import DB  # beside this script

ROOT = Path(__file__).resolve().parent.parent

PROJECT = "lending-demo"
VALSET = "bench-east"  # committed in the copy when the database has no validation set
VALSET_SAMPLE = 100_000


def _analyses() -> dict:
    """Name -> function(con, project) -> {part: frame}: the parity test's analyses."""
    from analysis.compare.comparison import Side, compare
    from analysis.discovery.run import discover
    from analysis.metrics.sql import VERSION, compute_metrics
    from analysis.overview import overview_table
    from analysis.slices import parse_slice
    from analysis.slices.breakdown import breakdown, leaderboard
    from analysis.slices.metrics import slice_metrics
    from analysis.store.scope import Scope
    from analysis.valsets import evaluate

    v1 = Scope.of(versions="credit-v1")
    production, canary = Side("credit-v1", "production"), Side("credit-v2", "canary")
    shadow = Side("credit-v3", "shadow")

    def one_slice(con, p):
        result = slice_metrics(con, p, parse_slice("region = east AND age < 30"), v1)
        return {"table": result.table, "comparison": result.comparison}

    def comparison(con, p, other):
        result = compare(con, p, production, other)
        return {"overall": result.overall, "slices": result.slices.drop(columns=["slice"])}

    return {
        "overview": lambda con, p: {"": overview_table(con, p)},
        "metrics from the log": lambda con, p: {"": compute_metrics(con, p, group_by=[VERSION], source="log")},
        "slice metrics": one_slice,
        "breakdown by a category": lambda con, p: {"": breakdown(con, p, "region", v1)},
        "breakdown by a number": lambda con, p: {"": breakdown(con, p, "income", v1, bins=5)},
        "leaderboard": lambda con, p: {"": leaderboard(con, p, v1)},
        "validation sets": lambda con, p: {"": evaluate(con, p)},
        "discovery": lambda con, p: {"": discover(con, p, v1, top_k=5).slices.drop(columns=["slice"])},
        # The generated log has no outcome values: the cost of a wrong approval is the loan.
        "discovery of a cost": lambda con, p: {
            "": discover(con, p, v1, error=COST, top_k=5, max_level=2).slices.drop(columns=["slice"])
        },
        "paired comparison": lambda con, p: comparison(con, p, shadow),
        "unpaired comparison": lambda con, p: comparison(con, p, canary),
    }


def _key(name: str) -> str:
    return " ".join(name.lower().replace("-", " ").replace("_", " ").split())


COST = "CASE WHEN prediction AND NOT label THEN loan_amount ELSE 0 END"


def arguments(names: list[str]) -> argparse.Namespace:
    """``--runs`` and ``--db`` as in ``labeled_db.arguments``, plus ``--analyses`` and ``--spark-memory``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", default=str(DB))
    parser.add_argument(
        "--analyses",
        default="",
        help="comma-separated names of the analyses to run (default: all): " + ", ".join(names),
    )
    parser.add_argument("--spark-memory", default="6g", help="the Spark driver's memory (spark.driver.memory)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs is at least 1")
    if not Path(args.db).exists():
        raise SystemExit(f"{args.db} is missing: run benchmarks/bench_scale.py first")
    known = {_key(n): n for n in names}
    wanted = [_key(a) for a in args.analyses.split(",") if a.strip()]
    unknown = [a for a in wanted if a not in known]
    if unknown:
        parser.error(f"unknown analyses: {', '.join(unknown)}; known: {', '.join(names)}")
    args.selected = [n for n in names if _key(n) in wanted] if wanted else list(names)
    return args


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _machine() -> str:
    import duckdb
    import pyspark

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = "no java"
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        java = (out.stderr or out.stdout).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {ram:.1f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, PySpark {pyspark.__version__}, {java}"
    )


def _prepare(source: str, tmp: Path) -> tuple[Path, dict[str, Path], int]:
    """The copy of the database (its log a view over Parquet) and the Parquet file of each table."""
    from analysis import Store, get_project
    from analysis.slices import parse_slice
    from analysis.store.scope import Scope
    from analysis.store.sql import quote_ident, sql_literal
    from analysis.valsets import Selection, commit, create_set, list_sets, promote

    db = tmp / "bench.duckdb"
    start = time.perf_counter()
    shutil.copy(source, db)
    if Path(source + ".wal").exists():
        shutil.copy(source + ".wal", str(db) + ".wal")
    _say(f"copied {source} ({db.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - start:.1f} s")
    store = Store(db)
    with store.write() as con:
        project = get_project(con, PROJECT)
        sets = list_sets(con, project)
        if not (sets["latest_version"] > 0).any():
            start = time.perf_counter()
            create_set(con, project, VALSET, criteria=["accuracy >= 0.8"])
            done = promote(
                con,
                project,
                VALSET,
                Selection(
                    scope=Scope.of(versions="credit-v1"), slice_=parse_slice("region = east"), sample=VALSET_SAMPLE
                ),
            )
            commit(con, project, VALSET, "region = east of credit-v1, for bench_spark.py")
            _say(
                f"committed the validation set {VALSET!r} ({done.added:,} examples) in "
                f"{time.perf_counter() - start:.1f} s"
            )
        else:
            _say(f"validation sets in the database: {', '.join(sets['name'])}")
        rows = con.execute(f"SELECT count(*) FROM {quote_ident(project.log_table)}").fetchall()[0][0]
        files = {}
        for table in (project.log_table, project.rollup_table, project.ranks_table):
            files[table] = tmp / f"{table}.parquet"
            start = time.perf_counter()
            con.execute(f"COPY {quote_ident(table)} TO {sql_literal(str(files[table]))} (FORMAT parquet)")
            _say(
                f"wrote {table} as Parquet: {files[table].stat().st_size / 1e6:,.1f} MB in "
                f"{time.perf_counter() - start:.1f} s"
            )
        log = quote_ident(project.log_table)
        columns = [r[0] for r in con.execute(f"DESCRIBE {log}").fetchall()]
        con.execute(f"DROP TABLE {log}")
        con.execute(f"CREATE VIEW {log} AS SELECT * FROM read_parquet({sql_literal(str(files[project.log_table]))})")
        assert [r[0] for r in con.execute(f"DESCRIBE {log}").fetchall()] == columns
        # The stored log's labeled rows have their own table: here they are the log file's
        # labeled rows, as for a lake, on both engines.
        labeled = quote_ident(project.labeled_table)
        con.execute(f"DROP TABLE IF EXISTS {labeled}")
        con.execute(f"CREATE VIEW {labeled} AS SELECT * FROM {log} WHERE label IS NOT NULL")
        con.execute("CHECKPOINT")
    _say(f"the stored log {project.log_table} is now a view over its Parquet file ({rows:,} rows)")
    return db, files, rows


def _spark(memory: str):
    from pyspark.sql import SparkSession

    start = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("sliceboard-bench")
        .config("spark.driver.memory", memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    seconds = time.perf_counter() - start
    jvm = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory() / 2**30
    _say(
        f"Spark session started in {seconds:.1f} s (local[2], spark.driver.memory "
        f"{spark.sparkContext.getConf().get('spark.driver.memory')}, JVM max heap {jvm:.1f} GiB)"
    )
    return spark, seconds


def _jvm_peak(spark) -> str:
    """The Spark JVM's peak resident memory (it is a child process: not in this process's RSS)."""
    try:
        pid = spark.sparkContext._gateway.proc.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return f"{int(line.split()[1]) / 1024:,.0f} MB"
    except Exception:  # noqa: BLE001  (a figure we print when we can)
        pass
    return "unknown"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _difference(duck: dict, spark: dict) -> str:
    """``equal``, or the first line of the first difference."""
    import pandas as pd

    for part, expected in duck.items():
        label = f"{part}: " if part else ""
        expected = expected.reset_index(drop=True)
        actual = spark[part].reset_index(drop=True)
        if list(actual.columns) != list(expected.columns):
            return f"{label}columns differ: {list(actual.columns)} vs {list(expected.columns)}"
        try:
            pd.testing.assert_frame_equal(actual, expected, rtol=1e-9, atol=1e-12, check_dtype=False)
        except AssertionError as exc:
            return label + _first_line(exc).removeprefix("AssertionError: ")
    return "equal"


def _time(name: str, engine: str, func, con, project, runs: int) -> tuple[list[float], dict | None, str | None]:
    times, result = [], None
    for run in range(runs):
        start = time.perf_counter()
        try:
            result = func(con, project)
        except Exception as exc:  # noqa: BLE001  (reported in the table; the other analyses go on)
            error = _first_line(exc)
            _say(f"{engine:6} {name}: run {run + 1}/{runs} FAILED after {time.perf_counter() - start:.2f} s: {error}")
            return times, None, error
        times.append(time.perf_counter() - start)
        _say(f"{engine:6} {name}: run {run + 1}/{runs} {times[-1]:.2f} s")
    return times, result, None


def _cell(times: list[float]) -> str:
    return f"{min(times):8.2f} / {statistics.median(times):8.2f}" if times else f"{'failed':>19}"


def main() -> None:
    analyses = _analyses()
    args = arguments(list(analyses))
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")

    from analysis import Store, get_project
    from analysis.engines.spark import SparkConnection, register_log

    machine = _machine()
    print(machine, flush=True)
    table_lines = []
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as folder:
        tmp = Path(folder)
        db, files, log_rows = _prepare(args.db, tmp)
        store = Store(db)
        spark, started = _spark(args.spark_memory)
        remote = None
        try:
            with store.read() as local:
                project = get_project(local, PROJECT)
                threads, memory = local.execute(
                    "SELECT current_setting('threads'), current_setting('memory_limit')"
                ).fetchall()[0]
                _say(f"DuckDB: read-only connection, threads {threads}, memory_limit {memory}")
                # Curation data (validation sets, projects) stays local; the log, rollup and ranks are Parquet on Spark.
                remote = SparkConnection(spark, local)
                for table, path in files.items():
                    register_log(remote, table, str(path))
                spark.sql(f"SELECT * FROM {project.log_table} WHERE label IS NOT NULL").createOrReplaceTempView(
                    project.labeled_table
                )
                for name in args.selected:
                    func = analyses[name]
                    duck_times, duck, duck_error = _time(name, "DuckDB", func, local, project, args.runs)
                    spark_times, on_spark, spark_error = _time(name, "Spark", func, remote, project, args.runs)
                    if duck_error or spark_error:
                        verdict = (
                            (f"DuckDB failed: {duck_error}" if duck_error else "")
                            + ("; " if duck_error and spark_error else "")
                            + (f"Spark failed: {spark_error}" if spark_error else "")
                        )
                    else:
                        verdict = _difference(duck, on_spark)
                    rows = "/".join(f"{len(frame):,}" for frame in duck.values()) if duck else "-"
                    ratio = (
                        f"{statistics.median(spark_times) / statistics.median(duck_times):8.1f}"
                        if duck_times and spark_times and statistics.median(duck_times) > 0
                        else f"{'-':>8}"
                    )
                    table_lines.append(
                        f"{name:26} {rows:>12} {_cell(duck_times):>21} {_cell(spark_times):>21} {ratio} {verdict}"
                    )
                    _say(f"{name}: {verdict}")
            jvm_peak = _jvm_peak(spark)
        finally:
            if remote is not None and hasattr(remote, "close"):
                remote.close()  # the temporary views it made
            spark.stop()

    print()
    print(machine)
    print(
        f"log: {log_rows:,} rows of {PROJECT} ({Path(args.db).name}), one Parquet file read by both engines; "
        f"per-version analyses on credit-v1; {args.runs} run(s) each"
    )
    print(f"Spark session start: {started:.1f} s (local[2], driver memory {args.spark_memory})")
    print()
    print(
        f"{'analysis':26} {'rows':>12} {'DuckDB s min / median':>21} {'Spark s min / median':>21} "
        f"{'Spark/DB':>8} result"
    )
    for line in table_lines:
        print(line)
    print()
    print(
        f"peak RSS of this process (DuckDB, pandas, PySpark driver side): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB; "
        f"Spark JVM peak RSS: {jvm_peak}"
    )


if __name__ == "__main__":
    main()

"""Sliceboard at ten million rows: ingest, late labels, the Overview's queries, memory.

    .venv/bin/python benchmarks/bench_scale.py            # full run (~10M rows)
    .venv/bin/python benchmarks/bench_scale.py --rows-per-day 2000 --runs 2   # quick check

It generates a log of the demo's shape (60 days, three model versions, 21 columns
of every type) as one Parquet file per day, then measures, each phase in a fresh
subprocess so that its peak memory is its own:

* floor: DuckDB alone inserting the same files into a plain table, with no
  checks or conversions: the best any ingest on this machine can do;
* ingest: the Parquet folder into a new database (``ingest_predictions``);
* labels: 1,000,000 late labels by prediction id, spread over every day, into a
  copy of the ingested database (``attach_labels``);
* overview: every query the Overview page issues (the project summary, then the
  metrics table and daily series), on short-lived connections as the app opens
  them, for all versions and for one version.

Prints rows, seconds (min / median / max over ``--runs``) and peak RSS per phase.
Generated files go to ``benchmarks/output/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

OUTPUT = ROOT / "benchmarks" / "output"
PROJECT = "lending-demo"
N_LABELS = 1_000_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- data -----------------------------------------------------------------------------


def generate(folder: Path, rows_per_day: int, n_labels: int) -> dict:
    """One Parquet file of predictions per day, and a labels file keyed by prediction id."""
    import numpy as np
    import pandas as pd

    from analysis.demo import DEMO_DAYS, generate_day

    marker = folder / "done.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info["rows_per_day"] == rows_per_day and info["n_labels_wanted"] == n_labels:
            return info
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "logs").mkdir(parents=True)
    rows, label_parts = 0, []
    for day in range(DEMO_DAYS):
        data = generate_day(day, requests_per_day=rows_per_day)
        data.predictions.to_parquet(folder / "logs" / f"day={day:02d}.parquet", index=False)
        rows += len(data.predictions)
        known = data.predictions[["prediction_id", "application_id"]].merge(data.labels, on="application_id")
        label_parts.append(known[["prediction_id", "outcome", "outcome_at"]])
        print(f"  generated day {day + 1}/{DEMO_DAYS}: {rows:,} rows", file=sys.stderr, end="\r")
    labels = pd.concat(label_parts, ignore_index=True)
    picked = np.random.default_rng(1).choice(len(labels), size=min(n_labels, len(labels)), replace=False)
    labels.iloc[np.sort(picked)].to_parquet(folder / "labels.parquet", index=False)
    info = {"rows": rows, "rows_per_day": rows_per_day, "n_labels": int(len(picked)), "n_labels_wanted": n_labels}
    marker.write_text(json.dumps(info))
    print(file=sys.stderr)
    return info


# --- phases (each runs in its own process) ---------------------------------------------


def phase_ingest(db: Path, logs: Path, memory_limit: str | None) -> dict:
    from analysis import Store, ingest_predictions
    from analysis.demo import demo_mapping

    store = Store(db, memory_limit=memory_limit)
    start = time.perf_counter()
    with store.write() as con:
        report = ingest_predictions(con, str(logs / "*.parquet"), project=PROJECT, mapping=demo_mapping())
    seconds = time.perf_counter() - start
    return {"rows": report.inserted, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def phase_floor(db: Path, logs: Path, memory_limit: str | None) -> dict:
    """What DuckDB alone does with the same files: a plain INSERT, no checks or conversions."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect(str(db))
    from analysis.store.connection import DEFAULT_MEMORY_LIMIT

    con.execute("SET preserve_insertion_order = false")  # as Sliceboard's writes
    con.execute("SET memory_limit = ?", [memory_limit or DEFAULT_MEMORY_LIMIT])
    glob = str(logs / "*.parquet")
    con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?) LIMIT 0", [glob])
    con.execute("BEGIN")
    con.execute("INSERT INTO t SELECT * FROM read_parquet(?)", [glob])
    con.execute("COMMIT")
    rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
    con.close()
    return {"rows": rows, "seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


def phase_labels(db: Path, labels: Path, memory_limit: str | None) -> dict:
    from analysis import Store, attach_labels

    store = Store(db, memory_limit=memory_limit)
    start = time.perf_counter()
    with store.write() as con:
        report = attach_labels(
            con,
            str(labels),
            project=PROJECT,
            key="prediction",
            id_column="prediction_id",
            label_column="outcome",
            label_timestamp_column="outcome_at",
        )
    seconds = time.perf_counter() - start
    return {"rows": report.applied, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def phase_overview(db: Path, runs: int, memory_limit: str | None) -> dict:
    """The Overview page's queries, as the page issues them (one connection per query)."""
    from analysis import Store, get_project
    from analysis.overview import daily_series, overview_data, overview_table, project_summary
    from analysis.store.scope import Scope

    store = Store(db, memory_limit=memory_limit)

    def run(func, **kwargs):
        with store.read() as con:
            return func(con, get_project(con, PROJECT), **kwargs)

    summary = run(project_summary)
    first, last = summary.first_timestamp.date(), summary.last_timestamp.date()
    everything = Scope.of(stages=summary.stages, start=first, end=last)
    one_version = Scope.of(versions="credit-v2", stages=summary.stages, start=first, end=last)
    timings: dict[str, list[float]] = {}
    for _ in range(runs):
        for name, scope in (("all versions", everything), ("one version", one_version)):
            t0 = time.perf_counter()
            run(project_summary)
            data = run(overview_data, scope=scope)
            timings.setdefault(name, []).append(time.perf_counter() - t0)
    # The same numbers straight from the log, to show what the rollup saves.
    raw = Scope.of(stages=summary.stages)
    for _ in range(runs):
        t0 = time.perf_counter()
        run(overview_table, scope=raw, source="log")
        run(daily_series, scope=raw, source="log")
        timings.setdefault("from the raw log (no rollup)", []).append(time.perf_counter() - t0)
    return {
        "rows": summary.n_rows,
        "timings": timings,
        "table_rows": len(data.table),
        "daily_rows": len(data.daily),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_phase(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"phase {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- driver -------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    return f"{min(values):7.3f} / {statistics.median(values):7.3f} / {max(values):7.3f}"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import duckdb

    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, DuckDB {duckdb.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rows-per-day", type=int, default=108_000, help="applications per day (108,000 gives about 10M predictions)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of ingest and labels (overview: 3x this)")
    parser.add_argument(
        "--memory-limit", default=None, help="DuckDB memory_limit, e.g. 2GB (default: Sliceboard's, 1GB)"
    )
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit = args.memory_limit

    if args.phase:
        name, *rest = args.phase
        mem = None if rest[-1] == "-" else rest[-1]
        if name == "ingest":
            result = phase_ingest(Path(rest[0]), Path(rest[1]), mem)
        elif name == "floor":
            result = phase_floor(Path(rest[0]), Path(rest[1]), mem)
        elif name == "labels":
            result = phase_labels(Path(rest[0]), Path(rest[1]), mem)
        else:
            result = phase_overview(Path(rest[0]), int(rest[1]), mem)
        print(json.dumps(result))
        return

    data = OUTPUT / f"data-{args.rows_per_day}"
    print(f"machine: {machine()}")
    from analysis.store.connection import DEFAULT_MEMORY_LIMIT, MEMORY_ENV

    print(f"memory_limit: {limit or os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY_LIMIT}")
    t0 = time.perf_counter()
    info = generate(data, args.rows_per_day, N_LABELS)
    print(
        f"data: {info['rows']:,} predictions in 60 Parquet files, {info['n_labels']:,} labels "
        f"({time.perf_counter() - t0:.0f} s to generate or reuse)"
    )
    mem_arg = limit or "-"
    work = OUTPUT / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    results = {}
    floor_runs = []
    for i in range(args.runs):
        db = work / f"floor-{i}.duckdb"
        floor_runs.append(run_phase("floor", str(db), str(data / "logs"), mem_arg))
        db.unlink()
    results["floor"] = floor_runs
    ingest_runs = []
    for i in range(args.runs):
        db = work / f"ingest-{i}.duckdb"
        ingest_runs.append(run_phase("ingest", str(db), str(data / "logs"), mem_arg))
        if i:
            db.unlink()
    base = work / "ingest-0.duckdb"
    results["ingest"] = ingest_runs

    label_runs = []
    for i in range(args.runs):
        db = work / f"labels-{i}.duckdb"
        shutil.copyfile(base, db)
        label_runs.append(run_phase("labels", str(db), str(data / "labels.parquet"), mem_arg))
        if i:
            db.unlink()
    results["labels"] = label_runs
    labeled = work / "labels-0.duckdb"

    overview = run_phase("overview", str(labeled), str(args.runs * 3), mem_arg)
    results["overview"] = overview

    print()
    print(f"{'phase':38} {'rows':>12}  {'seconds min / median / max':>27}  {'rows/s (median)':>15}  peak RSS")
    for name, runs in (
        ("DuckDB alone: INSERT, no checks", floor_runs),
        ("ingest Parquet -> new project", ingest_runs),
        ("attach late labels", label_runs),
    ):
        secs = [r["seconds"] for r in runs]
        rate = runs[0]["rows"] / statistics.median(secs)
        print(
            f"{name:38} {runs[0]['rows']:>12,}  {spread(secs):>27}  {rate:>15,.0f}  "
            f"{max(r['peak_rss_mb'] for r in runs):,.0f} MB"
        )
    for name, secs in overview["timings"].items():
        print(
            f"{'overview: ' + name:38} {overview['rows']:>12,}  {spread(secs):>27}  {'':>15}  "
            f"{overview['peak_rss_mb']:,.0f} MB"
        )
    print(f"database file: {base.stat().st_size / 2**20:,.0f} MB")
    (OUTPUT / "last_run.json").write_text(
        json.dumps({"machine": machine(), "memory_limit": limit, "data": info, **results}, indent=2)
    )


if __name__ == "__main__":
    main()

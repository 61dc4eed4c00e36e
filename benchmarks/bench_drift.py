"""Drift per slice at ten million rows: every feature (13: 5 categorical, 1 boolean, 1 free
text, 6 numeric; the timestamp feature is not measured) of credit-v1 in production
(6.5M rows over 60 days) for each period after a 14-day reference window.

    .venv/bin/python benchmarks/bench_drift.py [--db /tmp/speed/base-10m.duckdb] [--runs 5]

Works on a copy of a ten-million-row demo-shaped database (``bench_scale.py`` or
``bench_pages.py --build`` makes one), since opening it may bring its schema up to date.
Each call on a fresh read connection, after one untimed call; min / median / max wall
seconds over ``--runs``, the CPU seconds of the fastest run (two cores: CPU above wall
is DuckDB's threads), and, for the whole table by day, each of its two counting queries
alone.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = Path("/tmp/speed/base-10m.duckdb")
PROJECT, VERSION, STAGE = "lending-demo", "credit-v1", "production"
REFERENCE = ("2026-09-02", "2026-09-15")
SLICE = "channel = partner_api AND employment = self_employed"


def timed(store, runs: int, work) -> tuple[list[float], float, object]:
    """Wall seconds of each run, CPU seconds of the fastest, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        with store.read() as con:
            result = work(con)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus[walls.index(min(walls))], result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=str(DEFAULT_DB))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not Path(args.db).exists():
        raise SystemExit(f"{args.db} is missing: run benchmarks/bench_pages.py --build (or bench_scale.py) first")

    from analysis import Store, get_project
    from analysis.drift import drift_table, measured_features
    from analysis.drift.buckets import Buckets
    from analysis.drift.category_stats import category_stats_sql
    from analysis.drift.number_stats import number_stats_sql
    from analysis.estimation import ReferenceChoice, resolve_reference
    from analysis.slices import parse_slice

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drift.duckdb"
        shutil.copy(args.db, path)
        store = Store(path)
        with store.write():
            pass  # the schema brought up to date, once
        with store.read() as con:
            project = get_project(con, PROJECT)
            reference = resolve_reference(con, project, VERSION, STAGE, ReferenceChoice.of(*REFERENCE))
            rows = con.execute(
                f"SELECT count(*) FROM {project.log_table} WHERE model_version = ? AND stage = ?", [VERSION, STAGE]
            ).fetchall()[0][0]
        features = measured_features(project)
        categories = [f.name for f in features if f.measured_as == "categories"]
        numbers = [f.name for f in features if f.measured_as == "numbers"]
        whole = Buckets(project, reference, parse_slice(), "day")

        def run(slice_, by):
            return lambda con: drift_table(con, project, reference, slice_, by)

        def query(sql):
            return lambda con: con.execute(*sql).fetchall()

        cases = [
            ("every row, by day", run(parse_slice(), "day")),
            (f"slice {SLICE}, by day", run(parse_slice(SLICE), "day")),
            ("every row, by week", run(parse_slice(), "week")),
            ("  the categories' query alone (by day)", query(category_stats_sql(whole, categories))),
            ("  the same without the free-text feature", query(category_stats_sql(whole, categories[:-1]))),
            ("  the numbers' query alone (by day)", query(number_stats_sql(whole, numbers))),
        ]
        print(
            f"{VERSION} ({STAGE}): {rows:,} rows; reference {REFERENCE[0]} to {REFERENCE[1]}; "
            f"{len(features)} features ({len(categories)} as categories, {len(numbers)} as numbers)"
        )
        with store.read() as con:
            cases[0][1](con)  # one untimed call: imports and the file's first read are not drift's
        print(f"{'operation':62} {'wall s min / median / max':>26} {'cpu s':>6}")
        for name, work in cases:
            walls, cpu, result = timed(store, args.runs, work)
            what = ""
            if hasattr(result, "periods"):
                tested = sum(f.p_value is not None for p in result.periods for f in p.features)
                what = f"  {len(result.periods)} periods, {tested} tests"
            print(f"{name:62} {min(walls):8.3f} / {statistics.median(walls):6.3f} / {max(walls):6.3f} {cpu:6.2f}{what}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

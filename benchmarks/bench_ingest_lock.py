"""How long an ingest keeps readers out of the database: a million-row CSV ingested
inside one write (the input read and checked in the lock) and staged (read and checked
first, the lock held only to copy the rows in).

    .venv/bin/python benchmarks/bench_ingest_lock.py [--rows 1000000] [--runs 3]

For each way and run, into a new database: the ingest's total time, the time the
write lock was held, and the longest a reader in another process waited for one read
while the ingest ran (the reader reads every 20 ms). min / median / max over runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

MAPPING = """
[project]
task = "binary"
positive_label = "true"

[columns]
id = "request_id"
timestamp = "ts"
version = "model"
score = "score"
label = "label"
"""

READER = """
import sys, time
from analysis import Store
store = Store(sys.argv[1], busy_timeout=600)
longest = 0.0
print("ready", flush=True)
while not sys.stdin.closed:
    start = time.perf_counter()
    with store.read() as con:
        con.execute("SELECT count(*) FROM sb_projects").fetchall()
    longest = max(longest, time.perf_counter() - start)
    if sys.stdin in __import__("select").select([sys.stdin], [], [], 0.02)[0]:
        break
print(f"{longest:.3f}", flush=True)
"""


def make_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(rows)],
            "ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 60 * 86400, rows), unit="s"),
            "model": rng.choice(["m1", "m2"], rows),
            "score": rng.random(rows).round(4),
            "label": rng.random(rows) < 0.3,
            "country": rng.choice(["NG", "US", "DE", "FR", "BR"], rows),
            "age": rng.integers(18, 90, rows),
            "income": rng.normal(5e4, 1e4, rows).round(2),
            "vip": rng.random(rows) < 0.1,
            "channel": rng.choice(["web", "app", "api"], rows),
        }
    ).to_csv(path, index=False)


def one_run(way: str, csv: Path, db: Path) -> tuple[float, float, float]:
    from analysis import Store, ingest_predictions, parse_mapping
    from analysis.ingest.staging import ingest_staged

    with Store(db).write() as con:  # the project exists; readers read it during the ingest
        ingest_predictions(con, pd.read_csv(csv, nrows=10), project="p", mapping=parse_mapping(MAPPING))
    held: list[float] = []
    original = Store.write

    @contextmanager
    def timed_write(self, *args, **kwargs):
        with original(self, *args, **kwargs) as con:
            start = time.perf_counter()
            yield con
        held.append(time.perf_counter() - start)

    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout.readline().strip() == "ready"
    Store.write = timed_write
    try:
        start = time.perf_counter()
        if way == "staged":
            ingest_staged(Store(db), str(csv), project="p", on_duplicate="skip")
        else:
            with Store(db).write() as con:
                ingest_predictions(con, str(csv), project="p", on_duplicate="skip")
        total = time.perf_counter() - start
    finally:
        Store.write = original
    reader.stdin.write("stop\n")
    reader.stdin.close()
    waited = float(reader.stdout.readline())
    reader.wait()
    return total, sum(held), waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "predictions.csv"
        make_csv(csv, args.rows)
        print(f"{args.rows:,} rows, {csv.stat().st_size / 1e6:.0f} MB of CSV, {args.runs} runs")
        print(f"{'way':<8} {'figure':<26} {'min':>7} {'median':>7} {'max':>7}")
        for way in ("locked", "staged"):
            figures = [one_run(way, csv, Path(tmp) / f"{way}-{run}.duckdb") for run in range(args.runs)]
            for i, name in enumerate(("ingest, total (s)", "write lock held (s)", "longest reader wait (s)")):
                values = [f[i] for f in figures]
                print(f"{way:<8} {name:<26} {min(values):7.2f} {statistics.median(values):7.2f} {max(values):7.2f}")


if __name__ == "__main__":
    main()

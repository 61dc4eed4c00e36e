"""A breakdown of a column with as many distinct values as rows (an id, a free-text
field mapped as a category): the engine call and the CLI's JSON, capped at 50 groups
and one summary row, against the uncapped call.

    .venv/bin/python benchmarks/bench_many_values.py [--rows 1000000] [--runs 3]

Prints min / median / max seconds over runs, the rows returned, the peak memory of the
process (ru_maxrss) and the size of the CLI's JSON.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from analysis import Mapping, Store, get_project, ingest_predictions
    from analysis.slices.breakdown import breakdown

    rng = np.random.default_rng(3)
    n = args.rows
    frame = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "ts": "2026-01-01 10:00:00",
            "v": "v1",
            "score": rng.random(n),
            "label": rng.integers(0, 2, n),
            "uid": [f"u{i}" for i in range(n)],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "many.duckdb"
        with Store(db).write() as con:
            ingest_predictions(
                con,
                frame,
                project="many",
                mapping=Mapping(
                    id="id",
                    timestamp="ts",
                    version="v",
                    task="binary",
                    score="score",
                    label="label",
                    positive_label="1",
                    features=["uid"],
                    kinds={"uid": "categorical"},
                ),
            )
        del frame
        print(f"{n:,} rows, {n:,} distinct values of uid")
        for name, limit in (("capped (50)", 50), ("uncapped", 0)):
            times, rows = [], 0
            for _ in range(args.runs):
                with Store(db).read() as con:
                    project = get_project(con, "many")
                    start = time.perf_counter()
                    rows = len(breakdown(con, project, "uid", limit=limit))
                    times.append(time.perf_counter() - start)
            print(
                f"breakdown() {name:<12} {min(times):7.2f} {statistics.median(times):7.2f} {max(times):7.2f} s, "
                f"{rows:,} rows returned"
            )
        start = time.perf_counter()
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "analysis",
                "--db",
                str(db),
                "--format",
                "json",
                "breakdown",
                "--project",
                "many",
                "--by",
                "uid",
            ],
            capture_output=True,
            cwd=ROOT,
            check=True,
        )
        print(f"CLI breakdown --format json: {time.perf_counter() - start:.2f} s, {len(cli.stdout) / 1e3:.0f} kB")
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()

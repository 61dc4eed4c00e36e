"""Validation sets at ten million rows: promoting a 100,000-example slice, committing
it, and evaluating every model version on it.

    .venv/bin/python benchmarks/bench_valsets.py [--runs 3]

Works on a copy of the labeled database that ``bench_scale.py`` leaves in
``benchmarks/output/work/labels-0.duckdb`` (run that first); the copy is deleted
afterwards. Each figure is one engine call on a fresh connection (a write
connection for promote and commit, so it includes the commit's checkpoint);
min / median / max over ``--runs``, each run into a new set.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from labeled_db import arguments  # beside this script

ROOT = Path(__file__).resolve().parent.parent

SLICE = "channel = partner_api AND employment = self_employed"


def main() -> None:
    args = arguments(__doc__, runs=3)

    from analysis import Store, get_project
    from analysis.slices import parse_slice
    from analysis.store.scope import Scope
    from analysis.valsets import Selection, commit, create_set, evaluate, promote

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "valsets.duckdb"
        shutil.copy(args.db, path)
        store = Store(path)
        with store.read() as con:
            project = get_project(con, "lending-demo")
            rows = con.execute(f'SELECT count(*) FROM "{project.log_table}"').fetchall()[0][0]
        print(f"rows: {rows:,}; slice: {SLICE} in credit-v1, a random sample of 100,000 examples")
        timings: dict[str, list[float]] = {
            "promote 100,000 examples": [],
            "commit the draft": [],
            "evaluate every version on the set": [],
        }
        selection = Selection(scope=Scope.of(versions="credit-v1"), slice_=parse_slice(SLICE), sample=100_000)
        for run in range(args.runs):
            name = f"bench-{run}"
            with store.write() as con:
                create_set(con, get_project(con, "lending-demo"), name)
            start = time.perf_counter()
            with store.write() as con:
                done = promote(con, get_project(con, "lending-demo"), name, selection, reason="benchmark")
            timings["promote 100,000 examples"].append(time.perf_counter() - start)
            assert done.added == 100_000, done
            start = time.perf_counter()
            with store.write() as con:
                commit(con, get_project(con, "lending-demo"), name, "benchmark")
            timings["commit the draft"].append(time.perf_counter() - start)
            start = time.perf_counter()
            with store.read() as con:
                result = evaluate(con, get_project(con, "lending-demo"), [name])
            timings["evaluate every version on the set"].append(time.perf_counter() - start)
            scored = dict(zip(result["model_version"], result["scored"]))
        print(f"{'operation':40} {'seconds min / median / max':>28}")
        for label, times in timings.items():
            print(f"{label:40} {min(times):8.3f} / {statistics.median(times):7.3f} / {max(times):7.3f}")
        print(f"members scored per version: {scored}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

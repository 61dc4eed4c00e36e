"""Comparing versions at ten million rows: the full comparison (overall ML and product
metrics with bootstrap intervals, every value of every feature) and the gate.

    .venv/bin/python benchmarks/bench_compare.py [--runs 3]

Works on a copy of the labeled database that ``bench_scale.py`` leaves in
``benchmarks/output/work/labels-0.duckdb`` (run that first), with the demo's three
product metrics defined. credit-v1 (production, 6.5M rows) against credit-v3
(shadow, 3.1M rows, scoring the same applications from day 30): paired on the
examples both scored, and unpaired on all their rows. Each call on a fresh read
connection, after one untimed call; min / median / max over ``--runs``.
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


def main() -> None:
    args = arguments(__doc__, runs=3)

    from analysis import Store, get_project
    from analysis.compare.comparison import Side, compare
    from analysis.compare.gate import GateCriteria, run_gate
    from analysis.demo import demo_mapping
    from analysis.metrics.product import metrics_from_mapping, store_metrics

    base, cand = Side("credit-v1", "production"), Side("credit-v3", "shadow")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "compare.duckdb"
        shutil.copy(args.db, path)
        store = Store(path)
        with store.write() as con:
            store_metrics(con, get_project(con, "lending-demo"), metrics_from_mapping(demo_mapping().metrics))
        cases = [
            ("paired comparison, all feature values", lambda con, p: compare(con, p, base, cand, discovered=0)),
            (
                "unpaired comparison, all feature values",
                lambda con, p: compare(con, p, base, cand, pair=False, discovered=0),
            ),
            ("paired, + top-5 discovered slices of each", lambda con, p: compare(con, p, base, cand, discovered=5)),
            ("gate (paired, discovered slices included)", lambda con, p: run_gate(con, p, base, cand)),
            (
                "gate without discovery (discovered_slices 0)",
                lambda con, p: run_gate(con, p, base, cand, criteria=GateCriteria(discovered_slices=0)),
            ),
        ]
        # One untimed call first: the process's one-off costs (imports, the bootstrap's
        # weights) are not the comparison's.
        with store.read() as con:
            cases[0][1](con, get_project(con, "lending-demo"))
        print(f"{'operation':44} {'seconds min / median / max':>28}")
        for name, func in cases:
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                with store.read() as con:
                    result = func(con, get_project(con, "lending-demo"))
                times.append(time.perf_counter() - start)
            comp = getattr(result, "comparison", result)
            print(
                f"{name:44} {min(times):8.3f} / {statistics.median(times):7.3f} / {max(times):7.3f}   "
                f"{comp.method}; {len(comp.slices):,} slices"
            )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

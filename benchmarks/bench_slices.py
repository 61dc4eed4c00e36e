"""Slice analyses at ten million rows: one slice's metrics with intervals, a
one-feature breakdown, the all-features leaderboard, a page of examples.

    .venv/bin/python benchmarks/bench_slices.py [--runs 5]

Reads the labeled database that ``bench_scale.py`` leaves in
``benchmarks/output/work/labels-0.duckdb`` (run that first). Each figure is one
call of the engine function on a fresh read connection, as the app makes it
on a cache miss; min / median / max over ``--runs``.
"""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path

from labeled_db import arguments  # beside this script

ROOT = Path(__file__).resolve().parent.parent

TEN_FEATURES = [
    "age",
    "income",
    "bureau_score",
    "loan_amount",
    "employment",
    "region",
    "channel",
    "device",
    "purpose",
    "has_cosigner",
]


def main() -> None:
    args = arguments(__doc__, runs=5)

    from analysis import Store, get_project
    from analysis.slices import parse_slice
    from analysis.slices.breakdown import breakdown, leaderboard
    from analysis.slices.buckets import examples
    from analysis.slices.metrics import slice_metrics
    from analysis.store.scope import Scope

    store = Store(args.db)
    slice_ = parse_slice("channel = partner_api AND employment = self_employed")

    def floor_connect(con, p):
        return None

    def floor_labeled(con, p):
        # The least any binary metric with AUC needs: the labeled rows grouped by
        # label, prediction and score, with nothing computed from the groups.
        con.execute(
            f'SELECT count(*) FROM (SELECT label, prediction, score, count(*) FROM "{p.log_table}" '
            "WHERE label IS NOT NULL GROUP BY ALL)"
        ).fetchall()

    cases = [
        ("reference: open + close a read connection", floor_connect),
        ("reference: labeled rows by (label, pred, score)", floor_labeled),
        ("slice metrics, all versions", lambda con, p: slice_metrics(con, p, slice_)),
        ("slice metrics, one version", lambda con, p: slice_metrics(con, p, slice_, Scope.of(versions="credit-v1"))),
        ("breakdown by region (categorical)", lambda con, p: breakdown(con, p, "region")),
        ("breakdown by income (10 bins)", lambda con, p: breakdown(con, p, "income")),
        (
            "leaderboard, 10 features, one version",
            lambda con, p: leaderboard(con, p, Scope.of(versions="credit-v1"), columns=TEN_FEATURES),
        ),
        (
            "leaderboard, all 13 features, one version",
            lambda con, p: leaderboard(con, p, Scope.of(versions="credit-v1")),
        ),
        ("leaderboard, all 13 features, all versions", lambda con, p: leaderboard(con, p)),
        ("examples, first page by time", lambda con, p: examples(con, p, Scope.of(versions="credit-v1"), slice_)),
        (
            "examples, page 40 by score",
            lambda con, p: examples(con, p, Scope.of(versions="credit-v1"), slice_, sort_by="score", page=40),
        ),
        (
            "examples, one bucket (FP confident)",
            lambda con, p: examples(con, p, Scope.of(versions="credit-v1"), slice_, bucket="FP confident"),
        ),
    ]
    with store.read() as con:
        project = get_project(con, "lending-demo")
        n_rows = con.execute(f'SELECT count(*) FROM "{project.log_table}"').fetchall()[0][0]
    print(f"rows: {n_rows:,}")
    print(f"{'analysis':44} {'seconds min / median / max':>28}")
    for name, func in cases:
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            with store.read() as con:
                func(con, get_project(con, "lending-demo"))
            times.append(time.perf_counter() - start)
        print(f"{name:44} {min(times):8.3f} / {statistics.median(times):7.3f} / {max(times):7.3f}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

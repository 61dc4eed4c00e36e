"""Discovery as the Discover page and ``python -m analysis discover`` run it, end to
end (encoding, SliceLine, significance, folding, intervals), and the error tree, on
the labeled ten-million-row database that ``bench_scale.py`` leaves behind.

    .venv/bin/python benchmarks/bench_discover_project.py [--runs 3]

Each figure is one call on a fresh read connection (a cache miss in the app);
min / median / max over ``--runs``; peak memory of the whole process.
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
    args = arguments(__doc__, runs=3)

    from analysis import Store, get_project
    from analysis.discovery.run import discover
    from analysis.discovery.tree import error_tree
    from analysis.store.scope import Scope

    store = Store(args.db)
    v1 = Scope.of(versions="credit-v1")
    cases = [
        (
            "misclassification, 10 features, labeled rows",
            "rows with a label",
            lambda con, p: discover(con, p, error="misclassification", columns=TEN_FEATURES),
        ),
        (
            "misclassification, all 13 features",
            "rows with a label",
            lambda con, p: discover(con, p, error="misclassification"),
        ),
        (
            "log loss (real-valued), 10 features",
            "rows with a label and score",
            lambda con, p: discover(con, p, error="logloss", columns=TEN_FEATURES),
        ),
        (
            "misclassification, 10 features, one version",
            "rows with a label",
            lambda con, p: discover(con, p, v1, error="misclassification", columns=TEN_FEATURES),
        ),
        (
            "error tree, depth 3, 10 features",
            "rows with a label",
            lambda con, p: error_tree(con, p, columns=TEN_FEATURES, max_depth=3),
        ),
    ]
    print(f"{'analysis':50} {'rows':>12} {'evaluated':>10} {'seconds min / median / max':>28}")
    for name, _, func in cases:
        times, result = [], None
        for _ in range(args.runs):
            start = time.perf_counter()
            with store.read() as con:
                result = func(con, get_project(con, "lending-demo"))
            times.append(time.perf_counter() - start)
        evaluated = getattr(result, "n_evaluated", "-")
        print(
            f"{name:50} {result.n_rows:>12,} {evaluated!s:>10} "
            f"{min(times):8.3f} / {statistics.median(times):7.3f} / {max(times):7.3f}"
        )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

"""``monitor run`` with many monitors: a back-fill of every day after the reference window,
then one new day, as a daily job runs it.

    .venv/bin/python benchmarks/bench_monitor_run.py --db benchmarks/output/monitors.duckdb --build
    .venv/bin/python benchmarks/bench_monitor_run.py --db PATH --monitors 1000 --kinds realized,volume,coverage

``--build`` makes the demo (``analysis.demo.build_demo``, ``--requests-per-day``, ``--days``)
at the path. The monitors are made on a copy: ``--monitors`` of each kind asked (``--kinds``),
over the slices ``feature = value``, ``a = x AND b = y`` and ``a = x AND b = y AND c = z`` of
the demo's categories (the leaderboard's slices), every monitor's own. Printed: the back-fill (every day since the
reference window, up to the day before the log's last; ``--back-fill-days`` places the
window so that the back-fill has that many days) and the run of the last day alone,
in seconds, with the days evaluated and the alerts; and the machine and its load.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis import Store, get_project  # noqa: E402
from analysis.demo import DEMO_PROJECT, build_demo  # noqa: E402
from analysis.estimation.reference import ReferenceChoice, set_reference_choice  # noqa: E402
from analysis.monitors.definitions import Monitor, add_monitor  # noqa: E402
from analysis.monitors.run import last_day, run_monitors  # noqa: E402
from analysis.slices import Slice  # noqa: E402
from analysis.store.sql import in_transaction, quote_ident  # noqa: E402

FEATURES = ("region", "channel", "device", "employment", "purpose")
METRIC = {"realized": "accuracy", "combined": "roc_auc", "estimated": "roc_auc", "volume": "rows"}
METRIC |= {"coverage": "labeled_share", "drift": "income"}


def slices(con, project, count: int) -> list[Slice]:
    """``count`` slices: single values first, then pairs of values of two features, then triples."""
    values = {
        f: [
            v
            for (v,) in con.execute(f"SELECT DISTINCT {quote_ident(f)} FROM {project.log_table} ORDER BY 1").fetchall()
        ]
        for f in FEATURES
    }
    singles = [[(f, v)] for f in FEATURES for v in values[f]]
    pairs = [[(a, x), (b, y)] for a, b in itertools.combinations(FEATURES, 2) for x in values[a] for y in values[b]]
    triples = [
        [(a, x), (b, y), (c, z)]
        for a, b, c in itertools.combinations(FEATURES, 3)
        for x in values[a]
        for y in values[b]
        for z in values[c]
    ]
    found = []
    for terms in [*singles, *pairs, *triples][:count]:
        found.append(Slice.from_dict({"conditions": [{"column": c, "op": "in", "values": [v]} for c, v in terms]}))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--requests-per-day", type=int, default=5000)
    parser.add_argument("--days", type=int, default=None, help="of the demo built (default: the demo's)")
    parser.add_argument("--monitors", type=int, default=1000, help="of each kind")
    parser.add_argument("--kinds", default="realized,volume,coverage")
    parser.add_argument(
        "--back-fill-days",
        type=int,
        default=None,
        help="store a reference window of 14 days ending this many days before the back-fill's last "
        "(default: the project's own, the most recent fully labeled days)",
    )
    args = parser.parse_args()
    source = Path(args.db)
    if args.build:
        source.unlink(missing_ok=True)
        days = {} if args.days is None else {"n_days": args.days}
        build_demo(Store(source), requests_per_day=args.requests_per_day, monitors=False, **days)
    work = source.with_name(source.stem + "-monitors.duckdb")
    shutil.copyfile(source, work)
    store = Store(work)
    kinds = args.kinds.split(",")
    with store.write() as con:
        project = get_project(con, DEMO_PROJECT)
        con.execute("DELETE FROM sb_monitors")
        rows = con.execute(f"SELECT count(*) FROM {project.log_table}").fetchall()[0][0]
        chosen = slices(con, project, args.monitors)

        def add():
            for kind in kinds:
                for i, s in enumerate(chosen):
                    add_monitor(con, project, Monitor(f"{kind} {i}", METRIC[kind], kind, slice_=s))

        in_transaction(con, add)
        last = last_day(con, project)
        if args.back_fill_days is not None:
            end = last - timedelta(days=args.back_fill_days + 1)
            choice = ReferenceChoice.of(end - timedelta(days=13), end)
            in_transaction(con, lambda: set_reference_choice(con, project, choice))
    print(f"{rows:,} rows; {len(chosen)} slices × {len(kinds)} kinds = {len(chosen) * len(kinds)} monitors")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}")
    for label, as_of in (("back-fill to the day before the last", last - timedelta(days=1)), ("the last day", last)):
        with store.write() as con:
            project = get_project(con, DEMO_PROJECT)
            started = time.perf_counter()
            result = in_transaction(con, lambda: run_monitors(con, project, as_of))
            seconds = time.perf_counter() - started
        print(
            f"{label}: {seconds:.2f} s, {result.evaluated:,} monitor-days, {len(result.new_alerts)} new alerts, "
            f"{len(result.skipped)} skipped"
        )


if __name__ == "__main__":
    main()

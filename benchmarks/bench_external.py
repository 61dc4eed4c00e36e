"""The same ten million rows as a stored log, as one Parquet file and as a
hive-partitioned Parquet folder (model_version=.../day=...), read in place.

    .venv/bin/python benchmarks/bench_external.py [--runs 3]

Copies the labeled database that ``bench_scale.py`` leaves in
``benchmarks/output/work/labels-0.duckdb`` (run that first), writes its log as Parquet
both ways into a temporary folder, attaches each as a project, and times the same
analyses on the three: attaching (checks every value, builds the rollup), one slice's
metrics, a breakdown, a page of examples, discovery and a paired comparison.
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
    from analysis.discovery.run import discover
    from analysis.ingest.external import attach_parquet
    from analysis.ingest.mapping import parse_mapping
    from analysis.slices import parse_slice
    from analysis.slices.breakdown import breakdown
    from analysis.slices.buckets import examples
    from analysis.slices.metrics import slice_metrics
    from analysis.store.scope import Scope

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "external.duckdb"
        shutil.copy(args.db, db)
        store = Store(db)
        with store.write() as con:
            stored = get_project(con, "lending-demo")
            log = f'"{stored.log_table}"'
            start = time.perf_counter()
            single = Path(tmp) / "log.parquet"
            con.execute(f"COPY (SELECT * EXCLUDE (ingest_id) FROM {log}) TO '{single}' (FORMAT parquet)")
            print(f"write one Parquet file: {time.perf_counter() - start:.1f} s, {single.stat().st_size / 1e6:,.0f} MB")
            start = time.perf_counter()
            folder = Path(tmp) / "lake"
            con.execute(
                f'COPY (SELECT * EXCLUDE (ingest_id), CAST("timestamp" AS DATE) AS day FROM {log}) '
                f"TO '{folder}' (FORMAT parquet, PARTITION_BY (model_version, day))"
            )
            print(
                f"write the partitioned folder: {time.perf_counter() - start:.1f} s, "
                f"{sum(f.stat().st_size for f in folder.rglob('*.parquet')) / 1e6:,.0f} MB in "
                f"{len(list(folder.rglob('*.parquet'))):,} files"
            )
            mapping = parse_mapping(stored.mapping_toml)
            canonical = mapping.with_(
                id="prediction_id",
                example="example_id",
                timestamp="timestamp",
                version="model_version",
                stage="stage",
                prediction="prediction",
                score="score",
                label="label",
                label_timestamp="label_timestamp",
                positive_label="true",
            )  # the stored labels are booleans
            for name, source in (("one-file", str(single)), ("partitioned", str(folder))):
                start = time.perf_counter()
                attach_parquet(con, source, project=name, mapping=canonical.with_(name=name))
                print(f"attach {name}: {time.perf_counter() - start:.1f} s (every value checked, rollup built)")
        slice_ = parse_slice("channel = partner_api AND employment = self_employed")
        v1 = Scope.of(versions="credit-v1")
        cases = [
            ("slice metrics, one version", lambda con, p: slice_metrics(con, p, slice_, v1)),
            ("breakdown by region", lambda con, p: breakdown(con, p, "region", v1)),
            ("examples, first page by time", lambda con, p: examples(con, p, v1, slice_)),
            (
                "discovery, 10 features, one version",
                lambda con, p: discover(
                    con,
                    p,
                    v1,
                    columns=[
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
                    ],
                    top_k=5,
                ),
            ),
            (
                "paired comparison, feature values",
                lambda con, p: compare(
                    con, p, Side("credit-v1", "production"), Side("credit-v3", "shadow"), discovered=0
                ),
            ),
        ]
        print(f"{'analysis':38} {'stored':>22} {'one Parquet file':>22} {'partitioned Parquet':>22}")
        for label, func in cases:
            cells = []
            for name in ("lending-demo", "one-file", "partitioned"):
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    with store.read() as con:
                        func(con, get_project(con, name))
                    times.append(time.perf_counter() - start)
                cells.append(f"{min(times):6.2f} / {statistics.median(times):6.2f} s")
            print(f"{label:38} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

"""A report of a ten-million-row project: the default report (headline numbers per
version, the latest comparison and its gate, the top discovered slices, the
validation-set matrix) computed, written as one HTML file, and its size.

    .venv/bin/python benchmarks/bench_report.py [--runs 2]

Works on a copy of the labeled database that ``bench_scale.py`` leaves in
``benchmarks/output/work/labels-0.duckdb`` (run that first), with the demo's three
product metrics and a 100,000-member validation set added to the copy.
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
    args = arguments(__doc__, runs=2)
    from analysis import Store, get_project
    from analysis.demo import demo_mapping
    from analysis.metrics.product import metrics_from_mapping, store_metrics
    from analysis.reports import default_report, render_html
    from analysis.valsets import Selection, commit, create_set, promote

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.duckdb"
        shutil.copy(args.db, path)
        store = Store(path)
        with store.write() as con:
            project = get_project(con, "lending-demo")
            store_metrics(con, project, metrics_from_mapping(demo_mapping().metrics))
            create_set(con, project, "sample", criteria=["accuracy >= 0.7"])
            promote(con, project, "sample", Selection(only_errors=False, sample=100_000, seed=1))
            commit(con, project, "sample", "a 100,000-member sample")
            rows = con.execute(f'SELECT count(*) FROM "{project.log_table}"').fetchall()[0][0]
        print(f"rows: {rows:,}")
        compute, write, sizes = [], [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            with store.read() as con:
                report = default_report(con, get_project(con, "lending-demo"))
            compute.append(time.perf_counter() - start)
            start = time.perf_counter()
            page = render_html(report)
            out = Path(tmp) / "report.html"
            out.write_text(page, encoding="utf-8")
            write.append(time.perf_counter() - start)
            sizes.append(out.stat().st_size)
        print(f"blocks: {', '.join(b.title for b in report.blocks)}")
        print(
            f"{'compute the default report (s)':40} {min(compute):8.2f} / {statistics.median(compute):7.2f} / "
            f"{max(compute):7.2f}"
        )
        print(
            f"{'render and write the HTML (s)':40} {min(write):8.2f} / {statistics.median(write):7.2f} / "
            f"{max(write):7.2f}"
        )
        from analysis.reports.html import _plotly_packed

        print(
            f"{'HTML file (MB)':40} {sizes[-1] / 1e6:8.2f}   (plotly.js inside it, compressed: "
            f"{len(_plotly_packed()) / 1e6:.2f} MB)"
        )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

"""Label-free estimates (issue 23) at ten million rows: fitting the reference and the daily
estimate timeline, and the drift table, for credit-v1 in production.

    .venv/bin/python benchmarks/bench_estimate.py --build              # build the database, then measure
    .venv/bin/python benchmarks/bench_estimate.py --runs 5 --export benchmarks/output/estimate-10m
    /tmp/refenv/bin/python benchmarks/bench_estimate_reference.py benchmarks/output/estimate-10m

The database (``--build``) is the demo (``analysis.demo.build_demo``) over 74 days at
81,000 requests a day: about 10,000,000 predictions of the three versions (credit-v1 in
production about 6M of them), labels arriving late as the demo has them. The reference
window is credit-v1's first 14 days in production (``--reference-days``), so 60 daily
periods follow it.

Measured, each ``--runs`` times on one read-only connection (median, min and max
printed), for every row and for the slices ``region = east`` and ``channel = partner_api
AND employment = self_employed``:

* **fit**: ``resolve_reference`` + ``fit_slice`` (reading the reference's labeled rows,
  the held-out folds, the calibration candidates, the measured errors);
* **timeline**: ``estimate_timeline(..., "day")``: every period after the reference, all
  eight binary metrics, their intervals, realized and combined figures;
* **drift**: ``analysis.drift.drift_table(..., "day")`` when that engine exists: every
  measured feature (13: timestamps are not measured) in each of the 60 days against the
  reference window.

Then prints, for the fully labeled days (at least 99% of every row labeled; the same
days for the slice), each estimate's error against the realized figure (ROC AUC and
accuracy).

``--distinct-scores`` measures a copy of the database (made once, beside it) where every
score is moved by less than half its last decimal, so no two rows share a score: the
estimate timeline counts rows alike in SQL, and this is the case where that saves nothing.

``--export DIR`` writes, for the reference tools (``bench_estimate_reference.py``, run in
a venv of its own), the same rows as Parquet: ``reference.parquet`` (the reference
window) and ``analysis.parquet`` (the 60 days after it) with score, prediction (0/1),
label (0/1, missing while not arrived), timestamp and the 13 measured features; and
``sliceboard.json``: this run's timings and its daily estimates, for the ratios and the
accuracy comparison.

Generated files go to ``benchmarks/output/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUTPUT = ROOT / "benchmarks" / "output"
DB = OUTPUT / "estimate-10m.duckdb"
PROJECT = "lending-demo"
VERSION, STAGE = "credit-v1", "production"
N_DAYS = 74
REQUESTS_PER_DAY = 81_000  # 74 days of the demo at this volume: ~10.0M predictions
SLICES = {
    "every row": "",
    "region = east": "region = east",
    "partner_api & self_employed": "channel = partner_api AND employment = self_employed",
}
ACCURACY_SLICES = ("every row", "partner_api & self_employed")
COMPARED = ("roc_auc", "accuracy")
CBPE_METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]  # what the CBPE run of the reference script asks
FULLY_LABELED = 0.99


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def code_version() -> str:
    """The commit, and the engine packages measured here if they differ from it."""

    def git(*args) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("log", "-1", "--format=%h %ci")
    changed = git("status", "--porcelain", "--", "analysis/estimation", "analysis/drift")
    return f"{head}" + (f" with uncommitted changes in {len(changed.splitlines())} engine files" if changed else "")


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.3f} s  (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


# --- the database -----------------------------------------------------------------------


def build(db: Path, requests_per_day: int) -> None:
    from analysis import Store
    from analysis.demo import build_demo

    db.parent.mkdir(parents=True, exist_ok=True)
    for path in (db, db.with_name(db.name + ".wal")):
        path.unlink(missing_ok=True)
    start = time.perf_counter()
    info = build_demo(Store(db), n_days=N_DAYS, requests_per_day=requests_per_day, monitors=False)
    print(
        f"built {db} in {time.perf_counter() - start:.0f} s: {info['predictions']:,} predictions, "
        f"{info['labeled_predictions']:,} labeled (peak RSS {peak_rss_mb():,.0f} MB)",
        flush=True,
    )


def distinct_scores_copy(db: Path) -> Path:
    """A copy of ``db`` where every score has all its digits: each score moved by less than
    half its last decimal (the demo's four), so no two rows share one and counting rows
    alike saves nothing: the estimate timeline's worst case."""
    import duckdb

    copy = db.with_name(db.stem + "-distinct.duckdb")
    if copy.exists():
        return copy
    shutil.copyfile(db, copy)
    con = duckdb.connect(str(copy))
    from analysis.store.project import get_project

    table = get_project(con, PROJECT).log_table
    con.execute("SELECT setseed(0.23)")
    con.execute(
        f'UPDATE "{table}" SET score = least(1.0, greatest(0.0, score + (random() - 0.5) * 0.0001)) '
        "WHERE score IS NOT NULL"
    )
    distinct, scored = con.execute(f'SELECT count(DISTINCT score), count(score) FROM "{table}"').fetchall()[0]
    con.close()
    print(f"copied {db} to {copy}: {distinct:,} distinct scores among {scored:,}", flush=True)
    return copy


def reference_dates(con, project, days: int):
    """credit-v1's first ``days`` days in production (both inclusive), and the last day."""
    first, last = con.execute(
        f'SELECT min(CAST("timestamp" AS DATE)), max(CAST("timestamp" AS DATE)) FROM "{project.log_table}" '
        "WHERE model_version = ? AND stage = ?",
        [VERSION, STAGE],
    ).fetchall()[0]
    return first, first + timedelta(days=days - 1), last


# --- measuring --------------------------------------------------------------------------


def timed(fn, runs: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def daily_estimates(timeline) -> list[dict]:
    return [
        {
            "day": p.period.start.isoformat(),
            "rows": p.rows,
            "labeled": p.labeled,
            "metrics": {
                name: {
                    "realized": m.realized,
                    "estimated": m.estimated,
                    "low": m.low,
                    "high": m.high,
                    "combined": m.combined,
                }
                for name, m in p.metrics.items()
            },
        }
        for p in timeline.periods
    ]


def fully_labeled(days: list[dict]) -> set[str]:
    """The days (of every row's timeline) with at least 99% of their rows labeled."""
    return {d["day"] for d in days if d["rows"] and d["labeled"] >= FULLY_LABELED * d["rows"]}


def errors_on_labeled_days(days: list[dict], full_days: set[str]) -> dict[str, tuple[float, int, float]]:
    """Per compared metric: the mean absolute error of the estimate against the realized
    figure over ``full_days``, their number, and the share of those days whose interval
    holds the realized figure."""
    out = {}
    full = [d for d in days if d["day"] in full_days]
    for name in COMPARED:
        pairs = [
            (d["metrics"][name]["estimated"], d["metrics"][name]["realized"], d["metrics"][name])
            for d in full
            if d["metrics"][name]["realized"] is not None
        ]
        if not pairs:
            out[name] = (float("nan"), 0, float("nan"))
            continue
        mae = statistics.fmean(abs(e - r) for e, r, _ in pairs)
        covered = statistics.fmean(m["low"] <= r <= m["high"] for _, r, m in pairs)
        out[name] = (mae, len(pairs), covered)
    return out


def export(con, project, start, end, folder: Path) -> dict:
    """The reference window's and the following days' rows of credit-v1 (production)."""
    from analysis.drift import measured_features

    folder.mkdir(parents=True, exist_ok=True)
    features = [f.name for f in measured_features(project)]
    columns = ", ".join(
        [
            "prediction_id",
            '"timestamp"',
            "score",
            "CAST(prediction AS INTEGER) AS prediction",
            "CAST(label AS INTEGER) AS label",
            *[f'"{f}"' for f in features],
        ]
    )
    base = (
        f"SELECT {columns} FROM \"{project.log_table}\" WHERE model_version = '{VERSION}' AND stage = '{STAGE}' "
        "AND score IS NOT NULL AND prediction IS NOT NULL"
    )
    after = end + timedelta(days=1)
    out = {}
    for name, where in (
        ("reference", f"CAST(\"timestamp\" AS DATE) BETWEEN DATE '{start}' AND DATE '{end}'"),
        ("analysis", f"CAST(\"timestamp\" AS DATE) >= DATE '{after}'"),
    ):
        path = folder / f"{name}.parquet"
        t0 = time.perf_counter()
        con.execute(f"COPY ({base} AND {where} ORDER BY \"timestamp\", prediction_id) TO '{path}' (FORMAT parquet)")
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
        out[name] = rows
        print(f"exported {name}: {rows:,} rows to {path} in {time.perf_counter() - t0:.1f} s")
    out["features"] = features
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=str(DB))
    parser.add_argument("--build", action="store_true", help="(re)build the database first")
    parser.add_argument("--requests-per-day", type=int, default=REQUESTS_PER_DAY)
    parser.add_argument("--reference-days", type=int, default=14)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--export", metavar="DIR", help="write the rows and this run's figures for the reference tools")
    parser.add_argument("--no-drift", action="store_true", help="skip the drift table")
    parser.add_argument(
        "--distinct-scores",
        action="store_true",
        help="measure a copy of the database where no two rows share a score (made once, beside it)",
    )
    args = parser.parse_args()
    db = Path(args.db)

    print(f"machine: {machine()}")
    print(f"load at start: {load()}")
    print(f"code: {code_version()}", flush=True)
    if args.build:
        build(db, args.requests_per_day)
    if not db.exists():
        raise SystemExit(f"{db} is missing: run with --build")
    if args.distinct_scores:
        db = distinct_scores_copy(db)

    import duckdb

    from analysis.estimation.fit import fit_slice
    from analysis.estimation.reference import ReferenceChoice, resolve_reference
    from analysis.estimation.timeline import estimate_timeline
    from analysis.slices import parse_slice, validate_slice
    from analysis.store.project import get_project

    try:  # the drift engine (analysis/drift/), when it is there
        from analysis.drift import drift_table
    except ImportError:
        drift_table = None

    con = duckdb.connect(str(db), read_only=True)
    project = get_project(con, PROJECT)
    start, end, last = reference_dates(con, project, args.reference_days)
    total = con.execute(f'SELECT count(*) FROM "{project.log_table}"').fetchall()[0][0]
    version_rows = con.execute(
        f'SELECT count(*), count(label) FROM "{project.log_table}" WHERE model_version = ? AND stage = ?',
        [VERSION, STAGE],
    ).fetchall()[0]
    choice = ReferenceChoice.of(start.isoformat(), end.isoformat())
    print(
        f"database: {db} ({db.stat().st_size / 1e6:,.0f} MB): {total:,} predictions; {VERSION} ({STAGE}) "
        f"{version_rows[0]:,} rows, {version_rows[1]:,} labeled; reference {start} to {end}, "
        f"{(last - end).days} daily periods after it"
    )

    figures: dict = {"timings": {}, "estimates": {}, "errors": {}}
    full_days: set[str] = set()  # every row's fully labeled days; the slices are compared on the same days
    for name, text in SLICES.items():
        slice_ = validate_slice(parse_slice(text), project)

        def fit_once(slice_=slice_):
            reference = resolve_reference(con, project, VERSION, STAGE, choice)
            return fit_slice(con, project, reference, slice_)

        fit_times, fit = timed(fit_once, args.runs)
        line_times, timeline = timed(lambda: estimate_timeline(con, project, fit, "day"), args.runs)
        both = [a + b for a, b in zip(fit_times, line_times)]
        print(
            f"\n[{name}] reference rows in slice {fit.rows:,} ({fit.positives:,} positive), calibration: "
            f"{fit.describe()}; {len(timeline.periods)} periods, {sum(p.rows for p in timeline.periods):,} rows, "
            f"{len(timeline.metrics)} metrics"
        )
        print(f"  resolve_reference + fit_slice  {spread(fit_times)}")
        print(f"  estimate_timeline(day)         {spread(line_times)}")
        print(f"  fit + timeline                 {spread(both)}")
        timing = {"fit": fit_times, "timeline": line_times, "fit+timeline": both}
        if name == "every row":  # like for like with CBPE: its five metrics only
            five_times, _ = timed(lambda: estimate_timeline(con, project, fit, "day", CBPE_METRICS), args.runs)
            five = [a + b for a, b in zip(fit_times, five_times)]
            print(f"  estimate_timeline(day), 5 metrics {spread(five_times)}")
            print(f"  fit + timeline, 5 metrics      {spread(five)}")
            timing.update({"timeline5": five_times, "fit+timeline5": five})
        if drift_table is not None and not args.no_drift:
            reference = resolve_reference(con, project, VERSION, STAGE, choice)
            drift_times, drift = timed(lambda: drift_table(con, project, reference, slice_, "day"), args.runs)
            n_features = len(drift.periods[0].features) if drift.periods else 0
            print(f"  drift_table(day), {n_features} features x {len(drift.periods)} days {spread(drift_times)}")
            timing["drift"] = drift_times
            timing["drift_features"] = n_features
        figures["timings"][name] = timing
        if name in ACCURACY_SLICES:
            days = daily_estimates(timeline)
            figures["estimates"][name] = days
            full_days = full_days if name != "every row" else fully_labeled(days)
            figures["errors"][name] = errors_on_labeled_days(days, full_days)
    if drift_table is None:
        print("\ndrift: analysis.drift.drift_table is not available here; no drift timing")

    print(f"\nlabel-free estimate vs realized, on the days at least {FULLY_LABELED:.0%} labeled:")
    for name, errors in figures["errors"].items():
        for metric, (mae, n, covered) in errors.items():
            print(f"  {name:28s} {metric:8s} MAE {mae:.4f} over {n} days; interval holds the realized on {covered:.0%}")

    print(f"\npeak RSS {peak_rss_mb():,.0f} MB")
    if args.export:
        folder = Path(args.export)
        exported = export(con, project, start, end, folder)
        figures.update(
            db=str(db),
            rows=total,
            version_rows=version_rows[0],
            reference={"start": start.isoformat(), "end": end.isoformat()},
            exported=exported,
            runs=args.runs,
            machine=machine(),
            code=code_version(),
        )
        (folder / "sliceboard.json").write_text(json.dumps(figures, indent=1, default=str))
        print(f"wrote {folder / 'sliceboard.json'}")
    con.close()
    print(f"load at end: {load()}")


if __name__ == "__main__":
    main()

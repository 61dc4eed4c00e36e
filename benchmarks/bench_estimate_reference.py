"""NannyML and Evidently on the rows bench_estimate.py measured Sliceboard on: label-free
performance estimation (NannyML's CBPE), univariate drift (NannyML's
UnivariateDriftCalculator) and Evidently's DataDriftPreset, timed, with the ratios to
Sliceboard's times, and CBPE's estimates beside Sliceboard's on the fully labeled days.

Runs in an environment of its own (NannyML 0.13 and Evidently 0.7 do not import with
pandas 3; they are pinned in ``benchmarks/requirements-reference.txt``):

    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install -r benchmarks/requirements-reference.txt
    .venv/bin/python benchmarks/bench_estimate.py --runs 5 --export benchmarks/output/estimate-10m
    /tmp/refenv/bin/python benchmarks/bench_estimate_reference.py benchmarks/output/estimate-10m

``DIR`` holds what ``bench_estimate.py --export DIR`` wrote: ``reference.parquet`` (the
14-day reference window of credit-v1 in production), ``analysis.parquet`` (the 60 days
after it) and ``sliceboard.json`` (Sliceboard's times and daily estimates on those rows).

Each tool runs in a subprocess of its own (its peak memory is its own), ``--runs`` times
(fewer when a run is long: the runs stop before ``--timeout`` seconds in all), and is
killed at ``--timeout`` (600 s): it is then reported as over that, with how far it got.
Reading the Parquet files into pandas is timed apart and not counted in a tool's time,
nor is importing the tool (Sliceboard's times include reading its rows from DuckDB).

* **cbpe**: ``CBPE(metrics=[roc_auc, f1, precision, recall, accuracy],
  problem_type="classification_binary", chunk_period="D")``: ``fit`` on the reference
  rows, ``estimate`` on the 60 days. Given only the columns it uses (score, prediction,
  label, timestamp): CBPE deep-copies the frame it is given, so this is its best case.
  Analysis rows keep their labels where they have arrived (NaN elsewhere), so CBPE also
  computes the realized figures, as Sliceboard's timeline does.
* **univariate**: ``UnivariateDriftCalculator`` over the 13 features Sliceboard measures
  (6 numeric: Kolmogorov-Smirnov and Jensen-Shannon; 7 categorical, boolean and text:
  chi-square and Jensen-Shannon), ``chunk_period="D"``: ``fit`` on the reference,
  ``calculate`` on the 60 days.
* **evidently**: Evidently has no chunking, so a user who wants drift per day runs one
  ``Report([DataDriftPreset()])`` per day: the day's rows (current) against the
  reference window (reference), 60 reports. The column types are the ones Evidently
  infers from the reference (``Dataset.from_pandas`` without a definition: ``term_months``
  categorical, ``applicant_note`` text), the same definition for every day; the reference
  ``Dataset`` is built once. Each report's per-column drift values are read out
  (``snapshot.dict()``), nothing is rendered.
* **evidently-no-text**: the same without ``applicant_note`` (12 columns): how much of
  Evidently's time its text column takes (for text, Evidently trains a classifier to tell
  the two samples apart).

``--accuracy`` (the default with ``--tools all``) fits CBPE for the accuracy comparison:
on every row; on the slice ``channel = partner_api AND employment = self_employed`` fitted
on the slice's reference rows only; and fitted on every reference row, then estimated on
the slice's rows only. It prints, for the days at least 99% labeled, the estimated and
realized ROC AUC and accuracy of CBPE and Sliceboard, and each one's mean absolute error.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

TOOLS = ("cbpe", "univariate", "evidently", "evidently-no-text")
CBPE_METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]
NUMERIC = ["age", "income", "bureau_score", "loan_amount", "term_months", "credit_history_years"]
CATEGORICAL = ["employment", "region", "channel", "device", "purpose", "has_cosigner", "applicant_note"]
FEATURES = NUMERIC + CATEGORICAL
COMPARED = ("roc_auc", "accuracy")
FULLY_LABELED = 0.99
PARTNER = "partner_api & self_employed"
PROGRESS = "@@progress "
RESULT = "@@result "


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def progress(text: str) -> None:
    print(PROGRESS + text, file=sys.stderr, flush=True)


def load(folder: Path, columns=None):
    import pandas as pd

    start = time.perf_counter()
    reference = pd.read_parquet(folder / "reference.parquet", columns=columns)
    analysis = pd.read_parquet(folder / "analysis.parquet", columns=columns)
    return reference, analysis, time.perf_counter() - start


# --- one tool, in its own process ------------------------------------------------------


def cbpe(reference, analysis):
    import nannyml as nml

    estimator = nml.CBPE(
        metrics=CBPE_METRICS,
        y_pred_proba="score",
        y_pred="prediction",
        y_true="label",
        problem_type="classification_binary",
        timestamp_column_name="timestamp",
        chunk_period="D",
    )
    estimator.fit(reference[reference["label"].notna()])
    progress("fitted")
    result = estimator.estimate(analysis)
    frame = result.to_df()
    return f"{len(frame)} chunks, mean estimated roc_auc {frame[('roc_auc', 'value')].mean():.4f}"


def univariate(reference, analysis):
    import nannyml as nml

    calculator = nml.UnivariateDriftCalculator(
        column_names=FEATURES,
        timestamp_column_name="timestamp",
        continuous_methods=["kolmogorov_smirnov", "jensen_shannon"],
        categorical_methods=["chi2", "jensen_shannon"],
        chunk_period="D",
    )
    calculator.fit(reference)
    progress("fitted")
    frame = calculator.calculate(analysis).to_df()
    alerts = [c for c in frame.columns if c[-1] == "alert"]
    return (
        f"{len(frame)} chunks x {len(calculator.continuous_column_names)} continuous + "
        f"{len(calculator.categorical_column_names)} categorical features, {int(frame[alerts].sum().sum())} alerts"
    )


def evidently(reference, analysis, features=FEATURES):
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    ref = Dataset.from_pandas(reference[features])
    definition = ref.data_definition
    days = analysis["timestamp"].dt.floor("D")
    drifted, n_days = 0, 0
    start = time.perf_counter()
    for n_days, (day, rows) in enumerate(analysis[features].groupby(days, sort=True), start=1):
        current = Dataset.from_pandas(rows, data_definition=definition)
        snapshot = Report([DataDriftPreset()]).run(current, ref)
        summary = snapshot.dict()["metrics"][0]["value"]
        drifted += int(summary["count"])
        progress(f"day {n_days} ({day.date()}) done at {time.perf_counter() - start:.0f} s")
    return (
        f"{n_days} daily reports; numeric {definition.numerical_columns}, categorical "
        f"{definition.categorical_columns}, text {definition.text_columns}; {drifted} drifted column-days"
    )


def evidently_no_text(reference, analysis):
    return evidently(reference, analysis, [f for f in FEATURES if f != "applicant_note"])


RUNNERS = {"cbpe": cbpe, "univariate": univariate, "evidently": evidently, "evidently-no-text": evidently_no_text}
COLUMNS = {
    "cbpe": ["timestamp", "score", "prediction", "label"],
    "univariate": ["timestamp", *FEATURES],
    "evidently": ["timestamp", *FEATURES],
    "evidently-no-text": ["timestamp", *FEATURES],
}


def run_one(tool: str, folder: Path, runs: int, budget: float) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    reference, analysis, read = load(folder, COLUMNS[tool])
    progress(f"read {len(reference):,} + {len(analysis):,} rows in {read:.1f} s, RSS {peak_rss_mb():,.0f} MB")
    if tool in ("cbpe", "univariate"):  # imported before the clock starts, as Sliceboard's engine is
        import nannyml  # noqa: F401
    else:
        import evidently.presets  # noqa: F401
    base_rss = peak_rss_mb()
    times, summary = [], ""
    for run in range(runs):
        start = time.perf_counter()
        summary = RUNNERS[tool](reference, analysis)
        times.append(time.perf_counter() - start)
        progress(f"run {run + 1}: {times[-1]:.1f} s")
        if sum(times) + times[-1] > budget:
            break
    print(
        RESULT
        + json.dumps(
            {
                "tool": tool,
                "times": times,
                "read_seconds": read,
                "rows": [len(reference), len(analysis)],
                "rss_after_read_mb": base_rss,
                "peak_rss_mb": peak_rss_mb(),
                "summary": summary,
            }
        ),
        flush=True,
    )


def spawn(tool: str, folder: Path, runs: int, timeout: float) -> dict:
    """``tool`` in a child process, killed (with its process group) at ``timeout``."""
    command = [sys.executable, __file__, str(folder), "--one", tool, "--runs", str(runs), "--timeout", str(timeout)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        last = [line for line in err.splitlines() if line.startswith(PROGRESS)]
        return {
            "tool": tool,
            "timeout": True,
            "elapsed": time.perf_counter() - start,
            "last_progress": last[-1][len(PROGRESS) :] if last else "",
        }
    for line in out.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    return {"tool": tool, "failed": True, "stderr": err[-3000:]}


# --- accuracy ------------------------------------------------------------------------------


def cbpe_days(reference, analysis) -> dict:
    """CBPE fitted on ``reference`` and estimated on ``analysis``: per day, each compared
    metric's estimate, interval and realized figure."""
    import nannyml as nml

    estimator = nml.CBPE(
        metrics=list(COMPARED),
        y_pred_proba="score",
        y_pred="prediction",
        y_true="label",
        problem_type="classification_binary",
        timestamp_column_name="timestamp",
        chunk_period="D",
    )
    estimator.fit(reference[reference["label"].notna()])
    frame = estimator.estimate(analysis).to_df()
    out = {}
    for _, row in frame.iterrows():
        day = row[("chunk", "start_date")].date().isoformat()
        out[day] = {
            m: {
                "estimated": float(row[(m, "value")]),
                "realized": float(row[(m, "realized")]),
                "low": float(row[(m, "lower_confidence_boundary")]),
                "high": float(row[(m, "upper_confidence_boundary")]),
            }
            for m in COMPARED
        }
    return out


def accuracy(folder: Path, sliceboard: dict) -> list[str]:
    import warnings

    warnings.filterwarnings("ignore")
    cols = ["timestamp", "score", "prediction", "label", "channel", "employment"]
    reference, analysis, _ = load(folder, cols)
    partner = lambda f: f[(f["channel"] == "partner_api") & (f["employment"] == "self_employed")]  # noqa: E731
    runs = {
        "every row": {"CBPE": cbpe_days(reference, analysis)},
        PARTNER: {
            "CBPE fitted on the slice": cbpe_days(partner(reference), partner(analysis)),
            "CBPE fitted on every row": cbpe_days(reference, partner(analysis)),
        },
    }
    lines = []
    overall = {d["day"]: d for d in sliceboard["estimates"]["every row"]}
    full_days = sorted(day for day, d in overall.items() if d["rows"] and d["labeled"] >= FULLY_LABELED * d["rows"])
    lines.append(
        f"\nfully labeled days (>= {FULLY_LABELED:.0%} of every row labeled): {len(full_days)}, "
        f"{full_days[0]} to {full_days[-1]}"
    )
    summary = []
    for name, tools in runs.items():
        ours = {d["day"]: d["metrics"] for d in sliceboard["estimates"][name]}
        for metric in COMPARED:
            lines.append(f"\n[{name}] {metric}: realized | Sliceboard estimate | " + " | ".join(tools))
            errors = {"Sliceboard": [], **{t: [] for t in tools}}
            covered = {"Sliceboard": [], **{t: [] for t in tools}}
            realized_gap, same_fit_gap = 0.0, 0.0
            for day in full_days:
                mine = ours[day][metric]
                realized = mine["realized"]
                if realized is None:
                    continue
                cells = [f"{realized:.4f}", f"{mine['estimated']:.4f}"]
                errors["Sliceboard"].append(abs(mine["estimated"] - realized))
                covered["Sliceboard"].append(mine["low"] <= realized <= mine["high"])
                for i, (tool, days) in enumerate(tools.items()):
                    theirs = days[day][metric]
                    if i == 0:  # CBPE fitted on the same rows as Sliceboard's calibration
                        same_fit_gap = max(same_fit_gap, abs(theirs["estimated"] - mine["estimated"]))
                    realized_gap = max(realized_gap, abs(theirs["realized"] - realized))
                    cells.append(f"{theirs['estimated']:.4f}")
                    errors[tool].append(abs(theirs["estimated"] - realized))
                    covered[tool].append(theirs["low"] <= realized <= theirs["high"])
                lines.append(f"  {day}  " + "  ".join(cells))
            for who in errors:
                mae = statistics.fmean(errors[who]) if errors[who] else float("nan")
                cov = statistics.fmean(covered[who]) if covered[who] else float("nan")
                summary.append(
                    f"  {name:28s} {metric:8s} {who:26s} MAE {mae:.4f} over {len(errors[who])} days, "
                    f"interval holds the realized on {cov:.0%}"
                )
            summary.append(
                f"  ({name} {metric}: CBPE's realized differs from Sliceboard's by at most {realized_gap:.2g}; "
                f"{next(iter(tools))}'s estimate from Sliceboard's by at most {same_fit_gap:.2g})"
            )
    return lines + ["\nmean absolute error of the label-free estimate (fully labeled days):"] + summary


# --- the driver ------------------------------------------------------------------------------


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("nannyml", "evidently", "pandas", "numpy", "scikit-learn", "scipy"))


def median(values):
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="what bench_estimate.py --export wrote")
    parser.add_argument(
        "--tools", default="all", help=f"comma-separated: {', '.join(TOOLS)}, accuracy; or all (every one)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--one", choices=TOOLS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = Path(args.folder)
    if args.one:
        run_one(args.one, folder, args.runs, args.timeout * 0.8)
        return

    tools = list(TOOLS) + ["accuracy"] if args.tools == "all" else args.tools.split(",")
    sliceboard = json.loads((folder / "sliceboard.json").read_text())
    print(f"machine: {sliceboard.get('machine', '?')}; Sliceboard code measured: {sliceboard.get('code', '?')}")
    print(f"load at start: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"versions: {versions()}")
    print(
        f"rows: reference {sliceboard['exported']['reference']:,}, analysis {sliceboard['exported']['analysis']:,} "
        f"(credit-v1 production of {sliceboard['db']}, {sliceboard['rows']:,} predictions in all)",
        flush=True,
    )
    ours = sliceboard["timings"]["every row"]
    sb_estimate = median(ours["fit+timeline"])
    sb_estimate5 = median(ours["fit+timeline5"]) if "fit+timeline5" in ours else None
    sb_drift = median(ours["drift"]) if "drift" in ours else None
    results = {}
    for tool in [t for t in tools if t in TOOLS]:
        result = spawn(tool, folder, args.runs, args.timeout)
        results[tool] = result
        if result.get("timeout"):
            print(
                f"{tool:11s} over {args.timeout / 60:.0f} min (killed at {result['elapsed']:.0f} s; last: "
                f"{result['last_progress']})",
                flush=True,
            )
        elif result.get("failed"):
            print(f"{tool:11s} FAILED:\n{result['stderr']}", flush=True)
        else:
            t = result["times"]
            print(
                f"{tool:11s} median {median(t):8.1f} s (min {min(t):.1f}, max {max(t):.1f}, n={len(t)}); read "
                f"Parquet {result['read_seconds']:.1f} s (not counted); RSS after read and import "
                f"{result['rss_after_read_mb']:,.0f} MB, peak {result['peak_rss_mb']:,.0f} MB; {result['summary']}",
                flush=True,
            )

    print("\nratios (tool median / Sliceboard median, every row):")
    print(
        f"  Sliceboard fit + timeline (8 metrics, intervals): {sb_estimate:.2f} s; with CBPE's 5 metrics: "
        + (f"{sb_estimate5:.2f} s" if sb_estimate5 else "not measured")
        + "; drift_table: "
        + (f"{sb_drift:.2f} s ({ours.get('drift_features')} features)" if sb_drift else "not measured")
    )
    for tool, against, what in (
        ("cbpe", sb_estimate, "CBPE fit + estimate (5 metrics) vs Sliceboard fit + timeline (8 metrics)"),
        ("cbpe", sb_estimate5, "CBPE fit + estimate (5 metrics) vs Sliceboard fit + timeline (the same 5)"),
        ("univariate", sb_drift, "NannyML univariate drift vs Sliceboard drift_table"),
        ("evidently", sb_drift, "Evidently DataDriftPreset x 60 days vs Sliceboard drift_table"),
        ("evidently-no-text", sb_drift, "the same without applicant_note (12 columns) vs drift_table (13)"),
    ):
        result = results.get(tool)
        if result is None:
            continue
        if result.get("timeout"):
            print(
                f"  {what}: over {args.timeout / 60:.0f} min, i.e. > {args.timeout / against:.0f}x"
                if against
                else f"  {what}: over {args.timeout / 60:.0f} min"
            )
        elif not result.get("failed"):
            tool_time = median(result["times"])
            ratio = f"{tool_time / against:.1f}x" if against else "(no Sliceboard time)"
            print(f"  {what}: {tool_time:.1f} s / {against or float('nan'):.2f} s = {ratio}")
    if "accuracy" in tools:
        for line in accuracy(folder, sliceboard):
            print(line)
    print(f"\nload at end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()

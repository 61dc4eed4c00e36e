"""Slice discovery (SliceLine, ``analysis.discovery.find_slices``) at 100k, 1M and 10M rows.

    .venv/bin/python benchmarks/bench_discovery.py                     # 100k, 1M, 10M
    .venv/bin/python benchmarks/bench_discovery.py --rows 100000 --runs 3

Synthetic data, generated in DuckDB once per size and kept in
``benchmarks/output/discovery/`` (git-ignored): 8 integer-coded categorical
features with cardinalities 3 to 50 (skewed value frequencies, one with 8% NULLs)
and a 10-feature variant (two more, 6 and 40 values); 0/1 errors from a base rate
that every feature value nudges up or down, plus four planted error-heavy slices:
``f0=1 AND f3=2`` (55%), ``f5=7`` (35%), ``f0=0 AND f1=0 AND f2=0`` (60%) and
``f6 IS NULL AND f3<3`` (45%). Search: L=3, k=10, α=0.95, σ=n/100.

Measured, each in a fresh subprocess so that its peak RSS is its own:

* ``pruned``: ``find_slices`` as the app calls it, then the significance discovery adds
  (p-values of every evaluated slice, Benjamini-Hochberg, intervals; min / median / max of ``--runs``);
* ``unpruned``: ``find_slices(prune=False)``, the referee (``--baseline-runs``);
* ``grouping sets``: every conjunction of up to L predicates in one DuckDB query
  (``GROUP BY GROUPING SETS`` over all 1..L-subsets of the features), scored and
  ranked in SQL, i.e. the unpruned search without SliceLine's machinery;
* ``sliceline``: the reference package (numpy/scipy), at 100k rows with L=3 and at
  1M rows with L=2, under an address-space cap (``--package-mem-gb``); running out
  of it is reported as OOM.

It checks that the pruned top-k equals the unpruned one exactly (and the
grouping-sets and package top-k up to the order of ties), and reports the
candidates evaluated per level with and without pruning. Results go to
``benchmarks/output/discovery.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

OUTPUT = ROOT / "benchmarks" / "output"
DATA = OUTPUT / "discovery"
CARDS = {8: [3, 4, 5, 8, 12, 20, 30, 50], 10: [3, 4, 5, 8, 12, 20, 30, 50, 6, 40]}
ALPHA, TOP_K, MAX_LEVEL, SUPPORT = 0.95, 10, 3, 0.01
DATA_VERSION = 1


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- data -----------------------------------------------------------------------------


def generate(con, table: str, n: int, cards: list[int], seed: int = 1) -> None:
    """Skewed integer codes per feature, a NULL-bearing f6, errors with planted slices."""
    cols = []
    for j, c in enumerate(cards):
        u = f"((hash(i, {seed * 100 + j}) % 1000003) / 1000003.0)"
        expr = f"CAST(floor({c} * pow({u}, 1.3)) AS INTEGER)"
        if j == 6:
            expr = f"CASE WHEN hash(i, {seed * 100 + 99}) % 12 = 0 THEN NULL ELSE {expr} END"
        cols.append(f"{expr} AS f{j}")
    nudge = " + ".join(
        f"((hash(coalesce(f{j}, -1), {seed * 1000 + j}) % 1001) / 1000.0 - 0.5)" for j in range(len(cards))
    )
    p = (
        "CASE WHEN f0 = 1 AND f3 = 2 THEN 0.55 "
        "WHEN f5 = 7 THEN 0.35 "
        "WHEN f0 = 0 AND f1 = 0 AND f2 = 0 THEN 0.6 "
        "WHEN f6 IS NULL AND f3 < 3 THEN 0.45 "
        f"ELSE 1 / (1 + exp(3.0 - 2.0 * ({nudge}))) END"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT * EXCLUDE (i, p), "
        f"CAST((hash(i, {seed * 100 + 77}) % 1000003) / 1000003.0 < p AS INTEGER) AS err FROM ("
        f"SELECT *, {p} AS p FROM (SELECT i, {', '.join(cols)} FROM range({n}) AS t(i)))"
    )


def data_file(rows: int) -> Path:
    """The database with tables d8 and d10 of ``rows`` rows (generated once)."""
    import duckdb

    path = DATA / f"data-{rows}.duckdb"
    marker = DATA / f"data-{rows}.json"
    if path.exists() and marker.exists() and json.loads(marker.read_text()).get("version") == DATA_VERSION:
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    for m, cards in CARDS.items():
        generate(con, f"d{m}", rows, cards)
    con.close()
    marker.write_text(json.dumps({"version": DATA_VERSION, "rows": rows}))
    return path


# --- measurements (each in its own subprocess) ----------------------------------------


def slice_key(preds: dict) -> list:
    return sorted([k, v] for k, v in preds.items())


def add_significance(con, m: int, result) -> None:
    """What discovery adds to the search: a p-value for every evaluated slice,
    Benjamini-Hochberg over all of them, and the top slices' intervals."""
    from analysis.discovery.significance import error_rate_interval
    from analysis.stats.intervals import pooled_z_pvalues
    from analysis.stats.multiple_testing import bh_qvalues

    n, total, total_sq = con.execute(f"SELECT count(*), sum(err), sum(err * err) FROM d{m}").fetchall()[0]
    ev = result.evaluated
    q = bh_qvalues(pooled_z_pvalues(ev["size"].to_numpy(), ev["errors"].to_numpy(), n, total, total_sq))
    assert len(q) == len(ev)
    for size, errors in zip(result.top_slices["size"], result.top_slices["errors"]):
        error_rate_interval(int(size), float(errors), float(errors), True)


def worker_find(db: str, m: int, prune: bool, runs: int, max_level: int = MAX_LEVEL) -> dict:
    import duckdb

    import analysis.discovery.significance  # noqa: F401  (imported by the app long before a search)
    from analysis.discovery import find_slices

    feats = [f"f{j}" for j in range(m)]
    times, result = [], None
    for _ in range(runs):
        con = duckdb.connect(db, read_only=True)
        start = time.perf_counter()
        result = find_slices(
            con,
            f"SELECT * FROM d{m}",
            [],
            feats,
            error_column="err",
            alpha=ALPHA,
            min_support=None,
            max_level=max_level,
            top_k=TOP_K,
            prune=prune,
        )
        add_significance(con, m, result)
        times.append(time.perf_counter() - start)
        con.close()
    t = result.top_slices
    top = [
        [slice_key(p), int(s), float(e), float(sc)]
        for p, s, e, sc in zip(t["predicates"], t["size"], t["errors"], t["score"])
    ]
    return {
        "seconds": times,
        "peak_rss_mb": peak_rss_mb(),
        "top": top,
        "levels": result.candidates_per_level,
        "min_support": result.min_support,
    }


def worker_grouping_sets(db: str, m: int, runs: int) -> dict:
    """Every conjunction of up to MAX_LEVEL predicates with one GROUPING SETS query."""
    import duckdb

    feats = [f"f{j}" for j in range(m)]
    sets = [c for level in range(1, MAX_LEVEL + 1) for c in itertools.combinations(feats, level)]
    cols = ", ".join(feats)
    sql = (
        f"WITH t AS (SELECT count(*) AS n, avg(err) AS ebar FROM d{m}), "
        f"g AS (SELECT grouping_id({cols}) AS gid, {cols}, count(*) AS size, sum(err) AS errors "
        f"FROM d{m} GROUP BY GROUPING SETS ({', '.join('(' + ', '.join(c) + ')' for c in sets)})) "
        f"SELECT * FROM (SELECT g.*, ? * ((errors / size) / t.ebar - 1) - (1 - ?) * (t.n / size - 1) AS score "
        f"FROM g, t WHERE size >= CAST(floor(? * t.n) AS BIGINT)) WHERE score > 0 "
        f"ORDER BY score DESC LIMIT ?"
    )
    times, rows = [], []
    for _ in range(runs):
        con = duckdb.connect(db, read_only=True)
        start = time.perf_counter()
        rows = con.execute(sql, [ALPHA, ALPHA, SUPPORT, TOP_K]).fetchall()
        times.append(time.perf_counter() - start)
        con.close()
    top = []
    for r in rows:
        gid = r[0]
        preds = {f: r[1 + j] for j, f in enumerate(feats) if not (gid >> (m - 1 - j)) & 1}
        top.append([slice_key(preds), int(r[1 + m]), float(r[2 + m]), float(r[-1])])
    return {"seconds": times, "peak_rss_mb": peak_rss_mb(), "top": top, "sets": len(sets)}


def worker_package(db: str, m: int, max_level: int, mem_gb: float) -> dict:
    import duckdb
    import numpy as np

    con = duckdb.connect(db, read_only=True)
    cols = ", ".join(f"coalesce(f{j}, -1) AS f{j}" for j in range(m))
    arrays = con.execute(f"SELECT {cols}, err FROM d{m}").fetchnumpy()
    con.close()
    x = np.column_stack([np.asarray(arrays[f"f{j}"], dtype=np.int64) for j in range(m)])
    errors = np.asarray(arrays["err"], dtype=np.float64)
    del arrays
    # cap the address space from here on (what is mapped now plus the budget)
    vm = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            vm = int(line.split()[1]) * 1024
    cap = vm + int(mem_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import warnings

    from sliceline import Slicefinder

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sf = Slicefinder(alpha=ALPHA, k=TOP_K, max_l=max_level, min_sup=SUPPORT, verbose=False)
            sf.fit(x, errors)
    except MemoryError:
        return {"oom": True, "seconds": [time.perf_counter() - start], "peak_rss_mb": peak_rss_mb(), "mem_gb": mem_gb}
    seconds = time.perf_counter() - start
    top = []
    for row, st in zip(sf.top_slices_, sf.top_slices_statistics_):
        preds = {f"f{j}": (None if v == -1 else int(v)) for j, v in enumerate(row) if v is not None}
        top.append([slice_key(preds), int(st["slice_size"]), float(st["sum_slice_error"]), float(st["slice_score"])])
    return {"oom": False, "seconds": [seconds], "peak_rss_mb": peak_rss_mb(), "top": top, "mem_gb": mem_gb}


def run_worker(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode:
        if spec["kind"] == "package" and ("MemoryError" in out.stderr or out.returncode in (-9, 137)):
            return {"oom": True, "seconds": [], "peak_rss_mb": None, "mem_gb": spec["mem_gb"]}
        raise SystemExit(f"worker {spec} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- comparison and report ------------------------------------------------------------


def same_ranked(a: list, b: list) -> bool:
    """Identical top-k: same slices in the same order, sizes equal, sums and scores to 1e-9."""
    return len(a) == len(b) and all(
        x[0] == y[0]
        and x[1] == y[1]
        and math.isclose(x[2], y[2], rel_tol=1e-9)
        and math.isclose(x[3], y[3], rel_tol=1e-9)
        for x, y in zip(a, b)
    )


def same_up_to_ties(ours: list, other: list, k: int) -> bool:
    """``other`` has our slices with the same statistics; anything more ties with our k-th."""
    by = {json.dumps(x[0]): x for x in other}
    for key, size, err, score in ours:
        o = by.get(json.dumps(key))
        if o is None or o[1] != size or not math.isclose(o[3], score, rel_tol=1e-9):
            return False
    mine = {json.dumps(x[0]) for x in ours}
    kth = ours[-1][3] if len(ours) == k else None
    return all(json.dumps(x[0]) in mine or (kth is not None and math.isclose(x[3], kth, rel_tol=1e-9)) for x in other)


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"


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
    import duckdb

    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, DuckDB {duckdb.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--features", type=int, nargs="+", default=[8, 10], choices=sorted(CARDS))
    parser.add_argument("--runs", type=int, default=5, help="runs of the pruned search")
    parser.add_argument("--baseline-runs", type=int, default=1, help="runs of the unpruned and grouping-sets searches")
    parser.add_argument(
        "--package-mem-gb", type=float, default=6.0, help="address-space budget of the sliceline package (default 6 GB)"
    )
    parser.add_argument("--skip-package", action="store_true")
    parser.add_argument("--skip-baselines", action="store_true", help="only the pruned search")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        spec = json.loads(args.worker)
        kind = spec.pop("kind")
        result = {"find": worker_find, "gs": worker_grouping_sets, "package": worker_package}[kind](**spec)
        print(json.dumps(result))
        return

    print(f"machine: {machine()}")
    print(f"search: L={MAX_LEVEL}, k={TOP_K}, alpha={ALPHA}, min_support=n/100; seconds are min / median / max")
    report = []
    for rows in args.rows:
        t0 = time.perf_counter()
        db = str(data_file(rows))
        print(f"\n{rows:,} rows (data ready in {time.perf_counter() - t0:.1f} s)")
        for m in args.features:
            entry = {"rows": rows, "features": m}
            entry["pruned"] = pruned = run_worker({"kind": "find", "db": db, "m": m, "prune": True, "runs": args.runs})
            if not args.skip_baselines:
                entry["unpruned"] = run_worker(
                    {"kind": "find", "db": db, "m": m, "prune": False, "runs": args.baseline_runs}
                )
                entry["grouping_sets"] = run_worker({"kind": "gs", "db": db, "m": m, "runs": args.baseline_runs})
                entry["identical_to_unpruned"] = same_ranked(pruned["top"], entry["unpruned"]["top"])
                entry["grouping_sets_agrees"] = same_up_to_ties(pruned["top"], entry["grouping_sets"]["top"], TOP_K)
            package_level = {100_000: MAX_LEVEL, 1_000_000: 2}.get(rows)
            if package_level and not args.skip_package:
                pk = run_worker(
                    {"kind": "package", "db": db, "m": m, "max_level": package_level, "mem_gb": args.package_mem_gb}
                )
                pk["max_level"] = package_level
                if not pk.get("oom"):
                    if package_level == MAX_LEVEL:
                        pk["agrees"] = same_up_to_ties(pruned["top"], pk["top"], TOP_K)
                    else:  # compare with our search at the same level
                        ours = run_worker(
                            {"kind": "find", "db": db, "m": m, "prune": True, "runs": 1, "max_level": package_level}
                        )
                        pk["agrees"] = same_up_to_ties(ours["top"], pk["top"], TOP_K)
                entry["package"] = pk
            report.append(entry)
            print_entry(entry)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "discovery.json").write_text(
        json.dumps(
            {"machine": machine(), "alpha": ALPHA, "top_k": TOP_K, "max_level": MAX_LEVEL, "results": report}, indent=2
        )
    )
    print(f"\nwritten: {OUTPUT / 'discovery.json'}")


def print_entry(e: dict) -> None:
    p = e["pruned"]
    print(f"  {e['features']} features")
    print(f"    {'pruned find_slices':28} {spread(p['seconds']):>26} s   peak {p['peak_rss_mb']:,.0f} MB")
    if "unpruned" in e:
        u, g = e["unpruned"], e["grouping_sets"]
        print(
            f"    {'unpruned find_slices':28} {spread(u['seconds']):>26} s   peak {u['peak_rss_mb']:,.0f} MB   "
            f"identical top-{TOP_K}: {e['identical_to_unpruned']}"
        )
        print(
            f"    {'grouping sets (' + str(g['sets']) + ' sets)':28} {spread(g['seconds']):>26} s   "
            f"peak {g['peak_rss_mb']:,.0f} MB   same top-{TOP_K}: {e['grouping_sets_agrees']}"
        )
    if "package" in e:
        k = e["package"]
        label = f"sliceline package (L={k['max_level']})"
        if k.get("oom"):
            print(f"    {label:28} {'OOM':>26}     (address space capped at {k['mem_gb']:g} GB)")
        else:
            agree = "" if k.get("agrees") is None else f"   same top-{TOP_K}: {k['agrees']}"
            print(f"    {label:28} {spread(k['seconds']):>26} s   peak {k['peak_rss_mb']:,.0f} MB{agree}")
    levels = {c["level"]: c["evaluated"] for c in p["levels"]}
    line = "    candidates evaluated per level, pruned: " + ", ".join(f"L{lv} {n:,}" for lv, n in levels.items())
    if "unpruned" in e:
        full = {c["level"]: c["evaluated"] for c in e["unpruned"]["levels"]}
        line += "; unpruned: " + ", ".join(f"L{lv} {n:,}" for lv, n in full.items())
    print(line)


if __name__ == "__main__":
    main()

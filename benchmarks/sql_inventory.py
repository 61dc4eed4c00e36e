"""Every SQL statement the engine issues for the main analyses, and which of them
SQLGlot translates to Spark SQL as they are: the worklist of the Spark engine.

    .venv/bin/python benchmarks/sql_inventory.py [--db data/sliceboard.duckdb]

Runs the analyses on the demo database through a connection that records each
statement, then parses every statement (DuckDB dialect), looks for constructs that
do not exist in Spark or that SQLGlot is known to translate wrongly, and tries the
translation. Prints one line per construct with how many statements use it and from
which analyses, and the statements SQLGlot cannot translate at all.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import sqlglot
from sqlglot import exp

ROOT = Path(__file__).resolve().parent.parent

# Functions with no Spark counterpart of the same name and meaning (or known to be
# mistranslated: see issue 8).
DUCKDB_ONLY_FUNCTIONS = {
    "HASH",
    "QUANTILE_CONT",
    "QUANTILE_DISC",
    "TIME_BUCKET",
    "ARG_MAX",
    "ARG_MIN",
    "STRING_AGG",
    "LIST",
    "ARRAY_AGG",
    "REGEXP_FULL_MATCH",
    "EPOCH",
    "READ_PARQUET",
    "READ_CSV",
    "SHA256",
    "APPROX_QUANTILE",
}


class Recorder:
    """A DuckDB connection that keeps every statement it executes."""

    def __init__(self, con, log: list, label: list):
        self._con, self._log, self._label = con, log, label

    def execute(self, sql, params=None):
        self._log.append((self._label[0], sql))
        return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    def __getattr__(self, name):
        return getattr(self._con, name)


def constructs(sql: str) -> set[str]:
    """Names of the constructs in ``sql`` that need a rewrite for Spark."""
    found = set()
    if " USING SAMPLE " in sql:  # DuckDB's sampling clause, which SQLGlot does not parse
        found.add("USING SAMPLE (DuckDB sampling)")
        sql = sql.split(" USING SAMPLE ")[0]
    if "quantile_disc(" in sql:  # exact quantiles for a list of fractions at once
        found.add("function quantile_disc() (list of fractions)")
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return found | {"(not parsed)"}
    for tree in trees:
        if tree is None:
            continue
        for node in tree.walk():
            if isinstance(node, exp.Anonymous) and node.name.upper() in DUCKDB_ONLY_FUNCTIONS:
                found.add(f"function {node.name.lower()}()")
            elif isinstance(node, exp.Func) and node.sql_name().upper() in DUCKDB_ONLY_FUNCTIONS:
                found.add(f"function {node.sql_name().lower()}()")
            if isinstance(node, exp.Group) and node.args.get("all"):
                found.add("GROUP BY ALL")
            if isinstance(node, exp.GroupingSets):
                found.add("GROUPING SETS")
            if isinstance(node, exp.Qualify):
                found.add("QUALIFY")
            if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
                found.add("CTE MATERIALIZED hint")
            if isinstance(node, exp.TableSample):
                found.add("USING SAMPLE")
            if isinstance(node, exp.Filter):
                found.add("aggregate FILTER (WHERE ...)")
            if isinstance(node, exp.Create) and node.args.get("kind") == "TABLE":
                found.add("CREATE TEMP TABLE")
            if isinstance(node, exp.Placeholder):
                found.add("? parameters")
    return found


def run_analyses(con, log: list) -> None:
    from analysis import get_project
    from analysis.compare.comparison import Side, compare
    from analysis.discovery.run import discover
    from analysis.metrics.sql import VERSION, compute_metrics
    from analysis.overview import overview_table
    from analysis.reports.fingerprint import fingerprint
    from analysis.slices import parse_slice
    from analysis.slices.breakdown import breakdown, leaderboard
    from analysis.slices.buckets import bucket_counts, examples
    from analysis.slices.metrics import slice_metrics
    from analysis.store.scope import Scope
    from analysis.valsets import evaluate

    label = [""]
    rec = Recorder(con, log, label)
    project = get_project(con, "lending-demo")
    v1 = Scope.of(versions="credit-v1")
    east = parse_slice("region = east AND age < 30")
    steps = [
        ("overview", lambda: overview_table(rec, project)),
        ("metrics from the log", lambda: compute_metrics(rec, project, group_by=[VERSION], source="log")),
        ("slice metrics", lambda: slice_metrics(rec, project, east, v1)),
        ("breakdown", lambda: breakdown(rec, project, "income", v1)),
        ("leaderboard", lambda: leaderboard(rec, project, v1)),
        ("buckets", lambda: bucket_counts(rec, project, "region", v1, east)),
        ("examples", lambda: examples(rec, project, v1, east, sort_by="score", page=2)),
        ("discovery", lambda: discover(rec, project, v1, top_k=5)),
        (
            "comparison, paired",
            lambda: compare(rec, project, Side("credit-v1", "production"), Side("credit-v3", "shadow"), discovered=2),
        ),
        (
            "comparison, unpaired",
            lambda: compare(rec, project, Side("credit-v1"), Side("credit-v2"), pair=False, discovered=0),
        ),
        ("validation sets", lambda: evaluate(rec, project)),
        ("report fingerprint", lambda: fingerprint(rec, project)),
    ]
    for name, step in steps:
        label[0] = name
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - an inventory reports, it does not stop
            print(f"  ({name} failed: {type(exc).__name__}: {exc})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=str(ROOT / "data" / "sliceboard.duckdb"))
    args = parser.parse_args()
    from analysis import Store

    log: list[tuple[str, str]] = []
    with Store(args.db).read() as con:
        run_analyses(con, log)
    by_construct: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    untranslated = []
    for analysis, sql in log:
        for c in constructs(sql):
            by_construct[c][analysis] += 1
        try:
            sqlglot.transpile(
                sql.split(" USING SAMPLE ")[0], read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE
            )
        except Exception as exc:  # noqa: BLE001
            untranslated.append((analysis, type(exc).__name__, str(exc).splitlines()[0][:120]))
    print(f"{len(log)} statements from {len({a for a, _ in log})} analyses")
    print(f"{'construct':34} {'statements':>10}  analyses")
    for name, counter in sorted(by_construct.items(), key=lambda kv: -sum(kv[1].values())):
        print(f"{name:34} {sum(counter.values()):>10}  {', '.join(sorted(counter))}")
    print(f"\nSQLGlot could not translate {len(untranslated)} statements:")
    for analysis, kind, message in untranslated[:30]:
        print(f"  {analysis}: {kind}: {message}")


if __name__ == "__main__":
    main()

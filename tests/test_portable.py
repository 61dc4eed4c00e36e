"""Every statement the read-side analyses issue has a faithful Spark translation.

The analyses run on the demo through a connection that records each statement; each
one that Spark would answer (it reads the log, not only local curation tables) must
translate with SQLGlot plus analysis.engines.portable's rewrites and be free of constructs
that are banned or unhandled (DuckDB-only functions, QUALIFY, UNPIVOT, slicing,
approximate statistics, multi-argument grouping(), DuckDB's sampling clause). A new
query that breaks this fails here, without a Spark at hand."""

from __future__ import annotations

import pytest

from analysis import Store, get_project
from analysis.engines.portable import spark_problems, to_spark
from analysis.engines.spark import is_local_table, spark_tables


class Recorder:
    """A DuckDB connection that keeps every statement it executes."""

    def __init__(self, con):
        self._con, self.statements = con, []

    def execute(self, sql, params=None):
        self.statements.append(sql)
        return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    def __getattr__(self, name):
        return getattr(self._con, name)


def analyses(project):
    from analysis.compare.comparison import Side, compare
    from analysis.compare.gate import run_gate
    from analysis.discovery.run import discover
    from analysis.discovery.tree import error_tree
    from analysis.drift import drift_table
    from analysis.estimation import ReferenceChoice, resolve_reference
    from analysis.estimation.run import estimate
    from analysis.metrics.sql import VERSION, compute_metrics
    from analysis.overview import daily_series, overview_table, project_summary
    from analysis.slices import parse_slice
    from analysis.slices.breakdown import breakdown, leaderboard
    from analysis.slices.buckets import bucket_counts, examples
    from analysis.slices.column_profile import histogram, value_counts
    from analysis.slices.grouping import CutSample
    from analysis.slices.metrics import slice_metrics
    from analysis.slices.saved import slice_by_version, slice_over_time
    from analysis.store.scope import Scope
    from analysis.valsets import evaluate

    v1 = Scope.of(versions="credit-v1")
    east = parse_slice("region = east AND age < 30")
    production, shadow = Side("credit-v1", "production"), Side("credit-v3", "shadow")
    two_weeks = ReferenceChoice.of("2026-09-02", "2026-09-15")

    def drift(con, slice_, by):
        reference = resolve_reference(con, project, "credit-v1", "production", two_weeks)
        return drift_table(con, project, reference, slice_, by)

    return {
        "summary": lambda con: project_summary(con, project),
        "overview": lambda con: overview_table(con, project),
        "daily series": lambda con: daily_series(con, project, v1),
        "metrics from the log": lambda con: compute_metrics(con, project, group_by=[VERSION], source="log"),
        "slice metrics": lambda con: slice_metrics(con, project, east, v1),
        "value counts": lambda con: value_counts(con, project, "region", v1),
        "histogram": lambda con: histogram(con, project, "income", v1),
        "breakdown by a number": lambda con: breakdown(con, project, "income", v1),
        # Cut points from a sample, as beyond a million rows.
        "breakdown by a number, cut at a sample's quantiles": lambda con: breakdown(
            con, project, "income", v1, sample=CutSample(exact_up_to=1000)
        ),
        "breakdown by a category": lambda con: breakdown(con, project, "region", v1),
        "leaderboard": lambda con: leaderboard(con, project, v1),
        "error buckets": lambda con: bucket_counts(con, project, "region", v1, east),
        "examples": lambda con: examples(con, project, v1, east, sort_by="score", page=2),
        "slice over time": lambda con: slice_over_time(con, project, east, v1),
        "slice by version": lambda con: slice_by_version(con, project, east),
        "discovery": lambda con: discover(con, project, v1, top_k=5),
        "discovery of a cost": lambda con: discover(con, project, v1, error="loss", top_k=3, max_level=2),
        "error tree (sampled)": lambda con: error_tree(con, project, v1, sample=20_000, max_depth=2),
        "comparison, paired": lambda con: compare(con, project, production, shadow, discovered=2),
        "comparison, unpaired": lambda con: compare(
            con, project, Side("credit-v1"), Side("credit-v2"), pair=False, discovered=0
        ),
        "gate": lambda con: run_gate(con, project, production, shadow),
        "validation sets": lambda con: evaluate(con, project),
        "estimate timeline": lambda con: estimate(con, project, "credit-v1", slice_=east, by="week"),
        # By week the window ends mid-week: the rest of that week is filtered out.
        "drift by week in a slice": lambda con: drift(con, east, "week"),
        "drift by day": lambda con: drift(con, parse_slice(), "day"),
    }


@pytest.fixture(scope="module")
def recorded(demo_db, tmp_path_factory):
    from analysis.slices import parse_slice
    from analysis.store.scope import Scope
    from analysis.valsets import Selection, commit, create_set, promote

    path = tmp_path_factory.mktemp("portable") / "demo.duckdb"
    path.write_bytes(demo_db.read_bytes())
    store = Store(path)
    with store.write() as con:
        project = get_project(con, "lending-demo")
        create_set(con, project, "east", criteria=["accuracy >= 0.8"])
        promote(
            con, project, "east", Selection(scope=Scope.of(versions="credit-v1"), slice_=parse_slice("region = east"))
        )
        commit(con, project, "east", "the east region")
    with store.read() as con:
        project = get_project(con, "lending-demo")
        out = {}
        for name, run in analyses(project).items():
            recorder = Recorder(con)
            run(recorder)
            out[name] = recorder.statements
    return out


def test_every_statement_spark_answers_translates_faithfully(recorded):
    on_spark = 0
    problems = []
    for name, statements in recorded.items():
        assert statements, name
        for sql in statements:
            tables = spark_tables(sql)
            if tables and all(is_local_table(t) for t in tables):
                continue  # curation data: the local DuckDB answers it
            on_spark += 1
            problems += [f"{name}: {p}: {sql[:160]}" for p in spark_problems(sql)]
    assert on_spark > 100
    assert not problems, "\n".join(problems)


def test_the_sampled_statements_take_spark_s_sampling_form(recorded):
    sampled = [sql for statements in recorded.values() for sql in statements if "USING SAMPLE" in sql]
    assert sampled  # the error tree was sampled
    for sql in sampled:
        spark = to_spark(sql)
        assert "USING SAMPLE" not in spark.upper()
        assert "PERCENT) REPEATABLE (7) AS encoded" in spark  # the error tree samples an aliased subquery


def test_the_cut_points_sample_examples_by_key(recorded):
    """Beyond a million rows the cut points read the examples whose key is below a bound:
    a plain comparison, the same rows on every run and engine (no block sample)."""
    cuts = [
        sql
        for statements in recorded.values()
        for sql in statements
        if "quantile_disc" in sql and "example_key < ?" in sql
    ]
    assert cuts


@pytest.mark.parametrize(
    "sql, problem",
    [
        ("SELECT hash(example_id) % 10 FROM log_1", "DuckDB-only function hash()"),
        ("SELECT time_bucket(INTERVAL 1 DAY, ts) FROM log_1", "DuckDB-only function date_bin()"),
        ("SELECT * FROM log_1 QUALIFY row_number() OVER (ORDER BY ts) = 1", "QUALIFY"),
        ("UNPIVOT log_1 ON a, b INTO NAME k VALUE v", "UNPIVOT"),
        ("SELECT example_id[1:3] FROM log_1", "slicing"),
        ("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY score) FROM log_1", "approximate PERCENTILE_APPROX"),
        ("SELECT quantile_cont(score, 0.5) FROM log_1", "not a Spark form"),
        ("SELECT * FROM read_parquet('/etc/x.parquet')", "read_parquet"),
    ],
)
def test_banned_constructs_are_named(sql, problem):
    assert any(problem in p for p in spark_problems(sql)), spark_problems(sql)


def test_both_engines_answer_through_one_connection_surface(tmp_path):
    """The analyses take a connection: DuckDB's, or the Spark one that translates their SQL.
    Both have what analysis.engines.connection declares, and so do their results."""
    import duckdb

    from analysis.engines.connection import Connection, Result
    from analysis.engines.spark import SparkConnection, SparkResult

    con = duckdb.connect(str(tmp_path / "c.duckdb"))
    assert isinstance(con, Connection)
    assert isinstance(con.execute("SELECT ? AS x", [1]), Result)
    missing = [
        name
        for protocol, cls in ((Connection, SparkConnection), (Result, SparkResult))
        for name in (n for n in vars(protocol) if not n.startswith("_"))
        if not hasattr(cls, name)
    ]
    assert not missing

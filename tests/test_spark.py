"""The same analyses on embedded DuckDB and on a local Spark (PySpark, local[2]) give
the same numbers, on a generated log with planted slices, three versions and late
labels. Spark reads the log as Parquet; every statement is the engine's DuckDB SQL,
translated (analysis.engines.portable). Skips only when Java is missing (bash tests/run.sh
installs it and PySpark); CI has both.

Covered: the Overview (rollup), metrics from the log, one slice's metrics with
intervals, breakdowns by a category and by a number (quantile bins), the leaderboard,
the validation-set matrix (its members stay local and are shipped to Spark for the
join), slice discovery (SliceLine), the comparison of two versions, paired (the
bootstrap draws the same buckets of example keys on both engines) and unpaired, label-free
estimates, and input drift (by week in a slice)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from analysis import Store, get_project
from analysis.compare.comparison import Side, compare
from analysis.demo import build_demo
from analysis.discovery.run import discover
from analysis.drift import drift_table
from analysis.engines.portable import to_spark
from analysis.estimation import ReferenceChoice, resolve_reference
from analysis.estimation.run import estimate
from analysis.metrics.sql import VERSION, compute_metrics
from analysis.overview import overview_table
from analysis.slices import parse_slice
from analysis.slices.breakdown import breakdown, leaderboard
from analysis.slices.metrics import slice_metrics
from analysis.store.example_key import example_key, example_key_sql
from analysis.store.scope import Scope
from analysis.valsets import Selection, commit, create_set, evaluate, promote


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (bash tests/run.sh installs it)")
    from pyspark.sql import SparkSession

    from analysis.engines.spark import SparkConnection, register_log

    folder = tmp_path_factory.mktemp("spark")
    store = Store(folder / "demo.duckdb")
    build_demo(store, n_days=45, requests_per_day=300)  # ~18,000 predictions, 3 versions, late labels
    with store.write() as con:
        project = get_project(con, "lending-demo")
        create_set(con, project, "east", criteria=["accuracy >= 0.8"])
        promote(
            con, project, "east", Selection(scope=Scope.of(versions="credit-v1"), slice_=parse_slice("region = east"))
        )
        commit(con, project, "east", "the east region")
        # The stored log's labeled rows have their own table (a lake's are read from the log).
        tables = (project.log_table, project.labeled_table, project.rollup_table, project.ranks_table)
        for table in tables:
            con.execute(f"COPY \"{table}\" TO '{folder / (table + '.parquet')}' (FORMAT parquet)")
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("sliceboard-parity")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        with store.read() as local:
            # Curation data (here the validation set) stays local; the log is on Spark.
            remote = SparkConnection(spark, local)
            for table in tables:
                register_log(remote, table, str(folder / (table + ".parquet")))
            yield local, remote, project
    finally:
        spark.stop()


pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
V1 = Scope.of(versions="credit-v1")
REFERENCE = ReferenceChoice.of("2026-09-17", "2026-09-30")
PRODUCTION, CANARY, SHADOW = Side("credit-v1", "production"), Side("credit-v2", "canary"), Side("credit-v3", "shadow")
ANALYSES = {
    "overview": lambda con, p: overview_table(con, p),
    "metrics from the log": lambda con, p: compute_metrics(con, p, group_by=[VERSION], source="log"),
    "slice metrics": lambda con, p: slice_metrics(con, p, parse_slice("region = east AND age < 30"), V1).table,
    "slice comparison": lambda con, p: slice_metrics(con, p, parse_slice("channel = partner_api"), V1).comparison,
    "breakdown by a category": lambda con, p: breakdown(con, p, "region", V1),
    "breakdown by a number": lambda con, p: breakdown(con, p, "income", V1, bins=5),
    "leaderboard": lambda con, p: leaderboard(con, p, V1),
    "validation sets": lambda con, p: evaluate(con, p),
    # The same top slices with the same sizes, errors, scores, intervals and q-values.
    "discovery": lambda con, p: discover(con, p, V1, top_k=5).slices.drop(columns=["slice"]),
    "discovery of a cost expression": lambda con, p: discover(
        con, p, V1, error="CASE WHEN prediction AND NOT label THEN loan_amount ELSE 0 END", top_k=5, max_level=2
    ).slices.drop(columns=["slice"]),
    # Paired (the shadow scored production's applications): McNemar, the bootstrap over
    # the same buckets of example keys, and every slice's delta with its q-value; each
    # comparison computed once, its overall figures and its slices both checked.
    "paired comparison": lambda con, p: overall_and_slices(compare(con, p, PRODUCTION, SHADOW)),
    "unpaired comparison": lambda con, p: overall_and_slices(compare(con, p, PRODUCTION, CANARY)),
    # Label-free estimates: the same rows in the same order, hence the same folds.
    "estimate timeline": lambda con, p: estimate(
        con, p, "credit-v1", slice_=parse_slice("region = east"), by="week", choice=REFERENCE
    ).frame(),
    # Drift: the same distances, statistics, p- and q-values and data-quality figures.
    "drift by week": lambda con, p: drift(con, p, parse_slice("region = east"), "week"),
}


def overall_and_slices(comparison) -> tuple[pd.DataFrame, pd.DataFrame]:
    return comparison.overall, comparison.slices.drop(columns=["slice"])


def drift(con, project, slice_, by) -> pd.DataFrame:
    """credit-v1's drift in production against REFERENCE, one row per period and feature."""
    reference = resolve_reference(con, project, "credit-v1", "production", REFERENCE, need_labels=False)
    return drift_table(con, project, reference, slice_, by).frame()


@pytest.mark.parametrize("name", list(ANALYSES))
def test_spark_gives_duckdbs_numbers(engines, name):
    local, remote, project = engines
    on_duckdb, on_spark = (ANALYSES[name](con, project) for con in (local, remote))
    pairs = zip(on_spark, on_duckdb) if isinstance(on_duckdb, tuple) else [(on_spark, on_duckdb)]
    for spark_frame, duckdb_frame in pairs:
        spark_frame, duckdb_frame = spark_frame.reset_index(drop=True), duckdb_frame.reset_index(drop=True)
        assert len(duckdb_frame) and list(spark_frame.columns) == list(duckdb_frame.columns)
        pd.testing.assert_frame_equal(spark_frame, duckdb_frame, rtol=1e-9, atol=1e-12, check_dtype=False)


def test_the_rewrites_spark_needs():
    # Exact quantiles for several fractions: one SQL-standard PERCENTILE_DISC each (SQLGlot alone
    # would turn them into the approximate PERCENTILE_APPROX).
    sql = to_spark('SELECT quantile_disc(CAST("x" AS DOUBLE), [?, ?]) FROM t')
    assert sql.count("PERCENTILE_DISC(?) WITHIN GROUP (ORDER BY CAST(`x` AS DOUBLE))") == 2
    assert "APPROX" not in sql
    # grouping() of several columns: Spark's takes one.
    assert "(GROUPING(b) * 1 + GROUPING(a) * 2)" in to_spark("SELECT grouping(a, b) FROM t GROUP BY ROLLUP (a, b)")
    # The example key reads hexadecimal digits: DuckDB casts '0x…', Spark has conv().
    key = to_spark(f"SELECT {example_key_sql('example_id')} FROM t")
    assert "CAST(CONV(SUBSTRING(MD5(example_id), 1, 15), 16, 10) AS BIGINT)" in key


def test_the_example_key_is_the_same_number_on_both_engines(engines):
    local, remote, _ = engines
    ids = ["app-000001", "", "héllo wörld", "'; DROP TABLE x; --", "\\", "x" * 5000, "日本語"]
    frame = pd.DataFrame({"example_id": ids})
    remote.register("sb_keys", frame)
    sql = f"SELECT example_id, {example_key_sql('example_id')} AS k FROM sb_keys ORDER BY example_id"
    on_spark = dict(remote.execute(sql).fetchall())
    on_duckdb = dict(local.execute(sql.replace("sb_keys", "frame")).fetchall())
    assert on_spark == on_duckdb == {i: example_key(i) for i in ids}


# -- a lake attached to a project whose engine is Spark ------------------------------------------


@pytest.fixture(scope="module")
def lake(engines, tmp_path_factory):
    """A hive-partitioned lake (model_version=/day=) attached with [engine] spark in its mapping."""
    from test_external import MAPPING, frame, write_lake

    from analysis.ingest.external import attach_parquet
    from analysis.ingest.mapping import mapping_to_toml, parse_mapping

    folder = tmp_path_factory.mktemp("lake")
    write_lake(frame(n=1500), folder / "lake")
    store = Store(folder / "lake.duckdb")
    mapping = parse_mapping(
        mapping_to_toml(MAPPING.with_(version="model_version"))
        + '\n[engine]\nname = "spark"\nspark_remote = "local[2]"\n'
    )
    with store.write() as con:
        attach_parquet(con, str(folder / "lake"), project="lake", mapping=mapping)
    return store


LAKE_ANALYSES = {
    "overview": lambda con, p: overview_table(con, p),
    "slice metrics": lambda con, p: (
        slice_metrics(con, p, parse_slice("city = ber AND tier = free"), Scope.of(versions="v2")).table
    ),
    "breakdown": lambda con, p: breakdown(con, p, "city"),
    "paired comparison": lambda con, p: overall_and_slices(compare(con, p, Side("v1"), Side("v2"), discovered=2)),
}


def test_the_projects_engine_answers_from_the_lake_with_duckdbs_numbers(lake):
    from analysis.engines.settings import EngineSettings, engine_connection, get_settings

    with lake.read() as con:
        project = get_project(con, "lake")
        assert get_settings(con, project) == EngineSettings("spark", "local[2]")
        with engine_connection(con, project) as on_spark:
            assert type(on_spark).__name__ == "SparkConnection"
            for name, analysis in LAKE_ANALYSES.items():
                expected, got = analysis(con, project), analysis(on_spark, project)
                pairs = zip(got, expected) if isinstance(expected, tuple) else [(got, expected)]
                for spark_frame, duckdb_frame in pairs:
                    spark_frame, duckdb_frame = spark_frame.reset_index(drop=True), duckdb_frame.reset_index(drop=True)
                    assert len(duckdb_frame), name
                    pd.testing.assert_frame_equal(
                        spark_frame, duckdb_frame, rtol=1e-9, atol=1e-12, check_dtype=False, obj=name
                    )


def test_the_lakes_rollup_is_built_on_spark_with_duckdbs_numbers(lake):
    """Attach (and refresh) aggregate the lake on the project's engine; the local store
    keeps the per-day figures. DuckDB building the same rollup gives the same rows."""
    from analysis.metrics.rollup import rebuild_all

    def dump(con, project) -> list[pd.DataFrame]:
        frames = []
        for table in (project.rollup_table, project.ranks_table):
            frame = con.execute(f'SELECT * FROM "{table}"').df()
            keys = [c for c in ("model_version", "stage", "day") if c in frame]
            frames.append(frame.sort_values(keys).reset_index(drop=True))
        return frames

    with lake.write() as con:
        project = get_project(con, "lake")
        built_on_spark = dump(con, project)
        con.execute("BEGIN TRANSACTION")
        rebuild_all(con, project)  # on DuckDB
        built_on_duckdb = dump(con, project)
        con.execute("ROLLBACK")
    assert len(built_on_spark[0]) > 10 and len(built_on_spark[1]) == 2
    for spark_frame, duckdb_frame in zip(built_on_spark, built_on_duckdb):
        pd.testing.assert_frame_equal(spark_frame, duckdb_frame, rtol=1e-9, check_dtype=False)


def test_the_cli_answers_on_the_projects_engine(lake, capsys):
    import json

    from analysis.cli.main import main

    args = [
        "compare",
        "--project",
        "lake",
        "--db",
        str(lake.path),
        "--baseline",
        "v1",
        "--candidate",
        "v2",
        "--discovered",
        "0",
        "--format",
        "json",
    ]
    assert main(args) == 0
    on_spark = json.loads(capsys.readouterr().out)
    assert main([*args, "--engine", "duckdb"]) == 0
    on_duckdb = json.loads(capsys.readouterr().out)
    assert on_spark.pop("engine")["name"] == "Spark (local[2])"
    assert on_duckdb.pop("engine")["name"] == "DuckDB"
    assert on_spark["method"] == on_duckdb["method"] and on_spark["method"].startswith("paired")
    for a, b in zip(on_spark["overall"] + on_spark["slices"], on_duckdb["overall"] + on_duckdb["slices"]):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
            else:
                assert a[key] == b[key], key


def test_the_app_says_spark_answered(lake, monkeypatch):
    from test_app import app_on, literal

    at = app_on(monkeypatch, lake.path, timeout=300)
    at.query_params["project"] = "lake"
    at.run()
    assert not at.exception
    assert any(literal(e.label).startswith("Engine: Spark (local[2])") for e in at.sidebar.expander)
    captions = [literal(c.value) for c in at.sidebar.caption]
    assert any(c.startswith("Answered by Spark (local[2]) in") for c in captions), captions


# The pages whose engine calls differ most (the analyses every page asks for are checked above).
@pytest.mark.parametrize("page", ["pages/slices.py", "pages/compare.py"])
def test_every_page_runs_on_spark(lake, monkeypatch, page):
    from test_app import app_on

    at = app_on(monkeypatch, lake.path, timeout=300)
    at.query_params["project"] = "lake"
    at.run()
    at.switch_page(page).run()
    assert not at.exception
    problems = [e.value for e in at.error if not e.value.startswith("**Gate:")]  # a failed gate is an answer
    assert not problems, problems


def test_sampled_cut_points_are_the_same_on_spark(engines):
    """Beyond a million rows the cut points come from a sample: the examples whose key
    is below a bound. Both engines draw the same rows, so the bins are equal."""
    from analysis.slices.grouping import CutSample

    local, remote, project = engines
    sample = CutSample(exact_up_to=1000, rows=2000)
    on_spark = breakdown(remote, project, "income", V1, bins=4, sample=sample)
    on_duckdb = breakdown(local, project, "income", V1, bins=4, sample=sample)
    assert len(on_duckdb) == 4
    assert list(on_spark["value"]) == list(on_duckdb["value"])
    assert list(on_spark["n_rows"]) == list(on_duckdb["n_rows"])

"""Product metrics: definitions checked before they are stored, computed per version
and stage in DuckDB, equal to pandas on the same rows."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import db_digest

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.metrics.product import ProductMetric, define_metric, delete_metric, list_metrics, product_metrics
from analysis.store.scope import Scope


@pytest.fixture()
def lending(tmp_path):
    frame = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(8)],
            "v": ["a"] * 4 + ["b"] * 4,
            "prediction": [0, 0, 1, 1, 0, 1, 0, 0],
            "label": [0, 1, 1, 0, 1, 1, 0, None],
            "revenue": [100.0, 0.0, 0.0, 0.0, 50.0, 0.0, 70.0, None],
            "loss": [0.0, 900.0, 0.0, 0.0, 400.0, 0.0, 0.0, None],
            "region": ["n", "s", "n", "s", "n", "s", "n", "s"],
        }
    )
    store = Store(tmp_path / "m.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="loans",
            mapping=Mapping(
                id="id",
                version="v",
                task="binary",
                prediction="prediction",
                label="label",
                positive_label="1",
                features=["region"],
                outcomes=["revenue", "loss"],
            ),
        )
    with store.read() as con:
        return store, get_project(con, "loans"), frame


DEFINITIONS = [
    ProductMetric("revenue", "sum(revenue)", "higher", "$", ",.0f"),
    ProductMetric("approval_rate", "avg((NOT prediction)::int)", "higher", "", ".1%"),
    ProductMetric("loss_from_false_approvals", "sum(loss) FILTER (WHERE NOT prediction AND label)", "lower", "$"),
    ProductMetric("net_per_application", "(sum(revenue) - sum(loss)) / count(*)", "higher", "$"),
]


def test_metrics_per_version_equal_pandas(lending):
    store, project, frame = lending
    with store.write() as con:
        for m in DEFINITIONS:
            define_metric(con, project, m)
        got = product_metrics(con, project).set_index("model_version")
    assert [m.name for m in DEFINITIONS] == [c for c in got.columns if c != "stage"]
    for version, rows in frame.groupby("v"):
        approved = rows.prediction == 0
        assert got.loc[version, "revenue"] == pytest.approx(rows.revenue.sum())
        assert got.loc[version, "approval_rate"] == pytest.approx(approved.mean())
        false_approvals = approved & (rows.label == 1)
        assert got.loc[version, "loss_from_false_approvals"] == pytest.approx(rows.loss[false_approvals].sum())
        assert got.loc[version, "net_per_application"] == pytest.approx(
            (rows.revenue.sum() - rows.loss.sum()) / len(rows)
        )
    assert DEFINITIONS[0].show(1234.0) == "$1,234" and DEFINITIONS[1].show(0.5) == "50.0%"
    with store.read() as con:
        one = product_metrics(con, project, Scope.of(versions="b"), names=["revenue"])
    assert one.values.tolist() == [["b", "production", 120.0]]


@pytest.mark.parametrize(
    "metric, message",
    [
        (ProductMetric("m", "(SELECT sum(loss) FROM log_1)"), "subquery"),
        (ProductMetric("m", "sum(loss) + (SELECT 1)"), "subquery"),
        (ProductMetric("m", "read_csv('/etc/passwd')"), "read_csv"),
        (ProductMetric("m", "count(*) FROM read_parquet('x')"), "not valid SQL|not allowed"),
        (ProductMetric("m", "sum(glob('*'))"), "glob"),
        (ProductMetric("m", "DROP TABLE log_1"), "not allowed"),
        (ProductMetric("m", "SET threads = 1"), "not allowed"),
        (ProductMetric("m", "sum(loss); DROP TABLE log_1"), "statements"),
        (ProductMetric("m", "loss"), "outside any aggregate"),
        (ProductMetric("m", "sum(sum(loss))"), "do not nest"),
        (ProductMetric("m", "sum(loss) OVER ()"), "window"),
        (ProductMetric("m", "sum(nope)"), "Unknown column 'nope'"),
        (ProductMetric("m", "min(region)"), "gives VARCHAR"),
        (ProductMetric("m", "sum(region)"), "does not apply"),
        (ProductMetric("bad name", "sum(loss)"), "name"),
        (ProductMetric("stage", "sum(loss)"), "grouping column"),
        (ProductMetric("m", "sum(loss)", direction="up"), "Direction"),
        (ProductMetric("m", "sum(loss)", format="%d"), "number format"),
    ],
)
def test_bad_definitions_are_named_and_not_stored(lending, metric, message):
    store, project, _ = lending
    before = db_digest(store.path)
    with store.write() as con:
        with pytest.raises(ConfigError, match=message):
            define_metric(con, project, metric)
    assert db_digest(store.path) == before


def test_redefining_keeps_the_place_and_deleting_removes(lending):
    store, project, _ = lending
    with store.write() as con:
        for m in DEFINITIONS:
            define_metric(con, project, m)
        define_metric(con, project, ProductMetric("approval_rate", "avg(prediction::int)", "lower"))
        assert [m.name for m in list_metrics(con, project)] == [m.name for m in DEFINITIONS]
        assert list_metrics(con, project)[1].expression == "avg(prediction::int)"
        delete_metric(con, project, "revenue")
        assert "revenue" not in [m.name for m in list_metrics(con, project)]
        with pytest.raises(ConfigError, match="no product metric named 'revenue'"):
            delete_metric(con, project, "revenue")


def test_a_mapping_defines_metrics_and_a_bad_one_rolls_the_ingest_back(tmp_path):
    from analysis.ingest.mapping import mapping_to_toml, parse_mapping

    frame = pd.DataFrame({"id": ["a", "b"], "v": "m", "prediction": [0, 1], "label": [1, 1], "loss": [5.0, 0.0]})
    toml = """
[columns]
id = "id"
version = "v"
prediction = "prediction"
label = "label"
outcomes = ["loss"]

[project]
task = "binary"
positive_label = "1"

[metrics.missed]
expression = "sum(loss) FILTER (WHERE NOT prediction AND label)"
direction = "lower"
unit = "$"
"""
    mapping = parse_mapping(toml)
    assert parse_mapping(mapping_to_toml(mapping)).metrics == mapping.metrics
    store = Store(tmp_path / "t.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame, project="t", mapping=mapping)
        project = get_project(con, "t")
        assert [m.to_dict() for m in list_metrics(con, project)] == [
            {
                "name": "missed",
                "expression": "sum(loss) FILTER (WHERE NOT prediction AND label)",
                "direction": "lower",
                "unit": "$",
                "format": ",.2f",
            }
        ]
        assert product_metrics(con, project)["missed"].tolist() == [5.0]
    before = db_digest(store.path)
    evil = parse_mapping(
        toml.replace(
            "sum(loss) FILTER (WHERE NOT prediction AND label)", "sum(loss) + (SELECT count(*) FROM sb_projects)"
        )
    )
    with store.write() as con:
        with pytest.raises(ConfigError, match="subquery"):
            ingest_predictions(con, frame.assign(id=["c", "d"]), project="t", mapping=evil)
    assert db_digest(store.path) == before
    with pytest.raises(ConfigError, match=r"\[metrics.x\] needs expression"):
        parse_mapping(toml + '\n[metrics.x]\nexpresion = "sum(loss)"\n')


def test_expressions_are_tried_where_files_are_out_of_reach(lending):
    """Behind the whitelist, the check runs the SQL in a DuckDB with external access
    locked off: even SQL that skipped the whitelist could not read a file there."""
    import duckdb

    from analysis.metrics.expressions import result_type

    store, project, _ = lending
    with store.read() as con:
        assert result_type(con, project, "sum(revenue)") == "DOUBLE"
        with pytest.raises(duckdb.Error, match="(?i)disabled|permission"):
            result_type(con, project, "(SELECT count(*) FROM read_csv('/etc/hostname'))")
        with pytest.raises(duckdb.Error):
            result_type(con, project, "(SELECT 1); SET enable_external_access = true; SELECT 1")


def test_a_metric_failing_on_the_rows_is_a_column_of_nan_with_its_reason(lending):
    """Data changes after a metric is defined: the metric that cannot take the new rows
    is reported with its reason; the others are computed as before."""
    store, project, frame = lending
    with store.write() as con:
        con.execute(f"UPDATE \"{project.log_table}\" SET region = '7'")
        define_metric(con, project, ProductMetric("revenue", "sum(revenue)"))
        define_metric(con, project, ProductMetric("coded", "sum(CAST(region AS INT))"))
        con.execute(f"UPDATE \"{project.log_table}\" SET region = 'NG' WHERE prediction_id = 'p5'")
        got = product_metrics(con, project)
    assert list(got.columns) == ["model_version", "stage", "revenue", "coded"]
    assert got.set_index("model_version")["revenue"].to_dict() == pytest.approx(
        frame.groupby("v")["revenue"].sum().to_dict()
    )
    assert got["coded"].isna().all()
    assert "Could not convert string 'NG'" in got.attrs["failed"]["coded"]

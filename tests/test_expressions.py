"""Row expressions written by users: what is accepted, what is refused (with a
message naming it), that what runs is the checked tree, and that refusing
changes nothing in the database."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from conftest import db_digest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.metrics.expressions import MAX_LENGTH, cost_expression, parse_row_expression, result_type
from analysis.store.time_bound import run_bounded

COLUMNS = ["prediction", "label", "score", "loss", "region", "weird col"]


@pytest.fixture(scope="module")
def project_store(tmp_path_factory):
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "v": "m",
            "label": [1, 0, 1, 0],
            "prediction": [0, 0, 1, 1],
            "score": [0.2, 0.1, 0.9, 0.7],
            "loss": [100.0, 0.0, 0.0, 5.0],
            "region": ["n", "s", "n", "s"],
        }
    )
    store = Store(tmp_path_factory.mktemp("expr") / "e.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="p",
            mapping=Mapping(
                id="id",
                version="v",
                task="binary",
                prediction="prediction",
                label="label",
                score="score",
                positive_label="1",
                features=["region"],
                outcomes=["loss"],
            ),
        )
    with store.read() as con:
        return store, get_project(con, "p")


@pytest.mark.parametrize(
    "text, sql",
    [
        (
            "CASE WHEN NOT prediction AND label THEN loss ELSE 0 END",
            'CASE WHEN NOT "prediction" AND "label" THEN "loss" ELSE 0 END',
        ),
        ("LOSS * 2 + abs(score - 0.5)", '"loss" * 2 + ABS("score" - 0.5)'),
        ("coalesce(loss, 0) / 1000", 'COALESCE("loss", 0) / 1000'),
        ("greatest(loss - 10, 0)", 'GREATEST("loss" - 10, 0)'),
        ("(region = 'n')::int", "CAST((\"region\" = 'n') AS INT)"),
        ("if(label, ln(score), 0)", 'CASE WHEN "label" THEN LN("score") ELSE 0 END'),
        ('"weird col" + 1', '"weird col" + 1'),
        ("loss BETWEEN 1 AND 10", '"loss" BETWEEN 1 AND 10'),
        ("region IN ('n', 's')", "\"region\" IN ('n', 's')"),
    ],
)
def test_accepted_expressions_run_as_generated_sql_with_quoted_columns(text, sql):
    expr = parse_row_expression(text, COLUMNS)
    assert expr.sql == sql
    assert set(expr.columns) <= set(COLUMNS)


@pytest.mark.parametrize(
    "text, message",
    [
        ("read_csv('/etc/passwd')", "read_csv"),
        ("read_parquet('x.parquet')", "read_parquet"),
        ("glob('*')", "glob"),
        ("(SELECT max(loss) FROM log_1)", "subquery"),
        ("loss + (SELECT 1)", "subquery"),
        ("sum(loss)", "aggregate sum"),
        ("row_number() OVER ()", "window"),
        ("current_setting('threads')", "current_setting"),
        ("getvariable('x')", "getvariable"),
        ("loss; DROP TABLE log_1", "not 2 statements"),
        ("?", "parameter"),
        ("t.loss", "name alone"),
        ("nope * 2", "Unknown column 'nope'"),
        ("CAST(loss AS STRUCT(a INT))", "plain number"),
        ("loss::DECIMAL(10, 2)", "plain number"),
        ("'unterminated", "not valid SQL"),
        ("", "empty"),
        ("loss + " * 400 + "1", "limit"),
    ],
)
def test_refused_expressions_name_what_is_wrong(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_row_expression(text, COLUMNS)


def test_costs_must_be_numbers_and_apply_to_the_columns(project_store):
    store, project = project_store
    with store.read() as con:
        assert set(cost_expression(con, project, "NOT prediction AND label").columns) == {"prediction", "label"}
        with pytest.raises(ConfigError, match="gives VARCHAR values"):
            cost_expression(con, project, "region")
        with pytest.raises(ConfigError, match="does not apply"):
            cost_expression(con, project, "region + 1")


def test_generated_sql_gives_the_numbers_pandas_gives(project_store):
    store, project = project_store
    expr = parse_row_expression(
        "CASE WHEN NOT prediction AND label THEN loss / 4 ELSE score END", ["prediction", "label", "loss", "score"]
    )
    with store.read() as con:
        got = [
            r[0] for r in con.execute(f'SELECT {expr.sql} FROM "{project.log_table}" ORDER BY prediction_id').fetchall()
        ]
    assert got == pytest.approx([25.0, 0.1, 0.9, 0.7])


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_refused_cleanly_or_runs_without_changing_anything(project_store, text):
    store, project = project_store
    before = db_digest(store.path)
    with store.read() as con:
        try:
            cost_expression(con, project, text)
        except ConfigError:
            pass
    assert db_digest(store.path) == before


# --- statements, the sandbox, nesting, failures on the data, the time bound (issue 20) ----------


@pytest.mark.parametrize(
    "text",
    [
        "LOAD httpfs",
        "INSTALL httpfs",
        "loss; LOAD httpfs",
        "PRAGMA version",
        "SET threads = 1",
        "ATTACH 'other.duckdb'",
        "COPY log_1 TO 'x.csv'",
        "current_setting('memory_limit')",
        "read_text('/etc/passwd')",
        "getenv('HOME')",
        "load_extension('x')",
    ],
)
def test_statements_settings_and_file_readers_are_refused(project_store, text):
    store, project = project_store
    before = db_digest(store.path)
    with store.read() as con:
        with pytest.raises(ConfigError):
            cost_expression(con, project, text)
    assert db_digest(store.path) == before


def test_the_sandbox_behind_the_whitelist_has_no_files_or_extensions(project_store):
    store, project = project_store
    with store.read() as con:
        for sql in ["(SELECT count(*) FROM read_csv('/etc/passwd'))", "(SELECT count(*) FROM glob('/etc/*'))"]:
            with pytest.raises(duckdb.Error, match="disabled|Permission"):
                result_type(con, project, sql)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 500 + "loss" + ")" * 500,
        "abs(" * 300 + "loss" + ")" * 300,
        "NOT " * 400 + "label",
        "loss + " * 150 + "1",
        "- " * 700 + "loss",
        "CASE WHEN " * 90 + "label" + " THEN 1 END" * 90,
    ],
)
def test_deep_nesting_under_the_length_limit_is_refused_with_a_message(text):
    assert len(text) <= MAX_LENGTH
    with pytest.raises(ConfigError, match="nests too deeply"):
        parse_row_expression(text, COLUMNS)


@pytest.mark.parametrize(
    "text, message",
    [
        ("label::INT % 0", "Division by zero"),
        ("region::INT", "Could not convert string 'n'"),
        ("CASE WHEN score > 0.8 THEN 1 // (prediction::INT - 1) ELSE 0 END", "Division by zero"),
    ],
)
def test_a_cost_that_fails_on_the_rows_is_refused_with_the_reason(project_store, text, message):
    store, project = project_store
    with store.read() as con:
        with pytest.raises(ConfigError, match=message) as refused:
            cost_expression(con, project, text)
    assert text in str(refused.value)


def test_the_time_bound_cancels_long_work_with_a_message(project_store):
    store, project = project_store
    with store.read() as con:
        with pytest.raises(ConfigError, match=r"Counting took longer than 0.5 s and was cancelled"):
            run_bounded(con, "SELECT sum(i % 7) FROM range(10000000000) AS t(i)", seconds=0.5, what="Counting")
        assert con.execute("SELECT 42").fetchall() == [(42,)]  # the connection still answers
        assert run_bounded(con, "SELECT 1 + 1", seconds=5) == [(2,)]

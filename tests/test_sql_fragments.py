"""The one type of SQL fragment (analysis.store.sql.Sql): put together by name, its
parameters follow the places in the template, so no caller keeps their order by hand;
run on a real DuckDB, the composed query returns what the same values typed in do."""

from __future__ import annotations

import duckdb
import pytest

from analysis.store.sql import Sql, and_all


def test_parameters_follow_the_places_a_part_is_put():
    scope = Sql("v = ?", ["b"])
    inside = Sql("x IN (?, ?)", [2, 3])
    query = Sql.compose(
        "SELECT count(*) FROM t WHERE {scope} UNION ALL SELECT count(*) FROM t WHERE ({scope}) AND {inside}",
        scope=scope,
        inside=inside,
    )
    assert query.params == ("b", "b", 2, 3)
    assert query.text.count("?") == len(query.params)
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'b'), (4, 'b')) v(x, v)")
    text, params = query
    assert [r[0] for r in con.execute(text, params).fetchall()] == [3, 2]


def test_text_parts_pairs_and_literal_braces():
    query = Sql.compose("SELECT {col} AS {{braces}}, ? FROM ({inner})", col='"x"', inner=("SELECT ? AS x", [1]))
    assert query.text == 'SELECT "x" AS {braces}, ? FROM (SELECT ? AS x)'
    assert query.params == (1,)  # the template's own mark is the caller's to bind


def test_a_part_without_a_place_or_a_place_without_a_part_is_refused():
    with pytest.raises(ValueError, match="no part for {where}"):
        Sql.compose("SELECT 1 WHERE {where}")
    with pytest.raises(ValueError, match="without a place: extra"):
        Sql.compose("SELECT 1", extra=Sql("TRUE"))


def test_it_unpacks_and_indexes_as_the_pairs_it_replaces():
    fragment = and_all([("a = ?", [1]), ("", []), Sql("b < ?", [2.5])])
    text, params = fragment
    assert (text, params) == ("(a = ?) AND (b < ?)", [1, 2.5])
    assert fragment[0] == text and fragment[1] == params
    assert tuple(and_all([])) == ("TRUE", [])
    assert Sql.join(" OR ", ["TRUE", Sql("c = ?", ["z"])]) == Sql("TRUE OR c = ?", ("z",))

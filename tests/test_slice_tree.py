"""Slices as predicate trees (AND, OR, NOT over conditions): read from the typed form with
the usual precedence, written back so that they read the same, stored as JSON that older
slices still load from, and compiled to SQL whose rows are exactly those a plain Python
evaluation of the same tree keeps, on a real DuckDB file, for trees Hypothesis builds."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import ConfigError, Mapping, get_project, ingest_predictions
from analysis.slices import And, Condition, Not, Or, Slice, compile_slice, parse_slice, validate_slice

A, B, C = Condition("a", "in", values=("1",)), Condition("b", "in", values=("2",)), Condition("c", "is_null")


@pytest.mark.parametrize(
    "text, tree",
    [
        ("a = 1 OR b = 2 AND c is null", Slice.of(Or((A, And((B, C)))))),
        ("(a = 1 OR b = 2) AND c is null", Slice.of(Or((A, B)), C)),
        ("NOT a = 1 AND b = 2", Slice.of(Not(A), B)),
        ("NOT (a = 1 AND b = 2)", Slice.of(Not(And((A, B))))),
        ("not not a = 1", Slice.of(Not(Not(A)))),
        ("a = 1 or b = 2 or c is null", Slice.of(Or((A, B, C)))),
        ("((a = 1))", Slice.of(A)),
        ("a = 1 AND (b = 2 AND c is null)", Slice.of(A, B, C)),
        ("a in (1) OR b = 2", Slice.of(Or((A, B)))),
    ],
)
def test_and_binds_tighter_than_or_and_not_applies_to_what_follows(text, tree):
    assert parse_slice(text) == tree
    assert parse_slice(tree.readable()) == tree
    assert Slice.from_json(tree.to_json()) == tree


@pytest.mark.parametrize(
    "text, message",
    [
        ("a = 1 OR", "An OR in the slice has nothing on one side"),
        ("NOT", "A NOT in the slice has nothing after it"),
        ("(a = 1", "not closed"),
        ("a = 1)", "no opening one"),
        ("a = 1 AND ()", "empty condition or group"),
        ("NOT " * 40 + "a = 1", "more than 32 deep"),
        ("(" * 40 + "a = 1" + ")" * 40, "more than 32 deep"),
    ],
)
def test_what_cannot_be_read_is_refused_by_name(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_slice(text)


def test_a_value_or_column_spelled_like_a_word_is_quoted_and_reads_back():
    tree = Slice.of(Or((Condition("or", "in", values=("and",)), Condition("not", "in", values=("OR",)))))
    assert tree.readable() == '`or` = "and" OR `not` = "OR"'
    assert parse_slice(tree.readable()) == tree


def test_slices_stored_before_compound_terms_load_as_they_were():
    stored = '{"conditions": [{"column": "region", "op": "in", "values": ["east"]}, {"column": "age", "op": "between", "low": null, "high": 25, "low_inclusive": true, "high_inclusive": false}]}'  # noqa: E501
    loaded = Slice.from_json(stored)
    assert loaded == Slice.of(Condition("region", "in", values=("east",)), Condition("age", "between", high=25))
    assert json.loads(loaded.to_json()) == json.loads(stored)


NULL_A = {"column": "a", "op": "is_null"}


@pytest.mark.parametrize(
    "definition, message",
    [
        ({"conditions": [{"any": [NULL_A]}]}, r"conditions\[0\]\.any must be a list of at least two"),
        ({"conditions": [{"all": "a"}]}, r"conditions\[0\]\.all must be a list"),
        (
            {"conditions": [{"not": {"any": [NULL_A, {"column": "b", "op": "in", "values": "x"}]}}]},
            r"conditions\[0\]\.not\.any\[1\]\.values must be a list of values",
        ),
        ({"conditions": [{"not": {"column": "a"}}]}, "needs 'column' and 'op'"),
    ],
)
def test_a_bad_compound_term_is_refused_naming_where_it_is(definition, message):
    with pytest.raises(ConfigError, match=message):
        Slice.from_dict(definition)


def test_json_nested_deeper_than_allowed_is_refused_not_a_recursion_error():
    term: dict = {"column": "a", "op": "is_null"}
    for _ in range(200):
        term = {"not": term}
    with pytest.raises(ConfigError, match="more than 32 deep"):
        Slice.from_dict({"conditions": [term]})


# --- compiled on a real database, against a Python evaluation of the same tree ----------------

ROWS = pd.DataFrame(
    {
        "id": [f"r{i}" for i in range(12)],
        "v": "m",
        "label": [1, 0] * 6,
        "prediction": [1, 1, 0, 0] * 3,
        "region": ["east", "west", None, "north", "east", "west", "east", None, "north", "west", "east", "south"],
        "age": [17.0, 22.0, 25.0, None, 40.0, 61.0, 33.0, 25.0, None, 19.0, 70.0, 45.0],
        "note": ["refund", "late refund", None, "ok", "fine", "refund please", None, "x", "ok", "late", "", "refunded"],
    }
)


@pytest.fixture(scope="module")
def project_rows(tmp_path_factory):
    from analysis import Store

    store = Store(tmp_path_factory.mktemp("tree") / "tree.duckdb")
    mapping = Mapping(
        task="binary",
        id="id",
        version="v",
        label="label",
        prediction="prediction",
        positive_label="1",
        features=["region", "age", "note"],
    )
    with store.write() as con:
        ingest_predictions(con, ROWS, project="p", mapping=mapping)
    with store.read() as con:
        project = get_project(con, "p")
    return store, project


def selected(store, project, slice_: Slice) -> set[str]:
    sql, params = compile_slice(slice_, project)
    with store.read() as con:
        query = f'SELECT prediction_id FROM "{project.log_table}" WHERE {sql}'
        return {r[0] for r in con.execute(query, params).fetchall()}


def holds(term, row) -> bool:
    """The tree's meaning, written plainly: a condition on a missing value does not hold,
    except ``not in`` and ``is null``; NOT is the complement."""
    if isinstance(term, Not):
        return not holds(term.term, row)
    if isinstance(term, And):
        return all(holds(t, row) for t in term.terms)
    if isinstance(term, Or):
        return any(holds(t, row) for t in term.terms)
    value = row[term.column]
    absent = value is None or (isinstance(value, float) and math.isnan(value))
    if term.op == "is_null":
        return absent
    if term.op == "not_null":
        return not absent
    if term.op == "not_in":
        return absent or str(value) not in {str(v) for v in term.values}
    if absent:
        return False
    if term.op == "in":
        return str(value) in {str(v) for v in term.values}
    if term.op == "contains":
        return term.text in value
    low_ok = term.low is None or (value >= term.low if term.low_inclusive else value > term.low)
    high_ok = term.high is None or (value <= term.high if term.high_inclusive else value < term.high)
    return low_ok and high_ok


conditions = st.one_of(
    st.builds(
        lambda vs, neg: Condition("region", "not_in" if neg else "in", values=tuple(vs)),
        st.lists(st.sampled_from(["east", "west", "north", "south", "nowhere"]), min_size=1, max_size=3, unique=True),
        st.booleans(),
    ),
    st.builds(
        lambda lo, hi, li, hi_inc: Condition(
            "age", "between", low=lo, high=hi, low_inclusive=li, high_inclusive=hi_inc
        ),
        st.sampled_from([None, 19.0, 25.0, 40.0]),
        st.sampled_from([None, 25.0, 45.0, 70.0]),
        st.booleans(),
        st.booleans(),
    ).filter(lambda c: c.low is not None or c.high is not None),
    st.builds(
        lambda col, op: Condition(col, op),
        st.sampled_from(["region", "age", "note"]),
        st.sampled_from(["is_null", "not_null"]),
    ),
    st.builds(lambda t: Condition("note", "contains", text=t), st.sampled_from(["refund", "late", "o", "zzz"])),
)
trees = st.recursive(
    conditions,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(lambda ts: And(tuple(ts)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda ts: Or(tuple(ts)), st.lists(inner, min_size=2, max_size=3)),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(terms=st.lists(trees, min_size=1, max_size=3))
def test_the_compiled_tree_keeps_exactly_the_rows_its_meaning_keeps(project_rows, terms):
    store, project = project_rows
    slice_ = Slice(tuple(terms))
    sql, params = compile_slice(slice_, project)
    assert sql.count("?") == len(params)
    expected = {row["id"] for row in ROWS.to_dict("records") if all(holds(t, row) for t in terms)}
    assert selected(store, project, slice_) == expected, slice_.readable()
    # the readable form and the stored (validated) form select the same rows; the JSON
    # gives back the same tree
    assert selected(store, project, parse_slice(slice_.readable())) == expected, slice_.readable()
    assert selected(store, project, validate_slice(slice_, project)) == expected
    assert Slice.from_json(slice_.to_json()) == slice_


def test_values_in_a_tree_travel_as_parameters_never_in_the_sql(project_rows):
    _, project = project_rows
    hostile = "x') OR 1=1; DROP TABLE sb_projects; --"
    tree = parse_slice(f'region = "{hostile}" OR NOT (note contains "{hostile}" AND age >= 3)')
    sql, params = compile_slice(tree, project)
    assert "DROP" not in sql and hostile in params and params.count(hostile) == 2


def _code_holds(value, code) -> bool:
    """Whether an encoded value matches one code: None (missing), an int, or a run of bins."""
    if code is None:
        return value is None
    if value is None:
        return False
    if isinstance(code, tuple):
        return value < code[1] if code[0] == "lt" else value >= code[1]
    return value == code


_CODE = st.one_of(st.none(), st.integers(0, 4), st.tuples(st.sampled_from(["lt", "ge"]), st.integers(0, 4)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    codes=st.dictionaries(
        st.sampled_from(["f0", "f1", "f2"]), st.one_of(_CODE, st.frozensets(_CODE, min_size=1, max_size=3)), max_size=3
    )
)
def test_discovery_codes_compile_through_the_slice_compiler(tmp_path_factory, codes):
    """Discovery's predicates over encoded rows (a code, a set of codes, a run of bins,
    missing) are slices compiled by the one compiler: the rows equal a Python evaluation."""
    import duckdb

    from analysis.discovery.encode import codes_sql

    rows = [(a, b, c) for a in (None, 0, 1, 2, 3, 4) for b in (None, 0, 2, 4) for c in (None, 1, 3)]
    con = duckdb.connect()
    con.execute("CREATE TABLE encoded (i INTEGER, f0 INTEGER, f1 INTEGER, f2 INTEGER)")
    con.executemany("INSERT INTO encoded VALUES (?, ?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])
    sql, params = codes_sql(codes)
    got = {i for (i,) in con.execute(f"SELECT i FROM encoded WHERE {sql}", list(params)).fetchall()}

    def holds(row) -> bool:
        values = dict(zip(("f0", "f1", "f2"), row))
        for column, code in codes.items():
            options = code if isinstance(code, frozenset) else [code]
            if not any(_code_holds(values[column], o) for o in options):
                return False
        return True

    assert got == {i for i, r in enumerate(rows) if holds(r)}


@pytest.mark.parametrize(
    "text, values",
    [
        ("plan = 'pro'", ("pro",)),
        ("`Region Name` = 'Île-de-France'", ("Île-de-France",)),
        ("plan in ('a', 'b c')", ("a", "b c")),
        ("x = 'it''s'", ("it's",)),
        ("name = O'Brien", ("O'Brien",)),
        ("x = '90s", ("'90s",)),
    ],
)
def test_a_value_quoted_as_sql_writes_it_is_the_value(text, values):
    """'text' in single quotes (a quote doubled inside) reads as the text, as a person used to
    SQL types it; an apostrophe inside a word stays part of it; the readable form reads back."""
    (condition,) = parse_slice(text).conditions
    assert condition.values == values
    assert parse_slice(parse_slice(text).readable()) == parse_slice(text)

"""Slices as data: readable form, JSON, the one SQL compiler, hostile values,
and slice metrics against pandas, scikit-learn, statsmodels and scipy."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import db_digest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.slices import Condition, Slice, compile_slice, parse_slice, validate_slice
from analysis.slices.metrics import slice_metrics
from analysis.stats.intervals import hanley_mcneil_se
from analysis.store.scope import Scope

TOL = 1e-9


def shop_frame(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    country = rng.choice(["NG", "US", "DE", "it's", 'say "hi"', "ü-ñ"], n)
    age = rng.integers(16, 80, n).astype(float)
    age[rng.random(n) < 0.1] = np.nan
    score = np.round(rng.random(n), 3)
    label = (rng.random(n) < np.where(country == "NG", 0.2, 0.5) * 0 + score * 0.8).astype(int)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "ts": pd.Timestamp("2026-03-01") + pd.to_timedelta(np.arange(n) * 3, unit="h"),
            "v": np.where(np.arange(n) % 3 == 0, "m2", "m1"),
            "score": score,
            "label": label,
            "country": country,
            "age": age,
            "vip": rng.random(n) < 0.3,
            "note": rng.choice(["refund please", "all good", "REFUND", "'; DROP TABLE x; --", "back\\slash"], n),
            "revenue": np.round(rng.normal(100, 30, n), 2),
        }
    )


MAPPING = Mapping(
    task="binary",
    id="id",
    timestamp="ts",
    version="v",
    score="score",
    label="label",
    positive_label="1",
    outcomes=["revenue"],
    features=["country", "age", "vip", "note"],
    kinds={"note": "text"},
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("slices") / "shop.duckdb"
    frame = shop_frame()
    store = Store(path)
    with store.write() as con:
        ingest_predictions(con, frame, project="shop", mapping=MAPPING)
    with store.read() as con:
        project = get_project(con, "shop")
    frame["prediction"] = frame["score"] >= 0.5
    return store, project, frame


def rows_of(store, project, slice_) -> set[str]:
    sql, params = compile_slice(slice_, project)
    with store.read() as con:
        return {
            r[0] for r in con.execute(f'SELECT prediction_id FROM "{project.log_table}" WHERE {sql}', params).fetchall()
        }


# --- readable form and JSON ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "country = NG",
        "country != NG",
        'country in (NG, "say \\"hi\\"", "it\'s")',
        "country not in (NG, US)",
        "age < 25",
        "age >= 30",
        "18 <= age < 25",
        "20 < age <= 30",
        "vip is true",
        "vip is false",
        "age is null",
        "age is not null",
        'note contains "refund"',
        "`odd ``col`` name` = x",
        "country = NG AND age < 25 AND vip is true",
    ],
)
def test_readable_form_round_trips(text):
    parsed = parse_slice(text)
    assert parse_slice(parsed.readable()) == parsed
    assert Slice.from_json(parsed.to_json()) == parsed


def test_parse_reads_what_people_write():
    s = parse_slice("country = NG and age > 2000", "vip is TRUE")
    assert s.conditions == (
        Condition("country", "in", values=("NG",)),
        Condition("age", "between", low="2000", low_inclusive=False),
        Condition("vip", "is_true"),
    )
    assert s.readable() == "country = NG AND age > 2000 AND vip is true"
    assert parse_slice().readable() == "all rows"


@pytest.mark.parametrize(
    "text, message",
    [
        ("country", "Cannot read the condition"),
        ("country = ", "Cannot read the condition"),
        ("country = NG AND", "nothing on one side"),
        ("country in NG", "a list goes in parentheses"),
        ("age is maybe", "after 'is' comes null"),
        ('country = "unterminated', "Cannot read the slice"),
    ],
)
def test_parse_errors_say_what_is_wrong(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_slice(text)


def test_json_errors_are_readable():
    with pytest.raises(ConfigError, match="not valid JSON"):
        Slice.from_json("{")
    with pytest.raises(ConfigError, match="Unknown slice operator 'like'"):
        Slice.from_json(json.dumps({"conditions": [{"column": "a", "op": "like"}]}))
    with pytest.raises(ConfigError, match="Unknown key"):
        Slice.from_json(json.dumps({"conditions": [{"column": "a", "op": "is_null", "sql": "1=1"}]}))


# --- the compiler ----------------------------------------------------------------------


def test_compiled_sql_binds_every_value(shop):
    _, project, _ = shop
    s = parse_slice(
        'country in (NG, "it\'s") AND 18 <= age < 25 AND note contains "\'; DROP" AND vip is true '
        "AND age is not null AND country != US"
    )
    sql, params = compile_slice(s, project)
    assert sql == (
        '"country" IN (?, ?) AND ("age" IS NOT NULL AND "age" >= ? AND "age" < ?) '
        'AND position(? IN "note") > 0 AND "vip" = TRUE AND "age" IS NOT NULL '
        'AND ("country" IS NULL OR "country" NOT IN (?))'
    )
    assert params == ["NG", "it's", 18.0, 25.0, "'; DROP", "US"]
    assert compile_slice(Slice(), project) == ("TRUE", [])


def test_unknown_columns_and_wrong_kinds_are_named(shop):
    _, project, _ = shop
    with pytest.raises(ConfigError, match="Unknown column 'nope'.*Columns of shop: age, country"):
        compile_slice(parse_slice("nope = 1"), project)
    with pytest.raises(ConfigError, match="age is a numeric column; 'contains' applies to categorical, text"):
        compile_slice(parse_slice('age contains "1"'), project)
    with pytest.raises(ConfigError, match="age: 'abc' is not a number"):
        compile_slice(parse_slice("age < abc"), project)
    with pytest.raises(ConfigError, match="NaN is not a number"):
        compile_slice(Slice.of(Condition("age", "in", values=(math.nan,))), project)
    with pytest.raises(ConfigError, match="not a date"):
        compile_slice(parse_slice("timestamp >= yesterday"), project)


def test_each_operator_selects_the_pandas_rows(shop):
    store, project, frame = shop
    f = frame.set_index("id")
    cases = {
        "country = NG": f.country == "NG",
        "country != NG": f.country != "NG",
        'country in (NG, "it\'s")': f.country.isin(["NG", "it's"]),
        "country not in (NG, US)": ~f.country.isin(["NG", "US"]),
        "age < 25": f.age < 25,
        "18 <= age <= 30": (f.age >= 18) & (f.age <= 30),
        "age is null": f.age.isna(),
        "age is not null": f.age.notna(),
        "vip is true": f.vip,
        "vip is false": ~f.vip,
        'note contains "REFUND"': f.note.str.contains("REFUND", regex=False),
        "label is true": f.label == 1,
        "prediction = 1": f.prediction,
        "score >= 0.9": f.score >= 0.9,
        "model_version = m2": f.v == "m2",
        "timestamp >= 2026-03-20": f.ts >= pd.Timestamp("2026-03-20"),
        "revenue > 120 AND country = DE": (f.revenue > 120) & (f.country == "DE"),
    }
    for text, mask in cases.items():
        assert rows_of(store, project, parse_slice(text)) == set(f.index[mask]), text


def test_validate_gives_typed_values(shop):
    _, project, _ = shop
    s = validate_slice(parse_slice("age < 25 AND timestamp >= 2026-03-20 AND vip = true AND age > -inf"), project)
    assert s.conditions[0].high == 25.0
    assert s.conditions[1].low == "2026-03-20T00:00:00"
    assert s.conditions[2].values == (True,)
    assert s.conditions[3] == Condition("age", "not_null")
    assert json.loads(s.to_json())["conditions"][0]["high"] == 25.0


hostile_text = st.one_of(
    st.sampled_from(
        [
            "'; DROP TABLE x; --",
            '"',
            "'",
            "\\",
            "\\'",
            "%",
            "_",
            "NG",
            "it's",
            "ü-ñ",
            "",
            "\x00",
            "a\nb",
            "`",
            "``",
            "x" * 5000,
            "NULL",
            "null",
            "1 OR 1=1",
        ]
    ),
    st.text(max_size=40),
)
hostile_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "25; DROP TABLE x"]),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(hostile_text, min_size=1, max_size=4),
    needle=hostile_text,
    low=hostile_number,
    high=hostile_number,
    negate=st.booleans(),
)
def test_hostile_values_are_only_values(shop, values, needle, low, high, negate):
    """Any string or number in a condition selects exactly the pandas rows (or is
    refused with a readable message), and the database never changes."""
    store, project, frame = shop
    before = db_digest(store.path)
    f = frame.set_index("id")
    conds = [Condition("country", "not_in" if negate else "in", values=tuple(values))]
    if needle:
        conds.append(Condition("note", "contains", text=needle))
    conds.append(Condition("age", "between", low=low, high=high))
    s = Slice(tuple(conds))
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        with pytest.raises(ConfigError):
            rows_of(store, project, s)
        assert db_digest(store.path) == before
        return
    if math.isnan(lo) or math.isnan(hi):
        with pytest.raises(ConfigError, match="NaN"):
            rows_of(store, project, s)
        return
    mask = f.country.isin(values)
    mask = ~mask if negate else mask
    if needle:
        mask &= f.note.str.contains(needle, regex=False)
    mask &= f.age.notna() & (f.age >= lo) & (f.age < hi)
    assert rows_of(store, project, s) == set(f.index[mask])
    # The readable form and JSON carry the same hostile values back unchanged.
    assert parse_slice(s.readable()) == parse_slice(parse_slice(s.readable()).readable())
    assert db_digest(store.path) == before


# --- slice metrics ---------------------------------------------------------------------------


def test_slice_metrics_match_pandas_sklearn_statsmodels_scipy(shop):
    store, project, frame = shop
    s = parse_slice("country in (NG, US)")
    with store.read() as con:
        result = slice_metrics(con, project, s, Scope.of(versions="m1"))
    part = frame[frame.v == "m1"]
    inside = part[part.country.isin(["NG", "US"])]
    rest = part[~part.country.isin(["NG", "US"])]
    table = result.table.set_index("part")
    for name, rows in (("slice", inside), ("rest", rest), ("overall", part)):
        row = table.loc[name]
        y, p, score = rows.label.astype(bool), rows.prediction, rows.score
        assert row.n_rows == len(rows)
        assert row.share == pytest.approx(len(rows) / len(part), abs=TOL)
        assert row.accuracy == pytest.approx(skm.accuracy_score(y, p), abs=TOL)
        assert row.error_rate == pytest.approx(1 - skm.accuracy_score(y, p), abs=TOL)
        assert row.recall == pytest.approx(skm.recall_score(y, p), abs=TOL)
        assert row.roc_auc == pytest.approx(skm.roc_auc_score(y, score), abs=TOL)
        correct = int((y == p).sum())
        low, high = proportion_confint(correct, len(rows), alpha=0.05, method="wilson")
        assert (row.accuracy_low, row.accuracy_high) == pytest.approx((low, high), abs=TOL)
        mean, sd = rows.revenue.mean(), rows.revenue.std(ddof=1)
        assert row.revenue_mean == pytest.approx(mean, rel=1e-9)
        # Revenue is never negative here: the log-scale interval m exp(v/2 ± t sqrt(v)), v = sd² / (n m²).
        v, t = sd * sd / (len(rows) * mean * mean), sps.t.ppf(0.975, len(rows) - 1)
        assert (row.revenue_mean_low, row.revenue_mean_high) == pytest.approx(
            (mean * math.exp(v / 2 - t * math.sqrt(v)), mean * math.exp(v / 2 + t * math.sqrt(v))), rel=1e-9
        )
    comp = result.comparison.set_index("metric")
    k = [int((r.label.astype(bool) == r.prediction).sum()) for r in (inside, rest)]
    assert comp.loc["accuracy", "p_value"] == pytest.approx(proportions_ztest(k, [len(inside), len(rest)])[1], rel=1e-9)
    assert comp.loc["revenue_mean", "p_value"] == pytest.approx(
        sps.ttest_ind(inside.revenue, rest.revenue, equal_var=False).pvalue, rel=1e-9
    )


def test_hanley_mcneil_on_a_hand_computed_case():
    # A = 0.8, 10 positives, 20 negatives: Q1 = 0.8/1.2, Q2 = 1.28/1.8.
    q1, q2 = 0.8 / 1.2, 2 * 0.64 / 1.8
    expected = math.sqrt((0.8 * 0.2 + 9 * (q1 - 0.64) + 19 * (q2 - 0.64)) / 200)
    assert hanley_mcneil_se(0.8, 10, 20) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(hanley_mcneil_se(0.8, 0, 20))


def test_empty_slice_reports_zero_rows(shop):
    store, project, _ = shop
    with store.read() as con:
        result = slice_metrics(con, project, parse_slice("country = nowhere"))
    row = result.row("slice")
    assert row.n_rows == 0 and math.isnan(row.accuracy) and math.isnan(row.accuracy_low)
    assert result.row("rest").n_rows == 400


def test_cli_slice_json(shop, capsys):
    store, project, frame = shop
    code = main(
        [
            "slice",
            "--project",
            "shop",
            "--db",
            str(store.path),
            "--where",
            "country = NG",
            "--where",
            "age < 40",
            "--format",
            "json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["where"] == "country = NG AND age < 40"
    assert out["slice"]["conditions"][1]["high"] == 40.0
    parts = {p["part"]: p for p in out["parts"]}
    expected = frame[(frame.country == "NG") & (frame.age < 40)]
    assert parts["slice"]["n_rows"] == len(expected)
    assert parts["overall"]["n_rows"] == len(frame)
    assert {c["metric"] for c in out["comparison"]} >= {"accuracy", "roc_auc", "revenue_mean"}
    code = main(["slice", "--project", "shop", "--db", str(store.path), "--where", "nope = 1", "--format", "json"])
    assert code == 2
    assert "Unknown column 'nope'" in json.loads(capsys.readouterr().out)["error"]["message"]


# --- breakdowns and the leaderboard ----------------------------------------------------------

from analysis.slices.breakdown import breakdown, leaderboard  # noqa: E402
from analysis.slices.grouping import MISSING, grouping  # noqa: E402


def test_breakdown_by_category_matches_pandas_and_sklearn(shop):
    store, project, frame = shop
    with store.read() as con:
        table = breakdown(con, project, "country", min_labeled=70).set_index("value")
    overall_err = (frame.label.astype(bool) != frame.prediction).mean()
    assert set(table.index) == set(frame.country)
    for value, rows in frame.groupby("country"):
        row = table.loc[value]
        y, p = rows.label.astype(bool), rows.prediction
        err = (y != p).mean()
        assert row.n_rows == len(rows)
        assert row.error_rate == pytest.approx(err, abs=TOL)
        assert row.roc_auc == pytest.approx(skm.roc_auc_score(y, rows.score), abs=TOL)
        assert row.lift == pytest.approx(err / overall_err, abs=TOL)
        assert row.impact == pytest.approx(len(rows) * (err - overall_err), abs=1e-6)
        low, high = proportion_confint(int((y != p).sum()), len(rows), method="wilson")
        assert (row.error_rate_low, row.error_rate_high) == pytest.approx((low, high), abs=TOL)
        assert bool(row.unreliable) == (len(rows) < 70)


def test_breakdown_by_number_bins_every_row_once(shop):
    store, project, frame = shop
    with store.read() as con:
        table = breakdown(con, project, "age", bins=4)
        g = grouping(con, project, "age", bins=4)
    edges = g.params[1::2][:-1]  # (missing, edge1, label1, edge2, label2, ..., last label)
    assert table.n_rows.sum() == len(frame)
    assert table.set_index("value").loc[MISSING, "n_rows"] == frame.age.isna().sum()
    present = frame.age.dropna()
    bins = np.searchsorted(np.array(edges, dtype=float), present.to_numpy(), side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    assert list(table[table.value != MISSING].n_rows) == list(counts)
    assert list(table.value[:-1]) == sorted(table.value[:-1])  # bins in order, missing last


def test_sampled_cut_points_are_the_quantiles_of_the_examples_below_a_key_bound(shop):
    """Beyond ``exact_up_to`` rows the cut points are the quantiles of the rows
    whose example key is below a bound: picked here in Python from the ids, and the
    same whatever the number of threads (a block sample is not)."""
    import duckdb

    from analysis.slices.grouping import KEY_RANGE, CutSample
    from analysis.store.example_key import example_key

    store, project, frame = shop
    sample = CutSample(exact_up_to=100, rows=150)
    bound = -(-KEY_RANGE * 150 // len(frame))
    drawn = frame[[example_key(i) < bound for i in frame["id"]]]
    assert 60 < len(drawn) < 240  # about 150 of the 400
    expected = duckdb.connect().execute("SELECT quantile_disc(age, [0.25, 0.5, 0.75]) FROM drawn").fetchall()[0][0]
    edges = []
    for threads in (1, 4):
        with store.read() as con:
            con.execute(f"SET threads = {threads}")
            edges.append(list(grouping(con, project, "age", bins=4, sample=sample).params[1::2][:-1]))
    assert edges[0] == edges[1] == [float(x) for x in expected]


def test_breakdown_within_a_slice_and_bad_columns(shop):
    store, project, frame = shop
    with store.read() as con:
        table = breakdown(con, project, "vip", slice_=parse_slice("country = NG"))
        with pytest.raises(ConfigError, match="note is a text column"):
            breakdown(con, project, "note")
        with pytest.raises(ConfigError, match="Unknown column 'nope'"):
            breakdown(con, project, "nope")
    ng = frame[frame.country == "NG"]
    assert dict(zip(table.value, table.n_rows)) == {"true": int(ng.vip.sum()), "false": int((~ng.vip).sum())}


@pytest.mark.parametrize("sort_by", ["impact", "error_rate", "lift", "size"])
def test_leaderboard_ranks_reliable_groups_first(shop, sort_by):
    store, project, frame = shop
    with store.read() as con:
        board = leaderboard(con, project, sort_by=sort_by, min_labeled=40, bins=3)
    overall = (frame.label.astype(bool) != frame.prediction).mean()
    assert set(board.column) == {"country", "age", "vip"}
    country = board[board.column == "country"].set_index("value")
    for value, rows in frame.groupby("country"):
        err = (rows.label.astype(bool) != rows.prediction).mean()
        assert country.loc[value, "n_rows"] == len(rows)
        assert country.loc[value, "impact"] == pytest.approx(len(rows) * (err - overall), abs=1e-6)
    key = {"size": "n_rows"}.get(sort_by, sort_by)
    reliable = board[~board.unreliable]
    assert list(board.unreliable) == sorted(board.unreliable)  # reliable groups first
    assert list(reliable[key]) == sorted(reliable[key], reverse=True)
    with pytest.raises(ConfigError, match="Sort by one of"):
        leaderboard(con, project, sort_by="magic")


def test_cli_breakdown_and_leaderboard(shop, capsys):
    store, project, frame = shop
    code = main(
        [
            "breakdown",
            "--project",
            "shop",
            "--db",
            str(store.path),
            "--by",
            "country",
            "--where",
            "vip is true",
            "--format",
            "json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["where"] == "vip is true"
    vip = frame[frame.vip]
    assert {r["value"]: r["n_rows"] for r in out["rows"]} == vip.country.value_counts().to_dict()
    code = main(
        [
            "leaderboard",
            "--project",
            "shop",
            "--db",
            str(store.path),
            "--sort",
            "size",
            "--limit",
            "3",
            "--format",
            "json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and len(out["rows"]) == 3
    assert out["rows"][0]["n_rows"] >= out["rows"][1]["n_rows"] >= out["rows"][2]["n_rows"]
    code = main(["breakdown", "--project", "shop", "--db", str(store.path), "--by", "note"])
    assert code == 2 and "note is a text column" in capsys.readouterr().err


# --- declared types, deep nesting, time-zone offsets (issue 20) ---------------------------------


@pytest.mark.parametrize(
    "condition, field, shown",
    [
        ({"column": "country", "op": "in", "values": "NG"}, "conditions[0].values", "'NG'"),
        (
            {"column": "age", "op": "between", "low": 30, "low_inclusive": "false"},
            "conditions[0].low_inclusive",
            "'false'",
        ),
        ({"column": "age", "op": "between", "high": 30, "high_inclusive": 0}, "conditions[0].high_inclusive", "0"),
        ({"column": "age", "op": "between", "low": [30]}, "conditions[0].low", "[30]"),
        ({"column": "age", "op": "between", "low": {"n": 1}}, "conditions[0].low", '{"n": 1}'),
        ({"column": "country", "op": "in", "values": [["NG"]]}, "conditions[0].values[0]", '["NG"]'),
        ({"column": 7, "op": "in", "values": ["NG"]}, "conditions[0].column", "7"),
        ({"column": "note", "op": "contains", "text": 5}, "conditions[0].text", "5"),
    ],
)
def test_slice_json_fields_have_declared_types(shop, condition, field, shown):
    store, project, _ = shop
    text = json.dumps({"conditions": [condition]})
    with pytest.raises(ConfigError) as refused:
        Slice.from_json(text)
    assert field in str(refused.value) and f"not {shown}" in str(refused.value)
    before = db_digest(store.path)
    code = main(["slices", "save", "--db", str(store.path), "--project", "shop", "--name", "x", "--slice-json", text])
    assert code == 2 and db_digest(store.path) == before


def test_deeply_nested_slice_json_is_refused_with_a_message():
    for text in ["[" * 100_000 + "]" * 100_000, '{"conditions": [' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "]}"]:
        with pytest.raises(ConfigError, match="nests too deeply"):
            Slice.from_json(text)


def test_slices_saved_by_earlier_versions_still_load(shop):
    store, project, frame = shop
    written = [  # as Condition.to_dict wrote them, keys sorted, an infinite bound as text
        '{"conditions": [{"column": "country", "op": "in", "values": ["NG", "US"]}]}',
        '{"conditions": [{"column": "age", "high": "inf", "high_inclusive": false, "low": 30.0, '
        '"low_inclusive": true, "op": "between"}, {"column": "vip", "op": "is_true"}]}',
        '{"conditions": [{"column": "timestamp", "op": "between", "low": "2026-03-10T00:00:00", "high": null, '
        '"low_inclusive": true, "high_inclusive": false}]}',
        '{"conditions": [{"column": "note", "op": "contains", "text": "refund"}, {"column": "age", "op": "is_null"}]}',
        '{"conditions": []}',
    ]
    with store.write() as con:
        for i, text in enumerate(written):
            con.execute(
                "INSERT INTO sb_saved_slices VALUES (?, ?, 1, '', ?, FALSE, now()::TIMESTAMP)",
                [project.project_id, f"old{i}", text],
            )
    from analysis.slices.saved import get_slice, list_slices

    with store.read() as con:
        assert len(list_slices(con, project)) >= len(written)
        loaded = [get_slice(con, project, f"old{i}").slice for i in range(len(written))]
    assert [json.loads(s.to_json()) for s in loaded] == [json.loads(Slice.from_json(t).to_json()) for t in written]
    assert validate_slice(loaded[1], project).readable() == "age >= 30 AND vip is true"
    assert rows_of(store, project, loaded[0]) == set(frame.id[frame.country.isin(["NG", "US"])])


@pytest.mark.parametrize(
    "bound",
    ["2026-03-10T00:00:00+05:00", "2026-03-10T09:30:00-03:30", "2026-03-10T00:00:00Z", "2026-03-10 07:00:00+14:00"],
)
def test_a_time_bound_with_an_offset_is_an_instant(shop, bound):
    store, project, frame = shop
    instant = pd.Timestamp(bound)
    stored_utc = frame.ts.dt.tz_localize("UTC")  # ingested naive timestamps are UTC
    for where, expected in [
        (f'timestamp >= "{bound}"', stored_utc >= instant),
        (f'timestamp < "{bound}"', stored_utc < instant),
    ]:
        slice_ = parse_slice(where)
        got = rows_of(store, project, slice_)
        assert got == set(frame.id[expected]) and 0 < len(got) < len(frame)
        assert rows_of(store, project, validate_slice(slice_, project)) == got


def test_slice_dicts_built_in_python_take_numpy_and_pandas_scalars(shop):
    store, project, frame = shop
    d = {
        "conditions": [
            {
                "column": "age",
                "op": "between",
                "low": np.int64(30),
                "high": np.float64(50.5),
                "low_inclusive": np.bool_(True),
            },
            {"column": "country", "op": "in", "values": [np.str_("NG"), "US"]},
            {"column": "timestamp", "op": "between", "low": pd.Timestamp("2026-03-10T05:00:00+05:00")},
        ]
    }
    got = rows_of(store, project, Slice.from_dict(d))
    expected = (frame.age >= 30) & (frame.age < 50.5) & frame.country.isin(["NG", "US"]) & (frame.ts >= "2026-03-10")
    assert got == set(frame.id[expected]) and got


# --- intervals stay in their domain (issue 20, item 6) ----------------------------------------


def test_small_slice_of_skewed_errors_keeps_its_intervals_in_their_domain(tmp_path):
    """Five rows, one large error: a t interval of MAE, RMSE or a cost goes below zero; these do not."""
    from analysis.stats.intervals import positive_mean_interval

    rng = np.random.default_rng(9)
    n = 200
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "region": ["tiny"] * 5 + ["big"] * (n - 5),
            "pred": rng.normal(10, 1, n),
        }
    )
    frame["label"] = frame.pred + rng.normal(0, 0.3, n)
    frame.loc[:4, "label"] = frame.pred[:5] + np.array([0.1, -0.1, 0.2, 0.1, 20.0])
    frame["loss"] = (frame.label - frame.pred).abs() * 3  # a non-negative cost per row
    frame["profit"] = rng.normal(0, 5, n)  # an outcome with negative values: Student t as before
    store = Store(tmp_path / "r.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="r",
            mapping=Mapping(
                id="id",
                version="v",
                task="regression",
                prediction="pred",
                label="label",
                features=["region"],
                outcomes=["loss", "profit"],
            ),
        )
    with store.read() as con:
        project = get_project(con, "r")
        result = slice_metrics(con, project, parse_slice("region = tiny"))
    row = result.row("slice")
    err = (frame.label - frame.pred)[:5]
    assert sps.t.interval(0.95, 4, loc=err.abs().mean(), scale=sps.sem(err.abs()))[0] < 0  # the old interval
    assert 0 <= row.mae_low <= row.mae <= row.mae_high
    assert (row.mae_low, row.mae_high) == pytest.approx(
        positive_mean_interval(5, err.abs().sum(), (err**2).sum())[2:], rel=1e-9
    )
    low, high = positive_mean_interval(5, (err**2).sum(), (err**4).sum())[2:]
    assert (row.rmse_low, row.rmse_high) == pytest.approx((math.sqrt(low), math.sqrt(high)), rel=1e-9)
    loss = frame.loss[:5]
    assert (row.loss_mean_low, row.loss_mean_high) == pytest.approx(
        positive_mean_interval(5, loss.sum(), (loss**2).sum())[2:], rel=1e-9
    )
    profit = frame.profit[:5]
    assert (row.profit_mean_low, row.profit_mean_high) == pytest.approx(
        sps.t.interval(0.95, 4, loc=profit.mean(), scale=sps.sem(profit)), rel=1e-9
    )


# --- a breakdown of very many groups is capped (issue 20, item 17) ---------------------------------


@pytest.fixture(scope="module")
def many_values(tmp_path_factory):
    """200,000 distinct values of uid: a0..a59 on 1,000 - i rows each, 199,940 others once, 100 missing."""
    rng = np.random.default_rng(17)
    uid = [f"a{i}" for i in range(60) for _ in range(1000 - i)] + [f"u{i}" for i in range(199_940)] + [None] * 100
    n = len(uid)
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "v": "m", "uid": uid, "region": rng.choice(["x", "y"], n)})
    frame["label"] = rng.integers(0, 2, n)
    frame["prediction"] = np.where(rng.random(n) < 0.2, 1 - frame.label, frame.label)
    store = Store(tmp_path_factory.mktemp("many") / "m.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="m",
            mapping=Mapping(
                id="id",
                version="v",
                task="binary",
                prediction="prediction",
                label="label",
                positive_label="1",
                features=["uid", "region"],
                kinds={"uid": "categorical"},
            ),
        )
    return store, frame


def test_breakdown_of_200000_values_shows_the_largest_and_one_summary_row(many_values):
    store, frame = many_values
    with store.read() as con:
        project = get_project(con, "m")
        got = breakdown(con, project, "uid")  # default limit: 50
        small = breakdown(con, project, "uid", limit=5)
        with pytest.raises(ConfigError, match="limit of groups"):
            breakdown(con, project, "uid", limit=-1)
    assert len(got) == 51
    top = [f"a{i}" for i in range(50)]
    assert list(got.value[:50]) == top
    assert list(got.n_rows[:50]) == [1000 - i for i in range(50)]
    rest = frame[~frame.uid.isin(top)]  # the missing values too: they are not among the 50 largest
    last = got.iloc[-1]
    assert last.value == "199,950 other values"
    assert (last.n_rows, last.n_labeled) == (len(rest), len(rest))
    assert last.errors == (rest.label != rest.prediction).sum()
    assert last.error_rate == pytest.approx((rest.label != rest.prediction).mean(), abs=1e-12)
    assert got.attrs["other"] == {
        "value": "199,950 other values",
        "groups": 200_001,
        "shown": 50,
        "values": 199_950,
        "missing": True,
        "rows": len(rest),
        "labeled": len(rest),
        "error_rate": pytest.approx((rest.label != rest.prediction).mean()),
    }
    assert "200,001 groups" in got.attrs["notes"][0] and "missing values included" in got.attrs["notes"][0]
    assert len(small) == 6 and small.n_rows.sum() == len(frame)


def test_cli_breakdown_of_200000_values_prints_little(many_values, capsys):
    store, frame = many_values
    code = main(["breakdown", "--project", "m", "--db", str(store.path), "--by", "uid", "--format", "json"])
    text = capsys.readouterr().out
    out = json.loads(text)
    assert code == 0 and len(out["rows"]) == 51 and len(text) < 100_000
    assert out["other"]["values"] == 199_950 and out["notes"]
    code = main(["breakdown", "--project", "m", "--db", str(store.path), "--by", "uid", "--limit", "3"])
    text = capsys.readouterr().out
    assert code == 0 and "199,997 other values" in text and len(text.splitlines()) == 6  # note, header, 3 + 1 rows
    code = main(["leaderboard", "--project", "m", "--db", str(store.path), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and {r["column"] for r in out["rows"]} == {"region"} and "uid looks like" in out["notes"][0]


def test_slices_page_breakdown_of_200000_values_draws_51_bars_and_says_why(monkeypatch, many_values):
    from test_app import app_on

    store, frame = many_values
    at = app_on(monkeypatch, store.path, timeout=180)
    at.query_params["project"] = "m"
    at.run()  # the app's first page (the Overview) keeps its own view in the URL: the link's comes after it
    at.query_params["view"] = "breakdown"
    at.switch_page("pages/slices.py").run()
    at.selectbox(key="sl_by").set_value("uid").run()
    assert not at.exception
    chart = next(
        json.loads(el.proto.spec)
        for el in at.get("plotly_chart")
        if "Error rate by uid" in json.dumps(json.loads(el.proto.spec).get("layout", {}).get("title", ""))
    )
    assert len(chart["data"][0]["x"]) == 51 and chart["data"][0]["x"][-1] == "199,950 other values"
    captions = [c.value for c in at.caption]
    assert any("Only the largest groups are shown: 200,001 groups" in c for c in captions)


def test_bucket_counts_of_200000_values_keep_the_largest_and_one_group_for_the_rest(many_values):
    from analysis.slices.buckets import bucket_counts

    store, frame = many_values
    with store.read() as con:
        counts = bucket_counts(con, get_project(con, "m"), "uid")
    values = list(dict.fromkeys(counts.value))
    assert len(values) == 51 and values[:3] == ["a0", "a1", "a2"] and values[-1] == "199,950 other values"
    assert counts.n.sum() == len(frame)
    assert counts[counts.value == "199,950 other values"].n.sum() == (~frame.uid.isin(values[:50])).sum()
    assert counts.attrs["other"]["values"] == 199_950


def test_a_value_named_like_the_summary_row_stays_its_own_group(tmp_path):
    values = ["2 other values"] * 10 + ["b"] * 9 + ["c"] * 8 + ["d", "e"]
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(values))],
            "v": "m",
            "kind": values,
            "label": [1, 0] * 14 + [1],
            "prediction": [1] * len(values),
        }
    )
    store = Store(tmp_path / "n.duckdb")
    with store.write() as con:
        ingest_predictions(
            con,
            frame,
            project="n",
            mapping=Mapping(
                id="id",
                version="v",
                task="binary",
                prediction="prediction",
                label="label",
                positive_label="1",
                features=["kind"],
            ),
        )
    with store.read() as con:
        got = breakdown(con, get_project(con, "n"), "kind", limit=3)
    assert list(zip(got.value, got.n_rows)) == [("2 other values", 10), ("b", 9), ("c", 8), ("2 other values*", 2)]


def test_bin_labels_never_use_scientific_notation():
    """A bin of a large number reads as the number (10600), not 1.06e+04; four significant
    digits, as before, and plain integers stay plain."""
    from analysis.slices.grouping import bin_labels

    assert bin_labels([10600.0, 16100.5, 123456.0], "numeric") == [
        "01 (-inf, 10600)",
        "02 [10600, 16100)",
        "03 [16100, 123456)",
        "04 [123456, inf)",
    ]
    assert bin_labels([0.000123, 0.5, 28.0], "numeric")[1:3] == ["02 [0.000123, 0.5)", "03 [0.5, 28)"]

"""Drift per slice (analysis.drift): every figure against scipy on the same rows (overall
and in a slice), no false alarms on streams without change, planted shifts found, the
data-quality figures on a hand-built case, bad input, and the command's JSON."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.stats.contingency import chi2_contingency
from test_cli import cli

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.drift import FRAME_COLUMNS, drift_table, measured_features
from analysis.estimation import ReferenceChoice, resolve_reference
from analysis.slices import parse_slice
from analysis.store.project import Project

TOL = 1e-9
START = date(2026, 1, 5)  # a Monday: the streams' weeks are whole
REFERENCE = (START, START + timedelta(days=13))  # two weeks, both days inclusive
MISSING = "\x00missing"  # how the reference computation below names a missing category
NUMERIC = ["amount", "visits", "tenure"]
CATEGORICAL = ["region", "channel", "plan", "member"]
MAPPING = Mapping(
    task="binary",
    id="id",
    timestamp="ts",
    version="v",
    stage="stage",
    score="score",
    label="label",
    positive_label="1",
    features=NUMERIC + CATEGORICAL + ["signup"],
)
REGIONS = ["north", "south", "east", "west", "centre"]
PLANS = [f"plan-{k}" for k in range(8)]


def stream(seed: int, days: int = 40, per_day: int = 300, shift_from: int | None = None) -> pd.DataFrame:
    """A log of ``days`` days from START; from day ``shift_from`` on (if given) ``amount``
    is half a standard deviation higher and ``region`` leans south."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    day = np.repeat(np.arange(days), per_day)
    shifted = (day >= shift_from) if shift_from is not None else np.zeros(n, bool)
    region_p = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
    region_shifted = np.array([0.15, 0.45, 0.2, 0.1, 0.1])
    region = np.where(shifted, rng.choice(REGIONS, n, p=region_shifted), rng.choice(REGIONS, n, p=region_p)).astype(
        object
    )
    region[rng.random(n) < 0.03] = None
    tenure = np.round(rng.exponential(24, n), 1)
    tenure[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "id": [f"s{seed}-{k}" for k in range(n)],
            "ts": pd.Timestamp(START) + pd.to_timedelta(day * 86400 + rng.integers(0, 86400, n), unit="s"),
            "v": "m1",
            "stage": "production",
            "score": np.round(rng.random(n), 3),
            "label": rng.integers(0, 2, n),
            "amount": np.round(rng.normal(50, 10, n) + 5 * shifted, 2),
            "visits": rng.poisson(3, n),
            "tenure": tenure,
            "region": region,
            "channel": rng.choice(["web", "app", "phone"], n, p=[0.5, 0.4, 0.1]),
            "plan": rng.choice(PLANS, n, p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02]),
            "member": rng.random(n) < 0.4,
            "signup": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        }
    )


def reference_window(con, project: Project, version="m1", stage="production", dates=REFERENCE):
    return resolve_reference(con, project, version, stage, ReferenceChoice.of(*dates))


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """A database with null streams (seeds 1-4), a shifted one and its log as DataFrames."""
    path = tmp_path_factory.mktemp("drift") / "streams.duckdb"
    store = Store(path)
    frames = {f"null-{seed}": stream(seed) for seed in range(1, 5)}
    frames["shifted"] = stream(99, shift_from=24)
    with store.write() as con:
        for name, frame in frames.items():
            ingest_predictions(con, frame, project=name, mapping=MAPPING)
    return store, frames


# --- the figures are scipy's ------------------------------------------------------------------


def reference_figures(before: pd.Series, after: pd.Series, measured_as: str) -> dict:
    """What scipy says of the reference's values (``before``) and a period's (``after``)."""
    if measured_as == "numbers":
        a, b = before.dropna().astype(float).to_numpy(), after.dropna().astype(float).to_numpy()
        ks = stats.ks_2samp(a, b, method="asymp")
        return {
            "distance": stats.wasserstein_distance(a, b),
            "statistic": ks.statistic,
            "p_value": ks.pvalue,
            "out_of_range": float(np.mean((b < a.min()) | (b > a.max()))),
            "null_rate": float(after.isna().mean()),
        }

    def named(values: pd.Series) -> pd.Series:
        return values.astype(object).where(values.notna(), MISSING).astype(str)

    a, b = named(before), named(after)
    categories = sorted(set(a) | set(b))
    counts = np.array(
        [a.value_counts().reindex(categories, fill_value=0), b.value_counts().reindex(categories, fill_value=0)]
    )
    chi = chi2_contingency(counts, correction=False)
    return {
        "distance": jensenshannon(counts[0], counts[1], base=2),
        "statistic": chi.statistic,
        "p_value": chi.pvalue,
        "null_rate": float(after.isna().mean()),
        "new_categories": len(set(b) - set(a) - {MISSING}),
    }


def assert_matches_scipy(result, rows: pd.DataFrame, project: Project, timestamp: str) -> int:
    """Every figure of ``result`` equals scipy's on ``rows`` (the slice's log, with the
    timestamp column named ``timestamp``); returns how many were compared."""
    kinds = {f.name: f.measured_as for f in measured_features(project)}
    # Free text is measured by its length in characters.
    texts = [f.name for f in measured_features(project) if f.kind == "text"]
    rows = rows.assign(**{name: rows[name].str.len() for name in texts})
    day = rows[timestamp].dt.floor("D")
    reference = rows[(day >= pd.Timestamp(result.reference.start)) & (day <= pd.Timestamp(result.reference.end))]
    compared = 0
    for period in result.periods:
        inside = rows[(day >= pd.Timestamp(period.period.start)) & (day < pd.Timestamp(period.period.end))]
        assert period.rows == len(inside), period.period
        for feature in period.features:
            if not len(inside):
                assert feature.p_value is None and feature.distance is None
                continue
            expected = reference_figures(reference[feature.feature], inside[feature.feature], kinds[feature.feature])
            for name, value in expected.items():
                got = getattr(feature, name)
                assert got == pytest.approx(value, rel=TOL, abs=TOL), (period.period.label, feature.feature, name)
            compared += 1
    return compared


def test_figures_equal_scipy_on_the_demo_overall_and_in_a_slice(demo_db):
    with Store(demo_db).read() as con:
        project = get_project(con, "lending-demo")
        reference = reference_window(con, project, "credit-v1", "production", ("2026-09-02", "2026-09-15"))
        overall = drift_table(con, project, reference, parse_slice(), "week")
        east = drift_table(con, project, reference, parse_slice("region = east AND age < 40"), "week")
        log = con.execute(
            f"SELECT * FROM {project.log_table} WHERE model_version = 'credit-v1' AND stage = 'production'"
        ).df()
    assert overall.periods and {p.period.label[:6] for p in overall.periods} == {"2026-W"}
    assert assert_matches_scipy(overall, log, project, "timestamp") == len(overall.periods) * 13
    part = log[(log.region == "east") & (log.age < 40)]
    assert east.reference_rows == len(part[part.timestamp.dt.floor("D") <= pd.Timestamp("2026-09-15")])
    assert assert_matches_scipy(east, part, project, "timestamp") == len(east.periods) * 13


def test_figures_equal_scipy_with_missing_values_by_day_overall_and_in_a_slice(streams):
    store, frames = streams
    frame = frames["shifted"]
    with store.read() as con:
        project = get_project(con, "shifted")
        reference = reference_window(con, project)
        for where, rows in (
            ((), frame),
            (("channel = web", "visits >= 2"), frame[(frame.channel == "web") & (frame.visits >= 2)]),
        ):
            result = drift_table(con, project, reference, parse_slice(*where), "day")
            assert len(result.periods) == 40 - 14
            assert assert_matches_scipy(result, rows, project, "ts") == 26 * 7


def test_timestamp_features_are_not_measured(streams):
    store, _ = streams
    with store.read() as con:
        project = get_project(con, "null-1")
    assert [f.name for f in measured_features(project)] == NUMERIC + CATEGORICAL
    assert {f.measured_as for f in measured_features(project) if f.name == "member"} == {"categories"}


# --- no change: no alarm; a change: found ---------------------------------------------------


def test_streams_without_change_flag_at_most_the_nominal_rate(streams):
    """Four streams with no change (7 features x 26 days each), overall and in a slice:
    after Benjamini-Hochberg at most 5% of the tests flag (in fact none here), and before it
    the raw p-values are below 0.05 about as often as they should be (the tests are
    neither eager nor numb)."""
    store, _ = streams
    flagged, raw = [], []
    with store.read() as con:
        for seed in range(1, 5):
            project = get_project(con, f"null-{seed}")
            reference = reference_window(con, project)
            for where in ((), ("channel = app",)):
                frame = drift_table(con, project, reference, parse_slice(*where), "day").frame()
                assert len(frame) == 26 * 7 and frame.p_value.notna().all()
                assert frame.drifted.mean() <= 0.05, (seed, where)
                flagged.append(frame.drifted.mean())
                raw.append((frame.p_value < 0.05).mean())
    assert np.mean(flagged) <= 0.01
    assert 0.01 <= np.mean(raw) <= 0.08, raw


def test_planted_shifts_are_found_in_the_shifted_periods_and_the_others_mostly_quiet(streams):
    """``amount`` (+0.5 sd) and ``region`` (a different mix) change from day 24: both drift in
    every period from then on. Everything else flagged is a false discovery, and with 32
    true ones Benjamini-Hochberg allows about one in twenty of the flags to be false."""
    store, _ = streams
    with store.read() as con:
        project = get_project(con, "shifted")
        frame = drift_table(con, project, reference_window(con, project), parse_slice(), "day").frame()
    after = frame.start >= START + timedelta(days=24)
    planted = frame.feature.isin(["amount", "region"]) & after
    assert planted.sum() == 2 * 16 and frame[planted].drifted.all()
    false = frame.drifted & ~planted
    assert false.sum() <= 0.1 * frame.drifted.sum()
    assert frame[~frame.feature.isin(["amount", "region"])].drifted.mean() <= 0.02
    amount = frame[after & (frame.feature == "amount")]
    assert (amount.distance > 3).all() and (amount.q_value < 0.001).all()  # W1 near the 5-unit shift


# --- data quality by hand ---------------------------------------------------------------------


def test_null_rate_new_categories_and_out_of_range_by_hand(store):
    """Reference (day 1): colour a, a, b, b; size 1, 2, 3, 3; weight never known. Day 2:
    colour a, c, d, missing; size 0, 2, 5, missing; weight 1, 2 and two missing. Day 3:
    nothing. Day 4: one row."""
    frame = pd.DataFrame(
        {
            "id": [f"r{k}" for k in range(9)],
            "ts": pd.to_datetime(["2026-03-02 08:00"] * 4 + ["2026-03-03 09:00"] * 4 + ["2026-03-05 10:00"]),
            "v": "m1",
            "score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
            "label": [0, 1, 0, 1, 0, 1, 0, 1, 0],
            "colour": ["a", "a", "b", "b", "a", "c", "d", None, "b"],
            "size": [1.0, 2.0, 3.0, 3.0, 0.0, 2.0, 5.0, np.nan, 2.5],
            "weight": [np.nan] * 4 + [1.0, np.nan, 2.0, np.nan, 3.0],
        }
    )
    mapping = Mapping(
        task="binary", id="id", timestamp="ts", version="v", score="score", label="label", positive_label="1",
        features=["colour", "size", "weight"],
    )  # fmt: skip
    with store.write() as con:
        ingest_predictions(con, frame, project="hand", mapping=mapping)
    with store.read() as con:
        project = get_project(con, "hand")
        stage = con.execute(f"SELECT DISTINCT stage FROM {project.log_table}").fetchall()[0][0]
        reference = reference_window(con, project, "m1", stage, ("2026-03-02", "2026-03-02"))
        result = drift_table(con, project, reference, parse_slice(), "day")
    assert [(p.period.label, p.rows) for p in result.periods] == [
        ("2026-03-03", 4),
        ("2026-03-04", 0),
        ("2026-03-05", 1),
    ]
    assert result.reference_rows == 4
    colour, size, weight = result.periods[0].features
    assert (colour.null_rate, colour.new_categories, colour.out_of_range) == (0.25, 2, None)
    assert (size.null_rate, size.new_categories, size.values) == (0.25, None, 3)
    assert size.out_of_range == pytest.approx(2 / 3)  # 0 and 5, of 0, 2 and 5
    # by hand: the CDFs differ by 1/3 on [0, 1), 1/12 on [1, 2), 1/6 on [2, 3), 1/3 on [3, 5)
    assert size.distance == pytest.approx(1 / 3 + 1 / 12 + 1 / 6 + 2 / 3)
    assert size.statistic == pytest.approx(1 / 3)
    # colour: a, b, c, d, missing = (2, 2, 0, 0, 0) against (1, 0, 1, 1, 1)
    assert colour.distance == pytest.approx(jensenshannon([2, 2, 0, 0, 0], [1, 0, 1, 1, 1], base=2))
    assert colour.statistic == pytest.approx(chi2_contingency([[2, 2, 0, 0, 0], [1, 0, 1, 1, 1]], correction=False)[0])
    # weight: no reference value to compare with, only its null rate
    assert (weight.values, weight.null_rate, weight.distance, weight.p_value, weight.drifted) == (
        2,
        0.5,
        None,
        None,
        False,
    )
    # the empty day: listed, with nothing to compare; the tests counted are the others
    assert all(f.rows == 0 and f.p_value is None and f.null_rate is None for f in result.periods[1].features)
    assert result.tests == 4 and result.to_dict()["tests"] == 4
    single = result.periods[2].features[1]  # size 2.5 against 1, 2, 3, 3: D = 1/2, W1 = 1/4 + 1/4 + 1/4
    assert (single.statistic, single.distance, single.out_of_range) == pytest.approx((0.5, 0.75, 0.0))


# --- bad input ----------------------------------------------------------------------------------


def test_bad_input_is_one_readable_line(streams, capsys):
    store, _ = streams
    db = str(store.path)
    common = ["drift", "--db", db, "--project", "null-1", "--reference-start", "2026-01-05"]
    cases = [
        (["--version", "m9", "--reference-end", "2026-01-18"], "has no predictions of version 'm9'"),
        (["--version", "m1", "--stage", "shadow", "--reference-end", "2026-01-18"], "has no shadow predictions"),
        (["--version", "m1", "--reference-end", "2026-01-04"], "starts (2026-01-05) after it ends"),
        (["--version", "m1", "--where", "plan = plan-99", "--reference-end", "2026-01-18"], "has no rows of m1"),
        (["--version", "m1", "--where", "colour = red", "--reference-end", "2026-01-18"], "Unknown column 'colour'"),
    ]
    for extra, words in cases:
        code, out, err = cli(capsys, *common, *extra)
        assert code == 2 and out == "", extra
        assert words in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli(capsys, "drift", "--db", db, "--project", "null-1", "--version", "m1",
                       "--reference-start", "2025-06-01", "--reference-end", "2025-06-30")  # fmt: skip
    assert code == 2 and "has no predictions of m1 (production)" in err
    with store.read() as con:
        project = get_project(con, "null-1")
        with pytest.raises(ConfigError, match="Periods are by day, week, month"):
            drift_table(con, project, reference_window(con, project), parse_slice(), "hour")


# --- the command's JSON -----------------------------------------------------------------------

FEATURE_KEYS = {"feature", "distance", "p_value", "q_value", "drifted", "null_rate", "new_categories", "out_of_range"}


@pytest.mark.parametrize(
    "by, reference_end, labels, first_start",
    [
        ("day", "2026-01-18", ["2026-01-19", "2026-01-20"], "2026-01-19"),
        ("week", "2026-01-21", ["2026-W05", "2026-W06", "2026-W07"], "2026-01-26"),  # rest of W04 left out
        ("month", "2026-01-18", ["2026-02"], "2026-02-01"),
    ],
)
def test_json_contract_by_day_week_and_month(streams, capsys, by, reference_end, labels, first_start):
    store, frames = streams
    code, out, err = cli(
        capsys, "drift", "--db", store.path, "--project", "null-2", "--version", "m1", "--by", by,
        "--reference-start", "2026-01-05", "--reference-end", reference_end, "--where", "channel = web",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert {"reference", "periods"} <= set(out)
    assert out["reference"] == {
        "version": "m1",
        "stage": "production",
        "start": "2026-01-05",
        "end": reference_end,
        "rows": out["reference"]["rows"],
        "labeled": out["reference"]["labeled"],
        "chosen_as": f"2026-01-05 to {reference_end}",
    }
    periods = out["periods"]
    assert [p["period"] for p in periods[: len(labels)]] == labels and periods[0]["start"] == first_start
    frame = frames["null-2"]
    web = frame[frame.channel == "web"]
    with store.read() as con:
        names = [f.name for f in measured_features(get_project(con, "null-2"))]
    for p in periods:
        assert list(p) == ["period", "start", "end", "rows", "features"]
        start, end = pd.Timestamp(p["start"]), pd.Timestamp(p["end"])
        assert p["rows"] == int(((web.ts >= start) & (web.ts < end)).sum())  # start inclusive, end exclusive
        assert [f["feature"] for f in p["features"]] == names
        for f in p["features"]:
            assert FEATURE_KEYS <= set(f) and isinstance(f["drifted"], bool)
    assert periods[-1]["end"] > "2026-02-13" >= periods[-1]["start"]  # through the last logged day


def test_table_format_and_frame(streams, capsys):
    store, _ = streams
    code, out, err = cli(
        capsys, "drift", "--db", store.path, "--project", "shifted", "--version", "m1",
        "--reference-start", "2026-01-05", "--reference-end", "2026-01-18",
    )  # fmt: skip
    assert code == 0, err
    assert "Benjamini–Hochberg over all 182 tests" in out
    assert "2026-01-29  " in out and "amount (W1 " in out and "region (JS " in out
    with store.read() as con:
        project = get_project(con, "shifted")
        frame = drift_table(con, project, reference_window(con, project), parse_slice(), "week").frame()
    assert list(frame.columns) == FRAME_COLUMNS and len(frame) == 4 * 7


def test_drift_needs_no_label_in_the_reference(demo_db, capsys):
    """Drift compares features: a window whose labels have not arrived is a reference too
    (estimates refuse it)."""
    args = ["--db", str(demo_db), "--project", "lending-demo", "--version", "credit-v1", "--format", "json"]
    window = ["--reference-start", "2026-10-29", "--reference-end", "2026-10-30"]
    code, out, _ = cli(capsys, "drift", *args, *window)
    assert code == 0
    periods = out["periods"]
    assert [p["period"] for p in periods] == ["2026-10-31"] and periods[0]["features"]
    code, _, err = cli(capsys, "estimate", *args, *window)
    assert code == 2 and "has no labeled predictions" in err

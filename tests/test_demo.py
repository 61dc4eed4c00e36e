"""The demo project: deterministic, shaped as the README describes (versions, stages,
traffic split, shared example ids, late labels) and with its planted weak slices."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from conftest import db_digest

from analysis import Store, get_project
from analysis.demo import DEMO_PROJECT, build_demo, generate_demo

FIRST_DAY = date(2026, 9, 2)  # README: 2026-09-02 to 2026-10-31
LAST_DAY = date(2026, 10, 31)
VERSIONS = {"credit-v1": "production", "credit-v2": "canary", "credit-v3": "shadow"}

# README, "The demo project": the planted weak slices, as SQL over the log's feature columns
# (column names from data/demo_mapping.toml).
PLANTED = {
    "credit-v1": "channel = 'partner_api' AND employment = 'self_employed'",
    "credit-v2": "age < 25",
    "credit-v3": "region = 'east' AND device = 'android' AND term_months = 60",
}
THIN_FILE = "credit_history_years IS NULL"


@pytest.fixture(scope="module")
def con(demo_db):
    c = duckdb.connect(str(demo_db), read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def log(con):
    return '"' + get_project(con, DEMO_PROJECT).log_table + '"'


def q(con, sql, params=()):
    return con.execute(sql, list(params)).fetchall()


# --- generation -----------------------------------------------------------------------------


def test_generation_is_deterministic_and_seeded():
    a = generate_demo(seed=7, n_days=3, requests_per_day=500)
    b = generate_demo(seed=7, n_days=3, requests_per_day=500)
    for part in ("predictions", "labels", "outcomes"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
    assert len(a.predictions) > 1000
    other = generate_demo(seed=8, n_days=3, requests_per_day=500)
    assert not other.predictions.equals(a.predictions)
    # Same ids are possible by construction (app-DD-N), but the applications differ.
    merged = a.predictions.merge(other.predictions, on="prediction_id", suffixes=("", "_8"))
    assert len(merged) > 0 and (merged["p_default"] != merged["p_default_8"]).mean() > 0.9


def test_generation_with_labels_is_deterministic():
    # Three days are too short for any label to arrive (3 days minimum delay); ten are not.
    a = generate_demo(seed=3, n_days=10, requests_per_day=200)
    b = generate_demo(seed=3, n_days=10, requests_per_day=200)
    assert len(a.labels) > 0 and len(a.outcomes) > 0
    pd.testing.assert_frame_equal(a.labels, b.labels)
    pd.testing.assert_frame_equal(a.outcomes, b.outcomes)
    assert set(a.labels["outcome"]) == {"default", "repaid"}
    assert a.labels["application_id"].is_unique and a.outcomes["prediction_id"].is_unique


# --- shape of the built demo ------------------------------------------------------------------


def test_versions_stages_and_days(con, log):
    rows = q(
        con,
        f'SELECT model_version, stage, min(CAST("timestamp" AS DATE)), max(CAST("timestamp" AS DATE)), '
        f'count(DISTINCT CAST("timestamp" AS DATE)) FROM {log} GROUP BY ALL ORDER BY 1',
    )
    got = {v: (s, first, last, days) for v, s, first, last, days in rows}
    assert set(got) == set(VERSIONS) and len(rows) == 3, "one stage per version"
    assert got["credit-v1"] == ("production", FIRST_DAY, LAST_DAY, 60)
    # Day numbers count from 0 in analysis/demo.py: canary from day 36, shadow from day 30.
    assert got["credit-v2"] == ("canary", FIRST_DAY + timedelta(days=36), LAST_DAY, 24)
    assert got["credit-v3"] == ("shadow", FIRST_DAY + timedelta(days=30), LAST_DAY, 30)


def test_readme_counts(con, log):
    """The numbers the README quotes for the demo (info and metrics examples)."""
    assert q(con, f"SELECT count(*), count(label) FROM {log}")[0] == (463685, 333092)
    assert q(con, f"SELECT count(*), count(label) FROM {log} WHERE model_version = 'credit-v2'")[0] == (19894, 9785)


def test_canary_takes_about_15_percent_of_traffic(con, log):
    shares = con.execute(
        f'SELECT CAST("timestamp" AS DATE) AS d, '
        f"avg(CASE WHEN model_version = 'credit-v2' THEN 1.0 ELSE 0.0 END) AS share "
        f"FROM {log} WHERE model_version IN ('credit-v1', 'credit-v2') GROUP BY d ORDER BY d"
    ).df()
    canary_start = pd.Timestamp(FIRST_DAY + timedelta(days=36))
    before, after = shares[shares.d < canary_start], shares[shares.d >= canary_start]
    assert (before.share == 0).all() and len(after) == 24
    assert after.share.between(0.12, 0.18).all()
    assert after.share.mean() == pytest.approx(0.15, abs=0.01)


def test_prediction_ids_unique_and_one_prediction_per_version_and_example(con, log):
    n, ids = q(con, f"SELECT count(*), count(DISTINCT prediction_id) FROM {log}")[0]
    assert n == ids
    assert (
        q(con, f"SELECT count(*) FROM (SELECT example_id, model_version FROM {log} GROUP BY ALL HAVING count(*) > 1)")[
            0
        ][0]
        == 0
    )


def test_production_and_canary_split_applications_and_shadow_pairs_with_production(con, log):
    def ids(where):
        return {r[0] for r in q(con, f"SELECT example_id FROM {log} WHERE {where}")}

    v1, v2, v3 = (ids(f"model_version = 'credit-v{k}'") for k in (1, 2, 3))
    assert v1.isdisjoint(v2), "an application goes to production or to the canary"
    assert v3 <= v1 | v2 and len(v3) > 0, "every shadow prediction pairs with a live one"
    shadow_start = FIRST_DAY + timedelta(days=30)
    v1_late = ids(f"model_version = 'credit-v1' AND CAST(\"timestamp\" AS DATE) >= DATE '{shadow_start}'")
    assert v3 == v1_late, "shadow scores exactly the production applications from its first day"
    # The pair shares the features too: same application, same input.
    mismatched = q(
        con,
        f"SELECT count(*) FROM {log} a JOIN {log} b ON a.example_id = b.example_id "
        "AND a.model_version = 'credit-v1' AND b.model_version = 'credit-v3' "
        'WHERE a.age <> b.age OR a.income <> b.income OR a."timestamp" <> b."timestamp" '
        "OR a.label IS DISTINCT FROM b.label",
    )[0][0]
    assert mismatched == 0


def test_labels_arrive_late(con, log):
    assert (
        q(con, f'SELECT count(*) FROM {log} WHERE label IS NOT NULL AND NOT (label_timestamp > "timestamp")')[0][0] == 0
    )
    assert q(con, f"SELECT count(*) FROM {log} WHERE (label IS NULL) <> (label_timestamp IS NULL)")[0][0] == 0
    assert q(con, f'SELECT min(label_timestamp - "timestamp") FROM {log}')[0][0] >= timedelta(days=3)
    cov = (
        con.execute(
            f'SELECT CAST("timestamp" AS DATE) AS d, avg(CASE WHEN label IS NULL THEN 0.0 ELSE 1.0 END) '
            f"AS c FROM {log} GROUP BY d ORDER BY d"
        )
        .df()["c"]
        .tolist()
    )
    assert len(cov) == 60
    assert min(cov[:7]) > 0.95, "the first week is almost fully labeled"
    assert max(cov[-3:]) == 0.0, "nothing decided in the last three days is labeled yet"
    assert sum(cov[-14:]) / 14 < sum(cov[:14]) / 14 - 0.3
    # Coverage never rises from week to week.
    weekly = [sum(cov[i : i + 7]) / 7 for i in range(0, 56, 7)]
    assert weekly == sorted(weekly, reverse=True)


def test_outcomes_attached_where_labels_are_known(con, log):
    rows = q(
        con,
        f"SELECT count(*) FILTER (WHERE label IS NOT NULL AND (revenue IS NULL OR loss IS NULL)), "
        f"count(*) FILTER (WHERE label IS NULL AND (revenue IS NOT NULL OR loss IS NOT NULL)) FROM {log}",
    )
    assert rows[0] == (0, 0)
    # Approved loans (predicted repaid) that defaulted lose money; predicted defaults earn and lose nothing.
    assert q(con, f"SELECT count(*) FROM {log} WHERE prediction AND (revenue <> 0 OR loss <> 0)")[0][0] == 0
    assert q(con, f"SELECT count(*) FROM {log} WHERE NOT prediction AND label AND loss <= 0")[0][0] == 0


# --- planted weak slices ------------------------------------------------------------------------


def error_rate(con, log, version, condition) -> tuple[float, float]:
    """Misclassification rate on labeled rows of ``version`` inside and outside ``condition``."""
    rows = dict(
        (bool(s), r)
        for s, r in q(
            con,
            f"SELECT coalesce({condition}, FALSE) AS s, avg(CASE WHEN prediction <> label THEN 1.0 ELSE 0.0 END) "
            f"FROM {log} WHERE model_version = ? AND label IS NOT NULL GROUP BY s",
            [version],
        )
    )
    return rows[True], rows[False]


@pytest.mark.parametrize("version", sorted(PLANTED))
def test_planted_slice_is_clearly_worse_for_its_version(con, log, version):
    inside, outside = error_rate(con, log, version, PLANTED[version])
    assert inside > outside + 0.1 and inside > 1.5 * outside, (inside, outside)
    # ...and that version is the worst of the three on it.
    others = [error_rate(con, log, v, PLANTED[version])[0] for v in VERSIONS if v != version]
    assert inside > max(others) + 0.05, (inside, others)


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_thin_files_are_worse_for_every_version(con, log, version):
    n_null = q(
        con, f"SELECT count(*) FROM {log} WHERE model_version = ? AND {THIN_FILE} AND label IS NOT NULL", [version]
    )[0][0]
    assert n_null > 100
    inside, outside = error_rate(con, log, version, THIN_FILE)
    assert inside > outside + 0.1 and inside > 1.5 * outside, (inside, outside)


def test_slice_rates_match_pandas(con, log):
    """The SQL helper above against an independent pandas computation (credit-v2, under 25)."""
    frame = con.execute(
        f"SELECT age, prediction, label FROM {log} WHERE model_version = 'credit-v2' AND label IS NOT NULL"
    ).df()
    wrong = frame.prediction != frame.label
    young = frame.age < 25
    inside, outside = error_rate(con, log, "credit-v2", PLANTED["credit-v2"])
    assert inside == pytest.approx(wrong[young].mean(), abs=1e-12)
    assert outside == pytest.approx(wrong[~young].mean(), abs=1e-12)


# --- build_demo on an existing database ---------------------------------------------------------


def test_build_demo_existing_project_changes_nothing_without_replace(demo_copy):
    before = db_digest(demo_copy)
    result = build_demo(Store(demo_copy), n_days=3, requests_per_day=50)
    assert result["created"] is False and result["project"] == DEMO_PROJECT
    assert "--replace" in result["message"]
    assert db_digest(demo_copy) == before


def test_build_demo_replace_rebuilds_the_same_log(demo_copy, demo_db):
    before = db_digest(demo_copy)
    result = build_demo(Store(demo_copy), replace=True)
    assert result["created"] is True and result["predictions"] == 463685
    after = db_digest(demo_copy)
    with duckdb.connect(str(demo_copy), read_only=True) as c:
        projects = q(c, "SELECT name FROM sb_projects")
        project = get_project(c, DEMO_PROJECT)
    assert projects == [(DEMO_PROJECT,)], "the old project is gone, not duplicated"
    assert set(after) == set(before), "no table left behind or added"
    assert after[project.log_table] == before[project.log_table]
    # The rollup holds float sums (their order may vary): equal to 1e-9 relative. Its leading
    # columns identify a row, so sorting by every column in order aligns the two.
    frames = []
    for path in (demo_db, demo_copy):
        with duckdb.connect(str(path), read_only=True) as c:
            frame = c.execute(f'SELECT * FROM "{project.rollup_table}"').df()
        frames.append(frame.sort_values(list(frame.columns), na_position="first").reset_index(drop=True))
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=False, rtol=1e-9)

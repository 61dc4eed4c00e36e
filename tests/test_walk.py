"""What walking every workflow on projects other than the demo found (issue 21): a
regression project's comparison in a report, the Errors view's colours, the Slices
page's example slice. Real DuckDB files, the real engine and the real app (AppTest)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from test_app import texts
from test_slices_page import other_tasks, slices_page  # noqa: F401 (fixture)

from analysis import Mapping, Store, get_project, ingest_predictions, palette
from analysis.compare.comparison import Side
from analysis.numbers import format_value
from analysis.reports import add_block, render_html
from analysis.reports.blocks import lines


@pytest.fixture
def deliveries(tmp_path):
    """Delivery times: eta-v8 (a canary) is 12 minutes off in Porto, eta-v7 is not."""
    rng = np.random.default_rng(5)
    n = 3000
    city = rng.choice(["Lisbon", "Porto", "Faro"], n)
    version = np.where(np.arange(n) % 4 == 0, "eta-v8", "eta-v7")
    actual = 20 + rng.gamma(2, 5, n)
    error = rng.normal(0, 3, n) + np.where((version == "eta-v8") & (city == "Porto"), 12, 0)
    frame = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "at": pd.Timestamp("2026-11-01") + pd.to_timedelta(np.arange(n) * 7, unit="min"),
            "eta_model": version,
            "predicted_minutes": actual + error,
            "actual_minutes": actual,
            "city": city,
        }
    )
    db = tmp_path / "eta.duckdb"
    with Store(db).write() as con:
        ingest_predictions(
            con,
            frame,
            project="eta",
            mapping=Mapping(
                task="regression",
                id="order_id",
                timestamp="at",
                version="eta_model",
                prediction="predicted_minutes",
                label="actual_minutes",
                features=["city"],
            ),
        )
    return db, frame


def test_a_regression_comparison_in_a_report_speaks_of_mean_absolute_errors(deliveries):
    """A regression's slices change in mean absolute error (minutes), not in an error rate
    ("error rate 469.7% → 1197.5%" was shown for MAEs of 4.7 and 12.0)."""
    db, frame = deliveries
    with Store(db).write() as con:
        block = add_block(
            con,
            get_project(con, "eta"),
            "review",
            "comparison",
            {"baseline": Side("eta-v7"), "candidate": Side("eta-v8"), "discovered": 0},
        )
    porto = frame[frame.city == "Porto"]
    mae = {v: (g.predicted_minutes - g.actual_minutes).abs().mean() for v, g in porto.groupby("eta_model")}
    said = "\n".join(lines("comparison", block.snapshot))
    line = next(x for x in said.splitlines() if x.startswith("Worse for city = Porto:"))
    assert "error rate" not in said and "%" not in line, line
    assert f"mean absolute error {format_value('mae', mae['eta-v7'])} → {format_value('mae', mae['eta-v8'])}" in line
    with Store(db).read() as con:
        from analysis.reports import get_report

        page = render_html(get_report(con, get_project(con, "eta"), "review"))
    assert "error rate, baseline" not in page and "mean absolute error, baseline" in page
    assert "error rate change" not in page


BUCKETS = {
    "animals": ("habitat", ["correct"], ["wrong"]),
    "houses": ("town", ["within 1 MAE"], ["under > 2 MAE", "under 1-2 MAE", "over 1-2 MAE", "over > 2 MAE"]),
}


@pytest.mark.parametrize("project", ["animals", "houses"])
def test_error_buckets_are_coloured_by_what_they_mean(monkeypatch, other_tasks, project):  # noqa: F811
    """Right answers in blue, wrong ones in vermillion/orange, unlabeled rows in grey
    (the theme's colours made 'unlabeled' red and 'within 1 MAE' red)."""
    column, good, bad = BUCKETS[project]
    at = slices_page(monkeypatch, other_tasks, project=project, view="errors")
    at.selectbox(key="sl_err_by").set_value(column).run()
    bars = next(
        c for c in (json.loads(el.proto.spec) for el in at.get("plotly_chart")) if c["layout"].get("barmode") == "stack"
    )
    colour = {t["name"]: t["marker"]["color"] for t in bars["data"]}
    assert colour["unlabeled"] == palette.NOT_SCORED
    blues = {palette.BETTER, "#56B4E9"}
    assert all(colour[b] in blues for b in good), colour
    assert all(colour[b] not in blues and colour[b] != palette.NOT_SCORED for b in bad), colour
    assert len(set(colour.values())) == len(colour)  # each bucket its own colour


@pytest.mark.parametrize("project", ["animals", "houses"])
def test_the_example_slice_names_the_projects_own_columns(monkeypatch, other_tasks, project):  # noqa: F811
    at = slices_page(monkeypatch, other_tasks, project=project)
    placeholder = at.text_input(key="sl_text").proto.placeholder
    with Store(other_tasks).read() as con:
        features = {c.name for c in get_project(con, project).features}
    named = set(re.findall(r"([A-Za-z_]\w*) (?:=|<)", placeholder))
    assert named and named <= features, placeholder


@pytest.mark.parametrize(
    "project, id_column, label_column", [("animals", "req", "truth"), ("houses", "house", "sold_for")]
)
def test_examples_have_readable_headers_that_name_the_users_columns(
    monkeypatch,
    other_tasks,
    project,  # noqa: F811
    id_column,
    label_column,
):
    """The Examples table showed the engine's names (prediction_id, model_version,
    label_timestamp) and a Score column of dashes for a project without scores."""
    at = slices_page(monkeypatch, other_tasks, project=project, view="examples")
    table = next(d for d in at.dataframe if "prediction_id" in d.value.columns)
    config = json.loads(table.proto.columns)
    assert config["prediction_id"]["label"] == "Prediction id" and id_column in config["prediction_id"]["help"]
    assert config["label"]["label"] == "Label" and label_column in config["label"]["help"]
    assert config["model_version"]["label"] == "Model version"
    assert config["score"]["hidden"] and config["example_id"]["hidden"]  # not mapped in these projects
    assert "score" not in at.selectbox(key="sl_ex_sort").options


def houses_set(path) -> None:
    from analysis.slices import parse_slice
    from analysis.valsets import Selection, commit, create_set, promote

    with Store(path).write() as con:
        project = get_project(con, "houses")
        create_set(con, project, "north misses")
        promote(
            con,
            project,
            "north misses",
            Selection(slice_=parse_slice("town = north"), only_errors=False),
            reason="north",
        )
        commit(con, project, "north misses", "first")


def test_validation_set_tables_speak_words(monkeypatch, other_tasks):  # noqa: F811
    """The sets, draft, history and diff tables showed the engine's names (latest_version,
    content_hash, added_at), "None" for a missing owner and each member's source as raw JSON;
    a diff without changes was an empty table; the criteria's example named classifier
    metrics on a regression project."""
    from test_curation_pages import valsets_page

    houses_set(other_tasks)
    at = valsets_page(monkeypatch, other_tasks, project="houses", view="sets")
    listing = json.loads(next(d for d in at.dataframe if "latest_version" in d.value.columns).proto.columns)
    assert listing["latest_version"]["label"] == "Latest version" and listing["created_at"]["label"] == "Created"
    draft = next(d for d in at.dataframe if "example_id" in d.value.columns)
    assert set(draft.value["source"]) == {"town = north"}
    assert json.loads(draft.proto.columns)["example_id"]["label"] == "Example id"
    assert "mae" in at.text_area(key="vs_new_criteria").placeholder
    assert "accuracy" not in at.text_area(key="vs_new_criteria").placeholder
    at.radio(key="vs_part").set_value("History and diff").run()
    versions = json.loads(next(d for d in at.dataframe if "content_hash" in d.value.columns).proto.columns)
    assert versions["n_members"]["label"] == "Members"
    at.selectbox(key="vs_diff_old").set_value(1).run()
    at.selectbox(key="vs_diff_new").set_value("draft").run()
    assert "No change between version 1 and the draft." in texts(at)
    assert not [d for d in at.dataframe if "change" in d.value.columns]


def test_a_change_that_is_not_significant_is_not_coloured_worse(other_tasks):  # noqa: F811
    """The comparison chart coloured every change by its sign: an accuracy 2.4 points lower
    with an interval reaching 0 was vermillion, as if it were a regression."""
    from analysis.reports.blocks import figures

    with Store(other_tasks).write() as con:
        block = add_block(
            con,
            get_project(con, "animals"),
            "review",
            "comparison",
            {"baseline": Side("b1"), "candidate": Side("b2"), "discovered": 0},
        )
    rows = [r for r in block.snapshot["overall"] if r["delta"] is not None]
    bar = figures("comparison", block.snapshot)[0].data[0]
    crossing = [r["ci_low"] <= 0 <= r["ci_high"] for r in rows]
    assert any(crossing)  # this pair of builds has a change that is not significant
    for r, colour, unsure in zip(rows, bar.marker.color, crossing):
        assert (colour == palette.NEUTRAL) == unsure, (r["metric"], r["ci_low"], r["ci_high"], colour)


def test_the_gate_says_what_its_slice_check_left_out_and_speaks_minutes_for_a_regression(deliveries):
    """eta-v8's canary is 12 minutes off in Porto, on fewer than 500 rows: the gate said
    "1 slices checked, none fails" and "worse by more than 2.0 points" (of minutes)."""
    from analysis.compare.gate import run_gate
    from analysis.numbers import format_delta

    db, frame = deliveries
    with Store(db).read() as con:
        verdict = run_gate(con, get_project(con, "eta"), Side("eta-v7"), Side("eta-v8"))
    s = verdict.comparison.slices
    big = s[(s.n_rows_b >= 500) & (s.n_rows_c >= 500)]
    small_worse = s[((s.n_rows_b < 500) | (s.n_rows_c < 500)) & (s.verdict == "regression")]
    assert len(small_worse) and (small_worse["where"] == "city = Porto").any()
    result = next(r for r in verdict.results if r.criterion.startswith("no slice"))
    assert "points" not in result.criterion and format_delta("mae", 0.02)[1:] in result.criterion
    assert f"{len(big):,} of {len(s):,} slices" in result.detail
    assert f"{len(small_worse):,} smaller slice" in result.detail and "city = Porto" in result.detail


def test_the_gate_names_product_metrics_in_words(demo_copy):
    """The gate's lines said "product metric loss_from_false_approvals" beside readable tables."""
    from analysis.compare.gate import run_gate

    with Store(demo_copy).read() as con:
        verdict = run_gate(con, get_project(con, "lending-demo"), Side("credit-v3"), Side("credit-v1"), criteria=None)
    names = [r.criterion for r in verdict.results if r.criterion.startswith("product metric")]
    assert any(n.startswith("product metric loss from false approvals") for n in names), names
    assert not any("_" in n for n in names), names


def test_binary_examples_show_class_names_not_ticks(monkeypatch, demo_copy):
    """A binary project's prediction and label showed as ticked boxes: which class is ticked?"""
    at = slices_page(monkeypatch, demo_copy, version="credit-v1", slice="region = east", view="examples")
    at.toggle(key="sl_ex_desc").set_value(False).run()  # the oldest rows first: their labels have arrived
    table = next(d for d in at.dataframe if "prediction_id" in d.value.columns)
    assert set(table.value["prediction"]) <= {"default", "repaid"}
    assert set(table.value["label"].dropna()) <= {"default", "repaid"} and table.value["label"].notna().any()
    with Store(demo_copy).read() as con:
        project = get_project(con, "lending-demo")
        row = con.execute(
            f'SELECT prediction, label FROM "{project.log_table}" WHERE prediction_id = ?',
            [table.value["prediction_id"].iloc[0]],
        ).fetchone()
    words = {True: "default", False: "repaid", None: None}
    first = table.value.iloc[0]
    assert (first["prediction"], first["label"] if isinstance(first["label"], str) else None) == (
        words[row[0]],
        words[row[1]],
    )
    assert json.loads(table.proto.columns)["score"]["type_config"]["format"] == "%.3f"


def test_the_promotion_reason_example_is_about_this_slice(monkeypatch, other_tasks):  # noqa: F811
    """The reason's example spoke of the demo (credit-v1, partner-API applicants) on every project."""
    at = slices_page(monkeypatch, other_tasks, project="animals", slice="habitat = forest", view="promote")
    placeholder = at.text_input(key="sl_promote_reason").placeholder
    assert "credit" not in placeholder and "habitat = forest" in placeholder


def test_present_without_a_report_links_to_reports(monkeypatch, other_tasks):  # noqa: F811
    """Present hides the sidebar: with no report, its message left no way to the Reports page."""
    from test_app import app_on

    at = app_on(monkeypatch, other_tasks)
    at.query_params["project"] = "animals"
    at.run()
    at.switch_page("pages/present.py").run()
    assert not at.exception
    assert "This project has no report yet" in texts(at)
    links = [el.proto.page for el in at.get("page_link")]
    assert any(p.endswith("reports.py") or p == "reports" for p in links), links


def test_ml_metrics_are_not_called_rates(deliveries):
    """The Compare table said a mean absolute error (and ROC AUC) was compared "as defined
    (a rate)"; a rate is what a product metric's ratio of sums is."""
    from analysis.compare.comparison import compare

    db, _ = deliveries
    with Store(db).read() as con:
        comp = compare(con, get_project(con, "eta"), Side("eta-v7"), Side("eta-v8"), discovered=0, slices=False)
    ml = comp.overall[comp.overall["kind"] == "ml"]
    assert set(ml["metric"]) >= {"mae", "rmse"}
    assert set(ml["normalisation"]) == {"as defined"}


def test_compare_validation_sets_view_has_headers_in_words(monkeypatch, other_tasks):  # noqa: F811
    """Compare's Validation sets view had the engine's set_version and model_version as headers."""
    from test_app import app_on

    houses_set(other_tasks)
    at = app_on(monkeypatch, other_tasks)
    at.query_params.update({"project": "houses", "view": "sets"})
    at.run()  # the app's first page (the Overview) keeps its own view in the URL: the link's come again after it
    at.query_params.update({"project": "houses", "view": "sets"})
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "Members" in d.value.columns)
    assert not [c for c in table.columns if "_" in c], list(table.columns)
    assert {"Set", "Set version", "Model version", "Mean absolute error", "Verdict"} <= set(table.columns)


@pytest.mark.parametrize("project, words", [("houses", "mean absolute error"), ("animals", "0.02 = 2 points")])
def test_metrics_and_criteria_forms_fit_the_project(monkeypatch, other_tasks, project, words):  # noqa: F811
    """The forms' examples were the demo's (sum(loss) FILTER (WHERE NOT prediction AND label),
    invalid on a regression), and the slice limit said "(points)" beside a value of 0.020."""
    from test_app import app_on

    at = app_on(monkeypatch, other_tasks)
    at.query_params.update({"project": project, "view": "settings"})
    at.run()  # the app's first page (the Overview) keeps its own view in the URL: the link's come again after it
    at.query_params.update({"project": project, "view": "settings"})
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert words in at.number_input(key="cmp_gate_worse").label
    assert "loss" not in at.text_input(key="cmp_pm_name").placeholder
    assert "NOT prediction" not in at.text_input(key="cmp_pm_expression").placeholder


def test_a_regression_leaderboard_speaks_of_absolute_error(monkeypatch, other_tasks):  # noqa: F811
    """The leaderboard of a regression said "Errors" and "Impact (excess errors)" for sums of
    absolute errors in the label's unit, with three decimals on one row and none on the next."""
    at = slices_page(monkeypatch, other_tasks, project="houses", view="leaderboard")
    table = next(d for d in at.dataframe if "impact" in d.value.columns)
    config = json.loads(table.proto.columns)
    assert config["impact"]["label"] == "Impact (excess absolute error)"
    assert config["errors"]["label"] == "Absolute error (sum)"
    assert {config[c]["type_config"]["format"] for c in ("impact", "errors", "error_rate")} <= {"%.1f", "%.3f"}
    assert "excess absolute error" in at.radio(key="sl_sort").format_func("impact")


def test_the_saved_view_says_what_to_do_when_empty(monkeypatch, other_tasks):  # noqa: F811
    """ "None yet." and a greyed Save button said neither what is missing nor what to do."""
    at = slices_page(monkeypatch, other_tasks, project="animals", view="saved")
    said = texts(at)
    assert "None yet." not in said
    assert "No saved slice in this project yet" in said
    assert "Add a condition above to save a slice." in said

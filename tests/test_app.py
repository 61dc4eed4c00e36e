"""The real app under Streamlit's AppTest: every page through app.py, against
real DuckDB files in temp folders."""

from __future__ import annotations

import json
import re
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, db_digest, small_predictions
from sklearn import metrics as skm
from streamlit.testing.v1 import AppTest

from analysis import Store, get_project
from pages.parts import _warm_up

APP = str(ROOT / "app.py")
PAGES = [
    "pages/overview.py",
    "pages/slices.py",
    "pages/discover.py",
    "pages/validation-sets.py",
    "pages/compare.py",
    "pages/import.py",
    "pages/reports.py",
    "pages/present.py",
]


def app_on(monkeypatch, path, timeout: float = 120) -> AppTest:
    """The app on ``path``, as a running server sees it after its first request.

    AppTest starts every run as a fresh server would, in Streamlit's old
    pages-folder mode, where a switched-to page file runs alone until
    ``_ui.require_app`` reruns it through app.py (losing a button click on
    the way). A server leaves that mode for good on its first run, so the
    tests start outside it; the browser tests cover the first request.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    monkeypatch.setenv("SLICEBOARD_DB", str(path))
    # AppTest runs no fragment on a timer: a page waits for its slow answers here (the
    # pending state is tested on its own, and in the browser).
    monkeypatch.setenv("SLICEBOARD_WAIT_SECONDS", str(timeout))
    at = AppTest.from_file(APP, default_timeout=timeout)
    script_run = at._run

    def run_then_settle(*args, **kwargs):
        # The app imports heavy libraries on a thread after its first page; the test goes on
        # once they are in (a library half imported there is visible, half made, here).
        result = script_run(*args, **kwargs)
        _warm_up.settle()
        return result

    at._run = run_then_settle
    return at


def open_page(monkeypatch, path, page: str, **params) -> AppTest:
    """The app on ``path`` opened at ``page`` (``"pages/slices.py"``) by a link with ``params``,
    run, with no exception. The project is chosen on the first run; the app's first page (the
    Overview) keeps its own view in the URL, so the link's parameters come again after it."""
    at = app_on(monkeypatch, path)
    at.query_params.update(params)
    at.run()
    at.query_params.update(params)
    at.switch_page(page).run()
    assert not at.exception
    return at


def literal(markdown: str) -> str:
    """Markdown source as read: CommonMark's backslash escapes (the app escapes user text) undone."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.info] + [e.value for e in at.success] + [e.value for e in at.error]
    parts += [e.value for e in at.warning]
    return literal("\n".join(str(p) for p in parts))


def demo_truth(path) -> pd.DataFrame:
    """Per version and stage straight from the log table: counts, and AUC by scikit-learn."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        table = get_project(con, "lending-demo").log_table
        rows = con.execute(f'SELECT model_version, stage, label, score FROM "{table}"').df()
    finally:
        con.close()
    out = []
    for (version, stage), g in rows.groupby(["model_version", "stage"]):
        lab = g[g["label"].notna()]
        out.append(
            {
                "model_version": version,
                "stage": stage,
                "n_rows": len(g),
                "n_labeled": len(lab),
                "roc_auc": skm.roc_auc_score(lab["label"].astype(bool), lab["score"]),
            }
        )
    return pd.DataFrame(out).sort_values(["model_version", "stage"]).reset_index(drop=True)


def overview_frame(at: AppTest) -> pd.DataFrame:
    frame = at.dataframe[0].value  # the Overview has one table
    return frame.sort_values(["model_version", "stage"]).reset_index(drop=True)


def test_every_page_runs_on_the_demo(monkeypatch, demo_copy):
    at = app_on(monkeypatch, demo_copy).run()
    assert not at.exception
    assert at.title[0].value == "lending-demo"
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page


def test_overview_numbers_match_the_log(monkeypatch, demo_copy):
    truth = demo_truth(demo_copy)
    at = app_on(monkeypatch, demo_copy).run()
    assert not at.exception
    shown = overview_frame(at)
    assert list(shown["model_version"]) == list(truth["model_version"])
    assert list(shown["stage"]) == list(truth["stage"])
    assert list(shown["n_rows"]) == list(truth["n_rows"])
    assert list(shown["n_labeled"]) == list(truth["n_labeled"])
    np.testing.assert_allclose(shown["roc_auc"], truth["roc_auc"], atol=1e-9)
    # The "Over time" view: three daily charts, one line per version and stage.
    assert not at.get("plotly_chart")  # only the view on screen is computed
    at.session_state["ov_view"] = "time"
    at.run()
    charts = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    assert len(charts) == 3
    assert {t["name"] for t in charts[0]["data"]} == {
        f"{v} · {s}" for v, s in zip(truth["model_version"], truth["stage"])
    }


def test_switching_version_filters_and_sets_the_link(monkeypatch, demo_copy):
    truth = demo_truth(demo_copy)
    at = app_on(monkeypatch, demo_copy).run()
    at.selectbox(key="ov_version").set_value("credit-v2").run()
    assert not at.exception
    shown = overview_frame(at)
    assert set(shown["model_version"]) == {"credit-v2"}
    expected = truth[truth["model_version"] == "credit-v2"]
    assert list(shown["n_rows"]) == list(expected["n_rows"])
    assert at.query_params["version"] == ["credit-v2"] or at.query_params["version"] == "credit-v2"


def test_deep_link_opens_the_version(monkeypatch, demo_copy):
    at = app_on(monkeypatch, demo_copy)
    at.query_params["project"] = "lending-demo"
    at.query_params["version"] = "credit-v3"
    at.run()
    assert not at.exception
    assert at.selectbox(key="ov_version").value == "credit-v3"
    assert set(overview_frame(at)["stage"]) == {"shadow"}


def test_first_start_builds_the_demo_with_progress(monkeypatch, tmp_path):
    path = tmp_path / "fresh.duckdb"
    at = app_on(monkeypatch, path, timeout=600).run()
    assert not at.exception
    assert at.title[0].value == "lending-demo"
    assert path.exists()
    assert at.get("status") or at.get("progress") or "Demo project ready" in str(at)


def test_empty_database_shows_the_way_to_import(monkeypatch, tmp_path):
    path = tmp_path / "empty.duckdb"
    Store(path).initialize()
    at = app_on(monkeypatch, path).run()
    assert not at.exception
    assert "no projects" in texts(at)
    at.switch_page("pages/import.py").run()
    assert not at.exception


def upload_predictions(at: AppTest, frame: pd.DataFrame, name: str = "preds.csv") -> AppTest:
    at.file_uploader(key="imp_pred_upload").set_value((name, frame.to_csv(index=False).encode(), "text/csv"))
    return at.run()


def test_import_page_ingests_an_uploaded_file_and_labels(monkeypatch, tmp_path):
    path = tmp_path / "import.duckdb"
    Store(path).initialize()
    at = app_on(monkeypatch, path).run()
    at.switch_page("pages/import.py").run()
    frame = small_predictions(12)
    upload_predictions(at, frame)
    assert not at.exception
    # Column guesses from the names.
    assert at.selectbox(key="imp_role_id").value == "request_id"
    assert at.selectbox(key="imp_role_timestamp").value == "ts"
    assert at.selectbox(key="imp_role_score").value == "score"
    at.text_input(key="imp_new_name").input("shop")
    at.selectbox(key="imp_role_version").set_value("model")
    at.selectbox(key="imp_task").set_value("binary")
    at.run()
    at.button(key="imp_ingest").click().run()
    assert not at.exception
    assert "Ingested 12 predictions into **shop**" in texts(at)
    con = duckdb.connect(str(path), read_only=True)
    try:
        project = get_project(con, "shop")
        n, versions = con.execute(
            f'SELECT count(*), list(DISTINCT model_version ORDER BY model_version) FROM "{project.log_table}"'
        ).fetchall()[0]
    finally:
        con.close()
    assert n == 12 and versions == ["m1", "m2"]

    # Labels for half of the predictions, and one for a prediction not logged yet.
    labels = pd.DataFrame({"request_id": [f"r{k}" for k in range(6)] + ["r99"], "label": [1, 0, 1, 0, 1, 0, 1]})
    at.radio(key="imp_kind").set_value("Labels and outcomes").run()
    at.file_uploader(key="imp_lab_upload").set_value(("labels.csv", labels.to_csv(index=False).encode(), "text/csv"))
    at.run()
    assert at.selectbox(key="imp_lab_id").value == "request_id"
    assert at.selectbox(key="imp_lab_label").value == "label"
    at.button(key="imp_lab_go").click().run()
    assert not at.exception
    assert "6 predictions updated" in texts(at) and "1 labels waiting" in texts(at)
    con = duckdb.connect(str(path), read_only=True)
    try:
        labeled = con.execute(f'SELECT count(label) FROM "{project.log_table}"').fetchall()[0][0]
    finally:
        con.close()
    assert labeled == 6

    # The Overview shows the new project with its coverage.
    at.switch_page("pages/overview.py").run()
    assert not at.exception
    shown = overview_frame(at)
    assert shown["n_labeled"].sum() == 6 and shown["n_rows"].sum() == 12


def test_import_page_shows_a_bad_file_error_and_writes_nothing(monkeypatch, tmp_path):
    path = tmp_path / "bad.duckdb"
    Store(path).initialize()
    at = app_on(monkeypatch, path).run()
    at.switch_page("pages/import.py").run()
    frame = small_predictions(6)
    frame.loc[3, "score"] = 1.7
    upload_predictions(at, frame, "scores.csv")
    at.text_input(key="imp_new_name").input("shop").run()
    before = db_digest(path)
    at.button(key="imp_ingest").click().run()
    assert not at.exception
    message = literal("\n".join(e.value for e in at.error))
    assert "scores.csv" in message and "score" in message and "[0, 1]" in message
    assert db_digest(path) == before


def test_import_page_reports_an_unreadable_file(monkeypatch, tmp_path):
    path = tmp_path / "corrupt.duckdb"
    Store(path).initialize()
    at = app_on(monkeypatch, path).run()
    at.switch_page("pages/import.py").run()
    at.file_uploader(key="imp_pred_upload").set_value(
        ("broken.parquet", b"PAR1 not really", "application/octet-stream")
    )
    at.run()
    assert not at.exception
    assert "broken.parquet" in "\n".join(e.value for e in at.error)


def count_rows(path, where: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        table = get_project(con, "lending-demo").log_table
        return con.execute(f'SELECT count(*) FROM "{table}" WHERE {where}').fetchall()[0][0]
    finally:
        con.close()


def metric_value(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_slices_page_opens_a_deep_link(monkeypatch, demo_copy):
    at = app_on(monkeypatch, demo_copy)
    at.query_params["project"] = "lending-demo"
    at.query_params["version"] = "credit-v1"
    at.query_params["slice"] = "channel = partner_api AND employment = self_employed"
    at.run()
    at.switch_page("pages/slices.py").run()
    assert not at.exception
    expected = count_rows(
        demo_copy, "model_version = 'credit-v1' AND channel = 'partner_api' AND employment = 'self_employed'"
    )
    assert metric_value(at, "Rows in the slice") == f"{expected:,}"
    assert at.text_input(key="sl_text").value == "channel = partner_api AND employment = self_employed"
    assert at.subheader[0].value == "channel = partner_api AND employment = self_employed"


def test_slices_page_builder_adds_and_removes_conditions(monkeypatch, demo_copy):
    at = app_on(monkeypatch, demo_copy).run()
    at.switch_page("pages/slices.py").run()
    at.selectbox(key="sl_column").set_value("region").run()
    at.multiselect(key="sl_values_region").set_value(["east"]).run()
    at.button(key="sl_add").click().run()
    assert not at.exception
    assert at.text_input(key="sl_text").value == "region = east"
    assert (
        metric_value(at, "Rows in the slice") == f"{count_rows(demo_copy, 'region = ' + chr(39) + 'east' + chr(39)):,}"
    )
    assert at.query_params["slice"] in (["region = east"], "region = east")
    at.selectbox(key="sl_column").set_value("age").run()
    at.text_input(key="sl_high_age").input("25").run()
    at.button(key="sl_add").click().run()
    assert at.text_input(key="sl_text").value == "region = east AND age < 25"
    at.button(key="sl_remove_0").click().run()
    assert at.text_input(key="sl_text").value == "age < 25"
    assert metric_value(at, "Rows in the slice") == f"{count_rows(demo_copy, 'age < 25'):,}"


def test_slices_page_explains_a_bad_slice(monkeypatch, demo_copy):
    at = app_on(monkeypatch, demo_copy).run()
    at.switch_page("pages/slices.py").run()
    at.text_input(key="sl_text").input("nope = 1 AND x").run()
    assert not at.exception
    assert "Cannot read the condition" in at.error[0].value or "Unknown column" in at.error[0].value
    at.text_input(key="sl_text").input("country_of_birth = NG").run()
    assert "Unknown column 'country_of_birth'" in literal(at.error[0].value)


def test_slices_page_breakdown_and_leaderboard(monkeypatch, demo_copy):
    from analysis.slices import parse_slice
    from analysis.slices.breakdown import leaderboard
    from analysis.store.scope import Scope

    at = app_on(monkeypatch, demo_copy)
    at.query_params["version"] = "credit-v1"
    at.query_params["slice"] = "device = android"
    at.run()
    at.switch_page("pages/slices.py").run()
    at.segmented_control(key="sl_view").set_value("Breakdown").run()
    at.selectbox(key="sl_by").set_value("region").run()
    assert not at.exception
    frames = [d.value for d in at.dataframe]
    by_region = next(
        f
        for f in frames
        if "value" in f and "east" in set(f["value"]) and "column" in f and set(f["column"]) == {"region"}
    )
    expected = count_rows(demo_copy, "model_version = 'credit-v1' AND device = 'android' AND region = 'east'")
    assert by_region.set_index("value").loc["east", "n_rows"] == expected
    at.segmented_control(key="sl_view").set_value("Leaderboard").run()
    board = next(d.value for d in at.dataframe if "column" in d.value and len(set(d.value["column"])) > 1)
    with Store(demo_copy).read() as con:
        reference = leaderboard(
            con, get_project(con, "lending-demo"), Scope.of(versions="credit-v1"), parse_slice("device = android")
        )
    assert list(board["value"][:5]) == list(reference["value"][:5])
    assert list(board["impact"][:5]) == pytest.approx(list(reference["impact"][:5]))


def test_slices_page_link_carries_stages(monkeypatch, demo_copy):
    at = app_on(monkeypatch, demo_copy)
    at.query_params["stage"] = ["shadow", "canary"]
    at.query_params["slice"] = "region = east"
    at.run()
    at.switch_page("pages/slices.py").run()
    assert not at.exception
    assert sorted(at.multiselect(key="sl_stages").value) == ["canary", "shadow"]
    expected = count_rows(demo_copy, "stage IN ('shadow', 'canary') AND region = 'east'")
    assert metric_value(at, "Rows in the slice") == f"{expected:,}"


def test_slices_page_errors_drill_into_examples(monkeypatch, demo_copy):
    from analysis.slices import parse_slice
    from analysis.slices.buckets import examples
    from analysis.store.scope import Scope

    at = app_on(monkeypatch, demo_copy)
    at.query_params["version"] = "credit-v1"
    at.query_params["slice"] = "channel = partner_api"
    at.run()
    at.switch_page("pages/slices.py").run()
    at.segmented_control(key="sl_view").set_value("Errors").run()
    at.selectbox(key="sl_err_by").set_value("employment").run()
    assert not at.exception
    # Clicking the 'FP' segment of the self_employed bar (a plotly selection event).
    at.session_state["sl_err_bars"] = {
        "selection": {
            "points": [{"curve_number": 3, "point_number": 0, "point_index": 0, "x": "self_employed", "y": 1}],
            "point_indices": [0],
            "box": [],
            "lasso": [],
        }
    }
    at.run()
    assert not at.exception
    assert at.session_state["sl_drill"] == {"column": "employment", "value": "self_employed", "bucket": "FP"}
    with Store(demo_copy).read() as con:
        expected = examples(
            con,
            get_project(con, "lending-demo"),
            Scope.of(versions="credit-v1"),
            parse_slice("channel = partner_api AND employment = self_employed"),
            bucket="FP",
            page_size=50,
        )
    table = next(d.value for d in at.dataframe if "bucket" in d.value and "prediction_id" in d.value)
    assert set(table["bucket"]) == {"FP"}
    assert list(table["prediction_id"]) == list(expected.rows["prediction_id"])
    assert f"of {expected.pages:,}; {expected.total:,} rows" in at.number_input(key="sl_ex_page").label


def test_slices_page_saves_opens_and_tracks_a_slice(monkeypatch, demo_copy):
    at = app_on(monkeypatch, demo_copy)
    at.query_params["slice"] = "age < 25"
    at.run()
    at.switch_page("pages/slices.py").run()
    at.segmented_control(key="sl_view").set_value("Saved").run()
    at.text_input(key="sl_save_name").input("young applicants")
    at.text_area(key="sl_save_description").input("credit-v2 is weak here")
    at.button[[b.label for b in at.button].index("Save (a new revision if the name exists)")].click().run()
    assert not at.exception
    assert "Saved **young applicants**, revision 1" in "\n".join(t.value for t in at.toast)
    at.text_input(key="sl_text").input("region = east").run()
    at.button(key="sl_open_young applicants").click().run()
    assert at.text_input(key="sl_text").value == "age < 25"
    by_version = next(d.value for d in at.dataframe if "part" in d.value and "model_version" in d.value)
    expected = count_rows(demo_copy, "age < 25 AND model_version = 'credit-v2'")
    assert by_version.set_index(["model_version", "part"]).loc[("credit-v2", "slice"), "n_rows"] == expected


def test_discover_page_shows_the_engines_slices(monkeypatch, demo_copy):
    from analysis import Store
    from analysis.discovery.run import discover
    from analysis.store.scope import Scope

    at = app_on(monkeypatch, demo_copy)
    at.query_params["version"] = "credit-v1"
    at.run()
    at.switch_page("pages/discover.py").run()
    assert not at.exception
    at.selectbox(key="dc_error").set_value("loss").run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        stages = tuple(sorted(set(at.multiselect(key="dc_stages").value)))
        expected = discover(
            con, get_project(con, "lending-demo"), Scope.of(versions="credit-v1", stages=stages), error="loss"
        )
    shown = next(d.value for d in at.dataframe if "where" in d.value)
    assert list(shown["where"]) == list(expected.slices["where"])
    assert list(shown["size"]) == list(expected.slices["size"])
    # The planted failure (partner API, self-employed: credit-v1 misses defaults) costs the most money.
    assert shown["where"].iloc[0] == "employment = self_employed AND channel = partner_api"
    assert [m.value for m in at.metric][0] == f"{expected.n_rows:,}"


def test_discover_page_ranks_by_a_cost_expression_and_names_a_bad_one(monkeypatch, demo_copy):
    from analysis import Store
    from analysis.discovery.run import discover
    from analysis.store.scope import Scope

    at = app_on(monkeypatch, demo_copy)
    at.query_params["version"] = "credit-v1"
    at.run()
    at.switch_page("pages/discover.py").run()
    at.selectbox(key="dc_error").set_value("a cost expression…").run()
    assert not at.exception
    cost = "CASE WHEN NOT prediction AND label THEN loss / 1000 ELSE 0 END"
    at.text_input(key="dc_expression").input(cost).run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        stages = tuple(sorted(set(at.multiselect(key="dc_stages").value)))
        expected = discover(
            con, get_project(con, "lending-demo"), Scope.of(versions="credit-v1", stages=stages), error=cost
        )
    shown = next(d.value for d in at.dataframe if "where" in d.value)
    assert list(shown["where"]) == list(expected.slices["where"])
    assert shown["where"].iloc[0] == "employment = self_employed AND channel = partner_api"
    at.text_input(key="dc_expression").input("loss + (SELECT 1)").run()
    assert not at.exception
    assert any("A subquery is not allowed" in e.value for e in at.error)


def test_discover_page_error_tree(monkeypatch, demo_copy):
    at = app_on(monkeypatch, demo_copy)
    at.query_params["version"] = "credit-v1"
    at.run()
    at.switch_page("pages/discover.py").run()
    at.radio(key="dc_view").set_value("Error tree").run()
    assert not at.exception
    leaves = next(d.value for d in at.dataframe if "where" in d.value and "errors" in d.value)
    expected = count_rows(demo_copy, "model_version = 'credit-v1' AND label IS NOT NULL AND prediction IS NOT NULL")
    assert leaves["size"].sum() == expected
    assert leaves["error_rate"].is_monotonic_decreasing


def test_promote_a_slices_errors_into_a_new_set_and_commit_it(monkeypatch, demo_copy):
    from analysis import Store
    from analysis.valsets import evaluate, members

    at = app_on(monkeypatch, demo_copy)
    at.query_params["project"] = "lending-demo"
    at.query_params["version"] = "credit-v1"
    at.query_params["slice"] = "channel = partner_api AND employment = self_employed"
    at.run()
    at.switch_page("pages/slices.py").run()
    at.segmented_control(key="sl_view").set_value("Promote").run()
    at.selectbox(key="sl_promote_set").set_value("+ a new set…").run()
    at.text_input(key="sl_promote_new_name").input("partner self-employed").run()
    at.radio(key="sl_promote_what").set_value("only its errors").run()
    at.text_input(key="sl_promote_reason").input("credit-v1 approves defaulters").run()
    at.button(key="sl_promote_go").click().run()
    assert not at.exception
    scope = (
        "model_version = 'credit-v1' AND channel = 'partner_api' AND employment = 'self_employed' "
        "AND label IS NOT NULL AND prediction IS NOT NULL AND label <> prediction"
    )
    con = duckdb.connect(str(demo_copy), read_only=True)
    table = get_project(con, "lending-demo").log_table
    wrong = con.execute(f'SELECT count(DISTINCT example_id) FROM "{table}" WHERE {scope}').fetchall()[0][0]
    con.close()
    assert f"Added {wrong:,} example(s) to the draft of **partner self-employed**" in "\n".join(
        t.value for t in at.toast
    )
    # At once, without another run, the page shows that they are all in the set already.
    assert (
        f"**0** example(s) will be added to the draft of **partner self-employed**; {wrong:,} of the "
        f"{wrong:,} selected are in it already." in texts(at)
    )

    at.switch_page("pages/validation-sets.py").run()
    assert not at.exception
    assert any(len(d.value) == wrong for d in at.dataframe)
    at.text_input(key="vs_message").input("partner API errors of credit-v1")
    at.button[[b.label for b in at.button].index("Commit the draft as a new version")].click().run()
    assert not at.exception
    assert f"Committed version 1 ({wrong:,} members" in texts(at)
    with Store(demo_copy).read() as con:
        project = get_project(con, "lending-demo")
        assert members(con, project, "partner self-employed", 1)["reason"].eq("credit-v1 approves defaulters").all()
        expected = evaluate(con, project)
    from analysis.numbers import format_count

    at.radio(key="vs_view").set_value("Sets × model versions").run()  # only the chosen view is computed
    assert not at.exception
    shown = next(d.value for d in at.dataframe if "verdict" in d.value)  # formatted figures
    assert list(shown["scored"]) == [format_count(n) for n in expected["scored"]]
    assert shown.loc[shown["model version"] == "credit-v1", "accuracy"].iloc[0] == "0.0%"  # only its errors


def test_discover_promotes_a_found_slices_errors_with_its_source(monkeypatch, demo_copy):
    from analysis import Store
    from analysis.valsets import members

    at = app_on(monkeypatch, demo_copy)
    at.query_params["version"] = "credit-v1"
    at.run()
    at.switch_page("pages/discover.py").run()
    at.session_state["dc_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    top = next(d.value for d in at.dataframe if "where" in d.value)["where"].iloc[0]
    at.selectbox(key="dc_promote_set").set_value("+ a new set…").run()
    at.text_input(key="dc_promote_new_name").input("found").run()
    at.radio(key="dc_promote_what").set_value("only its errors").run()
    at.button(key="dc_promote_go").click().run()
    assert not at.exception
    assert "to the draft of **found**" in texts(at)
    with Store(demo_copy).read() as con:
        got = members(con, get_project(con, "lending-demo"), "found")
    source = json.loads(got["source"].iloc[0])
    assert source["kind"] == "discovered" and source["where"] == top and source["rank"] == 1
    assert len(got) > 0


def compare_page(monkeypatch, demo_copy) -> AppTest:
    """The Compare page on the demo: credit-v3 against credit-v1."""
    at = app_on(monkeypatch, demo_copy)
    at.query_params["baseline"] = "credit-v1"
    at.query_params["candidate"] = "credit-v3"
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    return at


def test_compare_page_shows_the_gates_verdict_and_the_engines_numbers(monkeypatch, demo_copy):
    from analysis import Store
    from analysis.compare.comparison import Side
    from analysis.compare.gate import run_gate
    from analysis.numbers import metric_title

    at = compare_page(monkeypatch, demo_copy)
    at.selectbox(key="cmp_base_stage").set_value("production").run()
    at.selectbox(key="cmp_cand_stage").set_value("shadow").run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        project = get_project(con, "lending-demo")
        first, last = (date.fromisoformat(at.text_input(key=k).value) for k in ("cmp_from", "cmp_to"))
        verdict = run_gate(
            con, project, Side("credit-v1", "production"), Side("credit-v3", "shadow"), start=first, end=last
        )
    shown = literal((at.info or at.warning)[0].value)  # PASS in blue, FAIL in orange
    assert shown.startswith(f"**Gate: {'PASS' if verdict.passed else 'FAIL'}**")
    for result in verdict.results:
        assert result.criterion in shown
    assert f"paired: both versions scored the same {verdict.comparison.n_pairs:,} examples" in texts(at)
    overall = next(d.value for d in at.dataframe if "candidate is" in d.value)
    assert list(overall["metric"]) == [
        metric_title(m, verdict.comparison.product_metrics) for m in verdict.comparison.overall["metric"]
    ]  # paired: totals stay totals
    assert overall.set_index("metric").loc["Loss from false approvals", "baseline"].startswith("$")
    at.segmented_control(key="cmp_view").set_value("slices").run()  # only the view on screen is computed
    slices = next(d.value for d in at.dataframe if "verdict" in d.value and "where" in d.value)
    assert list(slices["where"]) == list(verdict.comparison.slices["where"])


def test_a_report_built_from_the_demos_comparison_presents_and_exports(monkeypatch, demo_copy):
    """Compare → Add to report (a new report) → Reports page shows it with the same
    numbers → Present shows it without editing widgets → the export is the engine's."""
    from analysis import Store
    from analysis.reports import get_report, render_html

    at = compare_page(monkeypatch, demo_copy)
    at.selectbox(key="cmp_report_report").set_value("New report…").run()
    at.text_input(key="cmp_report_new").set_value("Launch review").run()
    at.button(key="cmp_report_add").click().run()
    assert not at.exception
    assert "to Launch review" in texts(at)
    with Store(demo_copy).read() as con:
        report = get_report(con, get_project(con, "lending-demo"), "Launch review")
    block = report.blocks[0]
    assert block.kind == "comparison" and block.params["candidate"] == {"version": "credit-v3", "stage": None}
    at.switch_page("pages/reports.py").run()
    assert not at.exception
    assert at.selectbox(key="rep_name").value == "Launch review"
    assert block.title in [h.value for h in at.subheader] and "Worse for" in texts(at)
    from analysis.numbers import format_delta, metric_name

    overall = next(d.value for d in at.dataframe if "p-value" in d.value)  # formatted as in the export
    products = block.snapshot["product_metrics"]
    expected = {
        metric_name(r["metric"], products): format_delta(r["metric"], r["delta"], products)
        for r in block.snapshot["overall"]
    }
    assert dict(zip(overall["metric"], overall["change"])) == expected
    at.text_area(key="rep_note_text").set_value("Hold the launch until the east/android slice is fixed.")
    at.button(key="FormSubmitter:rep_note_form-Add note").click().run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        report = get_report(con, get_project(con, "lending-demo"), "Launch review")
    assert [b.kind for b in report.blocks] == ["comparison", "note"]
    assert at.get("download_button")  # the export, from render_html
    page = render_html(report)
    assert "Hold the launch" in page and block.title in page
    at.switch_page("pages/present.py").run()
    assert not at.exception
    assert "Launch review" in texts(at) and not at.text_input and not at.button
    assert any(m.label == "Revenue" for m in at.metric)


@pytest.mark.parametrize(
    "page, key, kind",
    [
        ("pages/overview.py", "ov_report", "headline"),
        ("pages/slices.py", "sl_report", "slice"),
        ("pages/discover.py", "dc_report", "discovery"),
    ],
)
def test_add_to_report_from_each_page(monkeypatch, demo_copy, page, key, kind):
    from analysis import Store
    from analysis.reports import get_report

    at = app_on(monkeypatch, demo_copy)
    if kind == "slice":
        at.query_params["slice"] = "region = east"
    at.run()
    at.switch_page(page).run()
    assert not at.exception
    at.selectbox(key=f"{key}_report").set_value("New report…").run()
    at.text_input(key=f"{key}_new").set_value("From every page").run()
    at.button(key=f"{key}_add").click().run()
    assert not at.exception
    assert "to From every page" in texts(at)
    with Store(demo_copy).read() as con:
        block = get_report(con, get_project(con, "lending-demo"), "From every page").blocks[0]
    assert block.kind == kind
    if kind == "slice":
        assert block.params["where"] == "region = east"
    if kind == "headline":
        assert [r["side"] for r in block.snapshot["rows"]] == ["credit-v1", "credit-v2", "credit-v3"]
    if kind == "discovery":
        assert block.params["versions"] == ["credit-v1"] and block.snapshot["slices"]


def test_import_attaches_a_parquet_folder_in_place(monkeypatch, tmp_path):
    from test_external import frame, write_lake

    from analysis import Store

    rows = frame(300)
    write_lake(rows, tmp_path / "lake")
    db = tmp_path / "app.duckdb"
    at = app_on(monkeypatch, db)
    at.run()
    at.switch_page("pages/import.py").run()
    assert not at.exception
    at.text_input(key="imp_pred_path").set_value(str(tmp_path / "lake")).run()
    at.radio(key="imp_target").set_value("new").run()  # not into the demo chosen in the sidebar
    at.text_input(key="imp_new_name").set_value("lake").run()
    assert at.selectbox(key="imp_role_version").value == "model_version"
    at.button(key="imp_attach").click().run()
    assert not at.exception
    assert "reads" in texts(at) and "in place" in texts(at)
    with Store(db).read() as con:
        project = get_project(con, "lake")
        assert project.external and con.execute(f'SELECT count(*) FROM "{project.log_table}"').fetchall()[0][0] == len(
            rows
        )
    at.switch_page("pages/overview.py").run()
    at.selectbox(key="project").set_value("lake").run()
    assert not at.exception and "in place" in texts(at)


# -- files: nothing written for a download, uploads kept private, server paths fenced (issue 20) ---


def listing(*folders) -> set:
    return {(str(p), p.is_dir()) for folder in folders for p in folder.rglob("*")}


def test_opening_a_validation_set_writes_no_file_and_downloads_the_cli_export(monkeypatch, demo_copy, tmp_path):
    import subprocess
    import sys
    import tempfile

    from streamlit.runtime.memory_media_file_storage import _calculate_file_id  # pinned Streamlit 1.67

    from analysis.slices import parse_slice
    from analysis.store.paths import safe_file_name
    from analysis.store.scope import Scope
    from analysis.valsets import Selection, commit, create_set, promote

    with Store(demo_copy).write() as con:
        project = get_project(con, "lending-demo")
        create_set(con, project, "east errors")
        promote(
            con,
            project,
            "east errors",
            Selection(slice_=parse_slice("region = east"), scope=Scope.of(versions="credit-v1"), only_errors=True),
        )
        commit(con, project, "east errors", "first")
    # The shared temp folder, as the app sees it, is a private one here (other processes write to /tmp).
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    before = listing(shared, demo_copy.parent)
    at = app_on(monkeypatch, demo_copy)
    at.run()
    at.query_params.update(view="sets", part="export")  # the set's export, by its link
    at.switch_page("pages/validation-sets.py").run()
    assert not at.exception
    assert at.selectbox(key="vs_open").value == "east errors"
    assert not at.get("download_button")  # nothing built until asked for
    at.radio(key="vs_export_format").set_value("csv").run()
    at.button(key="vs_export_prepare").click().run()
    assert not at.exception
    assert listing(shared, demo_copy.parent) == before
    button = at.get("download_button")[0].proto
    # The CLI's export of the same version, and the bytes the app serves: Streamlit names a
    # download by a hash of its bytes, type and file name.
    out = tmp_path / "cli.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "--db",
            str(demo_copy),
            "valsets",
            "export",
            "--project",
            "lending-demo",
            "--set",
            "east errors",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    cli_bytes = out.read_bytes()
    assert len(pd.read_csv(out)) > 0
    name = safe_file_name("lending-demo-east errors-v1.csv")
    assert button.url.endswith("/" + _calculate_file_id(cli_bytes, "text/csv", name) + ".csv")
    assert f"Download {len(pd.read_csv(out)):,} examples (csv)" == button.label


def test_import_page_reads_only_the_allowed_folders(monkeypatch, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    path = data / "app.duckdb"
    Store(path).initialize()
    secret = tmp_path / "keys.csv"
    secret.write_text("name,value\nOPENAI_API_KEY,sk-live-secret\npassword,hunter2\n")
    (data / "link.csv").symlink_to(secret)
    small_predictions(12).to_csv(data / "preds.csv", index=False)
    monkeypatch.delenv("SLICEBOARD_READ_FOLDERS", raising=False)
    at = app_on(monkeypatch, path).run()
    at.switch_page("pages/import.py").run()
    for bad in [
        "/etc/passwd",
        str(secret),
        str(data / ".." / "keys.csv"),
        str(data / "link.csv"),
        str(tmp_path / "*.csv"),
        "http://169.254.169.254/latest/meta-data",
    ]:
        at.text_input(key="imp_pred_path").set_value(bad).run()
        assert not at.exception, bad
        assert "does not read" in "\n".join(e.value for e in at.error), bad
        assert not at.dataframe and "sk-live" not in str(at) and "root:" not in str(at), bad
    at.text_input(key="imp_pred_path").set_value(str(data / "preds.csv")).run()
    assert not at.exception and not at.error
    assert list(at.dataframe[0].value["request_id"][:3]) == ["r0", "r1", "r2"]
    # The setting names other folders (and only those, besides uploads).
    monkeypatch.setenv("SLICEBOARD_READ_FOLDERS", str(tmp_path))
    at.text_input(key="imp_pred_path").set_value(str(secret)).run()
    assert not at.error and at.dataframe[0].value["value"][0] == "sk-live-secret"


def test_uploads_are_private_and_gone_after_ingest(monkeypatch, tmp_path):
    import stat
    import tempfile

    from analysis.store.paths import uploads_root

    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    path = tmp_path / "up.duckdb"
    Store(path).initialize()
    at = app_on(monkeypatch, path).run()
    at.switch_page("pages/import.py").run()
    upload_predictions(at, small_predictions(12, start=100), "first.csv")
    upload_predictions(at, small_predictions(12), "../../x/preds.csv")  # replaces the first
    assert not at.exception
    kept = [p for p in uploads_root().rglob("*") if p.is_file()]
    assert [p.name for p in kept] == ["_.._x_preds.csv"]  # the client's name, made safe
    for folder in (uploads_root(), kept[0].parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    assert not [p for p in shared.rglob("*") if p.is_file() and "preds" in p.name and uploads_root() not in p.parents]
    at.text_input(key="imp_new_name").input("shop")
    at.selectbox(key="imp_role_version").set_value("model")
    at.selectbox(key="imp_task").set_value("binary")
    at.run()
    at.button(key="imp_ingest").click().run()
    assert not at.exception and "Ingested 12 predictions" in texts(at)
    assert not [p for p in uploads_root().rglob("*") if p.is_file()]
    at.run()  # the uploader still holds the file: it is not saved again
    assert not at.exception and "is ingested" in texts(at)
    assert not [p for p in uploads_root().rglob("*") if p.is_file()]


def test_validation_sets_page_with_unlabeled_members(monkeypatch, demo_copy):
    """Members whose labels have not arrived (most of a fresh set) used to crash the page
    ("boolean value of NA is ambiguous"): both views and the export work, and the export
    leaves those labels empty."""
    from analysis.valsets import Selection, commit, create_set, export_bytes, promote

    con = duckdb.connect(str(demo_copy), read_only=True)
    try:
        table = get_project(con, "lending-demo").log_table
        picked = [
            con.execute(
                f'SELECT prediction_id, label IS NULL FROM "{table}" WHERE model_version = ? '
                f"AND {which} ORDER BY prediction_id LIMIT 10",
                ["credit-v1"],
            ).fetchall()
            for which in ("label IS NULL", "prediction <> label")
        ]
        picked = picked[0] + picked[1]
    finally:
        con.close()
    unlabeled = sum(1 for _, missing in picked if missing)
    assert unlabeled == 10 and len(picked) == 20
    with Store(demo_copy).write() as con:
        project = get_project(con, "lending-demo")
        create_set(con, project, "fresh failures")
        promote(con, project, "fresh failures", Selection(prediction_ids=tuple(p for p, _ in picked)), reason="new")
        commit(con, project, "fresh failures", "first")
        data, done = export_bytes(con, project, "fresh failures", "latest", "csv")
    assert done.rows == len(picked)
    assert pd.read_csv(__import__("io").BytesIO(data))["label"].isna().sum() == unlabeled
    at = app_on(monkeypatch, demo_copy).run()
    at.switch_page("pages/validation-sets.py").run()
    assert not at.exception  # the matrix (the default view once a set is committed)
    at.radio(key="vs_view").set_value("Sets").run()
    at.selectbox(key="vs_open").set_value("fresh failures").run()
    assert not at.exception
    for part in ("History and diff", "Export and re-score"):
        at.radio(key="vs_part").set_value(part).run()
        assert not at.exception
    at.button(key="vs_export_prepare").click().run()
    assert not at.exception
    assert at.get("download_button")[0].proto.label == f"Download {len(picked):,} examples (parquet)"

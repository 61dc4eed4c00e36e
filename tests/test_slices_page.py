"""The Slices page under AppTest (the real app through app.py, a copy of the demo):
the condition builder keeps what a person picked, the page keeps its state in the URL,
and the numbers shown are those of a direct engine call, formatted by analysis.numbers."""

from __future__ import annotations

import json

import duckdb
import pytest
from test_app import literal, open_page, texts

from analysis import Store, get_project
from analysis.ingest.mapping import Mapping
from analysis.ingest.predictions import ingest_predictions


def count_rows(path, where: str, params=()) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        table = get_project(con, "lending-demo").log_table
        return con.execute(f'SELECT count(*) FROM "{table}" WHERE {where}', list(params)).fetchall()[0][0]
    finally:
        con.close()


def slices_page(monkeypatch, path, **params):
    return open_page(monkeypatch, path, "pages/slices.py", **params)


def query_param(at, name):
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_a_picked_value_survives_version_changes(monkeypatch, demo_copy):
    """Issue 21, item 2: the value labels carry counts that change with the version;
    a picked value stays picked (with the new version's count) and can be added."""
    at = slices_page(monkeypatch, demo_copy)
    at.selectbox(key="sl_column").set_value("region").run()
    at.multiselect(key="sl_values_region").set_value(["east"]).run()
    for version in ("credit-v2", "credit-v3", "credit-v2"):
        at.selectbox(key="sl_version").set_value(version).run()
        assert not at.exception, version
        widget = at.multiselect(key="sl_values_region")
        assert widget.value == ["east"], version
        n = count_rows(demo_copy, "model_version = ? AND region = 'east'", [version])
        assert widget.format_func("east") == f"east  ·  {n:,}"
    at.button(key="sl_add").click().run()
    assert not at.exception
    assert at.text_input(key="sl_text").value == "region = east"


def engine(path, func, **kwargs):
    with Store(path).read() as con:
        return func(con, get_project(con, "lending-demo"), **kwargs)


def charts(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_metric_cards_and_tables_show_the_engines_figures_in_words(monkeypatch, demo_copy):
    """Issue 21, item 6: "ROC AUC" not "Roc auc", values by meaning, no arrows on figures
    that are not changes, p-values by format_p, no "None"; a log loss above 1 is not
    clipped by a 0–1 axis."""
    from streamlit.proto.Metric_pb2 import Metric

    from analysis.numbers import format_count, format_p, format_value
    from analysis.slices import parse_slice
    from analysis.slices.metrics import slice_metrics
    from analysis.store.scope import Scope

    where = "channel = partner_api AND employment = self_employed"
    at = slices_page(monkeypatch, demo_copy, version="credit-v1", slice=where)
    truth = engine(demo_copy, slice_metrics, slice_=parse_slice(where), scope=Scope.of(versions="credit-v1"))
    s, r = truth.row("slice"), truth.row("rest")
    cards = {m.label: m for m in at.metric}
    assert list(cards) == ["Rows in the slice", "Labeled", "Error rate", "ROC AUC"]
    assert cards["Rows in the slice"].value == format_count(s.n_rows)
    assert cards["Labeled"].value == format_count(s.n_labeled)
    assert cards["Error rate"].value == format_value("error_rate", s.error_rate) == f"{100 * s.error_rate:.1f}%"
    assert cards["ROC AUC"].value == format_value("roc_auc", s.roc_auc)
    assert cards["Error rate"].proto.delta == (
        f"95% CI {format_value('error_rate', s.error_rate_low)}–{format_value('error_rate', s.error_rate_high)}"
        f" · rest {format_value('error_rate', r.error_rate)}"
    )
    assert all(m.proto.direction == Metric.MetricDirection.NONE for m in at.metric)  # no arrows

    shown = next(d.value for d in at.dataframe if "p-value" in d.value)
    assert list(shown["p-value"]) == [format_p(p) for p in truth.comparison["p_value"]]
    assert list(shown["Metric"])[:3] == ["Share", "Labeled share", "Accuracy"] or "ROC AUC" in list(shown["Metric"])
    assert "ROC AUC" in list(shown["Metric"]) and "Roc auc" not in list(shown["Metric"])
    for frame in (d.value for d in at.dataframe):
        cells = frame.astype(str).to_numpy().ravel()
        assert not {"None", "nan", "NaN", "<NA>"} & set(cells)

    shares, others = (c for c in charts(at) if "95% intervals" in str(c["layout"].get("title")))
    assert shares["layout"]["yaxis"]["range"] == [0, 1]
    assert "Log loss" in others["data"][0]["x"] and "Error rate" not in others["data"][0]["x"]
    assert "range" not in others["layout"].get("yaxis", {})
    by_part = {t["name"]: dict(zip(t["x"], t["y"])) for t in others["data"]}
    assert by_part["slice"]["Log loss"] == pytest.approx(s.log_loss)


def test_multiclass_cards_show_two_different_metrics(monkeypatch, tmp_path):
    import numpy as np
    import pandas as pd

    from analysis import ingest_predictions
    from analysis.ingest.mapping import Mapping
    from analysis.numbers import format_value
    from analysis.slices import parse_slice
    from analysis.slices.metrics import slice_metrics

    rng = np.random.default_rng(5)
    n = 300
    labels = rng.choice(["cat", "dog", "fox"], n)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "src": rng.choice(["x", "y"], n),
            "prediction": np.where(rng.random(n) < 0.7, labels, rng.choice(["cat", "dog", "fox"], n)),
            "label": labels,
        }
    )
    db = tmp_path / "mc.duckdb"
    with Store(db).write() as con:
        ingest_predictions(
            con,
            frame,
            project="animals",
            mapping=Mapping(
                task="multiclass", id="id", version="v", prediction="prediction", label="label", features=["src"]
            ),
        )
    at = slices_page(monkeypatch, db, slice="src = x")
    with Store(db).read() as con:
        truth = slice_metrics(con, get_project(con, "animals"), parse_slice("src = x")).row("slice")
    cards = {m.label: m.value for m in at.metric}
    assert list(cards)[2:] == ["Error rate", "Macro F1"]
    rows = frame[frame.src == "x"]
    assert cards["Error rate"] == format_value("error_rate", (rows.label != rows.prediction).mean())
    assert cards["Macro F1"] == format_value("macro_f1", truth.macro_f1)


def test_the_view_is_in_the_link_and_only_the_chosen_view_is_computed(monkeypatch, demo_copy):
    at = slices_page(monkeypatch, demo_copy, version="credit-v1", slice="region = east", view="errors")
    assert at.segmented_control(key="sl_view").value == "Errors"
    assert not at.metric  # the Metrics view is not drawn, so not computed
    assert at.selectbox(key="sl_err_by")
    assert query_param(at, "view") == "errors"
    at.segmented_control(key="sl_view").set_value("Metrics").run()
    assert not at.exception
    assert at.metric and "view" not in at.query_params
    at.segmented_control(key="sl_view").set_value("Leaderboard").run()
    assert query_param(at, "view") == "leaderboard" and not at.metric
    board = next(d for d in at.dataframe if "impact" in d.value)
    headers = {k: v.get("label") for k, v in json.loads(board.proto.columns).items()}  # readable headers
    assert headers["impact"] == "Impact (excess errors)" and headers["error_rate"] == "Error rate"
    assert headers["n_labeled"] == "Labeled rows" and headers["error_rate_low"] == "Error rate, 95% low"
    # A view's own choices stay while another view is shown.
    at.segmented_control(key="sl_view").set_value("Breakdown").run()
    at.selectbox(key="sl_by").set_value("region").run()
    at.segmented_control(key="sl_view").set_value("Metrics").run()
    at.segmented_control(key="sl_view").set_value("Breakdown").run()
    assert at.selectbox(key="sl_by").value == "region"


def test_adding_a_condition_twice_keeps_one_and_clears_the_pick(monkeypatch, demo_copy):
    at = slices_page(monkeypatch, demo_copy, slice="region = east")
    at.selectbox(key="sl_column").set_value("region").run()
    at.multiselect(key="sl_values_region").set_value(["east"]).run()
    at.button(key="sl_add").click().run()
    assert not at.exception
    assert at.text_input(key="sl_text").value == "region = east"
    assert at.multiselect(key="sl_values_region").value == []
    assert [b.label for b in at.button if b.key and b.key.startswith("sl_remove_")] == ["✕ region = east"]


def test_opening_a_saved_slice_brings_back_its_version_and_stages(monkeypatch, demo_copy):
    from analysis.slices import parse_slice
    from analysis.slices.saved import save_slice
    from analysis.store.scope import Scope

    with Store(demo_copy).write() as con:
        save_slice(
            con,
            get_project(con, "lending-demo"),
            "young on the canary",
            parse_slice("age < 25"),
            scope=Scope.of(versions="credit-v2", stages="canary"),
        )
    at = slices_page(monkeypatch, demo_copy, version="credit-v1", slice="region = east", view="saved")
    assert "young on the canary** · r1 · credit-v2 · canary" in "\n".join(m.value for m in at.markdown)
    at.button(key="sl_open_young on the canary").click().run()
    assert not at.exception
    assert at.selectbox(key="sl_version").value == "credit-v2"
    assert at.multiselect(key="sl_stages").value == ["canary"]
    assert at.text_input(key="sl_text").value == "age < 25"
    assert query_param(at, "version") == "credit-v2" and query_param(at, "stage") == "canary"
    at.segmented_control(key="sl_view").set_value("Metrics").run()
    expected = count_rows(demo_copy, "model_version = 'credit-v2' AND stage = 'canary' AND age < 25")
    assert next(m.value for m in at.metric if m.label == "Rows in the slice") == f"{expected:,}"


def test_a_refused_save_says_why_in_the_form_and_writes_nothing(monkeypatch, demo_copy):
    """The save runs in the button's callback (one run shows the new state); a name the
    engine refuses is said below the button, and the database is as it was."""
    from conftest import db_digest

    at = slices_page(monkeypatch, demo_copy, version="credit-v3", slice="region = east", view="saved")
    before = db_digest(demo_copy)
    at.text_input(key="sl_save_name").input("   ")
    at.button[[b.label for b in at.button].index("Save (a new revision if the name exists)")].click().run()
    assert not at.exception and not at.toast
    assert [literal(e.value) for e in at.error] and "name" in literal(at.error[0].value).lower()
    assert db_digest(demo_copy) == before


def test_saving_shows_the_slice_at_once_and_deleting_asks_first(monkeypatch, demo_copy):
    from analysis.slices.saved import list_slices

    at = slices_page(monkeypatch, demo_copy, version="credit-v3", slice="region = east", view="saved")
    at.text_input(key="sl_save_name").input("east")
    at.button[[b.label for b in at.button].index("Save (a new revision if the name exists)")].click().run()
    assert not at.exception
    assert [t.value for t in at.toast] == ["Saved **east**, revision 1 (credit-v3 · all stages)."]
    assert at.button(key="sl_open_east")  # listed in the same run, without a reload
    saved = engine(demo_copy, list_slices)
    assert list(saved["name"]) == ["east"] and list(saved["versions"]) == [["credit-v3"]]

    at.button(key="sl_delete_east").click().run()
    assert "Delete **east**? Its history stays." in [w.value for w in at.warning]
    assert list(engine(demo_copy, list_slices)["name"]) == ["east"]  # nothing deleted yet
    at.button(key="sl_delete_no").click().run()
    assert not at.warning and list(engine(demo_copy, list_slices)["name"]) == ["east"]
    at.button(key="sl_delete_east").click().run()
    at.button(key="sl_delete_yes").click().run()
    assert not at.exception
    assert engine(demo_copy, list_slices).empty
    assert [t.value for t in at.toast] == ["Deleted **east** (its history stays)."]
    assert "No saved slice in this project yet" in texts(at)


def examples_table(at):
    return next(d for d in at.dataframe if "prediction_id" in d.value)


def examples_key(at) -> str:
    return at.session_state["sl_examples_key"]


def test_ticked_examples_stay_ticked_across_pages_and_belong_to_their_slice(monkeypatch, demo_copy):
    at = slices_page(monkeypatch, demo_copy, version="credit-v1", slice="region = east", view="examples")
    first_page = list(examples_table(at).value["prediction_id"])
    at.session_state[examples_key(at)] = {"selection": {"rows": [0, 2], "columns": [], "cells": []}}
    at.run()
    assert "2 rows selected" in texts(at)
    at.number_input(key="sl_ex_page").set_value(2).run()
    assert list(examples_table(at).value["prediction_id"]) != first_page
    assert (
        json.loads(examples_table(at).proto.selection_default or '{"selection": {"rows": []}}')["selection"]["rows"]
        == []
    )
    at.number_input(key="sl_ex_page").set_value(1).run()
    table = examples_table(at)
    assert list(table.value["prediction_id"]) == first_page
    assert json.loads(table.proto.selection_default)["selection"]["rows"] == [0, 2]  # ticked again
    assert "2 rows selected" in texts(at)
    at.segmented_control(key="sl_view").set_value("Promote").run()
    assert "the 2 rows selected in Examples" in at.radio(key="sl_promote_what").options
    # Another slice: the ticks pointed at rows of the old one, so they are cleared.
    at.text_input(key="sl_text").input("region = west").run()
    assert not at.exception
    assert all("selected in Examples" not in o for o in at.radio(key="sl_promote_what").options)
    at.segmented_control(key="sl_view").set_value("Examples").run()
    assert "0 rows selected" in texts(at)


def test_a_drill_that_points_at_no_row_is_cleared(monkeypatch, demo_copy):
    at = slices_page(monkeypatch, demo_copy, version="credit-v1", slice="channel = partner_api", view="examples")
    at.session_state["sl_drill"] = {"column": "employment", "value": "self_employed", "bucket": "FP"}
    at.run()
    assert "Drilled into: FP" in texts(at)
    at.text_input(key="sl_text").input("employment = salaried").run()
    assert not at.exception
    assert "sl_drill" not in at.session_state
    assert "was cleared: there are no such rows in this slice and scope" in texts(at)
    expected = count_rows(demo_copy, "model_version = 'credit-v1' AND employment = 'salaried'")
    assert f"; {expected:,} rows)" in at.number_input(key="sl_ex_page").label


@pytest.fixture
def other_tasks(tmp_path):
    """A multiclass and a regression project, with unlabeled rows and other column names."""
    import numpy as np
    import pandas as pd

    from analysis import ingest_predictions
    from analysis.ingest.mapping import Mapping

    rng = np.random.default_rng(21)
    n = 400
    db = tmp_path / "tasks.duckdb"
    animals = rng.choice(["cat", "dog", "fox"], n).astype(object)
    guess = np.where(rng.random(n) < 0.6, animals, rng.choice(["cat", "dog", "fox"], n))
    animals[rng.random(n) < 0.25] = None  # labels still pending
    kinds = pd.DataFrame(
        {
            "req": [f"q{i}" for i in range(n)],
            "when": pd.Timestamp("2026-05-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "build": np.where(np.arange(n) % 2, "b1", "b2"),
            "habitat": rng.choice(["forest", "city", "farm"], n),
            "weight_kg": rng.gamma(3, 4, n),
            "guess": guess,
            "truth": animals,
        }
    )
    price = rng.normal(300, 80, n)
    houses = pd.DataFrame(
        {
            "house": [f"h{i}" for i in range(n)],
            "listed": pd.Timestamp("2026-05-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "model": np.where(np.arange(n) % 3, "r1", "r2"),
            "rooms": rng.integers(1, 7, n),
            "town": rng.choice(["north", "south"], n),
            "estimate": price + rng.normal(0, 40, n),
            "sold_for": np.where(rng.random(n) < 0.3, np.nan, price),
        }
    )
    with Store(db).write() as con:
        ingest_predictions(
            con,
            kinds,
            project="animals",
            mapping=Mapping(
                task="multiclass",
                id="req",
                timestamp="when",
                version="build",
                prediction="guess",
                label="truth",
                features=["habitat", "weight_kg"],
            ),
        )
        ingest_predictions(
            con,
            houses,
            project="houses",
            mapping=Mapping(
                task="regression",
                id="house",
                timestamp="listed",
                version="model",
                prediction="estimate",
                label="sold_for",
                features=["rooms", "town"],
            ),
        )
    return db


@pytest.mark.parametrize(
    "project, where, cards",
    [
        ("animals", "habitat = forest", ["Error rate", "Macro F1"]),
        ("houses", "town = north", ["Mean absolute error", "R²"]),
    ],
)
def test_every_view_runs_on_other_tasks(monkeypatch, other_tasks, project, where, cards):
    at = slices_page(monkeypatch, other_tasks, project=project, slice=where)
    assert [m.label for m in at.metric][2:] == cards
    assert not {"None", "nan"} & {m.value for m in at.metric}
    for view in at.segmented_control(key="sl_view").options:
        at.segmented_control(key="sl_view").set_value(view).run()
        assert not at.exception, view
        assert not at.error, (view, [e.value for e in at.error])


def test_a_picked_value_the_new_version_lacks_stays_with_a_count_of_zero(monkeypatch, demo_copy):
    at = slices_page(monkeypatch, demo_copy)
    at.selectbox(key="sl_column").set_value("stage").run()
    at.multiselect(key="sl_values_stage").set_value(["canary"]).run()
    at.selectbox(key="sl_version").set_value("credit-v1").run()  # production only
    assert not at.exception
    widget = at.multiselect(key="sl_values_stage")
    assert widget.value == ["canary"] and widget.format_func("canary") == "canary  ·  0"
    n = count_rows(demo_copy, "model_version = 'credit-v1'")
    assert widget.format_func("production") == f"production  ·  {n:,}"


def test_another_project_brings_its_own_versions_stages_and_no_slice(monkeypatch, demo_copy):
    """Found by the state machine: after a project change the stage pickers kept the last
    project's stages (a project with three was searched on two without saying so)."""
    import numpy as np
    import pandas as pd

    n = 300
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "rid": [f"r{i}" for i in range(n)],
            "at": pd.Timestamp("2026-05-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "build": "m1",
            "env": np.where(np.arange(n) % 3 == 0, "offline", "shadow"),
            "p_yes": rng.random(n),
            "yes": rng.random(n) < 0.4,
            "colour": rng.choice(["red", "blue"], n),
        }
    )
    with Store(demo_copy).write() as con:
        ingest_predictions(
            con,
            frame,
            project="tiny",
            mapping=Mapping(
                task="binary",
                id="rid",
                timestamp="at",
                version="build",
                stage="env",
                score="p_yes",
                label="yes",
                features=["colour"],
            ),
        )
    at = slices_page(
        monkeypatch, demo_copy, project="lending-demo", version="credit-v2", stage="canary", slice="region = east"
    )
    assert at.multiselect(key="sl_stages").value == ["canary"]
    at.selectbox(key="project").set_value("tiny").run()
    assert not at.exception and not at.error
    assert sorted(at.multiselect(key="sl_stages").value) == ["offline", "shadow"]
    assert at.selectbox(key="sl_version").value == "All versions"
    assert at.text_input(key="sl_text").value == ""
    rows = next(m for m in at.metric if m.label == "Rows in the slice")
    assert rows.value == f"{n:,}"
    at.switch_page("pages/discover.py").run()
    assert not at.exception
    assert sorted(at.multiselect(key="dc_stages").value) == ["offline", "shadow"]
    at.selectbox(key="project").set_value("lending-demo").run()
    assert not at.exception
    assert sorted(at.multiselect(key="dc_stages").value) == ["canary", "production", "shadow"]


def test_values_and_missing_picked_together_are_not_silently_dropped(monkeypatch, tmp_path):
    """Found by the state machine: picking a value and the missing value added only the value."""
    import pandas as pd

    db = tmp_path / "plans.duckdb"
    frame = pd.DataFrame(
        {
            "rid": [f"r{i}" for i in range(90)],
            "at": pd.Timestamp("2026-05-01") + pd.to_timedelta(range(90), unit="h"),
            "build": "m1",
            "p_yes": [i / 90 for i in range(90)],
            "yes": [i % 2 == 0 for i in range(90)],
            "plan": ["pro", "free", None] * 30,
        }
    )
    with Store(db).write() as con:
        ingest_predictions(
            con,
            frame,
            project="plans",
            mapping=Mapping(
                task="binary", id="rid", timestamp="at", version="build", score="p_yes", label="yes", features=["plan"]
            ),
        )
    at = slices_page(monkeypatch, db, project="plans")
    at.selectbox(key="sl_column").set_value("plan").run()
    at.multiselect(key="sl_values_plan").select("pro").select("∅ missing").run()
    assert not at.exception
    assert any("not both" in literal(w.value) for w in at.warning)
    assert at.button(key="sl_add").disabled
    at.multiselect(key="sl_values_plan").unselect("pro").run()
    at.button(key="sl_add").click().run()
    assert at.text_input(key="sl_text").value == "plan is null"
    rows = next(m for m in at.metric if m.label == "Rows in the slice")
    assert rows.value == "30"


def test_a_typed_slice_with_or_not_and_parentheses_shows_its_rows(monkeypatch, demo_copy):
    """The typed form takes OR, NOT and parentheses: the page counts exactly the rows SQL
    written by hand counts, and shows one chip per AND term, which removes it."""
    typed = "(region = east OR age < 25) AND NOT channel = partner_api"
    at = slices_page(monkeypatch, demo_copy, version="credit-v1")
    at.text_input(key="sl_text").set_value(typed).run()
    assert not at.exception and not at.error
    expected = count_rows(
        demo_copy,
        "model_version = 'credit-v1' AND (region = 'east' OR age < 25) "
        "AND (channel IS NULL OR channel <> 'partner_api')",
    )
    assert next(m.value for m in at.metric if m.label == "Rows in the slice") == f"{expected:,}"
    chips = [b.label.replace("\\", "") for b in at.button if b.key and b.key.startswith("sl_remove_")]
    assert chips == ["✕ region = east OR age < 25", "✕ NOT channel = partner_api"]
    at.button(key="sl_remove_1").click().run()
    assert at.text_input(key="sl_text").value == "region = east OR age < 25"

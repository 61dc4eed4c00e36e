"""The Monitor page under AppTest (the real app through app.py, a copy of the demo): the
estimates shown are the engine's, formatted by analysis.numbers; slices come from the
URL, the saved slices and the text box; the reference window is chosen and stored; a
click on a period links to that slice and period in Slices and Discover, which open on it."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import parse_qs

import pandas as pd
import pytest
from test_app import open_page, texts
from test_slices_page import count_rows, engine, query_param

from analysis import ConfigError, Store, get_project
from analysis.estimation import ReferenceChoice, get_reference_choice, resolve_reference
from analysis.estimation.run import estimate
from analysis.numbers import format_delta, format_percent, format_value
from analysis.slices import parse_slice
from analysis.slices.metrics import slice_metrics
from analysis.slices.saved import save_slice
from analysis.store.scope import Scope


def engine_on(path, project: str, func, **kwargs):
    with Store(path).read() as con:
        return func(con, get_project(con, project), **kwargs)


def monitor(monkeypatch, path, **params):
    return open_page(monkeypatch, path, "pages/monitor.py", **params)


ALERT_CARDS = ("Reference", "Since the change began", "Impact")  # each alert's cards, above the timelines


def timelines(at) -> list[str]:
    """The slices shown, in order (the alert feed's heading is not one)."""
    return [s.value for s in at.subheader if not s.value.startswith("Alerts (")]


def timeline_cards(at) -> list:
    return [m for m in at.metric if m.label not in ALERT_CARDS]


def charts(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_the_page_shows_the_engine_s_estimates(monkeypatch, demo_copy):
    at = monitor(monkeypatch, demo_copy)
    timeline = engine(demo_copy, estimate, version="credit-v1", stage="production")
    last = timeline.periods[-1]
    auc = last.metrics["roc_auc"]
    cards = {m.label: m.value for m in at.metric}
    assert cards[f"ROC AUC, {last.period.label} (estimated)"] == format_value("roc_auc", auc.estimated)
    assert cards["95% interval"] == f"{format_value('roc_auc', auc.low)} to {format_value('roc_auc', auc.high)}"
    assert cards["Labeled so far"] == format_percent(last.labeled / last.rows, 0)
    figure = charts(at)[0]
    estimated = next(t for t in figure["data"] if t.get("name") == "estimate from scores alone")
    assert estimated["y"] == [p.metrics["roc_auc"].estimated for p in timeline.periods]
    realized = next(t for t in figure["data"] if t.get("name") == "realized (labeled rows)")
    assert realized["y"][-1] is None  # the last days have no label yet
    window = timeline.fit.reference
    assert f"Reference window: {window.describe()}" in [e.label for e in at.expander]
    assert query_param(at, "version") == "credit-v1" and query_param(at, "metric") == "roc_auc"


def test_slices_from_the_url_the_saved_ones_and_the_text_box(monkeypatch, demo_copy):
    with Store(demo_copy).write() as con:
        save_slice(con, get_project(con, "lending-demo"), "young", parse_slice("age < 25"))
    at = monitor(monkeypatch, demo_copy, where="region = east", metric="accuracy", by="week")
    assert timelines(at) == ["region = east", "Every row"]  # the slice asked for first
    east = engine(demo_copy, estimate, version="credit-v1", slice_=parse_slice("region = east"), by="week")
    cards = [m.value for m in timeline_cards(at)]
    assert cards[0] == format_value("accuracy", east.periods[-1].metrics["accuracy"].estimated)
    at.multiselect(key="mo_saved").set_value(["young"]).run()
    assert not at.exception and timelines(at) == ["region = east", "Every row", "young"]
    assert query_param(at, "saved") == "young"
    at.text_input(key="mo_text").set_value("region = nowhere AND").run()
    assert not at.exception and at.error  # a half-typed slice is named, the rest still shown
    at.text_input(key="mo_text").set_value("region = nowhere").run()
    assert not at.exception
    assert "No prediction of credit-v1 (production) is in the slice region = nowhere" in texts(at)
    at.text_input(key="mo_text").set_value("region = east AND age > 95").run()  # rows, none in the reference
    assert not at.exception


def test_the_reference_window_is_chosen_and_stored(monkeypatch, demo_copy):
    at = monitor(monkeypatch, demo_copy)
    at.radio(key="mo_ref_how").set_value("dates")
    at.text_input(key="mo_ref_from").set_value("2026-09-05")
    at.text_input(key="mo_ref_to").set_value("2026-09-20")
    next(b for b in at.button if b.label == "Save the reference window").click().run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        project = get_project(con, "lending-demo")
        assert get_reference_choice(con, project) == ReferenceChoice.of("2026-09-05", "2026-09-20")
        window = resolve_reference(con, project, "credit-v1", "production")
    assert f"Reference window: {window.describe()}" in [e.label for e in at.expander]
    assert at.metric  # the estimates follow the new window
    # A window without a labeled past is refused: said, nothing written.
    at.text_input(key="mo_ref_from").set_value("2026-10-29")
    at.text_input(key="mo_ref_to").set_value("2026-10-31")
    next(b for b in at.button if b.label == "Save the reference window").click().run()
    assert not at.exception and "has no labeled" in texts(at), texts(at)
    with Store(demo_copy).read() as con:
        assert get_reference_choice(con, get_project(con, "lending-demo")) == ReferenceChoice.of(
            "2026-09-05", "2026-09-20"
        )


def test_a_click_on_a_period_opens_it_in_slices_and_discover(monkeypatch, demo_copy):
    at = monitor(monkeypatch, demo_copy, where="region = east")
    assert timelines(at)[:2] == ["region = east", "Every row"]  # the slice asked for first
    chart = at.get("plotly_chart")[0]
    at.session_state[chart.key] = {
        "selection": {"points": [{"customdata": ["2026-10-20"]}], "point_indices": [], "box": [], "lasso": []}
    }
    at.run()
    assert not at.exception
    links = [link for link in at.get("page_link") if "2026-10-20" in link.proto.label]
    assert len(links) == 2
    params = parse_qs(links[0].proto.query_string)
    assert params == {
        "version": ["credit-v1"],
        "stage": ["production"],
        "from": ["2026-10-20"],
        "to": ["2026-10-20"],
        "slice": ["region = east"],
    }
    slices = open_page(monkeypatch, demo_copy, "pages/slices.py", **{k: v[0] for k, v in params.items()})
    n = count_rows(
        demo_copy,
        "model_version = 'credit-v1' AND stage = 'production' AND region = 'east' "
        "AND CAST(\"timestamp\" AS DATE) = DATE '2026-10-20'",
    )
    direct = engine(
        demo_copy,
        slice_metrics,
        slice_=parse_slice("region = east"),
        scope=Scope.of("credit-v1", "production", "2026-10-20", "2026-10-20"),
    )
    assert int(direct.table.set_index("part").loc["slice", "n_rows"]) == n
    assert {m.label: m.value for m in slices.metric}["Rows in the slice"] == f"{n:,}"
    assert (slices.text_input(key="sl_from").value, slices.text_input(key="sl_to").value) == ("2026-10-20",) * 2
    # Discover searches within the slice (its own parameter), in that period.
    searched = parse_qs(links[1].proto.query_string)
    assert searched == {**{k: v for k, v in params.items() if k != "slice"}, "within": ["region = east"]}
    discover = open_page(monkeypatch, demo_copy, "pages/discover.py", **{k: v[0] for k, v in searched.items()})
    assert not discover.exception
    assert (discover.text_input(key="dc_from").value, discover.text_input(key="dc_to").value) == ("2026-10-20",) * 2
    assert discover.text_input(key="dc_within").value == "region = east"
    labeled = count_rows(
        demo_copy,
        "model_version = 'credit-v1' AND stage = 'production' AND region = 'east' "
        "AND CAST(\"timestamp\" AS DATE) = DATE '2026-10-20' AND label IS NOT NULL",
    )
    status = " ".join(getattr(s, "label", "") or str(s) for s in discover.get("status"))
    assert f"of {labeled:,} rows" in status and "within region = east" in status, status  # its labeled rows


def test_a_regression_model_s_errors_are_estimated(monkeypatch, tmp_path):
    import numpy as np
    from test_slices_page import Mapping, ingest_predictions

    rng = np.random.default_rng(5)
    day = np.repeat(np.arange(20), 150)
    size = rng.gamma(2, 50, len(day))
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(day))],
            "ts": pd.Timestamp("2026-01-05") + pd.to_timedelta(day * 86400 + 600, unit="s"),
            "p": 3 * size,
            "y": np.where(day < 14, 3 * size + rng.normal(0, 20, len(day)), np.nan),
            "size": size,
        }
    )
    path = tmp_path / "r.duckdb"
    with Store(path).write() as con:
        mapping = Mapping(task="regression", id="id", timestamp="ts", label="y", prediction="p", features=["size"])
        ingest_predictions(con, frame, project="r", mapping=mapping, version="r1")
    at = monitor(monkeypatch, path)
    timeline = engine_on(path, "r", estimate, version="r1")
    last = timeline.periods[-1]
    cards = {m.label: m.value for m in at.metric}
    assert cards[f"Mean absolute error, {last.period.label} (estimated)"] == format_value(
        "mae", last.metrics["mae"].estimated
    )


def test_the_overview_shows_the_latest_week_estimated_beside_the_realized_figures(monkeypatch, demo_copy):
    at = open_page(monkeypatch, demo_copy, "pages/overview.py")
    week = engine(demo_copy, estimate, version="credit-v1", stage="production", by="week").periods[-1]
    cards = {m.label: m.value for m in at.metric}
    figures = week.metrics["roc_auc"]
    assert cards[f"ROC AUC, {week.period.label} · estimated"] == format_value("roc_auc", figures.estimated)
    band = f"95%: {format_value('roc_auc', figures.low)} to {format_value('roc_auc', figures.high)}"
    assert band in texts(at)
    with pytest.raises(ConfigError) as canary:  # the canary's first weeks: the engine's reason is shown
        engine(demo_copy, estimate, version="credit-v2", stage="canary", by="week")
    assert f"No estimate yet (see Monitor). {canary.value}" in texts(at)
    at.segmented_control(key="ov_view").set_value("time").run()
    assert not at.exception
    daily = engine(demo_copy, estimate, version="credit-v1", stage="production", by="day")
    line = next(t for t in charts(at)[2]["data"] if t.get("name") == "credit-v1 · production (estimated from scores)")
    assert line["y"] == [p.metrics["roc_auc"].estimated for p in daily.periods]


def test_a_timeline_is_added_to_a_report(monkeypatch, demo_copy):
    from analysis.reports import get_report

    at = monitor(monkeypatch, demo_copy, metric="accuracy")
    key = next(w.key for w in at.text_input if w.key and w.key.startswith("mo_report_") and w.key.endswith("_new"))
    prefix = key[: -len("_new")]
    at.text_input(key=key).set_value("weekly").run()
    at.button(key=f"{prefix}_add").click().run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        report = get_report(con, get_project(con, "lending-demo"), "weekly")
    (block,) = report.blocks
    assert block.kind == "estimate" and block.params["metric"] == "accuracy"
    timeline = engine(demo_copy, estimate, version="credit-v1", metrics=["accuracy"])
    assert block.snapshot["rows"][-1]["estimated"] == timeline.periods[-1].metrics["accuracy"].estimated


def test_the_slices_page_links_a_slice_to_its_monitor(monkeypatch, demo_copy):
    slices = open_page(monkeypatch, demo_copy, "pages/slices.py", slice="region = east", version="credit-v1")
    (link,) = [x for x in slices.get("page_link") if x.proto.label == "Monitor this slice"]
    params = {k: v[0] for k, v in parse_qs(link.proto.query_string).items()}
    assert params == {"where": "region = east", "version": "credit-v1"}
    at = monitor(monkeypatch, demo_copy, **params)
    assert timelines(at) == ["region = east", "Every row"]


def test_another_project_starts_without_the_last_one_s_slice(monkeypatch, demo_copy, tmp_path):
    """Found by the random user (test_app_machine): a slice typed for one project was read
    again, from the link, for the next one."""
    from test_estimation import MAPPING, stream

    from analysis import ingest_predictions

    with Store(demo_copy).write() as con:
        ingest_predictions(
            con, stream(seed=3, per_day=40).drop(columns=["true_label"]), project="other", mapping=MAPPING
        )
    at = monitor(monkeypatch, demo_copy, where="channel = partner_api")
    assert timelines(at) == ["channel = partner_api", "Every row"]
    at.selectbox(key="project").set_value("other").run()
    assert not at.exception and not at.error
    assert at.text_input(key="mo_text").value == "" and "where" not in at.query_params


def test_drift_of_every_period_and_what_moved_in_a_clicked_one(monkeypatch, demo_copy):
    from analysis.drift import drift_table
    from analysis.drift.attribution import explain_change

    at = monitor(monkeypatch, demo_copy, where="region = east")
    toggle = next(t for t in at.toggle if t.key.startswith("mo_drift_on_"))
    toggle.set_value(True).run()
    assert not at.exception
    timeline = engine(demo_copy, estimate, version="credit-v1", slice_=parse_slice("region = east"))
    result = engine(
        demo_copy, drift_table, reference=timeline.fit.reference, slice_=parse_slice("region = east"), by="day"
    )
    heatmap = next(c for c in charts(at) if c["data"][0]["type"] == "heatmap")
    assert heatmap["data"][0]["x"] == [p.period.label for p in result.periods]
    chart = [c for c in at.get("plotly_chart") if c.key.startswith("mo_chart_")][0]  # the east's timeline: first
    at.session_state[chart.key] = {
        "selection": {"points": [{"customdata": ["2026-10-20"]}], "point_indices": [], "box": [], "lasso": []}
    }
    at.run()
    assert not at.exception
    assert "What moved in 2026-10-20" in texts(at)
    table = next(d.value for d in at.dataframe if "Feature" in d.value.columns)
    found = engine(
        demo_copy,
        explain_change,
        reference=timeline.fit.reference,
        slice_=parse_slice("region = east"),
        period_start=date(2026, 10, 20),
        by="day",
    )
    assert set(table.Feature) == {f.feature for f in result.periods[0].features}
    biggest = found[0]
    column = next(c for c in table.columns if c.startswith("Accounts for"))
    assert table.set_index("Feature").loc[biggest.feature, column] == format_delta("accuracy", biggest.accounts_for)

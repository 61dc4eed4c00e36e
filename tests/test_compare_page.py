"""The Compare page under AppTest on the demo (issue 21, items 3, 4 and 6 for Compare):
a link reproduces the view; the canary is judged per prediction on the days both
versions served; the planted slice fails the gate; figures read as numbers."""

from __future__ import annotations

from datetime import date

from test_app import app_on, literal, open_page, texts

from analysis import Store, get_project
from analysis.compare.comparison import Side
from analysis.compare.gate import run_gate


def open_compare(monkeypatch, path, **params):
    return open_page(monkeypatch, path, "pages/compare.py", **params)


def test_a_link_reproduces_the_view(monkeypatch, demo_copy):
    link = {
        "baseline": "credit-v1",
        "candidate": "credit-v2",
        "baseline_stage": "production",
        "candidate_stage": "canary",
        "view": "slices",
        "start": "2026-10-01",
        "end": "2026-10-30",
        "overlap": "0",
    }
    at = open_compare(monkeypatch, demo_copy, **link)
    assert at.selectbox(key="cmp_base").value == "credit-v1" and at.selectbox(key="cmp_cand").value == "credit-v2"
    assert at.selectbox(key="cmp_base_stage").value == "production"
    assert at.selectbox(key="cmp_cand_stage").value == "canary"
    assert [at.text_input(key=k).value for k in ("cmp_from", "cmp_to")] == ["2026-10-01", "2026-10-30"]
    assert at.toggle(key="cmp_overlap").value is False
    assert at.segmented_control(key="cmp_view").value == "slices"
    assert {
        k: at.query_params[k][0] if isinstance(at.query_params[k], list) else at.query_params[k] for k in link
    } == link
    # Only the chosen view: the slices table, not the overall one.
    assert any("where" in d.value for d in at.dataframe)
    assert not any("candidate is" in d.value for d in at.dataframe)
    at.segmented_control(key="cmp_view").set_value("overall").run()
    assert at.query_params["view"] in ("overall", ["overall"])
    assert any("candidate is" in d.value for d in at.dataframe)


def test_the_canary_is_judged_per_prediction_and_fails_on_its_young_applicants(monkeypatch, demo_copy):
    at = open_compare(monkeypatch, demo_copy, baseline="credit-v1", candidate="credit-v2")
    assert not at.exception
    shown = texts(at)
    with Store(demo_copy).read() as con:
        project = get_project(con, "lending-demo")
        first, last = (date.fromisoformat(at.text_input(key=k).value) for k in ("cmp_from", "cmp_to"))
        verdict = run_gate(con, project, Side("credit-v1"), Side("credit-v2"), start=first, end=last)
    assert not verdict.passed
    box = literal(at.warning[0].value)  # FAIL: orange
    assert box.startswith("**Gate: FAIL**") and "age < 25" in box
    assert "revenue per prediction" in box and "e+" not in box and "e-" not in box
    assert "the days both versions served" in shown and "left out credit-v1" in shown
    overall = next(d.value for d in at.dataframe if "candidate is" in d.value).set_index("metric")
    assert overall.loc["Revenue per prediction", "compared"] == "per prediction"
    engine = verdict.comparison.overall.set_index("metric")
    assert overall.loc["Revenue per prediction", "baseline"] == f"${engine.loc['revenue', 'baseline']:,.0f}"
    assert overall.loc["ROC AUC", "p-value"] not in ("0", "0.0", "None", "nan")
    at.segmented_control(key="cmp_view").set_value("slices").run()
    table = next(d.value for d in at.dataframe if "where" in d.value).set_index("where")
    row = table.loc["age < 25"]
    assert row["verdict"] == "worse" and row["found by"] == "found where the candidate is worse"
    assert row["error rate (candidate)"] == "41.9%" and row["error rate (baseline)"] == "31.2%"


def test_saving_the_criteria_shows_the_new_verdict_at_once(monkeypatch, demo_copy):
    at = open_compare(monkeypatch, demo_copy, baseline="credit-v1", candidate="credit-v2", view="settings")
    assert literal(at.warning[0].value).startswith("**Gate: FAIL**")
    at.number_input(key="cmp_gate_worse").set_value(0.5)
    at.button(key="FormSubmitter:cmp_gate_form-Save the criteria").click().run()
    assert not at.exception
    assert literal(at.info[0].value).startswith("**Gate: PASS**")  # age < 25 is 10.7 points worse, under 50
    assert any("Saved the gate criteria" in t.value for t in at.toast)


def open_while_the_gate_runs(monkeypatch, path, view: str):
    """Compare credit-v2 against credit-v1 on a page that waits no time for the gate (as on
    millions of rows): the first run shows the gate pending."""
    from pages.parts import _slow

    link = {"baseline": "credit-v1", "candidate": "credit-v2", "view": view}
    at = app_on(monkeypatch, path)
    monkeypatch.setenv(_slow.WAIT_ENV, "0")
    at.query_params.update(link)
    at.run()
    at.query_params.update(link)
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    return at


def test_a_slow_gate_leaves_the_page_usable_and_fills_in_when_done(monkeypatch, demo_copy):
    """On millions of rows the gate's search takes seconds: the page does not wait for it.
    It shows the overall figures at once, says the gate is being checked, and shows the
    same verdict as the engine once the worker is done (here: a page that waits no time)."""
    from pages.parts import _slow

    at = open_while_the_gate_runs(monkeypatch, demo_copy, "slices")
    infos = [literal(i.value) for i in at.info]
    assert any(i.startswith("Checking the gate") and "s so far" in i for i in infos), infos
    assert "The slices come with the gate's verdict" in texts(at)
    assert not at.warning  # no verdict yet
    assert _slow.wait_for_answers(timeout=300)
    at.run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        first, last = (date.fromisoformat(at.text_input(key=k).value) for k in ("cmp_from", "cmp_to"))
        verdict = run_gate(
            con, get_project(con, "lending-demo"), Side("credit-v1"), Side("credit-v2"), start=first, end=last
        )
    assert not verdict.passed and literal(at.warning[0].value).startswith("**Gate: FAIL**")
    table = next(d.value for d in at.dataframe if "where" in d.value).set_index("where")
    assert table.loc["age < 25", "verdict"] == "worse"


def test_the_overall_figures_show_while_the_gate_is_checked(monkeypatch, demo_copy):
    """The overall figures come from the gate's own computation, before it searches the
    slices: shown with the gate still pending, equal to the engine's, and the same once
    the verdict is in."""
    from analysis.compare.comparison import compare
    from pages.parts import _slow

    at = open_while_the_gate_runs(monkeypatch, demo_copy, "overall")
    assert any(literal(i.value).startswith("Checking the gate") for i in at.info)
    assert not at.warning  # no verdict yet
    pending = next(d.value for d in at.dataframe if "candidate is" in d.value).set_index("metric")
    with Store(demo_copy).read() as con:
        first, last = (date.fromisoformat(at.text_input(key=k).value) for k in ("cmp_from", "cmp_to"))
        engine = compare(
            con,
            get_project(con, "lending-demo"),
            Side("credit-v1"),
            Side("credit-v2"),
            start=first,
            end=last,
            slices=False,
        ).overall.set_index("metric")
    assert pending.loc["Revenue per prediction", "baseline"] == f"${engine.loc['revenue', 'baseline']:,.0f}"
    assert pending.loc["Accuracy", "candidate"] == f"{engine.loc['accuracy', 'candidate']:.1%}"
    assert _slow.wait_for_answers(timeout=300)
    at.run()
    assert not at.exception and literal(at.warning[0].value).startswith("**Gate: FAIL**")
    done = next(d.value for d in at.dataframe if "candidate is" in d.value).set_index("metric")
    assert done.equals(pending)

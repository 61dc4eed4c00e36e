"""The Validation sets, Reports and Present pages under AppTest on real DuckDB files:
a write shows its new state in the same run with a toast; removals ask first; a note
goes where the user puts it; only the chosen view is computed; the figures shown are
analysis.numbers' text of a direct engine call, the same as in the HTML export."""

from __future__ import annotations

import json

import pytest
from test_app import literal, open_page, texts

from analysis import Store, get_project
from analysis.numbers import format_delta, format_value, metric_title
from analysis.reports import add_block, get_report, render_html
from analysis.reports.blocks import tables


def blocks_shown(at) -> list[str]:
    return [literal(h.value) for h in at.subheader]


def report_page(monkeypatch, path, report: str):
    return open_page(monkeypatch, path, "pages/reports.py", report=report)


def stored(path, report: str) -> list[str]:
    with Store(path).read() as con:
        return [b.title for b in get_report(con, get_project(con, "lending-demo"), report).blocks]


@pytest.fixture()
def notes_db(demo_copy):
    with Store(demo_copy).write() as con:
        project = get_project(con, "lending-demo")
        for title in ("One", "Two", "Three"):
            add_block(con, project, "Review", "note", {"text": f"note {title}"}, title=title)
    return demo_copy


def test_report_writes_show_at_once_with_a_toast(monkeypatch, notes_db):
    at = report_page(monkeypatch, notes_db, "Review")
    assert blocks_shown(at) == ["One", "Two", "Three"]
    one = get_id(notes_db, "One")
    at.button(key=f"rep_down_{one}").click().run()
    assert not at.exception
    # Drawn in the same run, the stored order, and a confirmation.
    assert blocks_shown(at) == ["Two", "One", "Three"] == stored(notes_db, "Review")
    assert [literal(t.value) for t in at.toast] == ["Moved “One” down."]
    at.text_input(key=f"rep_title_{one}").set_value("First")
    at.button(key=f"rep_save_{one}").click().run()
    assert blocks_shown(at) == ["Two", "First", "Three"] and [t.value for t in at.toast] == ["Saved."]


def get_id(path, title: str, report: str = "Review") -> int:
    with Store(path).read() as con:
        return next(
            b.block_id for b in get_report(con, get_project(con, "lending-demo"), report).blocks if b.title == title
        )


def test_a_note_goes_where_the_user_puts_it(monkeypatch, notes_db):
    at = report_page(monkeypatch, notes_db, "Review")
    place = at.selectbox(key="rep_note_place")
    assert place.options == ["At the end", "At the top", "After “One”", "After “Two”"]
    at.text_area(key="rep_note_text").set_value("between one and two")
    place.set_value(2)  # the position after "One", shown as After “One”
    at.button(key="FormSubmitter:rep_note_form-Add note").click().run()
    assert not at.exception
    assert blocks_shown(at) == ["One", "Note", "Two", "Three"] == stored(notes_db, "Review")
    assert "between one and two" in str(at.get("html")[1].proto)
    assert [t.value for t in at.toast] == ["Added the note."]
    at.text_area(key="rep_note_text").set_value("last words")
    at.button(key="FormSubmitter:rep_note_form-Add note").click().run()
    assert stored(notes_db, "Review") == blocks_shown(at) == ["One", "Note", "Two", "Three", "Note"]


def test_removing_a_block_or_a_report_asks_first(monkeypatch, notes_db):
    at = report_page(monkeypatch, notes_db, "Review")
    two = get_id(notes_db, "Two")
    at.button(key=f"rep_rm_{two}").click().run()
    assert not at.exception
    assert stored(notes_db, "Review") == ["One", "Two", "Three"]  # nothing removed yet
    assert "Remove “Two” from this report?" in texts(at)
    at.button(key=f"rep_rm_no_{two}").click().run()
    assert "Remove “Two”" not in texts(at) and stored(notes_db, "Review") == ["One", "Two", "Three"]
    at.button(key=f"rep_rm_{two}").click().run()
    at.button(key=f"rep_rm_yes_{two}").click().run()
    assert not at.exception
    assert blocks_shown(at) == ["One", "Three"] == stored(notes_db, "Review")
    assert [literal(t.value) for t in at.toast] == ["Removed “Two”."]

    at.button(key="rep_delete").click().run()
    assert "Delete the report “Review” and its 2 blocks?" in texts(at)
    assert stored(notes_db, "Review") == ["One", "Three"]
    at.button(key="rep_delete_yes").click().run()
    assert not at.exception
    with Store(notes_db).read() as con:
        from analysis.reports import list_reports

        assert list(list_reports(con, get_project(con, "lending-demo"))["name"]) == []
    assert "No report yet" in texts(at) and [literal(t.value) for t in at.toast] == ["Deleted the report “Review”."]


def test_report_tables_and_present_show_the_exports_figures(monkeypatch, demo_copy):
    """A comparison block: the Reports page's table, the Present page's cards and the HTML
    export show the same text for every figure, analysis.numbers' text of the engine's
    numbers (money in dollars, changes of shares in points)."""
    from analysis.compare.comparison import Side, compare
    from analysis.metrics.product import ProductMetric

    with Store(demo_copy).write() as con:
        project = get_project(con, "lending-demo")
        block = add_block(
            con, project, "Launch", "comparison", {"baseline": Side("credit-v1"), "candidate": Side("credit-v3")}
        )
        report = get_report(con, project, "Launch")
        comp = compare(
            con,
            project,
            Side("credit-v1"),
            Side("credit-v3"),
            start=block.params["start"],
            end=block.params["end"],
            saved=block.params["saved"],
            discovered=5,
            metrics=[ProductMetric(**m) for m in block.params["metrics"]],
        )
    products = block.params["metrics"]
    at = report_page(monkeypatch, demo_copy, "Launch")
    table = next(d.value for d in at.dataframe if "change" in d.value and "metric" in d.value)
    page = render_html(report)
    export_rows = tables("comparison", block.snapshot)[0].rows
    assert [[c.text for c in row] for row in export_rows] == table.astype(str).values.tolist()
    for row, r in zip(export_rows, comp.overall.itertuples()):
        assert row[1].text == format_value(r.metric, r.baseline, products)
        assert row[3].text == format_delta(r.metric, r.delta, products)
        assert f">{row[3].text}<".replace("&", "&amp;") in page
    assert "None" not in table.to_string() and "nan" not in table.to_string()

    at.switch_page("pages/present.py").run()
    assert not at.exception
    cards = {m.label: m for m in at.metric}
    for r in comp.overall.itertuples():
        if r.kind == "product":
            card = cards[metric_title(r.metric, products)]
            assert card.value == format_value(r.metric, r.candidate, products)
            assert card.proto.delta == format_delta(r.metric, r.delta, products).replace("−", "-")
            assert card.value in page


# -- Validation sets ----------------------------------------------------------------------------


def east_set(path, name: str = "east errors", criteria=("accuracy >= 0.3",), commit_it: bool = True):
    """A set of credit-v1's errors in the east, criterion accuracy >= 30%: a version that scored
    a third of them right (credit-v3) passes, credit-v1 fails, credit-v2 never scored them."""
    from analysis.slices import parse_slice
    from analysis.store.scope import Scope
    from analysis.valsets import Selection, commit, create_set, promote

    with Store(path).write() as con:
        project = get_project(con, "lending-demo")
        create_set(con, project, name, criteria=list(criteria))
        promote(
            con,
            project,
            name,
            Selection(slice_=parse_slice("region = east"), scope=Scope.of(versions="credit-v1"), only_errors=True),
        )
        if commit_it:
            commit(con, project, name, "first")


def valsets_page(monkeypatch, path, **params):
    return open_page(monkeypatch, path, "pages/validation-sets.py", **params)


def charts(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_the_matrix_is_coloured_by_verdict_with_the_engines_figures(monkeypatch, demo_copy):
    from analysis.numbers import format_count
    from analysis.palette import VERDICT_LEVEL, VERDICT_WORDS
    from analysis.valsets import evaluate

    east_set(demo_copy)
    with Store(demo_copy).read() as con:
        truth = evaluate(con, get_project(con, "lending-demo"))
    assert {"pass", "fail"} <= set(truth["verdict"])
    at = valsets_page(monkeypatch, demo_copy)
    assert at.radio(key="vs_view").value == "Sets × model versions"  # a committed set: the matrix first
    heat = charts(at)[0]["data"][0]
    assert heat["type"] == "heatmap" and heat["showscale"] is False
    table = next(d.value for d in at.dataframe if "verdict" in d.value)
    for r in truth.itertuples():
        i, j = heat["y"].index(f"{r.set} v{r.set_version}"), heat["x"].index(f"{r.model_version} ({r.stage})")
        assert heat["z"][i][j] == VERDICT_LEVEL[r.verdict]  # the colour says the verdict, not the accuracy
        assert heat["text"][i][j] == (
            f"{format_value('accuracy', r.accuracy)}<br>{VERDICT_WORDS[r.verdict]}<br>"
            f"{format_count(r.scored)}/{format_count(r.members)} scored"
        )
        row = table[(table["model version"] == r.model_version) & (table["stage"] == r.stage)].iloc[0]
        assert row["accuracy"] == format_value("accuracy", r.accuracy)
        assert row["ROC AUC"] == format_value("roc_auc", r.roc_auc)
        assert row["verdict"] == VERDICT_WORDS[r.verdict] and row["members"] == format_count(r.members)
    assert "None" not in table.to_string() and "nan" not in table.to_string()
    at.selectbox(key="vs_matrix_metric").set_value("roc_auc").run()
    heat = charts(at)[0]["data"][0]
    assert heat["text"][0][0].startswith(
        format_value("roc_auc", truth.sort_values(["model_version", "stage"]).iloc[0].roc_auc)
    )


def test_only_the_chosen_view_is_computed_and_kept_in_the_link(monkeypatch, demo_copy):
    east_set(demo_copy)
    at = valsets_page(monkeypatch, demo_copy, view="sets", part="history")
    assert at.radio(key="vs_view").value == "Sets" and at.radio(key="vs_part").value == "History and diff"
    assert not at.get("plotly_chart")  # the matrix is not drawn (nor computed) in the Sets view
    assert not [d for d in at.dataframe if "example_id" in d.value and "change" not in d.value]  # no draft table
    at.radio(key="vs_part").set_value("Draft").run()
    assert at.query_params["part"] in ("draft", ["draft"])
    assert any("example_id" in d.value for d in at.dataframe)
    at.radio(key="vs_view").set_value("Sets × model versions").run()
    assert at.query_params["view"] in ("matrix", ["matrix"]) and charts(at)
    assert not any("example_id" in d.value for d in at.dataframe)


def test_set_writes_show_at_once_and_deleting_asks_first(monkeypatch, demo_copy):
    from analysis.valsets import list_sets

    east_set(demo_copy, "draft only", commit_it=False)
    at = valsets_page(monkeypatch, demo_copy)
    assert at.radio(key="vs_view").value == "Sets"  # nothing committed yet: the sets first
    n = len(next(d.value for d in at.dataframe if "example_id" in d.value))
    assert "latest version **–**" in "\n".join(m.value for m in at.markdown)
    at.text_input(key="vs_message").input("first")
    at.button(key="FormSubmitter:vs_commit-Commit the draft as a new version").click().run()
    assert not at.exception
    # The same run shows the committed version, and says so.
    shown = "\n".join(m.value for m in at.markdown)
    assert f"latest version **1** · draft: **{n:,}** members" in shown
    assert [t.value for t in at.toast][0].startswith("Committed version 1 of “draft only”")
    assert "vs_delete" not in [b.key for b in at.button]  # a committed set is kept

    at.text_input(key="vs_new_name").input("to delete")
    at.button(key="FormSubmitter:vs_create-Create").click().run()
    assert not at.exception
    assert at.selectbox(key="vs_open").value == "to delete"  # opened at once
    assert [literal(t.value) for t in at.toast] == ["Created the set “to delete”."]
    at.button(key="vs_delete").click().run()
    assert "Delete the set “to delete”" in texts(at)
    with Store(demo_copy).read() as con:
        assert "to delete" in set(list_sets(con, get_project(con, "lending-demo"))["name"])
    at.button(key="vs_delete_no").click().run()
    assert "Delete the set “to delete”" not in texts(at)
    at.button(key="vs_delete").click().run()
    at.button(key="vs_delete_yes").click().run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        assert list(list_sets(con, get_project(con, "lending-demo"))["name"]) == ["draft only"]
    assert at.selectbox(key="vs_open").options == ["draft only"]
    assert [literal(t.value) for t in at.toast] == ["Deleted the set “to delete”."]


def test_removing_draft_members_shows_the_smaller_draft_at_once(monkeypatch, demo_copy):
    from analysis.valsets import members

    east_set(demo_copy, "draft only", commit_it=False)
    at = valsets_page(monkeypatch, demo_copy)
    draft = next(d.value for d in at.dataframe if "example_id" in d.value)
    picked = list(draft["example_id"].iloc[[0, 2]])
    at.session_state["vs_draft_draft only"] = {"selection": {"rows": [0, 2], "columns": [], "cells": []}}
    at.run()
    assert at.button(key="vs_remove").label == "Remove 2 selected from the draft"
    at.button(key="vs_remove").click().run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        left = members(con, get_project(con, "lending-demo"), "draft only", "draft")
    shown = next(d.value for d in at.dataframe if "example_id" in d.value)
    assert len(shown) == len(left) == len(draft) - 2 and not set(picked) & set(shown["example_id"])
    assert f"draft: **{len(left):,}** members" in "\n".join(m.value for m in at.markdown)
    assert [literal(t.value) for t in at.toast] == ["Removed 2 example(s) from the draft of “draft only”."]
    # The selection pointed at rows that are gone: it is cleared, not moved onto others.
    assert at.button(key="vs_remove").label == "Remove 0 selected from the draft"


def test_the_presentations_gate_card_says_its_verdict_in_words_without_an_arrow(monkeypatch, demo_copy):
    """A card whose change is words ("3 of 6 criteria fail") has no arrow (it showed an up
    arrow); a card whose change is a signed figure keeps the arrow of its sign."""
    from streamlit.proto.Metric_pb2 import Metric
    from test_app import open_page

    from analysis import Store, get_project
    from analysis.compare.comparison import Side
    from analysis.reports import add_block

    with Store(demo_copy).write() as con:
        project = get_project(con, "lending-demo")
        add_block(con, project, "Launch", "gate", {"baseline": Side("credit-v1"), "candidate": Side("credit-v3")})
        add_block(con, project, "Launch", "comparison", {"baseline": Side("credit-v1"), "candidate": Side("credit-v3")})
    at = open_page(monkeypatch, demo_copy, "pages/present.py", project="lending-demo", report="Launch")
    gate = next(m for m in at.metric if m.label == "Deployment gate")
    assert gate.proto.delta and gate.proto.direction == Metric.MetricDirection.NONE
    signed = [m for m in at.metric if m.proto.delta[:1] in ("+", "-")]
    assert signed and all(
        m.proto.direction == (Metric.MetricDirection.UP if m.proto.delta[0] == "+" else Metric.MetricDirection.DOWN)
        for m in signed
    )

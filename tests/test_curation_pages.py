"""The Validation sets, Reports and Present pages under AppTest on real DuckDB files:
a write shows its new state in the same run with a toast; removals ask first; a note
goes where the user puts it; only the chosen view is computed; the figures shown are
analysis.numbers' text of a direct engine call, the same as in the HTML export."""

from __future__ import annotations

import pytest

from analysis import Store, get_project
from analysis.numbers import format_delta, format_value, metric_title
from analysis.reports import add_block, get_report, render_html
from analysis.reports.tables import tables

from test_app import app_on, literal, texts


def blocks_shown(at) -> list[str]:
    return [literal(h.value) for h in at.subheader]


def report_page(monkeypatch, path, report: str):
    at = app_on(monkeypatch, path)
    at.query_params["report"] = report
    at.run()
    at.switch_page("pages/reports.py").run()
    assert not at.exception
    return at


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
        return next(b.block_id for b in get_report(con, get_project(con, "lending-demo"), report).blocks
                    if b.title == title)


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
    from analysis.compare import Side, compare
    from analysis.product_metrics import ProductMetric

    with Store(demo_copy).write() as con:
        project = get_project(con, "lending-demo")
        block = add_block(con, project, "Launch", "comparison", {"baseline": Side("credit-v1"),
                                                                 "candidate": Side("credit-v3")})
        report = get_report(con, project, "Launch")
        comp = compare(con, project, Side("credit-v1"), Side("credit-v3"), start=block.params["start"],
                       end=block.params["end"], saved=block.params["saved"], discovered=5,
                       metrics=[ProductMetric(**m) for m in block.params["metrics"]])
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

"""What only a browser shows, found by walking the workflows (issue 21): labels cut by
their column. A real `streamlit run` server (the fixtures of test_browser.py) and
headless Chromium at the size a person uses, 1440×900; every step waits on the page."""

from __future__ import annotations

from playwright.sync_api import expect
from test_browser import page, server, wait_idle  # noqa: F401 (fixtures)

from analysis import Store, get_project
from analysis.compare.comparison import Side
from analysis.reports import add_block

CUT = "el => { const t = el.querySelector('[data-testid=stMarkdownContainer]'); return t.scrollWidth > t.clientWidth; }"


def test_a_reports_block_buttons_are_not_cut(server, page):
    """At 1440×900 the Remove button of a report's block read "Rem…"."""
    with Store(server.db).write() as con:
        project = get_project(con, "lending-demo")
        add_block(con, project, "Walk", "headline", {})
        add_block(
            con,
            project,
            "Walk",
            "comparison",
            {"baseline": Side("credit-v1"), "candidate": Side("credit-v2"), "discovered": 0},
        )
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server.url}/reports?project=lending-demo&report=Walk")
    buttons = page.get_by_role("button", name="Remove", exact=True)
    expect(buttons).to_have_count(2)
    wait_idle(page)
    for name in ("Up", "Down", "Remove"):
        for button in page.get_by_role("button", name=name, exact=True).all():
            assert not button.evaluate(CUT), f"the {name} button's label is cut"

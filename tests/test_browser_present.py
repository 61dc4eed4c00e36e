"""The Present page in headless Chromium at a projector's 1280×720: no sidebar, every big
number whole (not cut to "$182,95…"), the same figures as a direct engine call, and the
sidebar back on leaving. A screenshot is kept in tests/artifacts/ to look at."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, AppServer, choose, wait_idle

from analysis import Store, get_project
from analysis.compare.comparison import Side, compare
from analysis.metrics.product import ProductMetric
from analysis.numbers import format_delta, format_value, metric_title
from analysis.reports import add_block


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")


SIDEBAR_WIDTH = (
    "() => { const s = document.querySelector('[data-testid=stSidebar]'); "
    "return s ? s.getBoundingClientRect().width : 0 }"
)
# Every big number: its text fits its box (no ellipsis, nothing scrolled away) inside the window.
CUT = """() => [...document.querySelectorAll('[data-testid=stMetricValue]')].flatMap(v =>
    [v, ...v.querySelectorAll('*')].filter(e => e.scrollWidth > e.clientWidth + 1
        || e.getBoundingClientRect().right > window.innerWidth).map(e => v.innerText))"""


def test_present_fits_1280_by_720_without_a_sidebar(demo_copy):
    require_chromium()
    with Store(demo_copy).write() as con:
        project = get_project(con, "lending-demo")
        block = add_block(
            con, project, "Launch", "comparison", {"baseline": Side("credit-v1"), "candidate": Side("credit-v3")}
        )
        add_block(con, project, "Launch", "gate", {"baseline": Side("credit-v1"), "candidate": Side("credit-v3")})
        add_block(con, project, "Launch", "headline", {})
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
    server = AppServer(demo_copy)
    try:
        server.wait_ready()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{server.url}/present?project=lending-demo&report=Launch")
            expect(page.get_by_test_id("stMetric").first).to_be_visible()
            wait_idle(page)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "present-1280x720.png"))
            assert page.evaluate(SIDEBAR_WIDTH) == 0
            expect(page.get_by_text("Database:")).not_to_be_in_viewport()
            assert page.evaluate(CUT) == []
            cards = {}
            for card in page.get_by_test_id("stMetric").all():
                label = card.get_by_test_id("stMetricLabel").inner_text().strip()
                cards.setdefault(label, card)
            for r in comp.overall.itertuples():
                if r.kind != "product":
                    continue
                card = cards[metric_title(r.metric, products)]
                assert card.get_by_test_id("stMetricValue").inner_text().strip() == format_value(
                    r.metric, r.candidate, products
                )
                assert card.get_by_test_id("stMetricDelta").inner_text().strip() == format_delta(
                    r.metric, r.delta, products
                ).replace("−", "-")
            # Leaving the presentation brings the sidebar back.
            page.get_by_text("Back to Reports").click()
            expect(page.get_by_text("Export HTML")).to_be_visible()
            wait_idle(page)
            assert page.evaluate(SIDEBAR_WIDTH) > 0
            browser.close()
    finally:
        server.stop()
    assert "Traceback" not in "".join(server.output), "".join(server.output)


def test_a_report_write_shows_at_once_in_the_browser(demo_copy):
    """Reports page: move a block, add a note after a chosen block, remove one after
    confirming: each time the page shows the stored order at once with a toast."""
    from analysis.reports import get_report

    require_chromium()
    with Store(demo_copy).write() as con:
        project = get_project(con, "lending-demo")
        ids = {
            title: add_block(con, project, "Review", "note", {"text": f"note {title}"}, title=title).block_id
            for title in ("One", "Two", "Three")
        }

    def stored() -> list[str]:
        with Store(demo_copy).read() as con:
            return [b.title for b in get_report(con, get_project(con, "lending-demo"), "Review").blocks]

    server = AppServer(demo_copy)
    try:
        server.wait_ready()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{server.url}/reports?project=lending-demo&report=Review")
            expect(page.get_by_role("heading", name="Three")).to_be_visible()
            wait_idle(page)

            def shows(expected: list[str]) -> bool:
                """Waits until the page's block headings read ``expected`` (the new state drawn)."""
                page.wait_for_function(
                    """names => JSON.stringify([...document.querySelectorAll('h3')].map(h => h.innerText.trim())
                        .filter(t => ['One', 'Two', 'Three', 'Note'].includes(t))) === JSON.stringify(names)""",
                    arg=expected,
                )
                # The run that drew it has ended: an element of the run before (a block's button
                # where the block stood) is gone, so a key names one button.
                wait_idle(page)
                return True

            def button_of(title: str, key: str):
                """The button of the block headed ``title`` (Streamlit marks a keyed widget with
                the class st-key-<key>): the block's own button, whatever the layout does."""
                return page.locator(f".st-key-rep_{key}_{ids[title]} button")

            button_of("One", "down").click()
            expect(page.get_by_test_id("stToast")).to_contain_text("Moved “One” down.")
            assert shows(["Two", "One", "Three"]) and stored() == ["Two", "One", "Three"]
            page.get_by_label("Add a note").fill("between")
            choose(page, "Where", "After “Two”", box=page.get_by_label("Where"))
            page.get_by_role("button", name="Add note").click()
            expect(page.get_by_test_id("stToast").filter(has_text="Added the note.")).to_be_visible()
            assert shows(["Two", "Note", "One", "Three"]) and stored() == ["Two", "Note", "One", "Three"]
            button_of("Three", "rm").click()
            expect(page.get_by_text("Remove “Three” from this report?")).to_be_visible()
            assert stored() == ["Two", "Note", "One", "Three"]
            page.get_by_role("button", name="Remove it").click()
            expect(page.get_by_test_id("stToast").filter(has_text="Removed “Three”.")).to_be_visible()
            assert shows(["Two", "Note", "One"]) and stored() == ["Two", "Note", "One"]
            browser.close()
    finally:
        server.stop()
    assert "Traceback" not in "".join(server.output), "".join(server.output)

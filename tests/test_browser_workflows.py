"""Write, then see: in a real headless Chromium against a real `streamlit run` server, a
write shows its new state at once, without a reload (issue 21).

* A slice saved on the Slices page is listed among the saved slices at once.
* Examples selected on the Slices page and promoted into a validation set change the set's
  draft count at once: the promotion's own preview, and the Validation sets page reached
  through the app's navigation (not a reload).

Every wait is on page state (Playwright's ``expect``), never a sleep. Widget labels are the
pages' of current main (view switchers, not tabs); adapt the small helpers below when the pages change.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

import duckdb
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect
from test_browser import ARTIFACTS, RUN_COUNTER, card_value, choose, page, server, wait_idle  # noqa: F401 - fixtures

from analysis import Store, get_project
from analysis.slices import compile_slice, parse_slice
from analysis.store.scope import Scope
from analysis.valsets import Selection, create_set, members, promote

SLICE = "channel = partner_api AND employment = self_employed"


def open_slice(server, page) -> None:
    query = urlencode({"project": "lending-demo", "version": "credit-v1", "slice": SLICE})
    page.goto(f"{server.url}/slices?{query}")
    expect(page.get_by_role("heading", name=SLICE)).to_be_visible()
    wait_idle(page)


def show_view(page, name: str) -> None:
    """A page's view of that name: an option of its view switcher (a segmented control or a
    radio, each option a radio to the browser). Waits until the script run it starts is done."""
    switcher = page.get_by_test_id("stButtonGroup").get_by_role("radio", name=name, exact=True)
    radio = page.get_by_test_id("stRadio").get_by_text(name, exact=True)  # its input is hidden under the text
    switcher.or_(radio).click()
    wait_idle(page)


def slice_rows(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        project = get_project(con, "lending-demo")
        sql, params = compile_slice(parse_slice(SLICE), project)
        return con.execute(
            f'SELECT count(*) FROM "{project.log_table}" WHERE model_version = ? AND {sql}', ["credit-v1", *params]
        ).fetchall()[0][0]
    finally:
        con.close()


def test_a_saved_slice_is_listed_at_once(server, page):
    open_slice(server, page)
    expect(card_value(page, "Rows in the slice")).to_have_text(f"{slice_rows(server.db):,}")
    show_view(page, "Saved")
    saved = page.get_by_test_id("stMarkdownContainer").filter(has_text="partner self-employed · r")
    expect(saved).to_have_count(0)
    name = page.get_by_label("Name", exact=True)
    name.fill("partner self-employed")
    page.get_by_role("button", name="Save (a new revision if the name exists)").click()
    # Listed at once, in the same session, without a reload; and stored.
    expect(saved.first).to_be_visible()
    expect(saved.first).to_contain_text("r1")
    expect(saved.first).to_contain_text(SLICE)
    with Store(server.db).read() as con:
        from analysis.slices.saved import list_slices

        assert list(list_slices(con, get_project(con, "lending-demo"))["name"]) == ["partner self-employed"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "workflow-save-slice.png"), full_page=True)


def select_example_rows(page, rows: list[int]) -> None:
    """Tick rows of the Examples table by clicking their row markers (the grid is a canvas)."""
    grid = page.locator("[class*='st-key-sl_examples_'] [data-testid=stDataFrame]")
    expect(grid).to_have_count(1)
    expect(grid).to_be_visible()
    for i, row in enumerate(rows):
        # A click the grid missed (drawn while the page still moved) starts no script run:
        # then it is clicked again. A click that started one is never repeated (it would untick).
        deadline = time.monotonic() + 60
        while True:
            wait_idle(page)
            grid.hover()  # the row markers show on hover
            box = grid.bounding_box()
            runs = page.evaluate(RUN_COUNTER)
            # Glide Data Grid draws a 35 px header and 35 px rows; the row marker is the first column.
            page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 * row + 17)
            try:
                page.wait_for_function("runs => window.__sbRuns > runs", arg=runs, timeout=5_000)
                break
            except PlaywrightTimeoutError:
                if time.monotonic() > deadline:
                    raise
        expect(page.get_by_text(f"{i + 1:,} rows selected (kept across pages")).to_be_visible()


def draft_size(db: Path, name: str) -> int:
    with Store(db).read() as con:
        return len(members(con, get_project(con, "lending-demo"), name))


def test_promoted_examples_change_the_draft_count_at_once(server, page):
    # A set that already holds some of the project's examples (not these).
    with Store(server.db).write() as con:
        project = get_project(con, "lending-demo")
        create_set(con, project, "watchlist")
        promote(
            con,
            project,
            "watchlist",
            Selection(scope=Scope.of(versions="credit-v1"), slice_=parse_slice("region = east"), sample=5),
            reason="seed",
        )
    before = draft_size(server.db, "watchlist")
    assert before == 5

    open_slice(server, page)
    show_view(page, "Examples")
    select_example_rows(page, [0, 1])
    show_view(page, "Promote")
    choose(page, "Validation set", "watchlist")
    wait_idle(page)
    page.get_by_text("the 2 rows selected in Examples", exact=True).click()
    preview = page.get_by_test_id("stCaptionContainer").filter(has_text="will be added to the draft of")
    expect(preview).to_contain_text("2 example(s) will be added to the draft of watchlist; 0 of the 2 selected")
    page.get_by_role("button", name="Promote to the draft").click()
    expect(page.get_by_text("Added 2 example(s) to the draft of")).to_be_visible()
    # The same view shows the new state at once: the two are in the draft now.
    expect(preview).to_contain_text("0 example(s) will be added to the draft of watchlist; 2 of the 2 selected")
    assert draft_size(server.db, "watchlist") == before + 2

    # The Validation sets page, reached through the app's own navigation (no reload).
    page.get_by_test_id("stSidebarNav").get_by_text("Validation sets", exact=True).click()
    expect(page.get_by_role("heading", name="Validation sets")).to_be_visible()
    show_view(page, "Sets")
    choose(page, "Open a set", "watchlist")
    expect(page.get_by_text(f"draft: {before + 2:,} members")).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "workflow-promote-selected.png"), full_page=True)

"""The Slices page in a real headless Chromium against a real `streamlit run` server
(the fixtures of test_browser.py): the condition builder across version changes, the
view switcher and its link, and a write that shows at once.

Every step waits on the page's state (a label, a count, the URL), never on time.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect
from test_browser import ARTIFACTS, after_run, card_value, choose, count_demo, page, server, wait_idle  # noqa: F401 (fixtures)

from analysis import Store, get_project
from analysis.slices.column_profile import value_counts
from analysis.store.scope import Scope


def open_slices(server, page, **params) -> None:
    page.goto(f"{server.url}/slices?{urlencode({'project': 'lending-demo', **params})}")
    expect(page.get_by_role("heading", name="Slices", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stButtonGroup")).to_be_visible()  # the view switcher
    wait_idle(page)


def value_label(db, column: str, value: str, version: str | None) -> str:
    """The builder's label of ``value``: its row count in the version, from the engine."""
    with Store(db).read() as con:
        counts = value_counts(
            con, get_project(con, "lending-demo"), column, scope=Scope.of(versions=version), limit=200
        )
    n = int(counts.set_index("value").loc[value, "n"])
    return f"{value} · {n:,}"


def values_box(page):
    return page.get_by_test_id("stMultiSelect").filter(has_text="Values")


def pick_value(page, db, column: str, value: str, version: str | None) -> None:
    builder = page.get_by_test_id("stExpander").filter(has_text="Add a condition")
    if not builder.get_by_test_id("stSelectbox").is_visible():
        builder.get_by_text("Add a condition").click()
    # The Values box is this column's, not the last one's.
    after_run(page, lambda: choose(page, "Column", column, typed=True))
    box = values_box(page)
    expect(box).to_be_visible()
    after_run(page, lambda: choose(page, "Values", value_label(db, column, value, version), box=box))
    page.keyboard.press("Escape")
    expect(box.get_by_text(value_label(db, column, value, version), exact=True)).to_be_visible()
    wait_idle(page)


def expect_no_error(page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text("Something went wrong")).to_have_count(0)


@pytest.mark.parametrize("then", ["version twice", "version and remove"])
def test_a_picked_value_survives_changing_the_version(server, page, then):
    """Issue 21, item 2: picking a value, then changing the version twice (or once and
    removing a condition) crashed the builder: the labels carry counts that change with
    the version. The value stays picked, with the count of the version shown."""
    open_slices(server, page, slice="device = android")
    expect(card_value(page, "Rows in the slice")).to_be_visible()
    pick_value(page, server.db, "region", "east", None)
    versions = ["credit-v2", "credit-v3"] if then == "version twice" else ["credit-v2"]
    for version in versions:
        after_run(page, lambda: choose(page, "Model version", version))
        expect(page).to_have_url(re.compile(f"version={version}"))
        label = value_label(server.db, "region", "east", version)
        expect(values_box(page).get_by_text(label, exact=True)).to_be_visible()
        wait_idle(page)
        expect_no_error(page)
    if then == "version and remove":
        page.get_by_role("button", name="✕ device = android").click()
        expect(page.get_by_role("heading", name="All rows")).to_be_visible()
        wait_idle(page)
        expect_no_error(page)
        expect(
            values_box(page).get_by_text(value_label(server.db, "region", "east", versions[-1]), exact=True)
        ).to_be_visible()
    page.get_by_role("button", name="Add to slice").click()
    where = "region = east" if then == "version and remove" else "device = android AND region = east"
    expect(page.get_by_role("heading", name=where)).to_be_visible()
    wait_idle(page)
    expect_no_error(page)
    sql = "model_version = '{}' AND {}".format(
        versions[-1], where.replace("android", "'android'").replace("east", "'east'")
    )
    expect(card_value(page, "Rows in the slice")).to_have_text(f"{count_demo(server.db, 'count(*)', sql):,}")
    # Adding clears the pick: the box is empty again.
    expect(values_box(page).get_by_text("east", exact=False)).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / f"slices-builder-{then.replace(' ', '-')}.png"), full_page=True)


def test_save_shows_at_once_and_opening_it_brings_back_its_version(server, page):
    """The write-then-see path: a saved slice is listed at once with a confirmation, no
    reload; opened later from another version, it comes back with its own version."""
    from analysis.slices.saved import list_slices

    open_slices(server, page, version="credit-v2", slice="age < 25", view="saved")
    expect(page.get_by_role("radio", name="Saved", exact=True)).to_be_visible()
    page.get_by_label("Name").fill("young on the canary")
    page.get_by_role("button", name="Save (a new revision if the name exists)").click()
    expect(page.get_by_test_id("stToast").filter(has_text="Saved young on the canary, revision 1")).to_be_visible()
    listed = page.get_by_text("young on the canary · r1 · credit-v2 · all stages")
    expect(listed).to_be_visible()
    with Store(server.db).read() as con:
        saved = list_slices(con, get_project(con, "lending-demo"))
    assert list(saved["versions"]) == [["credit-v2"]]

    choose(page, "Model version", "credit-v1")
    expect(page).to_have_url(re.compile("version=credit-v1"))
    page.get_by_test_id("stButton").get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text("Delete young on the canary? Its history stays.")).to_be_visible()
    page.get_by_role("button", name="Keep it").click()
    expect(page.get_by_text("Delete young on the canary?")).to_have_count(0)
    page.get_by_test_id("stButton").get_by_role("button", name="Open", exact=True).click()
    expect(page).to_have_url(re.compile("version=credit-v2"))
    page.get_by_role("radio", name="Metrics", exact=True).click()
    expect(page).not_to_have_url(re.compile("view="))
    expected = count_demo(server.db, "count(*)", "model_version = 'credit-v2' AND age < 25")
    expect(card_value(page, "Rows in the slice")).to_have_text(f"{expected:,}")
    wait_idle(page)
    expect_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "slices-saved-opened.png"), full_page=True)

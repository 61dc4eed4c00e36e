"""Links in a real headless Chromium against a real `streamlit run`: /overview opens the
Overview (also as the first request a fresh server gets), the root opens it with the
same query, every page opens by its link with ?project=, and the Overview's window
applies on Enter and goes into the link."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from test_browser import page, server, wait_idle  # noqa: F401  (fixtures)

PAGES = {
    "overview": "lending-demo",
    "slices": "Slices",
    "discover": "Discover",
    "validation-sets": "Validation sets",
    "compare": "Compare",
    "monitor": "Monitor",
    "reports": "Reports",
    "import": "Import",
}


def test_overview_has_its_own_address_and_every_page_opens_by_its_link(server, page):  # noqa: F811
    # The first request to a fresh server.
    page.goto(server.url + "/overview?project=lending-demo&version=credit-v2")
    expect(page.get_by_role("heading", name="lending-demo")).to_be_visible()
    expect(page.get_by_role("combobox", name="Model version")).to_have_value("credit-v2")
    expect(page.get_by_test_id("stSidebarNav").get_by_role("link", name="Overview")).to_have_attribute(
        "aria-current", "page"
    )
    # The root opens the Overview, keeping the query.
    page.goto(server.url + "/?project=lending-demo&version=credit-v3")
    expect(page).to_have_url(re.compile(r"/overview\?.*version=credit-v3"))
    expect(page.get_by_role("combobox", name="Model version")).to_have_value("credit-v3")
    for path, heading in PAGES.items():
        page.goto(f"{server.url}/{path}?project=lending-demo")
        expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()
        wait_idle(page)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(page).to_have_url(re.compile(rf"/{path}\?.*project=lending-demo"))


def test_the_overview_window_applies_on_enter(server, page):  # noqa: F811
    page.goto(server.url + "/overview?project=lending-demo")
    expect(page.get_by_role("heading", name="lending-demo")).to_be_visible()
    wait_idle(page)
    before = page.get_by_test_id("stMetricValue").first.inner_text()
    field = page.get_by_role("textbox", name="From")
    field.fill("2026-10-25")
    assert "from=" not in page.url  # typed, not yet applied
    field.press("Enter")
    expect(page).to_have_url(re.compile(r"from=2026-10-25"))
    wait_idle(page)
    expect(page.get_by_test_id("stMetricValue").first).not_to_have_text(before)

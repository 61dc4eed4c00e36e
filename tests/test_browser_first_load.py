"""The first request a freshly started server gets, for every page's link.

Streamlit 1.67 starts a server in its old multipage mode when a `pages/`
folder sits beside app.py: until app.py has run once, a request is matched
against the files at the top of `pages/`. Each case starts its own server and
makes that page's link its very first request, then checks what a person
sees: no "Page not found" dialog, the page itself, and only the app's own
page list in the sidebar (no helper modules).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, AppServer, _require_chromium, wait_idle

NAVIGATION = ["Overview", "Slices", "Discover", "Validation sets", "Compare", "Monitor", "Reports", "Present", "Import"]
# url path -> what the page shows once it is drawn
# A fresh server for each costs about 20 s: the root, and the pages that compute the most
# or open differently on a first request (test_browser_links opens every page by its link).
PAGES = {
    "": ("heading", "lending-demo"),
    "discover": ("heading", "Discover"),
    "compare": ("heading", "Compare"),
    "monitor": ("heading", "Monitor"),
    "present": ("link", re.compile(r"^(Back to|Open) Reports$")),  # a report, or the way to build one
}


@pytest.fixture(scope="module")
def database(demo_db, tmp_path_factory):
    target = tmp_path_factory.mktemp("firstload") / "demo.duckdb"
    target.write_bytes(demo_db.read_bytes())
    return target


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.mark.parametrize("path", list(PAGES), ids=[p or "root" for p in PAGES])
def test_a_link_is_the_first_request_of_a_fresh_server(path, database, browser):
    srv = AppServer(database)
    try:
        srv.wait_ready()
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{srv.url}/{path}?project=lending-demo")
        role, name = PAGES[path]
        expect(page.get_by_role(role, name=name, exact=isinstance(name, str)).first).to_be_visible()
        wait_idle(page)
        expect(page.get_by_text("Page not found")).to_have_count(0)
        expect(page.get_by_role("dialog")).to_have_count(0)
        expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(len(NAVIGATION))
        links = [t.strip() for t in page.get_by_test_id("stSidebarNavLink").all_text_contents()]
        # each link's text is its icon's name then its title ("monitoringOverview")
        assert all(link.endswith(title) for link, title in zip(links, NAVIGATION)), links
        expect(page).to_have_url(re.compile(rf"/{path or 'overview'}\?(.*&)?project=lending-demo"))
        context.close()
    finally:
        srv.stop()
    assert "Traceback" not in "".join(srv.output), "".join(srv.output)

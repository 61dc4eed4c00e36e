"""The Monitor page in a real headless Chromium against a real `streamlit run`: the latest
period's estimate is the engine's, the chart is drawn, and a click on a period's point
opens that slice and day in Slices."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from test_browser import after_run, card_value, page, server, wait_idle  # noqa: F401  (fixtures)

from analysis import Store, get_project
from analysis.estimation.run import estimate
from analysis.numbers import format_value
from analysis.slices import parse_slice


def test_a_click_on_a_period_opens_it_in_slices(server, page):  # noqa: F811
    with Store(server.db).read() as con:
        east = estimate(con, get_project(con, "lending-demo"), "credit-v1", slice_=parse_slice("region = east"))
    last = east.periods[-1]
    page.goto(server.url + "/monitor?project=lending-demo&where=region%20%3D%20east&metric=accuracy")
    expect(page.get_by_role("heading", name="Monitor", exact=True)).to_be_visible()
    wait_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    label = f"Accuracy, {last.period.label} (estimated)"
    expect(card_value(page, label).nth(0)).to_be_visible()
    cards = page.get_by_test_id("stMetric").filter(has_text=label)
    expect(cards.nth(0).get_by_test_id("stMetricValue")).to_have_text(
        format_value("accuracy", last.metrics["accuracy"].estimated)
    )
    charts = page.locator(".js-plotly-plot")
    expect(charts).to_have_count(2)
    # The realized points of the east's chart (first: the slice asked for): the last labeled day's is clicked.
    realized = charts.nth(0).locator(".scatterlayer .trace").last.locator("path.point")
    expect(realized.first).to_be_visible()
    labeled = [p for p in east.periods if p.metrics["accuracy"].realized is not None]
    target = labeled[-1].period.label
    after_run(page, lambda: realized.nth(len(labeled) - 1).click(force=True))
    link = page.get_by_role("link", name=f"Open {target} in Slices")
    expect(link).to_be_visible()
    link.click()
    expect(page).to_have_url(re.compile(rf"/slices\?.*from={target}"))
    expect(page).to_have_url(re.compile(rf"to={target}"))
    expect(page.get_by_role("heading", name="Slices", exact=True)).to_be_visible()
    wait_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(card_value(page, "Rows in the slice")).to_have_text(f"{labeled[-1].rows:,}")


def test_the_alert_feed_in_the_browser_and_an_acknowledgement(server, page):  # noqa: F811
    """The demo's planted outage: its alert opens the page; Acknowledge is stored and shown."""
    from analysis.monitors.alerts import list_alerts

    with Store(server.db).read() as con:
        (alert,) = list_alerts(con, get_project(con, "lending-demo"))
    page.goto(server.url + "/monitor?project=lending-demo")
    expect(page.get_by_role("heading", name="Alerts (1 open)")).to_be_visible()
    wait_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text(alert.message[:60])).to_be_visible()
    expect(page.get_by_role("link", name="Promote these errors")).to_be_visible()
    after_run(page, lambda: page.get_by_role("button", name="Acknowledge").click())
    expect(page.get_by_text(f"{alert.alert_id} · {alert.monitor} · acknowledged")).to_be_visible()
    with Store(server.db).read() as con:
        assert list_alerts(con, get_project(con, "lending-demo"))[0].state == "acknowledged"

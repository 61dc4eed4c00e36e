"""Main user journeys in a real headless Chromium against a real `streamlit run`
server on a loopback port, each on its own temp database.

These tests skip only when Chromium is not installed; with
SLICEBOARD_REQUIRE_BROWSER=1 (set by .ci/run) a missing Chromium fails them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import ROOT
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect, sync_playwright

from analysis import get_project

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 60_000
# Assertions wait for the page (a first render on a busy machine can take
# seconds); they return as soon as the condition holds.
expect.set_options(timeout=TIMEOUT_MS)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"Chromium is not installed at {CHROMIUM} (bash tests/run.sh installs it)"
    if os.environ.get("SLICEBOARD_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; SLICEBOARD_REQUIRE_BROWSER=1 makes this a failure")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`streamlit run app.py` on a free loopback port against one database file."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self._ready = threading.Event()
        env = dict(os.environ, SLICEBOARD_DB=str(db), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(self.port),
                "--server.fileWatcherType",
                "none",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            if self.url in line:
                self._ready.set()
        self._ready.set()  # the server exited: wake the waiter, which reports it

    def wait_ready(self, timeout: float = 60) -> None:
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            raise RuntimeError("streamlit did not start:\n" + "".join(self.output))
        with urllib.request.urlopen(self.url + "/_stcore/health", timeout=10) as r:
            assert r.read().decode().strip() == "ok"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(demo_copy):
    _require_chromium()
    srv = AppServer(demo_copy)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
    assert "Traceback" not in "".join(srv.output), "".join(srv.output)


@pytest.fixture
def page():
    _require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1600, "height": 2400})
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        # Nothing leaves the machine: every request goes to the loopback server.
        outside: list[str] = []
        pg.on(
            "request",
            lambda req: (
                None
                if req.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
                else outside.append(req.url)
            ),
        )
        yield pg
        browser.close()
        assert not outside, f"requests left the machine: {outside[:5]}"


def counts_by_version(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        table = get_project(con, "lending-demo").log_table
        rows = con.execute(f'SELECT model_version, count(*) FROM "{table}" GROUP BY ALL').fetchall()
    finally:
        con.close()
    return dict(rows)


def metric_values(page) -> list[str]:
    return [t.strip() for t in page.get_by_test_id("stMetricValue").all_inner_texts()]


def card_value(page, label: str):
    """The value of the first metric card labelled ``label``."""
    return page.get_by_test_id("stMetric").filter(has_text=label).first.get_by_test_id("stMetricValue")


def choose(page, label: str, option: str, *, typed: bool = False, box=None) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` (``typed``: type it first, so
    that a long list shows it: the dropdown draws only the options that fit).

    A script run that lands while the list is open redraws it and closes it; then the
    list is opened again, until the option is clicked (a state, not a delay). ``box``: another
    dropdown than a selectbox (a multiselect)."""
    box = box if box is not None else page.get_by_test_id("stSelectbox").filter(has_text=label)
    deadline = time.monotonic() + 60
    while True:
        box.click()
        if typed:
            page.keyboard.type(option)
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            return
        except PlaywrightTimeoutError:
            if time.monotonic() > deadline:
                raise
            page.keyboard.press("Escape")


# Counts the script runs the page has seen (the app's root says running, then notRunning).
RUN_COUNTER = """() => {
  if (window.__sbRuns === undefined) {
    window.__sbRuns = 0;
    new MutationObserver((changes) => {
      for (const c of changes) {
        if (c.target.getAttribute('data-test-script-state') === 'running') window.__sbRuns += 1;
      }
    }).observe(document, {attributes: true, subtree: true, attributeFilter: ['data-test-script-state']});
  }
  return window.__sbRuns;
}"""
SCRIPT_IDLE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app !== null && app.getAttribute('data-test-script-state') === 'notRunning';
}"""
# Until the icon font has loaded, an icon is drawn as its name ("arrow_downward"): buttons
# are wider, rows wrap, and a click aimed at one row can land on the next once it loads.
FONTS_LOADED = "() => document.fonts.status === 'loaded'"
RUN_DONE = """(runs) => {
  const app = document.querySelector('[data-testid="stApp"]');
  return window.__sbRuns > runs && app !== null && app.getAttribute('data-test-script-state') === 'notRunning';
}"""


RUN_STARTED = "(runs) => window.__sbRuns > runs"


def after_run(page, action, *, attempts: int = 3) -> None:
    """Do ``action`` (an input that reruns the script) and wait until a run it started has
    finished: what the page draws next is that run's, not the one before. An input that
    started no run within 15 s was lost (the element was being redrawn as it came): it is
    made again, so the action must be one that can be repeated (a click on an option)."""
    runs = page.evaluate(RUN_COUNTER)
    for attempt in range(attempts):
        action()
        try:
            page.wait_for_function(RUN_STARTED, arg=runs, timeout=15_000)
            break
        except PlaywrightTimeoutError:
            if attempt == attempts - 1:
                raise
    page.wait_for_function(RUN_DONE, arg=runs, timeout=120_000)


def wait_idle(page) -> None:
    """Wait until the script run finished: the app's root says so, the status widget
    (which says 'Running' while busy) is gone, and the fonts are in (the layout is final)."""
    page.wait_for_function(SCRIPT_IDLE)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    page.wait_for_function(FONTS_LOADED)


def test_overview_in_a_real_browser(server, page):
    counts = counts_by_version(server.db)
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="lending-demo")).to_be_visible()
    expect(page.get_by_test_id("stMetricValue").first).to_be_visible()
    wait_idle(page)
    for n in counts.values():  # waits for each card (a run draws them one by one)
        expect(page.get_by_test_id("stMetricValue").filter(has_text=re.compile(rf"^{n:,}$")).first).to_be_visible()
    page.get_by_role("radio", name="Over time").click()  # the daily charts are a view of their own
    expect(page.locator(".js-plotly-plot")).to_have_count(3)
    expect(page).to_have_url(re.compile(r"view=time"))
    page.get_by_role("radio", name="By version").click()
    wait_idle(page)

    choose(page, "Model version", "credit-v2")
    expect(page).to_have_url(re.compile(r"version=credit-v2"))
    wait_idle(page)
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(f"{counts['credit-v2']:,}")
    expect(
        page.get_by_test_id("stMetricValue").filter(has_text=re.compile(rf"^{counts['credit-v1']:,}$"))
    ).to_have_count(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "overview-credit-v2.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000


def test_deep_link_opens_the_same_view(server, page):
    counts = counts_by_version(server.db)
    page.goto(server.url + "/?project=lending-demo&version=credit-v3")
    expect(page.get_by_role("heading", name="lending-demo")).to_be_visible()
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(f"{counts['credit-v3']:,}")


def test_labels_from_the_cli_while_the_app_serves_a_session(server, page, tmp_path):
    """A cron-style labels ingest runs while a browser session is open and
    rerunning; it succeeds, the server keeps serving, and the next rerun shows
    the new labels."""
    con = duckdb.connect(str(server.db), read_only=True)
    try:
        table = get_project(con, "lending-demo").log_table
        missing = con.execute(
            f"SELECT prediction_id FROM \"{table}\" WHERE model_version = 'credit-v2' AND label IS NULL"
        ).df()
    finally:
        con.close()
    assert len(missing) > 100
    labels = tmp_path / "late_labels.csv"
    pd.DataFrame({"prediction_id": missing["prediction_id"], "outcome": "repaid"}).to_csv(labels, index=False)

    page.goto(server.url + "/?project=lending-demo&version=credit-v2")
    expect(card_value(page, "Labeled")).to_be_visible()
    wait_idle(page)
    assert card_value(page, "Labeled").inner_text().strip() != "100.0%"

    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "analysis",
            "labels",
            str(labels),
            "--project",
            "lending-demo",
            "--db",
            str(server.db),
            "--format",
            "json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Keep the session busy while the CLI writes: every switch of the view reruns the page.
    views = ["Over time", "By version"]
    i = 0
    while cli.poll() is None and i < 20:
        after_run(page, lambda: page.get_by_role("radio", name=views[i % 2]).click())
        i += 1
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert f'"applied": {len(missing)}' in out

    shown = views[(i - 1) % 2] if i else "By version"
    for view in ["By version"] if shown == "Over time" else views:  # the next reruns, ending on the cards
        after_run(page, lambda: page.get_by_role("radio", name=view).click())
    expect(card_value(page, "Labeled")).to_have_text("100.0%")
    assert not page.get_by_test_id("stException").count()


PARTNER = "channel = partner_api AND employment = self_employed"


def count_demo(db: Path, what: str, where: str) -> int:
    """``what`` (such as ``count(*)``) over the demo's log rows ``where`` holds."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        table = get_project(con, "lending-demo").log_table
        return con.execute(f'SELECT {what} FROM "{table}" WHERE {where}').fetchall()[0][0]
    finally:
        con.close()


def open_partner_slice(server, page) -> None:
    """The Slices page on credit-v1's partner-API self-employed applicants, from a link."""
    from urllib.parse import urlencode

    query = urlencode({"project": "lending-demo", "version": "credit-v1", "slice": PARTNER})
    page.goto(f"{server.url}/slices?{query}")
    expect(page.get_by_role("heading", name=PARTNER)).to_be_visible()


def test_slice_deep_link_shows_the_slice(server, page):
    """A link to a slice, pasted into a new browser, opens the same view."""
    expected = count_demo(
        server.db,
        "count(*)",
        "model_version = 'credit-v1' AND channel = 'partner_api' AND employment = 'self_employed'",
    )
    open_partner_slice(server, page)
    expect(card_value(page, "Rows in the slice")).to_have_text(f"{expected:,}")
    wait_idle(page)
    # The first request of a fresh server was a page URL: the app's own frame and
    # page list are there, not Streamlit's automatic list of files.
    expect(page.get_by_test_id("stSidebar").get_by_text("Project", exact=True)).to_be_visible()
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Slices", exact=True)).to_be_visible()
    expect(nav.get_by_text("ui", exact=True)).to_have_count(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "slice-deep-link.png"), full_page=True)


def test_error_bucket_drill_down_shows_those_examples(server, page):
    """Errors view: a click on a bar segment (or the bucket and value pickers)
    opens the Examples view on exactly that bucket x value's rows."""
    from urllib.parse import urlencode

    from analysis import Store
    from analysis.slices import parse_slice
    from analysis.slices.buckets import bucket_counts
    from analysis.store.scope import Scope

    slice_ = parse_slice("channel = partner_api")
    with Store(server.db).read() as con:
        counts = bucket_counts(
            con, get_project(con, "lending-demo"), "employment", scope=Scope.of(versions="credit-v1"), slice_=slice_
        )
    query = urlencode({"project": "lending-demo", "version": "credit-v1", "slice": slice_.readable()})
    page.goto(f"{server.url}/slices?{query}")
    expect(page.get_by_role("heading", name=slice_.readable())).to_be_visible()
    wait_idle(page)
    after_run(page, lambda: page.get_by_role("radio", name="Errors", exact=True).click())  # the view switcher
    choose(page, "Buckets by", "employment")
    # A real click on the first segment of the first bar: plotly's selection event.
    # By its key: while a rerun replaces the chart, the stale one can still be on the page.
    bars = page.locator(".st-key-sl_err_bars [data-testid=stPlotlyChart]")
    # The rerun may not have begun when the pick returns, so "idle" alone proves nothing:
    # first wait for the chart drawn for the chosen column (its categories), then for the
    # run to end, then for the stale chart to be gone.
    expect(bars.locator("g.xtick text").filter(has_text="self_employed").first).to_be_attached()
    wait_idle(page)
    expect(bars).to_have_count(1)
    expect(bars).to_be_visible()
    segments = bars.locator("g.trace.bars g.point path")
    expect(segments.first).to_be_attached()
    # Plotly hit-tests the pointer itself (its drag layer lies on top): click the
    # middle of the biggest segment drawn, as a person would. The boxes are read in
    # one step, so a redraw cannot change the count in between.
    boxes = segments.evaluate_all(
        "els => els.map(e => { const b = e.getBoundingClientRect(); return [b.x, b.y, b.width, b.height]; })"
    )
    bx, by, bw, bh = max(boxes, key=lambda b: b[2] * b[3])
    x, y = bx + bw / 2, by + bh / 2
    page.mouse.move(x, y)
    # Plotly picks the point under the pointer on hover; a click selects it.
    expect(bars.locator(".hoverlayer .hovertext")).to_be_visible()
    page.mouse.click(x, y)
    # The drill opens the Examples view on that bucket and value.
    drilled = page.get_by_text(re.compile(r"^Drilled into: "))
    expect(drilled).to_be_visible()
    expect(page).to_have_url(re.compile("view=examples"))
    text = drilled.inner_text()
    expected = counts.set_index(["bucket", "value"])["n"]
    bucket, value = next(
        (b, v) for (b, v) in expected.index if text == f"Drilled into: {b} · {slice_.readable()} AND employment = {v}"
    )
    expect(page.get_by_text(f"{int(expected[(bucket, value)]):,} rows)")).to_be_visible()

    # The pickers reach any cell, here the largest one. Back to the Errors view once the
    # drill's runs are over; a click that came while the view was redrawn is made again.
    wait_idle(page)
    after_run(page, lambda: page.get_by_role("radio", name="Errors", exact=True).click())
    bucket, value = expected.idxmax()
    choose(page, "Drill into the bucket", bucket)
    choose(page, "where employment is", value)
    page.get_by_role("button", name="Show examples").click()
    expect(
        page.get_by_text(f"Drilled into: {bucket} · {slice_.readable()} AND employment = {value}", exact=True)
    ).to_be_visible()
    expect(page.get_by_text(f"{int(expected[(bucket, value)]):,} rows)")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "error-drill-down.png"), full_page=True)


def test_discover_finds_a_slice_and_opens_it_in_the_slices_page(server, page):
    """Discover on credit-v1: the error tree's worst leaf opens in the Slices page
    with the same row count."""
    from analysis import Store
    from analysis.discovery.tree import error_tree
    from analysis.store.scope import Scope

    page.goto(f"{server.url}/discover?project=lending-demo&version=credit-v1")
    expect(page.get_by_role("heading", name="Discover")).to_be_visible()
    expect(page.get_by_text("Searched", exact=False).first).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    page.get_by_text("Error tree", exact=True).click()
    wait_idle(page)
    expect(page.get_by_test_id("stPlotlyChart").filter(has_text="Error tree")).to_be_visible()
    with Store(server.db).read() as con:
        project = get_project(con, "lending-demo")
        stages = tuple(
            sorted(set(s for (s,) in con.execute(f'SELECT DISTINCT stage FROM "{project.log_table}"').fetchall()))
        )
        tree = error_tree(con, project, Scope.of(versions="credit-v1", stages=stages))
    worst = tree.leaves[tree.leaves["slice"].notna()].iloc[0]
    choose(page, "Leaf", worst["where"])
    # The button opens its link in a new tab; follow the same link here.
    href = page.get_by_role("link", name="Open in Slices").get_attribute("href")
    page.goto(server.url + href)
    slices = page
    expect(slices.get_by_role("heading", name=worst["where"])).to_be_visible()
    con = duckdb.connect(str(server.db), read_only=True)
    try:
        from analysis.slices import compile_slice

        sql, params = compile_slice(worst["slice"], project)
        expected = con.execute(
            f'SELECT count(*) FROM "{project.log_table}" WHERE model_version = ? AND {sql}', ["credit-v1", *params]
        ).fetchall()[0][0]
    finally:
        con.close()
    expect(card_value(slices, "Rows in the slice")).to_have_text(f"{expected:,}")
    slices.screenshot(path=str(ARTIFACTS / "discover-to-slices.png"), full_page=True)


def test_promote_a_slices_errors_and_commit_them(server, page):
    """Slices page → Promote tab → a new set with the slice's errors → Validation sets →
    commit → the matrix shows the set against every model version."""
    wrong = count_demo(
        server.db,
        "count(DISTINCT example_id)",
        "model_version = 'credit-v1' AND channel = 'partner_api' AND employment = 'self_employed' "
        "AND label <> prediction",
    )
    open_partner_slice(server, page)
    page.get_by_role("radio", name="Promote", exact=True).click()  # the view switcher
    choose(page, "Validation set", "+ a new set…")
    page.get_by_label("Name of the new set").fill("partner errors")
    page.get_by_label("Name of the new set").press("Enter")
    wait_idle(page)
    page.get_by_text("only its errors", exact=True).click()
    wait_idle(page)
    page.get_by_label("Reason (kept with every example)").fill("credit-v1 approves defaulters")
    page.get_by_label("Reason (kept with every example)").press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Promote to the draft").click()
    expect(
        page.get_by_test_id("stToast").filter(has_text=f"Added {wrong:,} example(s) to the draft of")
    ).to_be_visible()

    page.goto(f"{server.url}/validation-sets?project=lending-demo&set=partner+errors")
    expect(page.get_by_role("heading", name="Validation sets")).to_be_visible()
    # Nothing committed yet: the Sets view opens first (only the chosen view is computed).
    expect(page.get_by_text(f"draft: {wrong:,} members")).to_be_visible()
    page.get_by_label("Commit message").fill("partner API errors of credit-v1")
    page.get_by_role("button", name="Commit the draft as a new version").click()
    expect(page.get_by_text(f"Committed version 1 ({wrong:,} members")).to_be_visible()
    expect(page.get_by_text("latest version 1 · draft")).to_be_visible()  # the new state, without a reload
    page.reload()
    expect(page.get_by_role("heading", name="Validation sets")).to_be_visible()
    page.get_by_text("Sets × model versions").click()
    matrix = page.get_by_test_id("stPlotlyChart").first
    expect(matrix).to_be_visible()
    expect(matrix.locator(".heatmaplayer, .hm").first).to_be_attached()
    expect(matrix.get_by_text("partner errors v1")).to_be_visible()


def test_compare_shows_the_verdict(server, page):
    """Compare on the demo: the shadow model against production, the gate's verdict on top."""
    from analysis import Store
    from analysis.compare.comparison import Side
    from analysis.compare.gate import run_gate

    page.goto(f"{server.url}/compare?project=lending-demo&baseline=credit-v1&candidate=credit-v3&view=time")
    expect(page.get_by_role("heading", name="Compare")).to_be_visible()
    verdict_box = page.get_by_test_id("stAlert").filter(has_text="Gate:").first
    expect(verdict_box).to_be_visible()
    with Store(server.db).read() as con:
        summary_first, summary_last = con.execute(
            'SELECT min("timestamp")::DATE, max("timestamp")::DATE FROM log_1'
        ).fetchall()[0]
        verdict = run_gate(
            con,
            get_project(con, "lending-demo"),
            Side("credit-v1"),
            Side("credit-v3"),
            start=summary_first,
            end=summary_last,
        )
    expect(verdict_box).to_contain_text(f"Gate: {'PASS' if verdict.passed else 'FAIL'}")
    expect(
        page.get_by_text(f"paired: both versions scored the same {verdict.comparison.n_pairs:,} examples")
    ).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)


def _report_on_the_demo(db: Path):
    """A report of the demo's comparison (shadow against production), a slice, a note."""
    from analysis import Store
    from analysis.compare.comparison import Side
    from analysis.reports import add_block, get_report
    from analysis.slices import parse_slice

    with Store(db).write() as con:
        project = get_project(con, "lending-demo")
        view = {"baseline": Side("credit-v1", "production"), "candidate": Side("credit-v3", "shadow"), "discovered": 0}
        add_block(con, project, "Launch review", "headline", {})
        add_block(con, project, "Launch review", "comparison", view)
        add_block(con, project, "Launch review", "slice", {"slice": parse_slice("region = east")})
        add_block(con, project, "Launch review", "note", {"text": "**Hold** the launch."})
        return get_report(con, project, "Launch review")


def test_the_exported_report_opens_offline_with_every_chart_drawn(demo_copy, tmp_path):
    import io

    from PIL import Image

    from analysis import Store
    from analysis.compare.comparison import Side, compare
    from analysis.reports import write_html, write_pdf
    from analysis.reports.blocks import figures

    _require_chromium()
    report = _report_on_the_demo(demo_copy)
    params = report.blocks[1].params
    with Store(demo_copy).read() as con:
        comp = compare(
            con,
            get_project(con, "lending-demo"),
            Side("credit-v1", "production"),
            Side("credit-v3", "shadow"),
            start=params["start"],
            end=params["end"],
            discovered=0,
        )
    out = write_html(report, tmp_path / "launch.html")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
        requests: list[str] = []
        pg.on("request", lambda req: requests.append(req.url))
        pg.goto(out.as_uri())
        pg.wait_for_function("document.body.dataset.charts !== undefined", timeout=TIMEOUT_MS)
        assert pg.evaluate("document.body.dataset.charts") == "ready"
        assert requests == [out.as_uri()]  # nothing but the file itself
        charts = pg.locator("div.chart")
        assert charts.count() == sum(len(figures(b.kind, b.snapshot)) for b in report.blocks) == 4
        for i in range(charts.count()):
            image = Image.open(io.BytesIO(charts.nth(i).screenshot())).convert("L")
            histogram = image.histogram()
            drawn = sum(histogram[:200]) / sum(histogram)  # share of pixels darker than near-white
            assert drawn > 0.02, f"chart {i} looks blank"
        shown = pg.locator("section[data-kind=comparison] table.overall tbody tr").evaluate_all(
            "rows => rows.map(r => Array.from(r.querySelectorAll('td[data-value]')).map(td => td.dataset.value))"
        )
        pg.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    for row, values in zip(comp.overall.itertuples(), shown):
        # Sums of floats in parallel differ in the last bits from one run to the next.
        assert [float(v) for v in values[:3]] == pytest.approx([row.baseline, row.candidate, row.delta], rel=1e-9)
    pdf = write_pdf(report, tmp_path / "launch.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000


def test_present_opens_from_a_deep_link(demo_copy, page):
    report = _report_on_the_demo(demo_copy)
    srv = AppServer(demo_copy)
    try:
        srv.wait_ready()
        page.goto(f"{srv.url}/present?project=lending-demo&report=Launch%20review")
        expect(page.get_by_role("heading", name="Launch review")).to_be_visible()
        expect(page.get_by_role("heading", name=report.blocks[1].title)).to_be_visible()
        revenue = page.get_by_test_id("stMetric").filter(has_text="revenue").first
        expect(revenue).to_be_visible()
        expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
        expect(page.get_by_text("Hold", exact=True)).to_be_visible()
        assert page.get_by_test_id("stTextInput").count() == 0 and page.get_by_test_id("stButton").count() == 0
        page.screenshot(path=str(ARTIFACTS / "present.png"), full_page=True)
    finally:
        srv.stop()

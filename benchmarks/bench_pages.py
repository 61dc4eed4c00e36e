"""Speed as a person feels it: every page and interaction, settled, in headless Chromium.

    .venv/bin/python benchmarks/bench_pages.py --db /tmp/x/pages-10m.duckdb --build   # build, then measure
    .venv/bin/python benchmarks/bench_pages.py --db ... --steps slices,pick-version --port 8616

Starts the app (``streamlit run app.py``) on a ten-million-row database (``--build``
makes one like ``bench_scale.py`` does: the demo's shape, 60 days, 1,000,000 late labels;
then a saved slice, a validation set and a report, so that every page has something to
show), drives each page by its link and each interaction of issue 21 in headless
Chromium, and prints per step:

* **settle**: from the navigation or the click until the page is settled: Streamlit's
  script state (``data-test-script-state`` on ``stApp``) back at ``notRunning`` after
  the run this step started (a MutationObserver notes that it ran), and the step's
  expected element visible and not stale. Waits on state, never fixed sleeps;
* **engine**: the same engine calls, uncached, timed directly in Python (the app writes
  each call of a page to ``$SLICEBOARD_TRACE``; the benchmark replays that step's calls
  after the browser is done, one after another);
* **calls**: how many engine calls the page made, and how many the app answered from
  its cache.

The difference between settle and engine is the UI's own cost (the server rendering
elements, the browser drawing them), or, when the app answered from its cache, what
the cache saved.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent

PROJECT = "lending-demo"
SLICE = "channel = partner_api AND employment = self_employed"
SAVED = "partner self-employed"
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
# Notes each change of Streamlit's script state, so a step knows its run happened.
OBSERVER = """
window.__sbRuns = 0;
new MutationObserver((changes) => {
  for (const c of changes) {
    if (c.attributeName === 'data-test-script-state' && c.target.getAttribute(c.attributeName) === 'running') {
      window.__sbRuns += 1;
    }
  }
}).observe(document, {attributes: true, subtree: true, attributeFilter: ['data-test-script-state']});
"""
# Resolves with the moment (ms since the epoch) from which the page stayed settled for
# QUIET_MS: a run that ends in st.rerun is followed by another run, with a moment of
# "notRunning" between them that is not the end.
SETTLED = """async ([runs, selector, quietMs, timeoutMs]) => {
  const settled = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
    if (runs !== null && window.__sbRuns <= runs) return false;
    if (!selector) return true;
    const el = [...document.querySelectorAll(selector)].find(e => e.getClientRects().length && e.offsetParent !== null);
    return !!el && !el.closest('[data-stale="true"]');
  };
  const start = Date.now();
  let since = null;
  return await new Promise((resolve) => {
    const tick = () => {
      const now = Date.now();
      if (settled()) {
        if (since === null) since = now;
        if (now - since >= quietMs) return resolve(since);
      } else {
        since = null;
      }
      if (now - start > timeoutMs) return resolve(null);
      requestAnimationFrame(tick);
    };
    tick();
  });
}"""
QUIET_MS = 300


# --- the database -----------------------------------------------------------------------


def build(db: Path, rows_per_day: int) -> None:
    """A labeled log of the demo's shape (bench_scale.py's data), then curated objects."""
    import bench_scale

    data = db.parent / f"data-{rows_per_day}"
    info = bench_scale.generate(data, rows_per_day, bench_scale.N_LABELS)
    print(f"data: {info['rows']:,} predictions, {info['n_labels']:,} labels", file=sys.stderr)
    db.unlink(missing_ok=True)
    print("ingest:", bench_scale.phase_ingest(db, data / "logs", None), file=sys.stderr)
    print("labels:", bench_scale.phase_labels(db, data / "labels.parquet", None), file=sys.stderr)


def prepare(db: Path) -> None:
    """A saved slice, a committed validation set and a report (once)."""
    from analysis import Store, get_project
    from analysis.reports import add_block
    from analysis.slices import parse_slice
    from analysis.slices.saved import list_slices, save_slice
    from analysis.valsets import Selection, commit, create_set, promote

    store = Store(db)
    with store.write(create=False) as con:
        project = get_project(con, PROJECT)
        if SAVED in set(list_slices(con, project)["name"]):
            return
        t0 = time.perf_counter()
        save_slice(con, project, SAVED, parse_slice(SLICE))
        create_set(con, project, "partner hard cases")
        promote(
            con,
            project,
            "partner hard cases",
            Selection(slice_=parse_slice(SLICE), only_errors=True, sample=300),
            reason="benchmark",
        )
        commit(con, project, "partner hard cases", "first 300")
        add_block(con, project, "weekly", "headline", {})
        add_block(con, project, "weekly", "note", {"text": "Benchmark report."})
        print(f"prepared curated objects in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


# --- the app and the browser ------------------------------------------------------------


def start_app(db: Path, port: int, trace: Path) -> subprocess.Popen:
    env = dict(os.environ, SLICEBOARD_DB=str(db), SLICEBOARD_TRACE=str(trace))
    proc = subprocess.Popen(
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
            str(port),
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit("the app did not start")
        time.sleep(0.2)  # polling the server's health, not synchronising the page
    proc.kill()
    raise SystemExit("the app did not answer /_stcore/health within 60 s")


@dataclass
class Result:
    name: str
    settle: float | None
    t0: float
    t1: float
    note: str = ""
    engine: float | None = None
    calls: int = 0
    cached: int = 0
    target: float = 1.0
    server: float | None = None
    engine_computed: float = 0.0
    origin: float | None = None  # a step that continues another: timed from that one's start


class Driver:
    def __init__(self, page, base: str, timeout: float):
        self.page, self.base, self.timeout = page, base, timeout
        self.results: list[Result] = []

    def _wait(self, runs, selector, t0: float) -> float | None:
        since = self.page.evaluate(SETTLED, [runs, selector, QUIET_MS, self.timeout * 1000])
        return None if since is None else since / 1000 - t0

    def _runs(self) -> int:
        return self.page.evaluate("window.__sbRuns")

    def _record(self, name: str, settle, t0: float, target: float) -> Result:
        note = ""
        if self.page.locator('[data-testid="stException"]').count():
            note = "exception on the page"
        elif settle is None:
            note = f"not settled within {self.timeout:g} s"
        r = Result(name, settle, t0, time.time(), note, target=target)
        self.results.append(r)
        print(f"  {name:44} {'timeout' if settle is None else f'{settle:6.2f} s'}  {note}", file=sys.stderr)
        return r

    def open(self, name: str, path: str, selector: str, target: float = 2.0) -> Result:
        t0 = time.time()
        self.page.goto(self.base + path)
        return self._record(name, self._wait(None, selector, t0), t0, target)

    def then(self, name: str, selector: str, after: Result, target: float) -> Result:
        """The same step, until ``selector`` shows too (an answer computed on a worker that
        fills in the page after it settled): timed from the step's start."""
        settle = self._wait(None, selector, after.t0)
        r = self._record(name, settle, after.t1, target)
        r.origin = after.t0
        return r

    def act(self, name: str, action, selector: str | None, target: float = 1.0) -> Result:
        runs = self._runs()
        t0 = time.time()
        action()
        return self._record(name, self._wait(runs, selector, t0), t0, target)

    def view(self, name: str, label: str, selector: str, target: float = 1.0) -> Result:
        """Switch to a view: a tab (drawn already: no run) or a view switcher (a run)."""
        page = self.page
        t0 = time.time()
        for candidate in (
            page.get_by_role("tab", name=label, exact=True),
            page.get_by_role("radio", name=label, exact=True),
            page.get_by_role("button", name=label, exact=True),
        ):
            if candidate.count():
                candidate.first.click()
                break
        return self._record(name, self._wait(None, selector, t0), t0, target)

    # Streamlit widgets, found by their key (each element with a key has the class st-key-<key>).
    def choose(self, key: str, option: str) -> None:
        field = self.page.locator(f".st-key-{key} input").first
        field.click()
        field.fill(option)  # the list shows the options that match what is typed
        self.page.get_by_role("option", name=option, exact=False).first.click()
        self.page.keyboard.press("Escape")

    def click_bar(self, key: str) -> None:
        """Click the middle of the largest bar of a plotly chart."""
        self.page.locator(f".st-key-{key}").first.scroll_into_view_if_needed()
        box = self.page.evaluate(
            """(key) => {
          const paths = [...document.querySelectorAll(`.st-key-${key} .barlayer .point path`)];
          const boxes = paths.map(p => p.getBoundingClientRect()).filter(b => b.width > 2 && b.height > 2);
          boxes.sort((a, b) => b.width * b.height - a.width * a.height);
          return boxes.length ? {x: boxes[0].x + boxes[0].width / 2, y: boxes[0].y + boxes[0].height / 2} : null;
        }""",
            key,
        )
        if box is None:
            raise RuntimeError(f"no bar to click in {key}")
        self.page.mouse.click(box["x"], box["y"])

    def click(self, key: str) -> None:
        self.page.locator(f".st-key-{key} button").first.click()


def walk(driver: Driver, steps: set[str] | None) -> None:
    p = f"?project={quote(PROJECT)}"
    slice_link = f"/slices{p}&slice={quote(SLICE)}"
    d = driver

    def want(name: str) -> bool:
        return steps is None or name in steps

    if want("overview"):
        d.open("open Overview", f"/{p}", '[data-testid="stDataFrame"]')
        d.open("open Overview again (warm)", f"/{p}", '[data-testid="stDataFrame"]')
    if want("monitor"):
        d.open("open Monitor (estimates of every row)", f"/monitor{p}", '[class*="st-key-mo_chart_"]')
        d.open("open Monitor again (warm)", f"/monitor{p}", '[class*="st-key-mo_chart_"]')
    if want("slices"):
        d.open("open Slices (slice deep link)", slice_link, '[class*="st-key-sl_bars_"]')
        d.open("open Slices again (warm)", slice_link, '[class*="st-key-sl_bars_"]')
        d.act("pick a version", lambda: d.choose("sl_version", "credit-v2"), '[class*="st-key-sl_bars_"]')
        expander = d.page.locator('[data-testid="stExpander"] summary', has_text="Add a condition")
        if (
            expander.count()
            and d.page.locator(".st-key-sl_column input").count()
            and not d.page.locator(".st-key-sl_column input").first.is_visible()
        ):
            expander.first.click()  # drawn already: opening it runs nothing
        d.act("add a condition: choose a column", lambda: d.choose("sl_column", "region"), ".st-key-sl_values_region")
        d.act("add a condition: choose a value", lambda: d.choose("sl_values_region", "east"), ".st-key-sl_add")
        d.act("add a condition: Add to slice", lambda: d.click("sl_add"), '[class*="st-key-sl_bars_"]')
        d.view("switch a view: Breakdown", "Breakdown", ".st-key-sl_by")
        d.view("switch a view: Errors", "Errors", ".st-key-sl_err_bars")
        d.act("drill into a bar (opens Examples)", lambda: d.click_bar("sl_err_bars"), ".st-key-sl_drill_clear")
        d.view("switch a view: Examples", "Examples", ".st-key-sl_ex_page")
        d.act(
            "page the examples",
            lambda: d.page.locator('.st-key-sl_ex_page [data-testid="stNumberInputStepUp"]').first.click(),
            ".st-key-sl_ex_page",
        )
        d.view("switch a view: Saved", "Saved", ".st-key-sl_save_name")

        def save():
            d.page.locator(".st-key-sl_save_name input").fill(f"bench {int(time.time())}")
            d.page.get_by_role("button", name="Save (a new revision if the name exists)").click()

        d.act("save the slice", save, '[data-testid="stAlertContentSuccess"], [data-testid="stToast"]')
        # The examples and the deep link were computed before the save, which changes saved
        # slices only.
        d.view("switch a view: Examples", "Examples", ".st-key-sl_ex_page")
        d.act(
            "next view after the save: the next examples page",
            lambda: d.page.locator('.st-key-sl_ex_page [data-testid="stNumberInputStepUp"]').first.click(),
            ".st-key-sl_ex_page",
            target=2.0,
        )
        d.open("next page after the save: Slices deep link", slice_link, '[class*="st-key-sl_bars_"]', target=2.0)
    if want("discover"):
        # The search runs on a worker: the page settles with a note that it is under way.
        opened = d.open("open Discover: the page", f"/discover{p}", '.st-key-sb_pending, [data-testid="stDataFrame"]')
        d.then("open Discover: the slices found", '[data-testid="stDataFrame"]', opened, target=2.0)
    if want("compare"):
        opened = d.open("open Compare: the overall figures", f"/compare{p}", '[data-testid="stDataFrame"]')
        d.then("open Compare: the gate's verdict", ".st-key-cmp_verdict", opened, target=2.0)
        d.view("switch a view: Slices", "Slices", '[data-testid="stDataFrame"]')
        d.view("switch a view: Overall", "Overall", '[data-testid="stDataFrame"]')
        # Another comparison on the warm server; the gate runs on a worker while the page is used.
        picked = d.act(
            "pick another baseline: the overall figures",
            lambda: d.choose("cmp_base", "credit-v2"),
            '[data-testid="stDataFrame"]',
        )
        d.view("switch a view: Over time (gate under way)", "Over time", ".st-key-cmp_series")
        d.then("pick another baseline: the gate's verdict", ".st-key-cmp_verdict", picked, target=2.0)
    if want("valsets"):
        d.open("open Validation sets", f"/validation-sets{p}", '[data-testid="stDataFrame"]')
    if want("reports"):
        d.open("open Reports", f"/reports{p}", '[data-testid="stHeading"]')
    if want("present"):
        d.open("open Present", f"/present{p}", '[data-testid="stMainBlockContainer"] [data-testid="stMarkdown"]')


# --- the engine time of each step ---------------------------------------------------------


def read_trace(trace: Path) -> list[tuple]:
    records = []
    if not trace.exists():
        return records
    with open(trace, "rb") as fh:
        while True:
            try:
                records.append(pickle.load(fh))
            except EOFError:
                return records


PER_FUNCTION: dict[str, list[float]] = {}


def engine_seconds(db: Path, calls: list[tuple]) -> tuple[float, float]:
    """The calls, uncached, as the app makes them (its project, its engine): all of
    them, and those the app computed (not answered from its cache)."""
    import importlib

    from analysis import Store, get_project
    from analysis.engines.settings import engine_connection, get_settings

    store = Store(db)
    total = computed_total = 0.0
    for _, func_path, project, kwargs, computed, _ in calls:
        module, name = func_path.rsplit(".", 1)
        func = getattr(importlib.import_module(module), name)
        t0 = time.perf_counter()
        with store.read() as con:
            if project is None:
                func(con, **kwargs)
            else:
                p = get_project(con, project)
                settings = get_settings(con, p)
                if func_path == "analysis.engines.settings.get_settings":
                    func(con, p)
                else:
                    with engine_connection(con, p, settings) as engine_con:
                        func(engine_con, p, **kwargs)
        seconds = time.perf_counter() - t0
        PER_FUNCTION.setdefault(func_path, []).append(seconds)
        total += seconds
        computed_total += seconds if computed else 0.0
    return total, computed_total


def attach_engine(db: Path, results: list[Result], trace: Path) -> None:
    records = read_trace(trace)
    for r in results:
        inside = [c for c in records if r.t0 <= c[0] <= r.t1]
        calls = [c for c in inside if c[1].startswith("analysis.")]
        marks = [c[0] for c in inside if c[1] in ("run start", "run end")]
        r.calls, r.cached = len(calls), sum(1 for c in calls if not c[4])
        r.engine, r.engine_computed = engine_seconds(db, calls)
        # The server's own time: from the step's start to the end of its last script run.
        r.server = (max(marks) - (r.origin or r.t0)) if marks else None


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[:3].__str__()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=str(ROOT / "benchmarks" / "output" / "pages-10m.duckdb"))
    parser.add_argument("--build", action="store_true", help="build the database first (about 2 minutes)")
    parser.add_argument("--rows-per-day", type=int, default=108_000, help="108,000 gives about 10M predictions")
    parser.add_argument("--port", type=int, default=8616)
    parser.add_argument(
        "--steps",
        default="overview,monitor,slices,discover,compare,valsets,reports,present",
        help="comma-separated: overview, monitor, slices, discover, compare, valsets, reports, present",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a step counts as not settled")
    parser.add_argument("--screenshots", default=None, help="a folder for a screenshot after each page")
    args = parser.parse_args()
    db = Path(args.db)
    if args.build or not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        build(db, args.rows_per_day)
    prepare(db)

    from bench_scale import machine
    from playwright.sync_api import sync_playwright

    trace = Path(tempfile.mkdtemp(prefix="bench_pages_")) / "trace.pickle"
    # The walk saves a slice: it runs on a copy, so every run starts from the same database
    # (the gate and the Saved view read every saved slice).
    db = Path(shutil.copy(db, trace.parent / db.name))
    print(f"machine: {machine()}")
    print(f"load before: {load()}")
    app = start_app(db, args.port, trace)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.add_init_script(OBSERVER)
            driver = Driver(page, f"http://127.0.0.1:{args.port}", args.timeout)
            walk(driver, set(args.steps.split(",")))
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=30)
    print(f"load after: {load()}")
    attach_engine(db, driver.results, trace)
    shutil.rmtree(trace.parent, ignore_errors=True)
    print()
    print(
        "| step | settle (s) | server done (s) | engine, calls the app computed (s) | engine, all calls "
        "uncached (s) | calls (cached in app) | target (s) | |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in driver.results:
        settle = "–" if r.settle is None else f"{r.settle:.2f}"
        met = "" if r.settle is None else ("met" if r.settle <= r.target else "**not met**")
        server = "–" if r.server is None else f"{r.server:.2f}"
        print(
            f"| {r.name} | {settle} | {server} | {r.engine_computed:.2f} | {r.engine:.2f} | {r.calls} ({r.cached}) | "
            f"{r.target:g} | "
            f"{met} {r.note} |"
        )
    print()
    print("| engine function | calls | seconds per call (median) | max |")
    print("|---|---:|---:|---:|")
    import statistics

    for name, times in sorted(PER_FUNCTION.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"| {name} | {len(times)} | {statistics.median(times):.3f} | {max(times):.3f} |")


if __name__ == "__main__":
    main()

"""A user who clicks at random: a Hypothesis rule-based state machine over the real app.

The machine drives the real app (``app.py`` under Streamlit's AppTest, see test_app.py's
``app_on``) on a real DuckDB file holding three small projects with other column names than
the demo's, built by the real ingest API:

* ``churn-watch``: binary (classes yes/no), a third of the rows unlabeled, two versions;
* ``ticket-router``: multiclass (four queues), a few unlabeled rows;
* ``eta-model``: regression (minutes), three stages.

Each rule is one thing a person does (pick a project, a version, stages, a window; add,
remove or retype a slice condition; drill; page the examples; promote; commit; save a
slice; add a view to a report; reorder; delete; switch pages). After every step the
invariants check that the page shows no exception and no error box (a deliberately bad
input must give the readable message the rule expects, and nothing else), and that key
numbers on screen equal the same figure computed here with pandas from the log itself
(never through the engine): the Overview's rows per version and stage, the Slices page's
"Rows in the slice" for the conditions this machine added.

Running: ``pytest tests/test_app_machine.py``. The run is derandomized (the same
sequences every time) and sized for about one minute on a two-core machine (8 runs of 35 steps).
On a failure Hypothesis prints the shrunk list of steps, as Python that replays it.

Adding a rule
-------------
1. Write a driver: a small function ``page_action(m, ...)`` near the others of its page
   (below, one block per page) that finds its widgets *by key* with ``find`` and acts;
   when the page's widgets change, only the driver changes.
2. Add a ``@rule(...)`` method on ``AppMachine`` that first calls ``self.visit("pages/x.py")``
   (it opens the page, checked like any other step, if the person is elsewhere), then the
   driver, then ``self.step()`` to rerun the script. Draw values with ``data.draw(...)`` from
   what the page offers (options read back from the widget) or from the log (``self.log``).
3. If the step may legitimately show an error box (bad input on purpose), put the
   expected text in ``self.expected_errors`` before running; the invariant then demands
   exactly that message. If the step changes what the model below tracks (the slice's
   conditions, the scope), update ``self.conditions`` / ``self.scope`` so the number
   checks keep comparing like with like.
"""

from __future__ import annotations

import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from streamlit.testing.v1 import AppTest
from test_app import app_on, literal, texts

from analysis import Store, get_project, ingest_predictions, parse_mapping
from analysis.slices.breakdown import SORTS

# --- the three projects ---------------------------------------------------------------------

START = pd.Timestamp("2026-10-01")
DAYS = 20

CHURN_TOML = """
[project]
name = "churn-watch"
task = "binary"
positive_label = "yes"
negative_label = "no"
[columns]
id = "event_id"
timestamp = "sent_at"
version = "model_tag"
stage = "env"
score = "p_churn"
label = "churned"
features = ["plan", "tenure_months", "is_mobile", "region_code"]
outcomes = ["monthly_revenue"]
[kinds]
region_code = "categorical"
"""

TICKETS_TOML = """
[project]
name = "ticket-router"
task = "multiclass"
[columns]
id = "ticket_ref"
timestamp = "opened"
version = "router"
stage = "lane"
prediction = "routed_to"
label = "true_queue"
features = ["lang", "words", "vip"]
"""

ETA_TOML = """
[project]
name = "eta-model"
task = "regression"
[columns]
id = "trip"
timestamp = "booked_at"
version = "build"
stage = "where_run"
prediction = "eta_min"
label = "actual_min"
features = ["city", "distance_km", "night"]
"""


def _times(rng, n):
    return START + pd.to_timedelta(rng.integers(0, DAYS * 24 * 60, n), unit="min")


def project_frames(seed: int = 21) -> dict[str, tuple[str, pd.DataFrame]]:
    """The raw files of the three projects (other column names than the demo's)."""
    rng = np.random.default_rng(seed)
    n = 320
    churn = pd.DataFrame(
        {
            "event_id": [f"ev{i:04d}" for i in range(n)],
            "sent_at": _times(rng, n),
            "model_tag": rng.choice(["gbm-7", "gbm-8"], n),
            "env": rng.choice(["production", "canary"], n, p=[0.7, 0.3]),
            "plan": rng.choice(["basic", "pro", "team"], n).astype(object),
            "tenure_months": rng.integers(0, 60, n).astype(float),
            "is_mobile": rng.random(n) < 0.4,
            "region_code": rng.choice(["101", "202", "303"], n),
            "p_churn": rng.random(n).round(4),
            "monthly_revenue": rng.gamma(2, 20, n).round(2),
        }
    )
    churn.loc[rng.random(n) < 0.06, "plan"] = None
    churn.loc[rng.random(n) < 0.05, "tenure_months"] = np.nan
    truth = rng.random(n) < churn["p_churn"]
    churn["churned"] = np.where(truth, "yes", "no").astype(object)
    churn.loc[rng.random(n) < 0.33, "churned"] = None  # a third not labeled yet

    n = 260
    queues = np.array(["billing", "tech", "sales", "other"])
    label = rng.choice(queues, n, p=[0.4, 0.3, 0.2, 0.1])
    right = rng.random(n) < 0.7
    tickets = pd.DataFrame(
        {
            "ticket_ref": [f"T-{i}" for i in range(n)],
            "opened": _times(rng, n),
            "router": rng.choice(["r1", "r2"], n),
            "lane": "production",
            "lang": rng.choice(["en", "de", "fr"], n),
            "words": rng.integers(5, 400, n),
            "vip": rng.random(n) < 0.2,
            "routed_to": np.where(right, label, rng.choice(queues, n)),
            "true_queue": label.astype(object),
        }
    )
    tickets.loc[rng.random(n) < 0.08, "true_queue"] = None

    n = 280
    dist = rng.gamma(2, 4, n).round(2)
    actual = (dist * 2.5 + rng.normal(0, 4, n)).clip(1).round(1)
    eta = pd.DataFrame(
        {
            "trip": [f"trip/{i}" for i in range(n)],
            "booked_at": _times(rng, n),
            "build": rng.choice(["b-100", "b-101"], n),
            "where_run": rng.choice(["production", "shadow", "canary"], n),
            "city": rng.choice(["lagos", "lima", "oslo"], n),
            "distance_km": dist,
            "night": rng.random(n) < 0.3,
            "eta_min": (actual + rng.normal(0, 5, n)).round(1),
            "actual_min": actual,
        }
    )
    eta.loc[rng.random(n) < 0.1, "actual_min"] = np.nan
    return {"churn-watch": (CHURN_TOML, churn), "ticket-router": (TICKETS_TOML, tickets), "eta-model": (ETA_TOML, eta)}


def build_database(path: Path) -> None:
    """Three projects in one database, through the real ingest API."""
    store = Store(path)
    with store.write() as con:
        for name, (toml, frame) in project_frames().items():
            ingest_predictions(con, frame, project=name, mapping=parse_mapping(toml))


def read_logs(path: Path) -> dict[str, pd.DataFrame]:
    """Each project's log as stored (the reference the page's numbers are checked against)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for name in project_frames():
            project = get_project(con, name)
            out[name] = con.execute(f'SELECT * FROM "{project.log_table}"').df()
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def base_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("machine") / "three.duckdb"
    build_database(path)
    return path


# --- crashes the machine found, each kept as a focused test -----------------------------------


def test_the_builder_offers_the_missing_value_by_name_and_selects_those_rows(monkeypatch, base_db):
    """Found by the machine: under pandas 3 a missing value came back from the engine as NaN, not
    None, so the builder offered it as "nan", and picking it selected no row."""
    log = read_logs(base_db)["churn-watch"]
    at = app_on(monkeypatch, base_db).run()
    at.switch_page("pages/slices.py").run()
    at.selectbox(key="sl_column").set_value("plan").run()
    options = at.multiselect(key="sl_values_plan").options
    assert f"{MISSING}  ·  {int(log['plan'].isna().sum()):,}" in options, options
    assert not [o for o in options if o.startswith("nan")]
    at.multiselect(key="sl_values_plan").set_value([MISSING]).run()
    at.button(key="sl_add").click().run()
    assert at.text_input(key="sl_text").value == "plan is null"
    assert metric(at, "Rows in the slice") == f"{int(log['plan'].isna().sum()):,}"


def test_a_drill_of_one_project_does_not_break_the_next_projects_examples(monkeypatch, base_db):
    """Found by the machine: a drill into eta-model's distance_km was kept in the session, and
    the Examples tab of ticket-router (which has no such column) showed "Unknown column"."""
    at = app_on(monkeypatch, base_db).run()
    at.selectbox(key="project").set_value("eta-model").run()
    at.switch_page("pages/slices.py").run()
    at.button_group(key="sl_view").set_value("Errors").run()
    at.selectbox(key="sl_err_by").set_value("distance_km").run()
    value = keyed(at, "selectbox", "sl_cell_value_")[0]
    value.set_value(value.options[0]).run()
    at.button(key="sl_cell_go").click().run()
    assert find(at, "button", "sl_drill_clear") is not None  # drilled
    at.selectbox(key="project").set_value("ticket-router").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert find(at, "button", "sl_drill_clear") is None
    total = len(read_logs(base_db)["ticket-router"])
    assert f"; {total:,} rows)" in at.number_input(key="sl_ex_page").label


def test_a_drill_whose_group_left_the_slice_is_cleared(monkeypatch, base_db):
    """Found by the machine: a drill into tenure_months' second bin, then a slice without those
    rows; the Examples tab showed "'02 [...)' is not a group of tenure_months"."""
    at = app_on(monkeypatch, base_db).run()
    at.switch_page("pages/slices.py").run()
    at.button_group(key="sl_view").set_value("Errors").run()
    at.selectbox(key="sl_err_by").set_value("tenure_months").run()
    value = keyed(at, "selectbox", "sl_cell_value_")[0]
    value.set_value(value.options[1]).run()
    at.button(key="sl_cell_go").click().run()
    assert find(at, "button", "sl_drill_clear") is not None
    at.text_input(key="sl_text").input("tenure_months < 0").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert find(at, "button", "sl_drill_clear") is None
    assert "(of 1; 0 rows)" in at.number_input(key="sl_ex_page").label


def test_discover_searches_the_new_projects_features_after_a_project_change(monkeypatch, base_db):
    """Found by the machine: the Features picker kept the old project's features, none of which
    the new project has, so Discover said "Pick at least one feature" and searched nothing."""
    at = app_on(monkeypatch, base_db).run()
    at.switch_page("pages/discover.py").run()
    assert at.multiselect(key="dc_features").value == ["plan", "tenure_months", "is_mobile", "region_code"]
    at.selectbox(key="project").set_value("eta-model").run()
    assert not at.exception and not at.error
    assert at.multiselect(key="dc_features").value == ["city", "distance_km", "night"]
    assert metric(at, "Rows searched") is not None


def test_a_saved_slice_on_an_outcome_and_the_score_is_compared_on_paired_versions(base_db, tmp_path):
    """Found by the machine: a saved slice naming an outcome (monthly_revenue) made Compare of
    one version's production against all its stages (paired: the same examples) fail with
    "Referenced column monthly_revenue not found" (the pairs carried only the features)."""
    from analysis.compare.comparison import Side, compare
    from analysis.slices import parse_slice
    from analysis.slices.saved import save_slice

    path = tmp_path / "copy.duckdb"
    shutil.copyfile(base_db, path)
    with Store(path).write() as con:
        project = get_project(con, "churn-watch")
        save_slice(con, project, "rich", parse_slice("monthly_revenue >= 30 AND score < 0.5"), None)
        result = compare(con, project, Side("gbm-8", "production"), Side("gbm-8", None))
    assert result.paired
    row = result.slices[result.slices["source"] == "saved"].iloc[0]
    log = read_logs(path)["churn-watch"]
    base = log[(log["model_version"] == "gbm-8") & (log["stage"] == "production")]
    expected = base[(base["monthly_revenue"] >= 30) & (base["score"] < 0.5)]
    assert int(row["n_rows_b"]) == len(expected) > 0


# --- reading the page ---------------------------------------------------------------------

MISSING = "∅ missing"  # the Slices builder's name for a missing value
PAGES = (
    "pages/overview.py",
    "pages/slices.py",
    "pages/discover.py",
    "pages/validation-sets.py",
    "pages/compare.py",
    "pages/monitor.py",
    "pages/reports.py",
    "pages/present.py",
)


def find(at: AppTest, kind: str, key: str):
    """The widget of this kind and key on the page, or None (it is not drawn now)."""
    return next((w for w in at.get(kind) if getattr(w, "key", None) == key), None)


def keyed(at: AppTest, kind: str, prefix: str) -> list:
    """Every element of this kind whose key starts with ``prefix``."""
    return [w for w in at.get(kind) if (getattr(w, "key", None) or "").startswith(prefix)]


def table_with(at: AppTest, *columns: str):
    """The first table showing these columns (a read-only st.dataframe carries no key)."""
    return next((d for d in at.dataframe if set(columns) <= set(d.value.columns)), None)


def submit(at: AppTest, form: str):
    """The submit button of a form (Streamlit keys it ``FormSubmitter:<form>-<label>``)."""
    buttons = keyed(at, "button", f"FormSubmitter:{form}-")
    return buttons[0] if buttons else None


def metric(at: AppTest, label: str) -> str | None:
    return next((m.value for m in at.metric if m.label == label), None)


def count(text: str) -> int:
    return int(text.replace(",", ""))


def raw_option(label: str) -> str:
    """A builder value's option as the user reads it ("pro  ·  45") back to its value."""
    return label.split("  ·  ")[0]


def as_text(series: pd.Series) -> pd.Series:
    """Values as DuckDB's CAST(... AS VARCHAR) writes them (booleans as true/false); missing as None."""

    def one(v):
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if isinstance(v, (bool, np.bool_)):
            return "true" if v else "false"
        return str(v)

    return series.map(one).astype(object)


# --- the model: conditions as this test understands them, evaluated with pandas -----------------


def mask(frame: pd.DataFrame, cond: tuple) -> pd.Series:
    """Rows of ``frame`` meeting one condition ``(column, op, arg)``, computed here with pandas."""
    column, op, arg = cond
    s = frame[column]
    if op == "in":
        return as_text(s).isin(arg)
    if op == "not_in":
        return s.isna() | ~as_text(s).isin(arg)
    if op == "is_null":
        return s.isna()
    if op == "not_null":
        return s.notna()
    low, high = arg  # between: low <= value < high, missing outside
    values = s.astype("float64") if s.dtype.kind != "M" else s
    keep = s.notna()
    if low is not None:
        keep &= values >= (pd.Timestamp(low) if s.dtype.kind == "M" else float(low))
    if high is not None:
        keep &= values < (pd.Timestamp(high) if s.dtype.kind == "M" else float(high))
    return keep.fillna(False).astype(bool)


def text_of(cond: tuple) -> str:
    """A condition written the way a person types it in the slice box."""
    column, op, arg = cond
    if op in ("in", "not_in"):
        if len(arg) == 1:
            return f"{column} {'=' if op == 'in' else '!='} {arg[0]}"
        return f"{column} {'in' if op == 'in' else 'not in'} ({', '.join(arg)})"
    if op in ("is_null", "not_null"):
        return f"{column} is {'null' if op == 'is_null' else 'not null'}"
    low, high = arg
    if low is not None and high is not None:
        return f"{low} <= {column} < {high}"
    return f"{column} >= {low}" if low is not None else f"{column} < {high}"


def in_scope(
    frame: pd.DataFrame,
    version: str | None,
    stages: list[str] | None,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if version:
        keep &= frame["model_version"] == version
    if stages:
        keep &= frame["stage"].isin(stages)
    if start is not None:
        keep &= frame["timestamp"] >= pd.Timestamp(start)
    if end is not None:
        keep &= frame["timestamp"] < pd.Timestamp(end) + pd.Timedelta(days=1)
    return frame[keep]


# Columns the machine conditions on, per project: picked by value, or by a numeric range.
VALUE_COLUMNS = {
    "churn-watch": ["plan", "is_mobile", "region_code", "stage", "label"],
    "ticket-router": ["lang", "vip", "label", "prediction", "model_version"],
    "eta-model": ["city", "night", "stage"],
}
NUMBER_COLUMNS = {
    "churn-watch": ["tenure_months", "score", "monthly_revenue"],
    "ticket-router": ["words"],
    "eta-model": ["distance_km", "label", "prediction"],
}
BOUNDS = ["0", "0.3", "2", "7.5", "12", "30", "45", "150"]
# Slice text a person mistypes, and the start of the readable message each must give.
BAD_SLICES = [
    ("nope = 1", "Unknown column 'nope'"),
    ("{num} < abc", "is not a number"),
    ("{val} in (a b)", "Cannot read the list"),
    ("{val} = pro AND", "An AND in the slice has nothing"),
]
NAMES = ["watch", "weekly review", "look/again", "ünïcode"]


# --- drivers: one small function per thing a person does, found by widget key -------------------
# (After a page changes, adapt the driver; the rules and checks stay as they are.)


def go_to(m, page: str) -> None:
    m.at.switch_page(page)
    m.page = page


def pick_project(m, name: str) -> None:
    m.at.selectbox(key="project").set_value(name)


def show_view(m, page_prefix: str, view: str, key: str = "view") -> None:
    """Switch a page's view: pick ``view`` (the option's value) in its view switcher (a
    segmented control or radio keyed ``<prefix>_<key>``); the switcher must offer it."""
    for kind in ("button_group", "radio", "selectbox"):
        switcher = find(m.at, kind, f"{page_prefix}_{key}")
        if switcher is None:
            continue
        shown = getattr(switcher, "format_func", None)
        label = shown(view) if kind == "button_group" and shown else view
        assert label in list(switcher.options), (view, switcher.options)
        switcher.set_value(view)
        return
    raise AssertionError(f"no view switcher {page_prefix}_{key} on {m.page}")


def pick(box, data, label: str, leave_out: str | None = None) -> None:
    """Pick one of a selectbox's options as shown. A box with a format_func shows labels,
    and takes values: each label is traced back to the value it shows (a metric's name, a
    value written in brackets after its words, or the label itself)."""
    from analysis.metrics.registry import METRICS

    options = list(box.options)
    candidates = [*options, *METRICS, *(m.group(1) for o in options if (m := re.search(r"\(([^()]*)\)$", o)))]
    shown = getattr(box, "format_func", None) or str
    values = {}
    for v in candidates:
        try:
            values.setdefault(str(shown(v)), v)
        except Exception:  # noqa: BLE001 - not a value this box formats
            continue
    assert set(options) <= set(values), (options, values)
    box.set_value(values[data.draw(st.sampled_from([o for o in options if o != leave_out]), label=label)])


def view_of(m, page_prefix: str, key: str = "view"):
    """The view a page's switcher shows now, or None."""
    for kind in ("button_group", "radio"):
        switcher = find(m.at, kind, f"{page_prefix}_{key}")
        if switcher is not None:
            return switcher.value
    return None


# Slices
def sl_scope(m, version: str | None, stages: list[str] | None) -> None:
    if version is not None:
        m.at.selectbox(key="sl_version").set_value(version)
    if stages is not None:
        m.at.multiselect(key="sl_stages").set_value(stages)


def sl_builder_column(m, column: str) -> None:
    m.at.selectbox(key="sl_column").set_value(column)


def sl_builder_values(m, data) -> None:
    column = m.at.selectbox(key="sl_column").value
    values = find(m.at, "multiselect", f"sl_values_{column}")
    if values is None:
        return
    options = [raw_option(o) for o in values.options]
    present = [o for o in options if o != MISSING]
    if MISSING in options and data.draw(st.booleans(), label="only the missing value"):
        picked = [MISSING]
    else:
        picked = (
            data.draw(st.lists(st.sampled_from(present), min_size=1, max_size=3, unique=True), label="values")
            if present
            else []
        )
    values.set_value(picked)
    find(m.at, "checkbox", f"sl_not_{column}").check() if data.draw(st.booleans(), label="negate") else find(
        m.at, "checkbox", f"sl_not_{column}"
    ).uncheck()


def sl_builder_range(m, low: str, high: str) -> None:
    column = m.at.selectbox(key="sl_column").value
    lo, hi = find(m.at, "text_input", f"sl_low_{column}"), find(m.at, "text_input", f"sl_high_{column}")
    if lo is not None:
        lo.input(low)
        hi.input(high)


def sl_pending(m):
    """What "Add to slice" would add, from the builder's widgets as the user set them:
    a condition tuple, or ("error", message start) for an input the engine must refuse."""
    column = m.at.selectbox(key="sl_column").value
    values = find(m.at, "multiselect", f"sl_values_{column}")
    if values is not None:
        picked = list(values.value)
        negate = find(m.at, "checkbox", f"sl_not_{column}").value
        present = tuple(v for v in picked if v != MISSING)
        if not picked:
            return None
        if present:
            return (column, "not_in" if negate else "in", present)
        return (column, "not_null" if negate else "is_null", None)
    lo, hi = find(m.at, "text_input", f"sl_low_{column}"), find(m.at, "text_input", f"sl_high_{column}")
    if lo is None:
        return None
    low, high = lo.value.strip() or None, hi.value.strip() or None
    if low is None and high is None:
        return None
    for bound in (low, high):
        if bound is not None:
            try:
                float(bound)
            except ValueError:
                return ("error", "is not a number")
    return (column, "between", (low, high))


def sl_add(m) -> None:
    m.at.button(key="sl_add").click()


def sl_remove(m, i: int) -> None:
    m.at.button(key=f"sl_remove_{i}").click()


def sl_type(m, text: str) -> None:
    m.at.text_input(key="sl_text").input(text)


def sl_drill(m, data) -> bool:
    by = m.at.selectbox(key="sl_err_by")
    by.set_value(data.draw(st.sampled_from(list(by.options)), label="buckets by"))
    m.run()
    bucket = m.at.selectbox(key="sl_cell_bucket")
    bucket.set_value(data.draw(st.sampled_from(list(bucket.options)), label="bucket"))
    value = keyed(m.at, "selectbox", "sl_cell_value_")
    if not value or not value[0].options:
        return False
    value[0].set_value(data.draw(st.sampled_from(list(value[0].options)), label="value"))
    m.run()
    m.at.button(key="sl_cell_go").click()
    return True


def sl_examples_page(m, data) -> None:
    page = find(m.at, "number_input", "sl_ex_page")
    if page is not None:
        page.set_value(data.draw(st.integers(1, int(page.max)), label="page"))


def sl_select_examples(m, data) -> None:
    tables = keyed(m.at, "dataframe", "sl_examples_")
    if tables and len(tables[0].value):
        rows = data.draw(st.lists(st.integers(0, len(tables[0].value) - 1), max_size=4, unique=True), label="rows")
        m.at.session_state[tables[0].key] = {"selection": {"rows": rows, "columns": [], "cells": []}}


def sl_promote(m, target: str | None, what: str) -> None:
    """Promote into ``target`` (None: a new set named by the machine); ``what`` is a radio choice."""
    m.at.selectbox(key="sl_promote_set").set_value(target or "+ a new set…")
    m.run()
    if target is None:
        m.at.text_input(key="sl_promote_new_name").input(m.new_set_name())
    radio = m.at.radio(key="sl_promote_what")
    radio.set_value(next((o for o in radio.options if what in o), radio.options[0]))
    m.run()
    m.at.button(key="sl_promote_go").click()


def sl_save(m, name: str) -> None:
    m.at.text_input(key="sl_save_name").input(name)
    submit(m.at, "sl_save_form").click()


def sl_open_saved(m, name: str) -> None:
    m.at.button(key=f"sl_open_{name}").click()


def sl_delete_saved(m, name: str) -> None:
    """Ask to delete (the page then asks to confirm)."""
    m.at.button(key=f"sl_delete_{name}").click()


def sl_confirm_delete(m, yes: bool) -> None:
    m.at.button(key="sl_delete_yes" if yes else "sl_delete_no").click()


def add_to_report(m, key: str, report: str | None) -> None:
    """The "Add to report" popover of a view: into ``report``, or a new one the machine names."""
    m.at.selectbox(key=f"{key}_report").set_value(report or "New report…")
    m.run()
    if report is None:
        m.at.text_input(key=f"{key}_new").input(m.new_report_name())
        m.run()
    m.at.button(key=f"{key}_add").click()


# Monitor
def mo_choose(m, data) -> None:
    """Version, stage, metric and periods, each as offered."""
    for key in ("mo_version", "mo_stage", "mo_metric"):
        box = find(m.at, "selectbox", key)
        if box is not None and data.draw(st.booleans(), label=f"change {key}"):
            pick(box, data, key)
    periods = find(m.at, "button_group", "mo_by")
    if periods is not None:
        periods.set_value(data.draw(st.sampled_from(["day", "week", "month"]), label="periods"))


def mo_reference(m, start: date, end: date) -> None:
    """A reference window typed as dates and saved."""
    m.at.radio(key="mo_ref_how").set_value("dates")
    m.at.text_input(key="mo_ref_from").set_value(start.isoformat())
    m.at.text_input(key="mo_ref_to").set_value(end.isoformat())
    submit(m.at, "mo_reference").click()


def mo_slice(m, text: str) -> None:
    m.at.text_input(key="mo_text").set_value(text)


# Overview
def ov_scope(m, version: str | None, stages: list[str] | None, window: tuple | None) -> None:
    """Version, stages, and a window typed in From/To (texts) and applied with the form's button."""
    if version is not None:
        m.at.selectbox(key="ov_version").set_value(version)
    if stages is not None:
        m.at.multiselect(key="ov_stages").set_value(stages)
    if window is not None:
        m.at.text_input(key="ov_from").input(str(window[0]))
        m.at.text_input(key="ov_to").input(str(window[-1]))
        submit(m.at, "ov_from_form").click()


def ov_window(m, first: date, last: date, prefix: str = "ov") -> tuple[date, date]:
    """The window the From/To fields say, read as a person would: a day written YYYY-MM-DD
    (anything else: the first or last logged day), kept inside the logged days, in order.
    ``prefix``: the page's (the Slices page has a window too; a link may set it)."""

    def read(key, fallback):
        try:
            return min(max(date.fromisoformat(m.at.text_input(key=key).value.strip()), first), last)
        except ValueError:
            return fallback

    start, end = read(f"{prefix}_from", first), read(f"{prefix}_to", last)
    return (start, end) if start <= end else (end, start)


# Discover
def dc_choose(m, data) -> None:
    for key in ("dc_version", "dc_error"):
        box = m.at.selectbox(key=key)
        pick(box, data, key, leave_out="a cost expression…")


def dc_choose_ranking(m, data) -> None:
    ranking = m.at.button_group(key="dc_ranking")
    ranking.set_value(data.draw(st.sampled_from(["expected", "version", "error"]), label="ranking"))


def dc_select_slice(m, data) -> bool:
    tables = keyed(m.at, "dataframe", "dc_table")  # one table per ranking and error measure
    if not tables or not len(tables[0].value):
        return False
    row = data.draw(st.integers(0, len(tables[0].value) - 1), label="found slice")
    m.at.session_state[tables[0].key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return True


# Validation sets
def vs_open(m, name: str) -> None:
    m.at.selectbox(key="vs_open").set_value(name)


def vs_commit(m, message: str) -> None:
    m.at.text_input(key="vs_message").input(message)
    submit(m.at, "vs_commit").click()


def vs_delete(m, yes: bool) -> None:
    """Ask to delete the open set, then confirm or keep it."""
    m.at.button(key="vs_delete").click()
    m.run()
    m.at.button(key="vs_delete_yes" if yes else "vs_delete_no").click()


def vs_remove(m, data) -> bool:
    tables = keyed(m.at, "dataframe", "vs_draft_")
    if not tables or not len(tables[0].value):
        return False
    rows = data.draw(st.lists(st.integers(0, len(tables[0].value) - 1), min_size=1, max_size=3, unique=True))
    m.at.session_state[tables[0].key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    m.run()
    m.at.button(key="vs_remove").click()
    return True


# Compare
def cmp_choose(m, data) -> None:
    for key in ("cmp_base", "cmp_cand", "cmp_base_stage", "cmp_cand_stage"):
        pick(m.at.selectbox(key=key), data, key)
    show_view(
        m, "cmp", data.draw(st.sampled_from(["overall", "slices", "time", "sets", "settings"]), label="compare view")
    )


# Reports
def rep_move(m, data) -> tuple[str, int] | None:
    """Up, Down, or Remove then its confirmation (``rm``) or Keep it (``keep``)."""
    buttons = [
        b
        for b in keyed(m.at, "button", "rep_up_")
        + keyed(m.at, "button", "rep_down_")
        + keyed(m.at, "button", "rep_rm_")
        if not b.disabled and not b.key.startswith(("rep_rm_yes_", "rep_rm_no_"))
    ]
    if not buttons:
        return None
    key = data.draw(st.sampled_from([b.key for b in buttons]), label="block button")
    m.at.button(key=key).click()
    kind, block = key.split("_")[1], int(key.rsplit("_", 1)[1])
    if kind == "rm":
        m.run()
        if not data.draw(st.booleans(), label="confirm removal"):
            m.at.button(key=f"rep_rm_no_{block}").click()
            return "keep", block
        m.at.button(key=f"rep_rm_yes_{block}").click()
    return kind, block


def rep_note(m, text: str) -> None:
    m.at.text_area(key="rep_note_text").input(text)
    submit(m.at, "rep_note_form").click()


# --- the machine --------------------------------------------------------------------------------


class AppMachine(RuleBasedStateMachine):
    """One person in one browser tab, on a private copy of the three-project database."""

    base: Path  # set by the test: the database every run starts from
    logs: dict[str, pd.DataFrame]
    runs = 0

    def __init__(self):
        super().__init__()
        AppMachine.runs += 1
        self.path = self.base.parent / f"run{AppMachine.runs}.duckdb"
        shutil.copyfile(self.base, self.path)
        self.patch = pytest.MonkeyPatch()
        self.at = app_on(self.patch, self.path)
        self.page = "pages/overview.py"
        self.project = "churn-watch"
        self.conditions: list[tuple] = []  # the slice this person built, as (column, op, arg)
        self.bad_slice: str | None = None  # the message a mistyped slice must show, while it stays
        self.expected_errors: list[str] = []  # messages this one step must show
        self.saved: dict[str, list[tuple]] = {}  # saved slices of the current project
        self.sets: dict[str, set | None] = {}  # the drafts' members (None: not tracked exactly)
        self.names = 0
        self.slice_project = self.project  # the project the slice text was last set on
        self.runs = self.checked_runs = 0  # script runs so far, and when the invariant last looked

    def teardown(self):
        self.patch.undo()

    # helpers ------------------------------------------------------------------------------------
    def run(self) -> None:
        self.at.run()
        self.runs += 1
        assert not self.at.exception, [e.value for e in self.at.exception]

    def step(self) -> None:
        """Run the script after an action, with this step's expected messages checked by the invariant."""
        self.at.run()
        self.runs += 1

    def new_set_name(self) -> str:
        self.names += 1
        return f"set {self.names}"

    def new_report_name(self) -> str:
        self.names += 1
        return f"review {self.names}"

    def engine(self, func, **kwargs):
        """A direct engine call on the database file (what the page's number must equal)."""
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            return func(con, get_project(con, self.project), **kwargs)
        finally:
            con.close()

    @property
    def log(self) -> pd.DataFrame:
        return self.logs[self.project]

    def forget_project_state(self) -> None:
        self.conditions, self.bad_slice, self.saved, self.sets = [], None, {}, {}

    def visit(self, page: str) -> None:
        """Go to ``page`` first if the person is elsewhere (checked like any other step)."""
        if self.page != page:
            self.arrive(page)
            self.no_crash_and_true_numbers()

    def show(self, prefix: str, view: str, key: str = "view") -> None:
        """Switch the page to ``view`` if it shows another one (checked like any other step)."""
        if view_of(self, prefix, key) != view:
            show_view(self, prefix, view, key)
            self.step()
            self.no_crash_and_true_numbers()

    @initialize()
    def open_app(self):
        self.step()

    # everywhere ------------------------------------------------------------------------------------
    @rule(page=st.sampled_from(PAGES))
    def switch_page(self, page):
        self.arrive(page)

    def arrive(self, page: str) -> None:
        """Open ``page``. Coming back to Slices, the slice is the one in the link: a mistyped one
        (never put in the link) is gone, and one of another project is read for this one."""
        away = self.page != page
        go_to(self, page)
        self.step()
        if page == "pages/slices.py" and away and self.bad_slice:
            self.bad_slice, self.conditions = None, []
        if page == "pages/slices.py" and self.slice_project != self.project:
            self.resync_slice()

    @rule(name=st.sampled_from(["churn-watch", "ticket-router", "eta-model"]))
    def change_project(self, name):
        self.expected_errors = []
        pick_project(self, name)
        if name != self.project:
            self.project = name
            self.forget_project_state()
            # the slice text of the old project is not carried over when it does not fit
            self.bad_slice = None
            if self.page != "pages/slices.py":
                # The Slices page keeps its text while the person is elsewhere, and shows it
                # again on the next visit when it fits the project then: seen on arrival.
                self.slice_project = None
        self.step()
        if self.page == "pages/slices.py" and self.slice_project != self.project:
            self.resync_slice()

    def resync_slice(self) -> None:
        """After a project change the Slices page keeps the URL's slice text if it parses for
        the new project; the model follows what the page kept (or the error it shows)."""
        box = find(self.at, "text_input", "sl_text")
        if box is not None and box.value.strip():
            errors = [e.value for e in self.at.error]
            if errors:
                self.bad_slice = literal(errors[0])[:30]
            self.conditions = [] if errors else None  # None: not tracked until the slice is set again
        self.slice_project = self.project

    # Overview ---------------------------------------------------------------------------------------
    @rule(data=st.data())
    def overview_scope(self, data):
        self.visit("pages/overview.py")
        versions = list(self.at.selectbox(key="ov_version").options)
        stages = list(self.at.multiselect(key="ov_stages").options)
        first = self.log["timestamp"].min().date()
        last = self.log["timestamp"].max().date()
        a = data.draw(st.integers(0, (last - first).days), label="window start")
        b = data.draw(st.integers(a, (last - first).days), label="window end")
        # A window in order, one day, the wrong way round (swapped), or a day mistyped (the
        # page falls back to the first logged day and says so in a caption, not an error).
        ov_scope(
            self,
            data.draw(st.sampled_from(versions), label="version"),
            data.draw(st.lists(st.sampled_from(stages), unique=True), label="stages"),
            data.draw(
                st.sampled_from(
                    [
                        None,
                        (first + timedelta(a), first + timedelta(b)),
                        (first + timedelta(a),),
                        (first + timedelta(b), first + timedelta(a)),
                        ("2026-13-01", first + timedelta(b)),
                    ]
                ),
                label="window",
            ),
        )
        self.step()

    @rule(view=st.sampled_from(["versions", "time"]))
    def overview_view(self, view):
        self.visit("pages/overview.py")
        show_view(self, "ov", view)
        self.step()

    @rule(data=st.data())
    def overview_metric(self, data):
        self.visit("pages/overview.py")
        self.show("ov", "time")
        box = find(self.at, "selectbox", "ov_metric")
        if box is None:  # no rows in this scope: no chart
            return
        pick(box, data, "metric")
        self.step()

    @rule(data=st.data())
    def add_view_to_report(self, data):
        if self.page not in ("pages/overview.py", "pages/slices.py"):
            self.visit(data.draw(st.sampled_from(["pages/overview.py", "pages/slices.py"]), label="page"))
        key = "ov_report" if self.page == "pages/overview.py" else "sl_report"
        box = find(self.at, "selectbox", f"{key}_report")
        reports = [o for o in box.options if o != "New report…"]
        add_to_report(self, key, data.draw(st.sampled_from([None, *reports]), label="report"))
        self.step()
        assert any("Added" in s.value for s in self.at.success), texts(self.at)

    # Slices: scope and the builder ----------------------------------------------------------------
    @rule(data=st.data())
    def slices_scope(self, data):
        self.visit("pages/slices.py")
        versions = list(self.at.selectbox(key="sl_version").options)
        stages = list(self.at.multiselect(key="sl_stages").options)
        sl_scope(
            self,
            data.draw(st.sampled_from(versions), label="version"),
            data.draw(st.one_of(st.none(), st.lists(st.sampled_from(stages), unique=True)), label="stages"),
        )
        self.step()

    @rule(data=st.data())
    def builder_pick(self, data):
        self.visit("pages/slices.py")
        column = data.draw(st.sampled_from(VALUE_COLUMNS[self.project] + NUMBER_COLUMNS[self.project]), label="col")
        sl_builder_column(self, column)
        self.run()
        if column in VALUE_COLUMNS[self.project]:
            # The values offered are the column's values in the scope, the missing one by its name.
            offered = {raw_option(o) for o in self.at.multiselect(key=f"sl_values_{column}").options}
            values = as_text(self.scope_rows()[column])
            assert offered == set(values.dropna()) | ({MISSING} if values.isna().any() else set()), offered
            sl_builder_values(self, data)
        else:
            bad = data.draw(st.sampled_from(["", "", "", "abc"]), label="bad bound")
            sl_builder_range(
                self,
                data.draw(st.sampled_from(["", *BOUNDS]), label="from") or bad,
                data.draw(st.sampled_from(["", *BOUNDS]), label="below"),
            )
        self.step()

    @rule()
    def builder_add(self):
        self.visit("pages/slices.py")
        button = find(self.at, "button", "sl_add")
        pending = sl_pending(self)
        if button is None or button.disabled or pending is None:
            return
        sl_add(self)
        if pending[0] == "error":
            self.expected_errors = [pending[1]]
        elif self.conditions is not None:
            self.conditions = [*self.conditions, pending]
            self.bad_slice = None
        self.step()

    @rule(data=st.data())
    def remove_condition(self, data):
        self.visit("pages/slices.py")
        chips = keyed(self.at, "button", "sl_remove_")
        if not chips:
            return
        i = data.draw(st.integers(0, len(chips) - 1), label="chip")
        sl_remove(self, i)
        if self.conditions is not None:
            self.conditions = self.conditions[:i] + self.conditions[i + 1 :]
        self.step()

    @rule(data=st.data())
    def type_slice(self, data):
        """Retype the slice in the text box: a valid one from this machine's conditions, or a mistake."""
        self.visit("pages/slices.py")
        if data.draw(st.integers(0, 4), label="mistype?") == 0:
            text, message = data.draw(st.sampled_from(BAD_SLICES), label="bad slice")
            text = text.format(num=NUMBER_COLUMNS[self.project][0], val=VALUE_COLUMNS[self.project][0])
            sl_type(self, text)
            self.conditions, self.bad_slice = [], message
        else:
            conds = []
            for _ in range(data.draw(st.integers(0, 3), label="conditions")):
                if data.draw(st.booleans(), label="by value"):
                    column = data.draw(st.sampled_from(VALUE_COLUMNS[self.project]))
                    values = sorted(set(as_text(self.log[column]).dropna()))
                    picked = tuple(data.draw(st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)))
                    op = data.draw(st.sampled_from(["in", "in", "not_in", "is_null"]))
                    conds.append((column, op, None if op == "is_null" else picked))
                else:
                    column = data.draw(st.sampled_from([*NUMBER_COLUMNS[self.project], "timestamp"]))
                    bounds = ["2026-10-04", "2026-10-09", "2026-10-15"] if column == "timestamp" else BOUNDS
                    low = data.draw(st.sampled_from([None, *bounds]))
                    high = data.draw(st.sampled_from([*bounds] if low is None else [None, *bounds]))
                    conds.append((column, "between", (low, high)))
            sl_type(self, " AND ".join(text_of(c) for c in conds))
            self.conditions, self.bad_slice = conds, None
        self.step()

    # Slices: views ------------------------------------------------------------------------------------
    @rule(data=st.data())
    def slices_breakdown(self, data):
        self.visit("pages/slices.py")
        self.show("sl", "Breakdown")
        by = self.at.selectbox(key="sl_by")
        by.set_value(data.draw(st.sampled_from(list(by.options)), label="break down by"))
        self.step()
        self.show("sl", "Leaderboard")
        sort = self.at.radio(key="sl_sort")
        # The radio shows words for each ranking; it is set by the ranking itself.
        sort.set_value(data.draw(st.sampled_from(SORTS), label="rank by"))
        self.step()

    @rule(data=st.data())
    def slices_drill(self, data):
        self.visit("pages/slices.py")
        self.show("sl", "Errors")
        if sl_drill(self, data):
            self.step()

    @rule(data=st.data())
    def slices_examples(self, data):
        self.visit("pages/slices.py")
        self.show("sl", "Examples")
        if find(self.at, "button", "sl_drill_clear") is not None and data.draw(st.booleans(), label="clear drill"):
            self.at.button(key="sl_drill_clear").click()
            self.step()
        sl_examples_page(self, data)
        self.step()
        sl_select_examples(self, data)
        self.step()

    @rule(data=st.data())
    def slices_promote(self, data):
        self.visit("pages/slices.py")
        self.show("sl", "Promote")
        if find(self.at, "selectbox", "sl_promote_set") is None or self.conditions is None:
            return
        existing = [o for o in self.at.selectbox(key="sl_promote_set").options if o != "+ a new set…"]
        target = data.draw(st.sampled_from([None, *existing]), label="set")
        what = data.draw(st.sampled_from(["the whole slice", "only its errors", "rows selected"]), label="what")
        before = self.sets.get(target) if target else set()
        sl_promote(self, target, what)
        self.step()
        name = target or f"set {self.names}"
        done = [s.value for s in self.at.toast if "to the draft of" in s.value]
        assert done, texts(self.at)
        if (
            self.at.radio(key="sl_promote_what").value == "the whole slice"
            and before is not None
            and not self.bad_slice
        ):
            rows = self.slice_rows()
            ids = set(rows["example_id"])
            added, already = (
                count(x) for x in re.findall(r"([\d,]+) example\(s\) to the draft.*?\(([\d,]+) were", done[0])[0]
            )
            assert (added, already) == (len(ids - before), len(ids & before)), done[0]
            self.sets[name] = before | ids
        else:
            self.sets[name] = None

    @rule(name=st.sampled_from(NAMES))
    def slices_save(self, name):
        self.visit("pages/slices.py")
        self.show("sl", "Saved")
        button = submit(self.at, "sl_save_form")
        if button is None or button.disabled or self.conditions is None:
            return
        sl_save(self, name)
        self.step()
        self.saved[name] = list(self.conditions)

    @rule(data=st.data())
    def slices_open_or_delete(self, data):
        self.visit("pages/slices.py")
        self.show("sl", "Saved")
        if not self.saved:
            return
        name = data.draw(st.sampled_from(sorted(self.saved)), label="saved slice")
        if data.draw(st.booleans(), label="delete") or self.saved[name] is None:
            sl_delete_saved(self, name)
            self.step()
            self.no_crash_and_true_numbers()
            assert any(f"{name}**? Its history stays." in literal(w.value) for w in self.at.warning), texts(self.at)
            yes = data.draw(st.booleans(), label="confirm delete")
            sl_confirm_delete(self, yes)
            if yes:
                del self.saved[name]
        else:
            sl_open_saved(self, name)
            self.conditions, self.bad_slice = list(self.saved[name]), None
        self.step()

    # Discover ---------------------------------------------------------------------------------------
    @rule(data=st.data())
    def discover_choose(self, data):
        self.visit("pages/discover.py")
        dc_choose(self, data)
        dc_choose_ranking(self, data)
        self.step()
        view = find(self.at, "radio", "dc_view")
        if view is None:  # one version: no other version to rank against, and the page says so
            assert "no other version" in texts(self.at), texts(self.at)
            return
        self.no_crash_and_true_numbers()
        view.set_value(data.draw(st.sampled_from(list(view.options)), label="view"))
        self.step()

    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def discover_save_found(self, data, name):
        self.visit("pages/discover.py")
        if find(self.at, "radio", "dc_view") is None:
            return
        self.show("dc", "Slices")
        if not dc_select_slice(self, data):
            return
        self.step()
        if submit(self.at, "dc_save") is not None:
            self.at.text_input(key="dc_save_name").input(name)
            submit(self.at, "dc_save").click()
            self.step()
            self.saved[name] = None  # saved from a found slice: opened, it is not a slice this machine built

    # Validation sets -------------------------------------------------------------------------------
    def valsets_part(self, part: str | None) -> None:
        """The Sets view (a set's draft, history or export below it), or the matrix (``None``)."""
        self.visit("pages/validation-sets.py")
        self.show("vs", "Sets" if part else "Sets × model versions")
        if part and find(self.at, "radio", "vs_part") is not None:
            self.show("vs", part, key="part")

    @rule(data=st.data())
    def valsets_open(self, data):
        self.valsets_part(
            data.draw(st.sampled_from(["Draft", "History and diff", "Export and re-score"]), label="part")
        )
        box = find(self.at, "selectbox", "vs_open")
        if box is None:
            return
        vs_open(self, data.draw(st.sampled_from(list(box.options)), label="set"))
        self.step()

    @rule(message=st.sampled_from(["first cut", "more", ""]))
    def valsets_commit(self, message):
        self.valsets_part("Draft")
        if submit(self.at, "vs_commit") is None:
            return
        from analysis.valsets import history, members

        name = self.at.selectbox(key="vs_open").value
        draft = set(self.engine(members, name=name, version="draft")["example_id"])
        versions = self.engine(history, name=name)["version"]
        latest = (
            set(self.engine(members, name=name, version=int(versions.max()))["example_id"]) if len(versions) else None
        )
        vs_commit(self, message)
        if not message:
            self.expected_errors = ["Say in a message what this version changes"]
        elif not draft:
            self.expected_errors = ["is empty: promote examples into it first"]
        elif draft == latest:
            self.expected_errors = ["nothing to commit"]
        else:
            self.expected_errors = []
        self.step()
        if not self.expected_errors and not self.at.error:
            done = [x.value for x in self.at.success if x.value.startswith("Committed version")]
            assert done and f"({len(draft):,} members" in done[0], (done, len(draft))

    @rule(data=st.data())
    def valsets_remove(self, data):
        self.valsets_part("Draft")
        name = find(self.at, "selectbox", "vs_open")
        if name is not None and vs_remove(self, data):
            self.sets[name.value] = None
            self.step()

    @rule(data=st.data())
    def valsets_diff_and_export(self, data):
        self.valsets_part(data.draw(st.sampled_from([None, "History and diff", "Export and re-score"]), label="part"))
        for key in ("vs_diff_old", "vs_diff_new", "vs_matrix_metric", "vs_export_version"):
            box = find(self.at, "selectbox", key)
            if box is not None:
                pick(box, data, key)
        self.step()
        if find(self.at, "button", "vs_export_prepare") is not None:
            self.at.button(key="vs_export_prepare").click()
            self.step()

    @rule(yes=st.booleans())
    def valsets_delete(self, yes):
        """Delete the open set (only a set never committed offers it), after a confirmation."""
        self.valsets_part("Draft")
        box = find(self.at, "selectbox", "vs_open")
        if box is None or find(self.at, "button", "vs_delete") is None:
            return
        name = box.value
        vs_delete(self, yes)
        self.step()
        left = find(self.at, "selectbox", "vs_open")
        assert (name in (left.options if left is not None else [])) != yes, (name, yes)
        from analysis.valsets import list_sets

        assert (name in set(self.engine(list_sets)["name"])) != yes, (name, yes)
        if yes:
            self.sets.pop(name, None)

    # Compare -------------------------------------------------------------------------------------------
    @rule(data=st.data())
    def compare_choose(self, data):
        self.visit("pages/compare.py")
        if find(self.at, "selectbox", "cmp_base") is None:
            return
        cmp_choose(self, data)
        self.step()

    # Monitor ---------------------------------------------------------------------------------------------
    @rule(data=st.data())
    def monitor_reference(self, data):
        """A reference window chosen as dates: any days of the log, even a window with no label."""
        self.visit("pages/monitor.py")
        if find(self.at, "radio", "mo_ref_how") is None:
            return
        first, last = self.log["timestamp"].min().date(), self.log["timestamp"].max().date()
        a = data.draw(st.integers(0, (last - first).days), label="reference start")
        b = data.draw(st.integers(a, (last - first).days), label="reference end")
        mo_reference(self, first + timedelta(days=a), first + timedelta(days=b))
        self.step()

    @rule(data=st.data())
    def monitor_choose(self, data):
        self.visit("pages/monitor.py")
        if find(self.at, "selectbox", "mo_version") is None:
            return
        mo_choose(self, data)
        self.step()

    @rule(data=st.data())
    def monitor_slice(self, data):
        """A slice on one feature's value (or a half-typed one, which the page names)."""
        self.visit("pages/monitor.py")
        if find(self.at, "text_input", "mo_text") is None:
            return
        if data.draw(st.booleans(), label="mistype"):
            self.expected_errors = ["slice"]
            mo_slice(self, "(")
        else:
            columns = self.engine(lambda con, p: [c.name for c in p.features if c.kind == "categorical"])
            if not columns:
                return
            column = data.draw(st.sampled_from(columns), label="monitor column")
            values = sorted(self.log[column].dropna().astype(str).unique())
            if not values:
                return
            value = data.draw(st.sampled_from(values), label="monitor value")
            mo_slice(self, text_of((column, "in", [value])))
        self.step()

    # Reports ---------------------------------------------------------------------------------------------
    @rule(data=st.data())
    def reports_reorder_or_remove(self, data):
        self.visit("pages/reports.py")
        box = find(self.at, "selectbox", "rep_name")
        if box is None:
            return
        name = box.value
        before = [b.block_id for b in self.engine(get_report_blocks, name=name)]
        moved = rep_move(self, data)
        if moved is None:
            return
        self.step()
        after = [b.block_id for b in self.engine(get_report_blocks, name=name)]
        kind, block = moved
        i = before.index(block)
        expected = list(before)
        if kind == "keep":  # asked to remove, then kept it
            pass
        elif kind == "rm":
            expected.remove(block)
        else:
            j = i - 1 if kind == "up" else i + 1
            expected[i], expected[j] = expected[j], expected[i]
        assert after == expected, (kind, before, after)

    @rule(text=st.sampled_from(["Ship it.", "**Hold** until the fix", "<b>not html</b>"]))
    def reports_note(self, text):
        self.visit("pages/reports.py")
        if submit(self.at, "rep_note_form") is None:
            return
        rep_note(self, text)
        self.step()

    @rule(data=st.data())
    def reports_pick_rerun_delete(self, data):
        self.visit("pages/reports.py")
        box = find(self.at, "selectbox", "rep_name")
        if box is None:
            return
        pick(box, data, "report")
        self.step()
        action = data.draw(st.sampled_from(["rerun", "delete", "none"]), label="action")
        if action != "none":
            self.at.button(key=f"rep_{action}").click()
            self.step()

    # the checks after every step -------------------------------------------------------------------------
    def scope_rows(self) -> pd.DataFrame:
        version = self.at.selectbox(key="sl_version").value
        first, last = self.log["timestamp"].min().date(), self.log["timestamp"].max().date()
        start, end = ov_window(self, first, last, "sl")
        return in_scope(
            self.log,
            None if version == "All versions" else version,
            self.at.multiselect(key="sl_stages").value,
            start,
            end,
        )

    def slice_rows(self) -> pd.DataFrame:
        rows = self.scope_rows()
        for cond in self.conditions:
            rows = rows[mask(rows, cond)]
        return rows

    @invariant()
    def no_crash_and_true_numbers(self):
        if self.runs == self.checked_runs:
            # A rule that found nothing to do ran no script: the page still shows what the
            # last step was checked for (an error it was expected to show among them).
            return
        self.checked_runs = self.runs
        at = self.at
        assert not at.exception, [e.value for e in at.exception]
        expected = list(self.expected_errors)
        if self.bad_slice and self.page == "pages/slices.py":
            expected.append(self.bad_slice)
        shown = [literal(e.value) for e in at.error]
        unexpected = [e for e in shown if not any(x in e for x in expected)]
        assert not unexpected, unexpected
        for message in expected:
            assert any(message in e for e in shown), (message, shown)
        self.expected_errors = []
        check = {
            "pages/overview.py": self.check_overview,
            "pages/slices.py": self.check_slices,
            "pages/validation-sets.py": self.check_valsets,
            "pages/reports.py": self.check_reports,
            "pages/monitor.py": self.check_monitor,
        }.get(self.page)
        if check:
            check()

    def check_monitor(self):
        """Every row's latest period: its labeled share from the log itself, its estimate the
        engine's for the version, stage, periods and metric on screen."""
        from analysis.estimation.run import estimate
        from analysis.numbers import format_percent, format_value

        cards = [m for m in self.at.metric if m.label.endswith("(estimated)")]
        headings = [literal(h.value) for h in self.at.subheader]
        if not cards or not headings or headings[0] != "Every row":  # a typed slice comes first
            return
        version, stage = self.at.selectbox(key="mo_version").value, self.at.selectbox(key="mo_stage").value
        metric_name = self.at.selectbox(key="mo_metric").value
        by = find(self.at, "button_group", "mo_by").value
        timeline = self.engine(estimate, version=version, stage=stage, by=by)
        last = timeline.periods[-1]
        assert cards[0].value == format_value(metric_name, last.metrics[metric_name].estimated)
        rows = self.log[(self.log.model_version == version) & (self.log.stage == stage)]
        inside = rows[
            (rows.timestamp >= pd.Timestamp(last.period.start)) & (rows.timestamp < pd.Timestamp(last.period.end))
        ]
        share = inside["label"].notna().mean()
        assert metric(self.at, "Labeled so far") == format_percent(share, 0)

    def check_overview(self):
        table = table_with(self.at, "model_version", "stage", "n_rows", "n_labeled")
        version = self.at.selectbox(key="ov_version").value
        start, end = ov_window(self, self.log["timestamp"].min().date(), self.log["timestamp"].max().date())
        rows = in_scope(
            self.log,
            None if version == "All versions" else version,
            self.at.multiselect(key="ov_stages").value,
            start,
            end,
        )
        truth = (
            rows.groupby(["model_version", "stage"])
            .agg(n_rows=("prediction_id", "size"), n_labeled=("label", "count"))
            .reset_index()
        )
        # Both views say how many rows the metrics rest on.
        said = literal("\n".join(m.value for m in self.at.markdown))
        if not rows.empty:
            assert f"labeled rows only**: {int(rows['label'].notna().sum()):,} of {len(rows):,} predictions" in said, (
                said[:300],
                len(rows),
            )
        if view_of(self, "ov") != "versions":
            return
        if table is None:
            assert truth.empty, "the Overview shows no table for rows that exist"
            return
        shown = table.value.sort_values(["model_version", "stage"]).reset_index(drop=True)
        assert (
            shown[["model_version", "stage", "n_rows", "n_labeled"]].astype(str).values.tolist()
            == truth.astype(str).values.tolist()
        )

    def check_slices(self):
        if self.conditions is None:
            return
        chips = keyed(self.at, "button", "sl_remove_")
        assert len(chips) == len(self.conditions), ([c.label for c in chips], self.conditions)
        rows = self.slice_rows()
        shown = metric(self.at, "Rows in the slice")
        if shown is not None:
            assert count(shown) == len(rows), (shown, len(rows), self.conditions)
            assert count(metric(self.at, "Labeled")) == int(rows["label"].notna().sum())
        page = find(self.at, "number_input", "sl_ex_page")
        drilled = find(self.at, "button", "sl_drill_clear") is not None
        if (
            page is not None
            and not drilled
            and self.at.selectbox(key="sl_ex_bucket_None").value == "all"
            and not self.at.toggle(key="sl_ex_near").value
        ):
            assert f"; {len(rows):,} rows)" in page.label, page.label
        if view_of(self, "sl") != "Saved":  # the saved slices are listed in the Saved view
            return
        listed = literal("\n".join(m.value for m in self.at.markdown))
        for name in self.saved:
            assert f"{name}** · r" in listed, (name, listed[-500:])

    def check_valsets(self):
        box = find(self.at, "selectbox", "vs_open")
        if box is None:
            return
        from analysis.valsets import members

        draft = self.engine(members, name=box.value, version="draft")
        assert f"draft: **{len(draft):,}** members" in "\n".join(m.value for m in self.at.markdown)
        known = self.sets.get(box.value)
        if known is not None:
            assert set(draft["example_id"]) == known

    def check_reports(self):
        box = find(self.at, "selectbox", "rep_name")
        if box is None:
            return
        titles = [b.title for b in self.engine(get_report_blocks, name=box.value)]
        shown = [literal(s.value) for s in self.at.subheader]
        assert [t for t in shown if t in titles] == titles, (shown, titles)


def get_report_blocks(con, project, name):
    from analysis.reports import get_report

    return get_report(con, project, name).blocks


def test_a_user_clicking_at_random_never_crashes_and_sees_true_numbers(base_db):
    AppMachine.base = base_db
    AppMachine.logs = read_logs(base_db)
    run_state_machine_as_test(
        AppMachine,
        settings=settings(
            max_examples=5,
            stateful_step_count=35,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        ),
    )

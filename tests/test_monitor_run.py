"""``monitor run`` and ``alerts`` on a real DuckDB file, on streams with known truth: a drop
planted in a slice on a known day, with labels arriving at once or 14 days late.

Figures an alert reports are checked against pandas on the same rows; the run is replayed
day by day (each day as known that evening) and back-filled in one go, with the same
alerts; a second run on the same data writes nothing; the life cycle (one alert per episode,
acknowledged, snoozed, resolved by a person or on recovery) and its history are kept."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import db_digest

from analysis import Mapping, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.estimation import ReferenceChoice, set_reference_choice
from analysis.monitors import notify
from analysis.monitors.alerts import Alert, alert_history, list_alerts, raise_alert
from analysis.monitors.budget import Budget
from analysis.monitors.definitions import Monitor, add_monitor
from analysis.monitors.run import run_monitors
from analysis.slices import parse_slice
from analysis.store.sql import in_transaction

FIRST_DAY = date(2026, 3, 2)
DAYS = 40
REFERENCE = (0, 13)  # days of the reference window
DROP_DAY = 25  # the first day of the planted change
PER_DAY = 2000
EAST = 0.08  # the slice's share of the traffic: 160 rows a day
CONTRACT = {"id", "monitor", "slice", "metric", "period", "value", "reference", "evidence", "state", "impact"}
MAPPING = Mapping(
    task="binary",
    id="id",
    timestamp="ts",
    version="v",
    score="score",
    label="label",
    label_timestamp="label_ts",
    positive_label="1",
    features=["region"],
)


def day(i: int) -> date:
    return FIRST_DAY + timedelta(days=i)


def stream(seed: int, lag_days: int = 0, change: str = "labels", until: int = DAYS) -> pd.DataFrame:
    """Calibrated scores everywhere; from ``DROP_DAY`` to ``until`` the east's rows change:
    ``labels``: a sixth of their labels turn (the model is ten points less accurate, its
    scores alike: only labels can tell); ``scores``: their cases become borderline (scores
    near one half, still calibrated: an estimate from the scores sees the drop)."""
    rng = np.random.default_rng(seed)
    n = DAYS * PER_DAY
    d = np.repeat(np.arange(DAYS), PER_DAY)
    region = np.where(rng.random(n) < EAST, "east", rng.choice(["north", "south", "west"], n))
    changed = (region == "east") & (d >= DROP_DAY) & (d < until)
    z = np.where(changed & (change == "scores"), rng.normal(0, 0.4, n), rng.normal(-0.8, 2.0, n))
    p = 1 / (1 + np.exp(-z))
    label = (rng.random(n) < p).astype(int)
    turned = changed & (change == "labels") & (rng.random(n) < 1 / 6)
    label = np.where(turned, 1 - label, label)
    ts = pd.Timestamp(FIRST_DAY) + pd.to_timedelta(d * 86400 + rng.integers(0, 80000, n), unit="s")
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "ts": ts,
            "v": "m1",
            "score": np.round(p, 4),
            "label": label,
            "label_ts": ts + pd.Timedelta(days=lag_days, hours=1),
            "region": region,
        }
    )


def build(path, frame: pd.DataFrame, monitors) -> Store:
    store = Store(path)
    with store.write() as con:
        ingest_predictions(con, frame, project="s", mapping=MAPPING)
        project = get_project(con, "s")
        set_reference_choice(con, project, ReferenceChoice.of(day(REFERENCE[0]), day(REFERENCE[1])))
        for m in monitors:
            add_monitor(con, project, m)
    return store


EAST_ACCURACY = Monitor("east accuracy", "accuracy", "realized", slice_=parse_slice("region = east"))
ALL_ACCURACY = Monitor("accuracy", "accuracy", "realized")
VOLUME = Monitor("volume", "rows", "volume")
COVERAGE = Monitor("labels", "labeled_share", "coverage")
EAST_ESTIMATE = Monitor("east estimate", "accuracy", "combined", slice_=parse_slice("region = east"))


@pytest.fixture(scope="module")
def instant(tmp_path_factory):
    frame = stream(11)
    path = tmp_path_factory.mktemp("monitor_run") / "instant.duckdb"
    build(path, frame, [EAST_ACCURACY, ALL_ACCURACY, VOLUME, COVERAGE])
    return path, frame


def copy_of(path, tmp_path):
    target = tmp_path / "copy.duckdb"
    target.write_bytes(path.read_bytes())
    return target


def run_cli(path, capsys, *args) -> tuple[int, dict | str]:
    code = main(["--db", str(path), *args, "--project", "s"])
    out = capsys.readouterr().out
    try:
        return code, json.loads(out)
    except json.JSONDecodeError:
        return code, out


def accuracy_by_arrival(frame: pd.DataFrame, first: date, last: date, east: bool) -> tuple[float, int]:
    """pandas: the accuracy of predictions made after the reference window whose label
    arrived from ``first`` to ``last``."""
    rows = frame[(frame.ts.dt.date > day(REFERENCE[1])) & (frame.label_ts.dt.date >= first)]
    rows = rows[rows.label_ts.dt.date <= last]
    if east:
        rows = rows[rows.region == "east"]
    return float(((rows.score >= 0.5).astype(int) == rows.label).mean()), len(rows)


def test_no_change_no_alert_then_the_drop_is_alerted_within_a_week(instant, tmp_path, capsys):
    path, frame = instant
    path = copy_of(path, tmp_path)
    code, before = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(DROP_DAY - 1)), "--format", "json")
    assert code == 0 and before["alerts"] == [] and before["monitors"] == 4
    assert before["evaluated"] == 4 * (DROP_DAY - 1 - REFERENCE[1]) - 0  # every day since the reference
    # Day by day from the change on, as a daily cron job would.
    raised = []
    for i in range(DROP_DAY, DAYS):
        code, out = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(i)), "--format", "json")
        assert code == (1 if out["alerts"] else 0)
        raised += out["alerts"]
    east = [a for a in raised if a["monitor"] == "east accuracy"]
    assert len(east) == 1, raised  # one alert for the episode, however long the drop lasts
    alert = east[0]
    assert set(alert) >= CONTRACT and alert["state"] == "new" and alert["slice"] == "region = east"
    assert day(DROP_DAY) <= date.fromisoformat(alert["period"]) <= day(DROP_DAY + 6)
    # The figures are pandas' on the same rows: the reference window's east labels, and the
    # labels that arrived from the change's start (as the evidence places it) to the alert.
    ref = frame[(frame.region == "east") & (frame.ts.dt.date <= day(REFERENCE[1]))]
    assert alert["reference"] == pytest.approx(((ref.score >= 0.5).astype(int) == ref.label).mean(), abs=1e-12)
    value, rows = accuracy_by_arrival(
        frame, date.fromisoformat(alert["since"]), date.fromisoformat(alert["period"]), True
    )
    assert alert["value"] == pytest.approx(value, abs=1e-12) and alert["impact"] == pytest.approx(
        (alert["reference"] - value) * rows
    )
    assert alert["value"] < alert["reference"] - 0.04 and alert["evidence"] >= before["alert_level"]
    assert "fell from" in alert["message"] and "region = east" in alert["message"]
    # The whole traffic dropped less than a point: no alert there, nor on volume or labels.
    assert {a["monitor"] for a in raised} == {"east accuracy"}


def test_a_back_fill_finds_what_the_daily_runs_found_and_a_second_run_writes_nothing(instant, tmp_path, capsys):
    path, _ = instant
    daily, once = copy_of(path, tmp_path), tmp_path / "once.duckdb"
    once.write_bytes(path.read_bytes())
    for i in range(REFERENCE[1] + 1, DAYS):
        run_cli(daily, capsys, "monitor", "run", "--as-of", str(day(i)), "--format", "json")
    code, out = run_cli(once, capsys, "monitor", "run", "--format", "json")  # default: the log's last day
    assert code == 1 and out["as_of"] == str(day(DAYS - 1))
    with Store(daily).read() as a, Store(once).read() as b:
        pa, pb = get_project(a, "s"), get_project(b, "s")
        keys = [(x.monitor, x.period, x.since, x.value, x.evidence, x.state) for x in list_alerts(a, pa)]
        assert keys == [(x.monitor, x.period, x.since, x.value, x.evidence, x.state) for x in list_alerts(b, pb)]
        observed = "SELECT monitor, period, x, n, rows FROM sb_monitor_observations ORDER BY ALL"
        assert a.execute(observed).fetchall() == b.execute(observed).fetchall()
    digest = db_digest(once)
    code, again = run_cli(once, capsys, "monitor", "run", "--format", "json")
    assert code == 0 and again["alerts"] == [] and again["evaluated"] == 0
    assert db_digest(once) == digest


def test_the_life_cycle_and_its_history(instant, tmp_path, capsys):
    path = copy_of(instant[0], tmp_path)
    run_cli(path, capsys, "monitor", "run", "--as-of", str(day(DROP_DAY + 8)), "--format", "json")
    code, listed = run_cli(path, capsys, "alerts", "list", "--format", "json")
    assert code == 0 and [a["state"] for a in listed] == ["new"]
    alert_id = listed[0]["id"]
    code, acked = run_cli(path, capsys, "alerts", "ack", "--id", str(alert_id), "--by", "ana", "--format", "json")
    assert code == 0 and acked["state"] == "acknowledged"
    until = str(day(DROP_DAY + 10))
    code, snoozed = run_cli(
        path, capsys, "alerts", "snooze", "--id", str(alert_id), "--until", until, "--by", "ana", "--format", "json"
    )
    assert code == 0 and (snoozed["state"], snoozed["snoozed_until"]) == ("snoozed", until)
    # The drop goes on past the snooze: the same alert comes back as new, no other is raised.
    code, out = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(DROP_DAY + 12)), "--format", "json")
    assert out["alerts"] == []
    code, listed = run_cli(path, capsys, "alerts", "list", "--format", "json")
    assert [(a["id"], a["state"]) for a in listed] == [(alert_id, "new")]
    code, resolved = run_cli(
        path, capsys, "alerts", "resolve", "--id", str(alert_id), "--by", "ana", "--format", "json"
    )
    assert resolved["state"] == "resolved"
    code, history = run_cli(path, capsys, "alerts", "history", "--id", str(alert_id), "--format", "json")
    changes = [(e["state"], e["by"]) for e in history if not (e["note"] or "").startswith("crossed again")]
    assert changes == [
        ("new", "sliceboard"),
        ("acknowledged", "ana"),
        ("snoozed", "ana"),
        ("new", "sliceboard"),  # the snooze is over and the change goes on
        ("resolved", "ana"),
    ]
    assert history[-1] == {**history[-1], "state": "resolved", "by": "ana"}
    assert any(e["state"] == "new" and "snooze is over" in (e["note"] or "") for e in history)
    # A resolved alert cannot be acknowledged; the message names it and nothing changes.
    digest = db_digest(path)
    code, err = (
        main(["--db", str(path), "alerts", "ack", "--id", str(alert_id), "--project", "s"]),
        capsys.readouterr().err,
    )
    assert code == 2 and "resolved already" in err and db_digest(path) == digest


def test_an_alert_resolves_itself_when_the_figure_recovers(tmp_path):
    store = build(tmp_path / "recovers.duckdb", stream(12, until=DROP_DAY + 6), [EAST_ACCURACY])
    with store.write() as con:
        project = get_project(con, "s")
        result = in_transaction(con, lambda: run_monitors(con, project))
        alerts = list_alerts(con, project)
        history = alert_history(con, project, alerts[0].alert_id)
    assert len(alerts) == 1 and alerts[0].state == "resolved"
    assert [a.alert_id for a in result.resolved] == [alerts[0].alert_id]
    assert history[-1]["by"] == "sliceboard" and history[-1]["note"].startswith("recovered")


def test_a_covariate_shift_is_alerted_before_its_late_labels_arrive(tmp_path):
    store = build(tmp_path / "late.duckdb", stream(13, lag_days=14, change="scores"), [EAST_ESTIMATE, EAST_ACCURACY])
    with store.write() as con:
        project = get_project(con, "s")
        result = in_transaction(con, lambda: run_monitors(con, project, day(DROP_DAY + 13)))
    found = {a.monitor: a for a in result.new_alerts}
    # No label of the changed days has arrived by then: only the estimate can see the drop.
    assert set(found) == {"east estimate"}
    assert day(DROP_DAY) <= found["east estimate"].period <= day(DROP_DAY + 6)


def test_too_little_history_is_skipped_and_named_and_bad_input_leaves_the_database(instant, tmp_path, capsys):
    path = copy_of(instant[0], tmp_path)
    with Store(path).write() as con:
        project = get_project(con, "s")
        add_monitor(con, project, Monitor("nowhere", "accuracy", "realized", slice_=parse_slice("region = mars")))
    digest = db_digest(path)
    code, out = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(10)), "--format", "json")
    assert code == 0 and len(out["skipped"]) == 5  # the reference window ends after the day asked for
    assert "no day after it to watch" in out["skipped"][0]["reason"] and db_digest(path) == digest
    code, out = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(20)), "--format", "json")
    assert code == 0 and [s["monitor"] for s in out["skipped"]] == ["nowhere"]
    assert "too few" in out["skipped"][0]["reason"]
    digest = db_digest(path)
    for bad in (["--as-of", "2026-13-01"], ["--budget", "0"], ["--budget", "-1"]):
        assert main(["--db", str(path), "monitor", "run", *bad, "--project", "s"]) == 2
        assert db_digest(path) == digest
    assert "not a date" in capsys.readouterr().err


class Webhook:
    """A real HTTP server on 127.0.0.1 answering with the statuses it is given, in turn
    (200 once they run out), keeping every body it received."""

    def __init__(self, statuses=()):
        self.statuses, self.bodies = list(statuses), []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                owner.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(owner.statuses.pop(0) if owner.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def deliveries(path) -> list[tuple]:
    with Store(path).read() as con:
        return con.execute("SELECT alert_id, attempt, delivered, status FROM sb_deliveries ORDER BY ALL").fetchall()


def test_the_webhook_hears_of_each_new_alert_once_and_failures_are_retried_and_recorded(
    instant, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(notify, "BACKOFF_SECONDS", (0.05, 0.1, 0.2))  # the waits, shortened
    path = copy_of(instant[0], tmp_path)
    hook = Webhook(statuses=[500])  # the first attempt fails, the second is taken
    try:
        assert run_cli(path, capsys, "monitor", "webhook", "--url", hook.url, "--format", "json")[0] == 0
        code, out = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(DROP_DAY + 8)), "--format", "json")
        assert code == 1 and out["undelivered"] == []
        alert = out["alerts"][0]
        assert len(hook.bodies) == 2 and hook.bodies[0] == hook.bodies[1]
        sent = hook.bodies[-1]
        assert sent["alert"]["id"] == alert["id"] and sent["alert"]["message"] == alert["message"]
        assert sent["project"] == "s" and alert["message"] in sent["text"]
        assert deliveries(path) == [(alert["id"], 1, False, 500), (alert["id"], 2, True, 200)]
        # The next days: the same episode, no new alert and nothing sent again.
        code, out = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(DROP_DAY + 10)), "--format", "json")
        assert code == 0 and len(hook.bodies) == 2
    finally:
        hook.close()


def test_a_webhook_that_never_answers_is_tried_again_by_the_next_run(instant, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(notify, "BACKOFF_SECONDS", (0.01,))
    path = copy_of(instant[0], tmp_path)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    run_cli(path, capsys, "monitor", "webhook", "--url", f"http://127.0.0.1:{port}/hook", "--format", "json")
    code = main(["--db", str(path), "monitor", "run", "--as-of", str(day(DROP_DAY + 8)), "--project", "s"])
    assert code == 1 and "did not take alert" in capsys.readouterr().err
    (alert_id,) = {a for a, *_ in deliveries(path)}
    assert [(a, n, ok) for a, n, ok, _ in deliveries(path)] == [(alert_id, 1, False), (alert_id, 2, False)]
    hook = Webhook()
    try:
        run_cli(path, capsys, "monitor", "webhook", "--url", hook.url, "--format", "json")
        # Setting a webhook anew sends only what is raised from then on; re-point the old one.
        with Store(path).write() as con:
            con.execute("UPDATE sb_webhooks SET saved_at = TIMESTAMP '2000-01-01'")
        code, out = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(DROP_DAY + 9)), "--format", "json")
        assert out["undelivered"] == [] and [b["alert"]["id"] for b in hook.bodies] == [alert_id]
        assert deliveries(path)[-1] == (alert_id, 3, True, 200)
    finally:
        hook.close()


def test_a_webhook_must_be_an_http_address(instant, tmp_path, capsys):
    path = copy_of(instant[0], tmp_path)
    digest = db_digest(path)
    for bad in ("ftp://example.org/x", "not a url", "file:///etc/passwd"):
        assert main(["--db", str(path), "monitor", "webhook", "--url", bad, "--project", "s"]) == 2
    assert "http:// or https://" in capsys.readouterr().err and db_digest(path) == digest


def test_a_monitor_s_evidence_is_its_own_whoever_runs_beside_it(instant, tmp_path):
    path, frame = instant
    alone = build(tmp_path / "alone.duckdb", frame, [EAST_ACCURACY])
    with Store(path).read() as con:  # the module's database, with four monitors, has not run
        assert con.execute("SELECT count(*) FROM sb_monitor_observations").fetchall()[0][0] == 0
    together = Store(copy_of(path, tmp_path))
    found = []
    # The same alert level: one monitor at a quarter of the budget of four.
    for store, budget in ((alone, Budget(0.25)), (together, Budget(1.0))):
        with store.write() as con:
            project = get_project(con, "s")
            in_transaction(con, lambda: run_monitors(con, project, day(DROP_DAY + 8), budget))
            found.append(
                con.execute(
                    "SELECT period, x, n FROM sb_monitor_observations WHERE monitor = 'east accuracy' ORDER BY period"
                ).fetchall()
            )
            east = next(a for a in list_alerts(con, project) if a.monitor == "east accuracy")
            found.append((east.period, east.since, east.value, east.reference))
    assert found[0] == found[2] and found[1][:2] == found[3][:2]
    assert found[1][2:] == pytest.approx(found[3][2:], abs=1e-12)


def test_a_removed_monitor_is_gone_with_its_days_and_its_open_alert_is_resolved(instant, tmp_path, capsys):
    path = copy_of(instant[0], tmp_path)
    run_cli(path, capsys, "monitor", "run", "--as-of", str(day(DROP_DAY + 8)), "--format", "json")
    code, listed = run_cli(path, capsys, "alerts", "list", "--format", "json")
    assert [(a["monitor"], a["state"]) for a in listed] == [("east accuracy", "new")]
    # A name no monitor has: named in the message, nothing changed.
    digest = db_digest(path)
    code = main(["--db", str(path), "monitor", "remove", "--name", "west accuracy", "--project", "s"])
    assert code == 2 and "no monitor named 'west accuracy'" in capsys.readouterr().err and db_digest(path) == digest
    code, removed = run_cli(
        path, capsys, "monitor", "remove", "--name", "east accuracy", "--by", "ana", "--format", "json"
    )
    assert code == 0 and removed["name"] == "east accuracy"
    code, monitors = run_cli(path, capsys, "monitor", "list", "--format", "json")
    assert sorted(m["name"] for m in monitors) == ["accuracy", "labels", "volume"]
    with Store(path).read() as con:
        kept = {
            table: con.execute(f"SELECT count(*) FROM {table} WHERE monitor = 'east accuracy'").fetchall()[0][0]
            for table in ("sb_monitor_state", "sb_monitor_observations", "sb_alerts")
        }
    assert kept == {"sb_monitor_state": 0, "sb_monitor_observations": 0, "sb_alerts": 1}  # the alert's history stays
    code, history = run_cli(path, capsys, "alerts", "history", "--id", str(listed[0]["id"]), "--format", "json")
    assert (history[-1]["state"], history[-1]["by"], history[-1]["note"]) == (
        "resolved",
        "ana",
        "the monitor was removed",
    )
    # Added again, it starts afresh: the drop is found again, as a new alert.
    with Store(path).write() as con:
        add_monitor(con, get_project(con, "s"), EAST_ACCURACY)
    code, out = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(DROP_DAY + 8)), "--format", "json")
    assert code == 1 and [a["monitor"] for a in out["alerts"]] == ["east accuracy"]
    assert out["alerts"][0]["id"] != listed[0]["id"]


def test_new_alerts_of_one_change_go_in_one_message(instant, tmp_path, capsys):
    path = copy_of(instant[0], tmp_path)
    hook = Webhook()
    try:
        run_cli(path, capsys, "monitor", "webhook", "--url", hook.url, "--format", "json")
        with Store(path).write() as con:  # one change seen in two slices, as two monitors would raise it
            project = get_project(con, "s")
            for where, value, rows in (("region = north", 0.70, 900), ("region = north OR region = east", 0.74, 1500)):
                scope = (f"accuracy on {where}", where, "accuracy", "realized", "m1", "production")
                dates = (day(DROP_DAY + 2), day(DROP_DAY), day(DROP_DAY + 2))
                figures = (value, 0.8, 90.0, 10.0, rows)
                raise_alert(con, project, Alert(0, *scope, *dates, *figures, "new", None, where, None, None))
        code, out = run_cli(path, capsys, "monitor", "run", "--as-of", str(day(DROP_DAY - 1)), "--format", "json")
        assert code == 0 and out["undelivered"] == []
        (sent,) = hook.bodies  # one message for the change
        assert [a["slice"] for a in sent["alerts"]] == ["region = north", "region = north OR region = east"]
        assert sent["alert"] == sent["alerts"][0]
        assert sent["text"].endswith("The same change in 1 more slice: region = north OR region = east.")
        assert deliveries(path) == [(1, 1, True, 200), (2, 1, True, 200)]
    finally:
        hook.close()

"""Reports: blocks pin what they show and hold the engine's numbers; a re-run on changed
data names what changed; the exported HTML is self-contained and carries the same
numbers; the CLI builds, re-runs and exports."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import db_digest
from sklearn import metrics as skm
from test_compare import two_versions

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.cli.main import main
from analysis.compare.comparison import Side, compare
from analysis.compare.gate import run_gate
from analysis.estimation import ReferenceChoice
from analysis.ingest.labels import attach_labels
from analysis.metrics.product import ProductMetric, define_metric
from analysis.reports import (
    add_block,
    default_report,
    delete_block,
    edit_block,
    get_report,
    list_reports,
    move_block,
    refresh,
    render_html,
    rerun,
)
from analysis.reports.html import _plotly_packed
from analysis.slices import parse_slice
from analysis.slices.metrics import slice_metrics
from analysis.slices.saved import save_slice
from analysis.store.scope import Scope
from analysis.valsets import Selection, commit, create_set, evaluate, promote

MAPPING = Mapping(
    id="id",
    example="example",
    version="v",
    stage="stage",
    timestamp="ts",
    task="binary",
    prediction="prediction",
    score="score",
    label="label",
    positive_label="1",
    features=["city", "tier"],
    outcomes=["loss"],
)


def dataset(n: int = 3000) -> pd.DataFrame:
    frame = two_versions(seed=11, n=n)
    frame["ts"] = pd.Timestamp("2026-03-01") + pd.to_timedelta(frame.index % n % 20, unit="D")
    # The last 500 examples are not labeled yet (labels arrive later in a test).
    late = frame["example"].isin([f"e{i}" for i in range(n - 500, n)])
    return frame.assign(label=frame["label"].where(~late))


@pytest.fixture()
def project_db(tmp_path):
    frame = dataset()
    store = Store(tmp_path / "r.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame, project="p", mapping=MAPPING)
        project = get_project(con, "p")
        define_metric(
            con,
            project,
            ProductMetric("missed_loss", "sum(loss) FILTER (WHERE NOT prediction AND label)", "lower", "$", ",.0f"),
        )
        save_slice(con, project, "planted", parse_slice("city = ber AND tier = free"))
        create_set(con, project, "berlin", criteria=["accuracy >= 0.5"])
        promote(con, project, "berlin", Selection(slice_=parse_slice("city = ber"), scope=Scope.of(versions="v1")))
        commit(con, project, "berlin", "first")
    return store, frame


def labeled(frame: pd.DataFrame, version: str) -> pd.DataFrame:
    return frame[(frame.v == version) & frame.label.notna()]


def test_blocks_hold_the_engines_numbers_and_pin_their_view(project_db):
    store, frame = project_db
    with store.write() as con:
        project = get_project(con, "p")
        headline = add_block(con, project, "review", "headline", {})
        comparison = add_block(
            con, project, "review", "comparison", {"baseline": Side("v1"), "candidate": Side("v2"), "discovered": 0}
        )
        gate = add_block(con, project, "review", "gate", {"baseline": Side("v1"), "candidate": Side("v2")})
        slice_block = add_block(
            con, project, "review", "slice", {"slice": parse_slice("city = ber"), "scope": Scope.of(versions="v2")}
        )
        sets = add_block(con, project, "review", "valsets", {})
        series = add_block(con, project, "review", "series", {"baseline": Side("v1"), "candidate": Side("v2")})
        found = add_block(con, project, "review", "discovery", {"scope": {"versions": ["v2"]}, "top_k": 3})
        note = add_block(con, project, "review", "note", {"text": "**Decision**: wait for the free tier fix."})
        # The same engine calls on the same (pinned) parameters.
        comp = compare(con, project, Side("v1"), Side("v2"), start="2026-03-01", end="2026-03-20", discovered=0)
        verdict = run_gate(con, project, Side("v1"), Side("v2"), start="2026-03-01", end="2026-03-20")
        sm = slice_metrics(
            con, project, parse_slice("city = ber"), Scope.of(versions="v2", start="2026-03-01", end="2026-03-20")
        )
        matrix = evaluate(con, project, ["berlin"], version=1)

    rows = {r["side"]: r for r in headline.snapshot["rows"]}
    for version in ("v1", "v2"):
        lab = labeled(frame, version)
        assert rows[version]["accuracy"] == pytest.approx(skm.accuracy_score(lab.label, lab.prediction), abs=1e-12)
        assert rows[version]["roc_auc"] == pytest.approx(skm.roc_auc_score(lab.label, lab.score), abs=1e-9)
        assert rows[version]["n_rows"] == (frame.v == version).sum()
        missed = lab.loss[(lab.prediction == 0) & (lab.label == 1)].sum()
        assert rows[version]["missed_loss"] == pytest.approx(missed)
    # Pinned: explicit days, the saved slices' definitions, the metric definitions, the set's version.
    assert comparison.params["start"] == "2026-03-01" and comparison.params["end"] == "2026-03-20"
    assert comparison.params["saved"] == ["city = ber AND tier = free"]
    assert comparison.params["metrics"][0]["expression"].startswith("sum(loss)")
    assert sets.params == {"sets": {"berlin": 1}}
    overall = {r["metric"]: r for r in comparison.snapshot["overall"]}
    for r in comp.overall.itertuples():
        assert overall[r.metric]["delta"] == pytest.approx(r.delta, rel=1e-9, abs=1e-12, nan_ok=True)
    assert comparison.snapshot["n_pairs"] == comp.n_pairs
    assert gate.snapshot["passed"] == verdict.passed and gate.snapshot["lines"] == verdict.lines()
    part = {p["part"]: p for p in slice_block.snapshot["parts"]}
    assert part["slice"]["error_rate"] == pytest.approx(sm.row("slice")["error_rate"])
    assert part["slice"]["n_rows"] == int(sm.row("slice")["n_rows"])
    assert sets.snapshot["rows"][0]["accuracy"] == pytest.approx(matrix["accuracy"].iloc[0])
    assert {r["side"] for r in series.snapshot["rows"]} == {"baseline", "candidate"}
    assert found.snapshot["slices"] and found.snapshot["slices"][0]["where"]
    assert note.snapshot == {"text": "**Decision**: wait for the free tier fix."}
    # Plain-language lines name the planted regression.
    from analysis.reports.blocks import lines

    said = " ".join(lines("comparison", comparison.snapshot))
    assert "Worse for" in said and "tier = free" in said


def test_a_rerun_on_changed_data_says_what_changed(project_db, tmp_path):
    store, frame = project_db
    with store.write() as con:
        project = get_project(con, "p")
        add_block(con, project, "weekly", "headline", {})
        add_block(
            con, project, "weekly", "comparison", {"baseline": Side("v1"), "candidate": Side("v2"), "discovered": 0}
        )
        add_block(con, project, "weekly", "note", {"text": "Numbers as of the review."})
        # A saved slice revised later does not change what the report shows.
        save_slice(con, project, "planted", parse_slice("city = ams"))
        assert all(r.same for r in rerun(con, project, "weekly"))
        # Late labels arrive for the last 500 examples.
        late = two_versions(seed=11, n=3000)[["example", "label"]].drop_duplicates("example").tail(500)
        attach_labels(con, late, project="p", key="example")
        results = {r.block.kind: r for r in rerun(con, project, "weekly")}
    assert results["note"].same
    head = results["headline"]
    assert not head.same
    changed = {name for name, _, _ in head.changes}
    assert "v1: n_labeled" in changed and "v2: accuracy" in changed
    before = dict((n, a) for n, a, _ in head.changes)["v1: n_labeled"]
    after = dict((n, b) for n, _, b in head.changes)["v1: n_labeled"]
    assert after - before == 500
    assert any(x.startswith("labeled rows:") and "+1,000" in x for x in head.data_changes)
    assert not results["comparison"].same
    with store.write() as con:
        project = get_project(con, "p")
        refresh(con, project, "weekly")
        assert all(r.same for r in rerun(con, project, "weekly"))
        block = get_report(con, project, "weekly").blocks[0]
    assert block.snapshot["rows"][0]["n_labeled"] == labeled(frame, "v1").shape[0] + 500


def test_blocks_move_edit_and_bad_input_changes_nothing(project_db):
    store, _ = project_db
    with store.write() as con:
        project = get_project(con, "p")
        a = add_block(con, project, "r", "note", {"text": "first"})
        b = add_block(con, project, "r", "note", {"text": "second"})
        report = move_block(con, project, "r", b.block_id, -1)
        assert [x.snapshot["text"] for x in report.blocks] == ["second", "first"]
        edit_block(con, project, "r", a.block_id, text="first, edited", title="Context")
        report = get_report(con, project, "r")
        assert report.blocks[1].title == "Context" and report.blocks[1].snapshot["text"] == "first, edited"
    digest = db_digest(store.path)
    with store.write() as con:
        project = get_project(con, "p")
        for call, message in [
            (lambda: add_block(con, project, "r", "pie", {}), "one of"),
            (lambda: add_block(con, project, "", "note", {"text": "x"}), "report name"),
            (
                lambda: add_block(con, project, "r", "comparison", {"baseline": Side("v1"), "candidate": Side("v9")}),
                "no predictions",
            ),
            (lambda: add_block(con, project, "r", "valsets", {"sets": ["nope"]}), "No validation set"),
            (lambda: edit_block(con, project, "r", 99, text="x"), "no block 99"),
            (lambda: add_block(con, project, "r", "note", {"text": "x" * 20_001}), "20,000"),
            (lambda: add_block(con, project, "r", "slice", {"slice": parse_slice("nope = 1")}), "nope"),
        ]:
            with pytest.raises(ConfigError, match=message):
                call()
    assert db_digest(store.path) == digest
    with store.write() as con:
        project = get_project(con, "p")
        delete_block(con, project, "r", a.block_id)
        assert len(get_report(con, project, "r").blocks) == 1
        assert list(list_reports(con, project)["name"]) == ["r"]


def test_the_exported_file_is_self_contained_and_carries_the_numbers(project_db):
    store, _ = project_db
    with store.write() as con:
        project = get_project(con, "p")
        add_block(con, project, "out", "comparison", {"baseline": Side("v1"), "candidate": Side("v2"), "discovered": 0})
        add_block(
            con,
            project,
            "out",
            "note",
            {
                "text": "<script>alert('x')</script> ![pixel](https://example.com/p.png)"
                " and [a link](https://example.com)"
            },
        )
        report = get_report(con, project, "out")
    page = render_html(report)
    # Nothing to fetch: no element loads a URL, and the policy forbids any request.
    assert not re.search(r"<(script|link|img|iframe|source|video|audio)\b[^>]*\b(src|href)\s*=", page, re.I)
    assert "default-src 'none'" in page
    # The note's raw HTML is dropped (here the whole HTML block it opens), its image is not loaded.
    note = page[page.index('<div class="note">') :]
    note = note[: note.index("</div>")]
    assert "<script>alert" not in page and "script" not in note and "alert" not in note and "<img" not in page
    # Every overall figure is in the table at full precision.
    values = {float(v) for v in re.findall(r'data-value="([^"]+)"', page) if v not in ("None", "nan")}
    for row in report.blocks[0].snapshot["overall"]:
        for key in ("baseline", "candidate", "delta"):
            if row[key] is not None:
                assert row[key] in values
    # The pins: parameters and the data's fingerprint.
    pins = html.unescape(page[page.index("<footer>") :])
    assert '"start": "2026-03-01"' in pins and '"rows": 6000' in pins and '"labeled": 5000' in pins
    assert _plotly_packed() in page and len(page) < 5_000_000


def test_the_cli_builds_reruns_and_exports(project_db, tmp_path, capsys):
    store, _ = project_db
    db = ["--db", str(store.path), "--project", "p"]
    assert (
        main(
            [
                "reports",
                "add",
                *db,
                "--name",
                "cli",
                "--kind",
                "comparison",
                "--baseline",
                "v1",
                "--candidate",
                "v2",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert "Worse for" in " ".join(json.loads(capsys.readouterr().out)["lines"])
    assert main(["reports", "add", *db, "--name", "cli", "--kind", "note", "--text", "ship after the fix"]) == 0
    assert "added block 2" in capsys.readouterr().out
    assert main(["reports", "list", *db, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["reports"][0]["blocks"] == 2
    assert main(["reports", "rerun", *db, "--name", "cli", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["same"] is True
    out = tmp_path / "cli.html"
    assert main(["report", *db, "--report", "cli", "--out", str(out), "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["bytes"] == out.stat().st_size and "ship after the fix" in out.read_text()
    default = tmp_path / "default.html"
    assert main(["report", *db, "--out", str(default)]) == 0
    text = default.read_text()
    assert "Headline numbers" in text and "Validation sets" in text and "Discovered slices" in text
    assert main(["reports", "show", *db, "--name", "missing"]) == 2
    assert "No report named" in capsys.readouterr().err
    assert main(["reports", "add", *db, "--name", "cli", "--kind", "comparison"]) == 2
    assert main(["reports", "delete", *db, "--name", "cli"]) == 0
    assert main(["reports", "show", *db, "--name", "cli"]) == 2


def test_default_report_of_the_demo_stays_small(demo_copy):
    store = Store(demo_copy)
    with store.read() as con:
        report = default_report(con, get_project(con, "lending-demo"))
    kinds = [b.kind for b in report.blocks]
    assert kinds[:4] == ["headline", "comparison", "gate", "discovery"]
    comparison = report.blocks[1].snapshot
    assert (comparison["baseline"], comparison["candidate"]) == ("credit-v1", "credit-v3")
    assert len(render_html(report).encode()) < 5_000_000
    np.testing.assert_equal(report.blocks[2].snapshot["passed"], False)


def test_a_new_block_goes_where_asked(project_db):
    """A note placed first, after a chosen block, or (by default) at the end; the other
    blocks keep their order. A place beyond the end is the end; a place below 1 is refused."""
    store, _ = project_db
    with store.write() as con:
        project = get_project(con, "p")
        for text in ("a", "b", "c"):
            add_block(con, project, "order", "note", {"text": text})
        add_block(con, project, "order", "note", {"text": "top"}, position=1)
        add_block(con, project, "order", "note", {"text": "after b"}, position=4)
        add_block(con, project, "order", "note", {"text": "end"})
        add_block(con, project, "order", "note", {"text": "far"}, position=99)
        report = get_report(con, project, "order")
        assert [b.snapshot["text"] for b in report.blocks] == ["top", "a", "b", "after b", "c", "end", "far"]
        assert [b.position for b in report.blocks] == list(range(1, 8))
    digest = db_digest(store.path)
    with store.write() as con:
        project = get_project(con, "p")
        for bad in (0, -2):
            with pytest.raises(ConfigError, match="position"):
                add_block(con, project, "order", "note", {"text": "x"}, position=bad)
    assert db_digest(store.path) == digest


def test_the_cli_places_a_note_after_a_block(project_db, capsys):
    store, _ = project_db
    db = ["--db", str(store.path), "--project", "p"]
    for text in ("first", "second"):
        assert main(["reports", "add", *db, "--name", "cli", "--kind", "note", "--text", text]) == 0
    assert main(["reports", "add", *db, "--name", "cli", "--kind", "note", "--text", "between", "--after", "1"]) == 0
    assert main(["reports", "add", *db, "--name", "cli", "--kind", "note", "--text", "top", "--position", "1"]) == 0
    capsys.readouterr()
    assert main(["reports", "show", *db, "--name", "cli", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["blocks"]
    with store.read() as con:
        texts = [b.snapshot["text"] for b in get_report(con, get_project(con, "p"), "cli").blocks]
    assert texts == ["top", "first", "between", "second"]
    assert [b["block"] for b in shown] == [4, 1, 3, 2]
    assert main(["reports", "add", *db, "--name", "cli", "--kind", "note", "--text", "x", "--after", "9"]) == 2
    assert "no block 9" in capsys.readouterr().err


def visible_cells(page: str, table_class: str) -> list[list[str]]:
    """The texts of a table's body cells in the exported page."""
    body = page[page.index(f'<table class="{table_class}">') :]
    body = body[: body.index("</table>")]
    return [
        [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body[body.index("<tbody>") :])
    ]


def test_the_export_formats_every_figure_as_the_app_does(project_db):
    """The HTML table of a comparison holds, per metric, exactly analysis.numbers' text of
    a direct engine call: money in dollars with separators, shares in percent, changes of
    shares in points, p-values as < 1e-16 at most; never "None", "nan" or a column name."""
    from analysis.numbers import format_delta, format_p, format_value, metric_name

    store, _ = project_db
    with store.write() as con:
        project = get_project(con, "p")
        block = add_block(
            con, project, "fmt", "comparison", {"baseline": Side("v1"), "candidate": Side("v2"), "discovered": 0}
        )
        comp = compare(
            con,
            project,
            Side("v1"),
            Side("v2"),
            start="2026-03-01",
            end="2026-03-20",
            discovered=0,
            saved=block.params["saved"],
            metrics=[ProductMetric(**m) for m in block.params["metrics"]],
        )
        report = get_report(con, project, "fmt")
    products = block.params["metrics"]
    page = render_html(report)
    shown = {row[0]: row for row in visible_cells(page, "overall")}
    assert len(shown) == len(comp.overall)
    for r in comp.overall.itertuples():
        row = shown[metric_name(r.metric, products)]
        assert row[1:4] == [
            format_value(r.metric, r.baseline, products),
            format_value(r.metric, r.candidate, products),
            format_delta(r.metric, r.delta, products),
        ]
        assert row[5] == format_p(r.p_value)
    money = shown["missed loss"]
    assert money[1].startswith("$") and "," in money[1] or float(money[1].strip("$")) < 1000
    assert shown["accuracy"][3].endswith(" points") and shown["accuracy"][1].endswith("%")
    assert "ROC AUC" in shown
    text = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    text = text[: text.index("<footer>")]
    for bad in (">None<", ">nan<", "roc_auc", "error_rate", "Roc auc"):
        assert bad not in text


def test_the_validation_set_chart_is_coloured_by_verdict(project_db):
    """A set that a version fails is vermillion however high its accuracy; a passing one
    blue; the value is written in the cell (the colour is not a metric scale)."""
    from analysis.numbers import format_value
    from analysis.palette import FAIL, PASS, VERDICT_LEVEL, verdict_scale
    from analysis.reports.blocks import figures

    store, _ = project_db
    with store.write() as con:
        project = get_project(con, "p")
        create_set(con, project, "strict", criteria=["accuracy >= 0.999"])
        promote(con, project, "strict", Selection(slice_=parse_slice("city = ams"), scope=Scope.of(versions="v1")))
        commit(con, project, "strict", "first")
        block = add_block(con, project, "sets", "valsets", {})
        truth = evaluate(con, project)
    fig = figures("valsets", block.snapshot)[0].to_plotly_json()
    heat = fig["data"][0]
    assert heat["type"] == "heatmap" and heat["showscale"] is False
    scale = verdict_scale()

    def colour(level):
        x = level / heat["zmax"]
        return next(c for (a, c), (b, _) in zip(scale[::2], scale[1::2]) if a <= x <= b)

    seen = set()
    for r in truth.itertuples():
        i, j = heat["y"].index(f"{r.set} v{r.set_version}"), heat["x"].index(f"{r.model_version} ({r.stage})")
        assert heat["z"][i][j] == VERDICT_LEVEL[r.verdict]
        assert heat["text"][i][j].startswith(format_value("accuracy", r.accuracy))
        if r.verdict in ("pass", "fail"):
            assert colour(heat["z"][i][j]) == (PASS if r.verdict == "pass" else FAIL)
            seen.add(r.verdict)
    assert seen == {"pass", "fail"}  # v1 on "strict" fails with a high accuracy
    assert truth.loc[truth.verdict == "fail", "accuracy"].max() > 0.5


def test_charts_scale_to_the_values_shown(project_db):
    """A log loss of 1.07 is not cut off by a 0–1 axis; shares read in percent."""
    from analysis.reports.blocks import figures

    snapshot = {
        "task": "binary",
        "metrics": ["log_loss"],
        "product_metrics": [],
        "rows": [
            {"side": "v1", "log_loss": 1.07, "log_loss_low": 0.98, "log_loss_high": 1.16},
            {"side": "v2", "log_loss": 0.41, "log_loss_low": None, "log_loss_high": None},
        ],
    }
    axis = figures("headline", snapshot)[0].to_plotly_json()["layout"]["yaxis"]
    assert axis.get("range") is None and axis["autorange"] is True and axis.get("tickformat") is None
    snapshot["metrics"] = ["accuracy"]
    snapshot["rows"] = [{"side": "v1", "accuracy": 0.83}]
    fig = figures("headline", snapshot)[0].to_plotly_json()
    assert fig["layout"]["yaxis"]["tickformat"] == ".0%" and fig["data"][0]["text"] == ["83.0%"]


def test_the_cli_rerun_writes_figures_as_people_read_them(project_db, capsys):
    store, frame = project_db
    db = ["--db", str(store.path), "--project", "p"]
    assert main(["reports", "add", *db, "--name", "weekly", "--kind", "headline"]) == 0
    with store.write() as con:
        late = two_versions(seed=11, n=3000)[["example", "label"]].drop_duplicates("example").tail(500)
        attach_labels(con, late, project="p", key="example")
    capsys.readouterr()
    assert main(["reports", "rerun", *db, "--name", "weekly"]) == 0
    out = capsys.readouterr().out
    before = len(labeled(frame, "v1"))
    assert before >= 1000 and f"v1: n_labeled: {before:,} -> {before + 500:,}" in out
    assert "None" not in out and "nan" not in out


VIEWS = {  # a view of every block kind, as the pages pin them
    "headline": {},
    "comparison": {"baseline": Side("v1"), "candidate": Side("v2"), "discovered": 0},
    "gate": {"baseline": Side("v1"), "candidate": Side("v2")},
    "slice": {"slice": parse_slice("city = ber"), "scope": Scope.of(versions="v2")},
    "valsets": {},
    "series": {"baseline": Side("v1"), "candidate": Side("v2")},
    "discovery": {"scope": {"versions": ["v2"]}, "top_k": 3},
    "note": {"text": "Numbers as of the review."},
    "estimate": {
        "version": "v2",
        "metric": "accuracy",
        "by": "week",
        "choice": ReferenceChoice.of("2026-03-01", "2026-03-07"),
    },
}


@pytest.mark.parametrize("kind", sorted(VIEWS))
def test_every_block_kind_reruns_the_same_then_says_what_the_late_labels_changed(project_db, kind):
    """Re-run on the same data: nothing changed. After 500 late labels: every kind that
    reads labels says which of its figures moved, from what to what (a note never moves),
    and a refresh takes the new figures in."""
    from analysis.reports import KINDS

    assert set(VIEWS) == set(KINDS)  # a new kind gets a view here
    store, _ = project_db
    with store.write() as con:
        project = get_project(con, "p")
        add_block(con, project, "kinds", kind, VIEWS[kind])
        (again,) = rerun(con, project, "kinds")
        assert again.same and again.changes == []
        late = two_versions(seed=11, n=3000)[["example", "label"]].drop_duplicates("example").tail(500)
        attach_labels(con, late, project="p", key="example")
        (after,) = rerun(con, project, "kinds")
        if kind == "note":
            assert after.same
            return
        assert not after.same, kind
        assert all(then != now for _, then, now in after.changes)
        assert any(x.startswith("labeled rows:") for x in after.data_changes)
        refresh(con, project, "kinds")
        (refreshed,) = rerun(con, project, "kinds")
    assert refreshed.same


def test_every_kind_says_how_to_show_itself_and_an_unknown_kind_is_refused():
    """Pages and the export ask a block's kind for its words, tables, charts and big
    numbers: every registered kind says them itself, in its own module (a note is drawn as
    its Markdown; a gate has no chart), so a new kind that lacks one fails here."""
    from analysis.reports.kinds import REGISTRY, BlockKind, kind_of

    assert set(REGISTRY) == set(VIEWS)
    without = {"note": {"lines", "tables", "figures"}, "gate": {"figures"}}
    for name, kind in REGISTRY.items():
        assert kind.name == name and kind.title
        own = {
            step for step in ("lines", "tables", "figures") if getattr(type(kind), step) is not getattr(BlockKind, step)
        }
        assert own == {"lines", "tables", "figures"} - without.get(name, set()), name
    assert [k.name for k in REGISTRY.values() if k.text] == ["note"]
    with pytest.raises(ConfigError, match="A report block is one of headline, comparison, gate"):
        kind_of("pie chart")


def test_a_series_block_keeps_the_metric_it_was_pinned_with(project_db):
    """The daily series shows the task's headline metric (ROC AUC for a binary task) and
    pins it, so that a re-run shows the same metric; a block pinned before the metric was
    shows the accuracy it showed then."""
    import json

    from sklearn.metrics import accuracy_score, roc_auc_score

    store, frame = project_db
    with store.write() as con:
        project = get_project(con, "p")
        block = add_block(con, project, "series", "series", VIEWS["series"])
        assert block.params["metric"] == "roc_auc" and block.snapshot["headline"] == "roc_auc"
        params = {k: v for k, v in block.params.items() if k != "metric"}  # as stored before
        con.execute("UPDATE sb_report_blocks SET params = ? WHERE block_id = ?", [json.dumps(params), block.block_id])
        (old,) = rerun(con, project, "series")
    assert old.snapshot["headline"] == "accuracy"
    rows = labeled(frame, "v1").assign(day=lambda f: pd.to_datetime(f["ts"]).dt.date.astype(str))
    day, group = next(iter(rows.groupby("day")))
    shown = {r["day"]: r for r in old.snapshot["rows"] if r["version"] == "v1"}
    assert shown[day]["accuracy"] == pytest.approx(accuracy_score(group["label"], group["prediction"]), abs=1e-12)
    shown = {r["day"]: r for r in block.snapshot["rows"] if r["version"] == "v1"}
    assert shown[day]["roc_auc"] == pytest.approx(roc_auc_score(group["label"], group["score"]), abs=1e-12)


def test_the_presentations_big_numbers_are_the_tasks_headline(project_db):
    """A headline block's cards and a comparison's show the task's headline metric (ROC
    AUC for a binary task, as the Overview's cards), each version's value that of
    scikit-learn on its labeled rows; a comparison snapshot kept before the task was
    stored shows the accuracy it showed."""
    from sklearn.metrics import roc_auc_score

    from analysis.numbers import format_value
    from analysis.reports.kinds import kind_of

    store, frame = project_db
    with store.write() as con:
        project = get_project(con, "p")
        head = add_block(con, project, "present", "headline", {})
        comp = add_block(con, project, "present", "comparison", VIEWS["comparison"])
    cards = {c.label: c.value for c in kind_of("headline").cards(head.snapshot)}
    for version in ("v1", "v2"):
        rows = labeled(frame, version)
        assert cards[f"{version}: ROC AUC"] == format_value("roc_auc", roc_auc_score(rows["label"], rows["score"]))
    shown = [c.label for c in kind_of("comparison").cards(comp.snapshot)]
    assert shown[-1] == "ROC AUC"
    older = {k: v for k, v in comp.snapshot.items() if k != "task"}
    assert [c.label for c in kind_of("comparison").cards(older)][-1] == "Accuracy"
    # a change coloured better or worse only when its interval leaves out zero
    by_metric = {r["metric"]: r for r in comp.snapshot["overall"]}
    roc = by_metric["roc_auc"]
    card = kind_of("comparison").cards(comp.snapshot)[-1]
    clear = roc["ci_low"] > 0 or roc["ci_high"] < 0
    assert (card.tone in ("better", "worse")) == clear
    unclear = {
        **comp.snapshot,
        "overall": [{**roc, "ci_low": -abs(roc["delta"]) - 1, "ci_high": abs(roc["delta"]) + 1}],
    }
    assert kind_of("comparison").cards(unclear)[-1].tone == "neutral"
    clear_worse = {**comp.snapshot, "overall": [{**roc, "delta": -0.05, "ci_low": -0.07, "ci_high": -0.03}]}
    assert kind_of("comparison").cards(clear_worse)[-1].tone == "worse"


def test_a_stored_block_that_does_not_fit_its_kind_says_so_in_its_place(project_db, monkeypatch):
    """Each kind declares what its stored numbers hold (a model checked when a block is
    computed and when it is shown). A stored snapshot that does not fit is refused by name:
    the Reports page and the export say so in that block's place and show the others."""
    from test_app import open_page

    from analysis.reports.blocks import lines, tables

    store, _ = project_db
    with store.write() as con:
        project = get_project(con, "p")
        add_block(con, project, "mixed", "note", {"text": "We ship on Monday."}, title="Decision")
        broken = add_block(con, project, "mixed", "series", VIEWS["series"], title="Broken")
        con.execute(
            "UPDATE sb_report_blocks SET snapshot = ? WHERE block_id = ?",
            [json.dumps({"rows": "not a list"}), broken.block_id],
        )
        report = get_report(con, project, "mixed")
    said = "The stored numbers of this over time block cannot be read: rows: Input should be a valid list."
    with pytest.raises(ConfigError, match=re.escape(said)):
        lines("series", report.blocks[1].snapshot)
    with pytest.raises(ConfigError, match="cannot be read"):
        tables("series", report.blocks[1].snapshot)
    page = render_html(report)
    assert said in page and "We ship on Monday." in page
    at = open_page(monkeypatch, store.path, "pages/reports.py", project="p", report="mixed")
    assert [w.value for w in at.warning] == [said]
    assert any("We ship on Monday." in e.proto.body for e in at.get("html"))  # the other block is shown

"""The Overview under AppTest: its state in the URL, the window applied on submit, only
the chosen view computed, and its numbers in words and units on binary, multiclass and
regression projects."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from test_app import app_on, texts

from analysis import Mapping, Store, ingest_predictions

DAYS = pd.date_range("2026-03-01", periods=10, freq="D")


def frames() -> dict[str, tuple[pd.DataFrame, Mapping]]:
    rng = np.random.default_rng(3)
    n = 400
    ts = DAYS[np.arange(n) % 10] + pd.to_timedelta(np.arange(n) % 7, unit="h")
    label = rng.random(n) < 0.4
    # A poor model: log loss above 1 on every day.
    score = np.clip(np.where(label, rng.uniform(0.0, 0.7, n), rng.uniform(0.3, 1.0, n)), 0.01, 0.99)
    binary = pd.DataFrame(
        {
            "id": [f"b{i}" for i in range(n)],
            "ts": ts,
            "model": np.where(np.arange(n) % 2, "v1", "v2"),
            "stage": np.where(np.arange(n) % 4 == 0, "canary", "production"),
            "score": score.round(3),
            "label": label.astype(int),
            "plan": rng.choice(["a", "b"], n),
            "revenue": rng.gamma(2, 10, n).round(2),
        }
    )
    binary.loc[binary["model"] == "v2", "label"] = None  # v2 has no labels yet
    classes = np.array(["cat", "dog", "bird"])
    multi = pd.DataFrame(
        {
            "id": [f"m{i}" for i in range(n)],
            "ts": ts,
            "model": "mc-1",
            "stage": "production",
            "prediction": classes[np.arange(n) % 3],
            "label": classes[(np.arange(n) // 2) % 3],
            "size": rng.integers(1, 9, n),
        }
    )
    reg = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "ts": ts,
            "model": "eta-1",
            "stage": "production",
            "prediction": rng.normal(30, 5, n).round(1),
            "label": rng.normal(30, 6, n).round(1),
            "city": rng.choice(["x", "y"], n),
        }
    )
    m = dict(id="id", timestamp="ts", version="model", stage="stage", label="label")
    return {
        "shop": (binary, Mapping(task="binary", score="score", features=["plan"], outcomes=["revenue"], **m)),
        "pets": (multi, Mapping(task="multiclass", prediction="prediction", features=["size"], **m)),
        "eta": (reg, Mapping(task="regression", prediction="prediction", features=["city"], **m)),
    }


@pytest.fixture
def projects(tmp_path):
    path = tmp_path / "three.duckdb"
    store = Store(path)
    store.initialize()
    with store.write() as con:
        for name, (frame, mapping) in frames().items():
            ingest_predictions(con, frame, project=name, mapping=mapping)
    return path


def open_overview(monkeypatch, path, **params):
    at = app_on(monkeypatch, path)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def charts(at) -> dict[str, dict]:
    return {
        json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec) for c in at.get("plotly_chart")
    }


def ys(trace) -> list[float]:
    """A trace's y values (plotly sends numbers as typed arrays)."""
    y = trace["y"]
    if isinstance(y, dict):
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"])).tolist()
    return [np.nan if v is None else v for v in y]


def metric_cards(at) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in at.metric:
        out.setdefault(m.label, []).append(m.value)
    return out


def test_a_link_reproduces_version_stages_window_and_view(monkeypatch, projects):
    at = open_overview(
        monkeypatch,
        projects,
        project="shop",
        version="v1",
        stage="production",
        **{"from": "2026-03-03", "to": "2026-03-06"},
    )
    assert not at.exception
    assert at.selectbox(key="ov_version").value == "v1"
    assert at.multiselect(key="ov_stages").value == ["production"]
    assert (at.text_input(key="ov_from").value, at.text_input(key="ov_to").value) == ("2026-03-03", "2026-03-06")
    frame, _ = frames()["shop"]
    rows = frame[
        (frame["model"] == "v1")
        & (frame["stage"] == "production")
        & (frame["ts"] >= "2026-03-03")
        & (frame["ts"] < "2026-03-07")
    ]
    shown = at.dataframe[0].value
    assert list(shown["n_rows"]) == [len(rows)]
    assert shown["roc_auc"][0] == pytest.approx(skm.roc_auc_score(rows["label"], rows["score"]))
    # The view in the link too.
    at = open_overview(monkeypatch, projects, project="shop", view="time", stage="canary")
    assert not at.exception and len(at.get("plotly_chart")) == 3 and not at.dataframe
    assert at.multiselect(key="ov_stages").value == ["canary"]


def test_the_window_applies_on_submit_and_goes_into_the_link(monkeypatch, projects):
    at = open_overview(monkeypatch, projects, project="shop")
    total = int(at.dataframe[0].value["n_rows"].sum())
    assert total == 400 and "from" not in at.query_params
    at.text_input(key="ov_from").set_value("2026-03-09")
    at.run()  # a day typed but not applied: nothing changes yet
    assert int(at.dataframe[0].value["n_rows"].sum()) == 400 and "from" not in at.query_params
    at.text_input(key="ov_from").set_value("2026-03-09")
    next(b for b in at.button if b.label == "Apply").click().run()
    assert not at.exception
    assert int(at.dataframe[0].value["n_rows"].sum()) == 80  # two days of ten
    assert at.query_params["from"] in ("2026-03-09", ["2026-03-09"]) and "to" not in at.query_params
    at.multiselect(key="ov_stages").set_value(["canary"]).run()
    assert at.query_params["stage"] in ("canary", ["canary"])
    # A day that is not one, or outside the log, is said and replaced.
    at.text_input(key="ov_from").set_value("2026-02-30")
    at.text_input(key="ov_to").set_value("2027-01-01")
    next(b for b in at.button if b.label == "Apply").click().run()
    assert not at.exception and int(at.dataframe[0].value["n_rows"].sum()) == 100  # every canary row
    said = texts(at)
    assert "'2026-02-30' is not a day written YYYY-MM-DD; using 2026-03-01" in said
    assert "2027-01-01 is outside the logged days; using 2026-03-10" in said


def test_only_the_chosen_view_is_computed(monkeypatch, projects):
    at = open_overview(monkeypatch, projects, project="shop")
    assert at.dataframe and not at.get("plotly_chart")
    at.session_state["ov_view"] = "time"
    at.run()
    assert len(at.get("plotly_chart")) == 3 and not at.dataframe
    assert at.query_params["view"] in ("time", ["time"])


def test_axes_fit_their_figures(monkeypatch, projects):
    at = open_overview(monkeypatch, projects, project="eta", view="time")
    coverage = charts(at)["Label coverage"]
    # Fully labeled: the line sits at 100%, and the axis stops there (plotly pads a flat line to 200%).
    assert {y for t in coverage["data"] for y in ys(t)} == {1.0}
    assert coverage["layout"]["yaxis"]["range"][1] <= 1.05 and coverage["layout"]["yaxis"]["tickformat"] == ".0%"
    at = open_overview(monkeypatch, projects, project="shop", view="time", version="v1")
    at.selectbox(key="ov_metric").set_value("log_loss").run()
    loss = charts(at)["Log loss (labeled rows)"]
    assert np.nanmax([y for t in loss["data"] for y in ys(t)]) > 1
    assert "range" not in loss["layout"]["yaxis"]  # its own scale: nothing above 1 is cut
    at.selectbox(key="ov_metric").set_value("accuracy").run()
    assert charts(at)["Accuracy (labeled rows)"]["layout"]["yaxis"]["range"] == [0, 1.02]


@pytest.mark.parametrize(
    "name, headline",
    [("shop", ("ROC AUC", "Accuracy")), ("pets", ("Accuracy", "Macro F1")), ("eta", ("Mean absolute error", "RMSE"))],
)
def test_cards_name_each_tasks_headline_in_words_and_never_none(monkeypatch, projects, name, headline):
    at = open_overview(monkeypatch, projects, project=name)
    assert not at.exception
    cards = metric_cards(at)
    assert set(headline) <= set(cards)
    shown = " ".join(v for values in cards.values() for v in values) + texts(at)
    assert "None" not in shown and "nan" not in shown.lower().split()
    frame, _ = frames()[name]
    labeled = frame[frame["label"].notna()]
    if name == "shop":  # v2 has no labels: its metrics read "–"
        # Cards: v1 · production, v2 · canary, v2 · production.
        assert cards["ROC AUC"] == [f"{skm.roc_auc_score(labeled['label'], labeled['score']):.3f}", "–", "–"]
        assert cards["Labeled"] == ["100.0%", "0.0%", "0.0%"]
        total = frame.loc[frame["model"] == "v1", "revenue"].sum()  # one decimal, thousands separated
        assert "," in cards["Total revenue"][0]
        assert float(cards["Total revenue"][0].replace(",", "")) == pytest.approx(total, abs=0.051)
    if name == "pets":
        assert cards["Accuracy"] == [f"{100 * skm.accuracy_score(labeled['label'], labeled['prediction']):.1f}%"]
    if name == "eta":  # an error in the label's units: four significant digits (6.6385 shows 6.638)
        mae = skm.mean_absolute_error(labeled["label"], labeled["prediction"])
        decimals = 4 - 1 - int(np.floor(np.log10(mae)))
        (shown,) = cards["Mean absolute error"]
        # the engine's sum and scikit-learn's may round a value at a half apart: within half a unit
        assert len(shown.split(".")[1]) == decimals
        assert abs(float(shown) - mae) <= 0.5 * 10**-decimals + 1e-9
    for m in at.metric:
        assert not m.proto.delta  # figures, not changes: no arrows


def test_another_project_in_the_sidebar_opens_its_whole_view(monkeypatch, projects):
    at = open_overview(monkeypatch, projects, project="shop", version="v1", stage="canary", **{"from": "2026-03-05"})
    assert at.selectbox(key="ov_version").value == "v1"
    at.selectbox(key="project").set_value("eta").run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="ov_version").value == "All versions"
    assert at.multiselect(key="ov_stages").value == ["production"]
    assert at.text_input(key="ov_from").value == "2026-03-01"
    assert not {"version", "stage", "from"} & set(at.query_params)
    assert int(at.dataframe[0].value["n_rows"].sum()) == 400


def test_an_outcome_summed_by_a_product_metric_takes_its_unit():
    from analysis.metrics.product import ProductMetric
    from analysis.overview import outcome_units

    revenue = ProductMetric("revenue", "sum(revenue)", unit="$", format=",.0f")
    cost = ProductMetric("shipping", ' SUM( "delivery_cost" ) ', unit="EUR")
    filtered = ProductMetric("lost", "sum(loss) FILTER (WHERE label)", unit="$")
    assert outcome_units([revenue, cost, filtered], ["revenue", "delivery_cost", "loss"]) == {
        "revenue": revenue,
        "delivery_cost": cost,
    }


def test_the_demos_revenue_reads_in_dollars(monkeypatch, demo_copy):
    import duckdb

    from analysis import get_project

    con = duckdb.connect(str(demo_copy), read_only=True)
    try:
        table = get_project(con, "lending-demo").log_table
        total = con.execute(f"SELECT sum(revenue) FROM \"{table}\" WHERE model_version = 'credit-v1'").fetchall()[0][0]
    finally:
        con.close()
    at = open_overview(monkeypatch, demo_copy, project="lending-demo", version="credit-v1")
    shown = metric_cards(at)["Total revenue"][0]
    assert shown.startswith("$") and float(shown[1:].replace(",", "")) == pytest.approx(total, abs=0.51)
    assert at.dataframe[0].value["revenue_sum"][0] == pytest.approx(total)


def test_one_version_is_said_in_the_singular(monkeypatch, projects):
    at = open_overview(monkeypatch, projects, project="pets")
    assert "Multiclass task · 400 logged predictions · 1 model version · 2026-03-01 to 2026-03-10" in texts(at)

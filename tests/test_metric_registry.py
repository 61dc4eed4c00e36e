"""The one table of metrics (analysis.metrics.registry) agrees with what the engine
computes and with what its facts claim, checked metric by metric from the registry
itself (as scikit-learn's invariance tests are driven by its one list of metrics):

* each task's metrics are the columns the engine returns for it, and its headline is
  one of them;
* "higher is better" holds: a model that predicts the labels exactly scores better than
  one that is right half the time, on the same rows, by scikit-learn's own functions;
* a proportion lies between 0 and 1 and is shown in percent; the rest in their digits;
* the words a metric is shown by come from the registry everywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from analysis import Mapping, get_project, ingest_predictions
from analysis.metrics.registry import HEADLINES, METRICS, TASKS, headline_metrics, metrics_for
from analysis.numbers import format_value, higher_is_better, is_share, metric_name, metric_title
from analysis.overview import overview_table

N = 400
SKLEARN = {  # the referee for each computed metric, as a function of (labels, predictions, scores)
    "accuracy": lambda y, p, s: skm.accuracy_score(y, p),
    "precision": lambda y, p, s: skm.precision_score(y, p),
    "recall": lambda y, p, s: skm.recall_score(y, p),
    "f1": lambda y, p, s: skm.f1_score(y, p),
    "roc_auc": lambda y, p, s: skm.roc_auc_score(y, s),
    "pr_auc": lambda y, p, s: skm.average_precision_score(y, s),
    "log_loss": lambda y, p, s: skm.log_loss(y, s),
    "brier": lambda y, p, s: skm.brier_score_loss(y, s),
    "macro_f1": lambda y, p, s: skm.f1_score(y, p, average="macro"),
    "mae": lambda y, p, s: skm.mean_absolute_error(y, p),
    "rmse": lambda y, p, s: skm.root_mean_squared_error(y, p),
    "r2": lambda y, p, s: skm.r2_score(y, p),
}


def rows(task: str, good: bool, rng: np.random.Generator) -> pd.DataFrame:
    """Labels, and predictions that are exact (``good``) or right about half the time."""
    if task == "binary":
        y = rng.integers(0, 2, N)
        score = np.where(y == 1, 0.9, 0.1) if good else rng.uniform(0.05, 0.95, N)
        pred = (score >= 0.5).astype(int)
        return pd.DataFrame({"label": y, "prediction": pred, "score": score})
    if task == "multiclass":
        y = rng.choice(["a", "b", "c"], N)
        pred = y if good else np.where(rng.random(N) < 0.5, y, rng.choice(["a", "b", "c"], N))
        return pd.DataFrame({"label": y, "prediction": pred})
    y = rng.normal(10, 3, N)
    pred = y + (0.0 if good else rng.normal(0, 3, N))
    return pd.DataFrame({"label": y, "prediction": pred})


@pytest.fixture(params=TASKS)
def scored(request, store):
    """For one task, two versions on the same labels: exact (``good``) and noisy (``bad``)."""
    task = request.param
    rng = np.random.default_rng(7)
    good, bad = rows(task, True, rng), rows(task, False, rng)
    bad["label"] = good["label"]
    frames = []
    for name, frame in (("good", good), ("bad", bad)):
        frames.append(frame.assign(id=[f"{name}{i}" for i in range(N)], v=name))
    roles = {"label": "label", "prediction": "prediction"} | ({"score": "score"} if task == "binary" else {})
    mapping = Mapping(task=task, id="id", version="v", features=[], **roles)
    if task == "binary":
        mapping = mapping.with_(positive_label="1")
    with store.write() as con:
        ingest_predictions(con, pd.concat(frames, ignore_index=True), project="p", mapping=mapping)
    with store.read() as con:
        table = overview_table(con, get_project(con, "p")).set_index("model_version")
    return task, table, {"good": good, "bad": bad}


def test_a_tasks_metrics_are_the_engines_columns_and_agree_with_scikit_learn(scored):
    task, table, frames = scored
    assert set(metrics_for(task)) <= set(table.columns)
    for name in metrics_for(task):
        for version, frame in frames.items():
            s = frame["score"] if "score" in frame else None
            expected = SKLEARN[name](frame["label"], frame["prediction"], s)
            assert table.loc[version, name] == pytest.approx(expected, abs=1e-9), (name, version)


def test_higher_is_better_means_what_it_says(scored):
    task, table, _ = scored
    for name in metrics_for(task):
        good, bad = table.loc["good", name], table.loc["bad", name]
        assert good != pytest.approx(bad), name
        assert (good > bad) == METRICS[name].higher_is_better, name
        assert higher_is_better(name) == METRICS[name].higher_is_better


def test_proportions_lie_in_the_unit_interval_and_read_in_percent(scored):
    task, table, _ = scored
    for name in metrics_for(task):
        value = table.loc["bad", name]
        if METRICS[name].proportion:
            assert 0 <= value <= 1, name
            assert is_share(name) and format_value(name, value).endswith("%")
        else:
            assert not is_share(name) and "%" not in format_value(name, value)
            assert len(format_value(name, 0.123456789).split(".")[1]) == METRICS[name].digits


def test_each_tasks_headline_is_two_of_its_metrics():
    assert set(HEADLINES) == set(TASKS)
    for task in TASKS:
        first, second = headline_metrics(task)
        assert first != second and {first, second} <= set(metrics_for(task))


def test_metrics_read_as_their_registered_words():
    for name, m in METRICS.items():
        assert metric_name(name) == m.words
        assert metric_title(name)[:1].isupper()
    assert metric_title("roc_auc") == "ROC AUC" and metric_title("mae") == "Mean absolute error"

"""Data as it really arrives, and hostile input, on the ingest and labels paths (CSV,
Parquet, DataFrame): binary class conventions other than 0/1, and a matrix of broken or
awkward files. Each input is either stored correctly (checked against the input) or
rejected with a message naming what is wrong, the database unchanged."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm

from analysis import (
    ConfigError,
    IngestError,
    Store,
    attach_labels,
    get_project,
    ingest_predictions,
    parse_mapping,
)
from analysis.cli import main
from analysis.metrics import VERSION, compute_metrics
from conftest import db_digest

FORMATS = ("csv", "parquet", "dataframe")


def write(frame: pd.DataFrame, fmt: str, path):
    """``frame`` as a CSV file, a Parquet file (pyarrow) or itself."""
    if fmt == "dataframe":
        return frame
    path = path.with_suffix("." + fmt)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return str(path)


def stored(db_path, sql="SELECT * FROM log_1 ORDER BY prediction_id"):
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql).df()


def binary_mapping(*extra: str, label: bool = True) -> object:
    project = "\n".join(['task = "binary"', *extra])
    columns = 'id = "rid"\nversion = "model"\nscore = "score"\n' + ('label = "y"\n' if label else "")
    return parse_mapping(f"[project]\n{project}\n\n[columns]\n{columns}")


def ingest(store, source, mapping, **kw):
    kw.setdefault("project", "p")
    with store.write() as con:
        return ingest_predictions(con, source, mapping=mapping, **kw)


def labels(store, source, **kw):
    kw.setdefault("project", "p")
    with store.write() as con:
        return attach_labels(con, source, **kw)


def rejected(store, db_path, call, match, exc=(IngestError, ConfigError)):
    """``call()`` raises ``exc`` matching ``match`` and leaves the database unchanged."""
    store.initialize()
    before = db_digest(db_path)
    with pytest.raises(exc, match=match) as info:
        call()
    assert db_digest(db_path) == before, "a rejected input changed the database"
    return info.value


# --- binary classes: conventions other than 0/1, true/false, yes/no ------------------------

SCORES = [0.91, 0.15, 0.62, 0.48, 0.77, 0.05, 0.55, 0.33, 0.88, 0.41, 0.69, 0.12]
IS_POS = [True, False, False, True, True, False, True, False, True, False, False, False]


def scored_frame(y) -> pd.DataFrame:
    return pd.DataFrame({"rid": [f"r{i:02d}" for i in range(len(SCORES))], "model": "m1",
                         "score": SCORES, "y": y})


def assert_metrics_equal_sklearn(store, project="p"):
    """Every binary metric of the stored project equals scikit-learn's on the input's rows."""
    y = np.array(IS_POS, dtype=int)
    s = np.array(SCORES)
    pred = (s >= 0.5).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(y, pred), "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred), "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, s), "pr_auc": skm.average_precision_score(y, s),
        "log_loss": skm.log_loss(y, s), "brier": skm.brier_score_loss(y, s),
    }
    with store.read() as con:
        frame = compute_metrics(con, get_project(con, project), group_by=[VERSION])
    assert len(frame) == 1
    for name, value in expected.items():
        assert frame[name].iloc[0] == pytest.approx(value, rel=1e-9), name


PLUS_MINUS = {
    "ints": [1 if p else -1 for p in IS_POS],
    "signed strings": ["+1" if p else "-1" for p in IS_POS],
    "floats": [1.0 if p else -1.0 for p in IS_POS],
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("values", list(PLUS_MINUS))
@pytest.mark.parametrize("named", ["positive", "both", "neither"])
def test_plus_minus_one_labels_are_ingested(store, db_path, tmp_path, fmt, values, named):
    extra = {"positive": ['positive_label = "1"'], "both": ['positive_label = "+1"', 'negative_label = -1'],
             "neither": []}[named]
    source = write(scored_frame(PLUS_MINUS[values]), fmt, tmp_path / "preds")
    report = ingest(store, source, binary_mapping(*extra))
    assert report.inserted == 12
    with store.read() as con:
        project = get_project(con, "p")
    assert (project.positive_label, project.negative_label) == ("1", "-1")
    assert stored(db_path).label.tolist() == IS_POS
    assert_metrics_equal_sklearn(store)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("extra", [['positive_label = "churned"'],
                                   ['positive_label = "churned"', 'negative_label = "stayed"'],
                                   ['negative_label = "stayed"']])
def test_text_classes_are_ingested(store, db_path, tmp_path, fmt, extra):
    y = ["churned" if p else "stayed" for p in IS_POS]
    ingest(store, write(scored_frame(y), fmt, tmp_path / "preds"), binary_mapping(*extra))
    with store.read() as con:
        project = get_project(con, "p")
    assert (project.positive_label, project.negative_label) == ("churned", "stayed")
    assert stored(db_path).label.tolist() == IS_POS
    assert_metrics_equal_sklearn(store)


def test_text_classes_without_a_positive_label_ask_for_one(store, db_path):
    y = ["churned" if p else "stayed" for p in IS_POS]
    err = rejected(store, db_path, lambda: ingest(store, scored_frame(y), binary_mapping()),
                   "positive_label", ConfigError)
    assert "'churned'" in str(err) and "'stayed'" in str(err)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("extra", [[], ['positive_label = "1"'], ['positive_label = "1"', "negative_label = -1"]])
def test_three_label_values_are_refused_with_the_values_named(store, db_path, tmp_path, fmt, extra):
    y = [1, -1, 0] * 4
    source = write(scored_frame(y), fmt, tmp_path / "preds")
    err = rejected(store, db_path, lambda: ingest(store, source, binary_mapping(*extra)), "two classes")
    for value in ("'-1'", "'0'", "'1'"):
        assert value in str(err)
    assert "'y'" in str(err)  # the column


def test_a_label_outside_the_named_classes_is_refused(store, db_path):
    y = ["churned" if p else "stayed" for p in IS_POS]
    y[4] = "paused"
    mapping = binary_mapping('positive_label = "churned"', 'negative_label = "stayed"')
    err = rejected(store, db_path, lambda: ingest(store, scored_frame(y), mapping), "paused")
    assert "'churned'" in str(err) and "'stayed'" in str(err)


def test_the_positive_and_negative_label_must_differ():
    with pytest.raises(ConfigError, match="negative_label"):
        binary_mapping('positive_label = "1"', 'negative_label = "1.0"')


def test_a_mapping_that_contradicts_the_stored_classes_is_refused(store, db_path):
    ingest(store, scored_frame(PLUS_MINUS["ints"]), binary_mapping('positive_label = "1"'))
    more = scored_frame(PLUS_MINUS["ints"]).assign(rid=lambda f: f.rid + "b")
    rejected(store, db_path, lambda: ingest(store, more, binary_mapping('positive_label = "1"', 'negative_label = "0"')),
             "negative")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", ["plus-minus", "plus-minus named", "churn named", "churn named later"])
def test_labels_for_a_project_created_from_scores_alone(store, db_path, tmp_path, fmt, case):
    extra = {"plus-minus": [], "plus-minus named": ['positive_label = "1"'],
             "churn named": ['positive_label = "churned"'], "churn named later": []}[case]
    ingest(store, scored_frame([None] * 12).drop(columns="y"), binary_mapping(*extra, label=False))
    y = PLUS_MINUS["signed strings"] if case.startswith("plus") else ["churned" if p else "stayed" for p in IS_POS]
    frame = scored_frame(y)[["rid", "y"]]
    kw = {"positive_label": "churned"} if case == "churn named later" else {}
    report = labels(store, write(frame, fmt, tmp_path / "labels"), id_column="rid", label_column="y", **kw)
    assert report.applied == 12
    with store.read() as con:
        project = get_project(con, "p")
    expected = ("1", "-1") if case.startswith("plus") else ("churned", "stayed")
    assert (project.positive_label, project.negative_label) == expected
    assert stored(db_path).label.tolist() == IS_POS
    assert_metrics_equal_sklearn(store)


def test_labels_command_names_the_classes(store, db_path, tmp_path, capsys):
    ingest(store, scored_frame([None] * 12).drop(columns="y"), binary_mapping(label=False))
    frame = scored_frame(["churned" if p else "stayed" for p in IS_POS])[["rid", "y"]]
    path = write(frame, "csv", tmp_path / "labels")
    before = db_digest(db_path)
    code = main(["labels", path, "--project", "p", "--id-column", "rid", "--label-column", "y", "--db", str(db_path)])
    assert code == 2 and "positive" in capsys.readouterr().err
    assert db_digest(db_path) == before
    code = main(["labels", path, "--project", "p", "--id-column", "rid", "--label-column", "y",
                 "--positive-label", "churned", "--db", str(db_path)])
    assert code == 0
    assert stored(db_path).label.tolist() == IS_POS


def test_labels_with_a_third_class_are_refused(store, db_path):
    ingest(store, scored_frame(PLUS_MINUS["ints"]), binary_mapping('positive_label = "1"'))
    frame = pd.DataFrame({"rid": ["r00", "r01", "r02"], "y": [0, 0, 0]})
    err = rejected(store, db_path, lambda: labels(store, frame, id_column="rid", label_column="y"), "'0'")
    assert "'1'" in str(err) and "'-1'" in str(err)


def test_labels_with_three_values_on_a_fresh_project_are_refused(store, db_path):
    ingest(store, scored_frame([None] * 12).drop(columns="y"), binary_mapping(label=False))
    frame = pd.DataFrame({"rid": ["r00", "r01", "r02"], "y": ["a", "b", "c"]})
    err = rejected(store, db_path, lambda: labels(store, frame, id_column="rid", label_column="y",
                                                  positive_label="a"), "two classes")
    assert "'b'" in str(err) and "'c'" in str(err)

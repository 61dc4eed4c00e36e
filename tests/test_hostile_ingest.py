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
from conftest import db_digest
from sklearn import metrics as skm

from analysis import (
    ConfigError,
    IngestError,
    attach_labels,
    get_project,
    ingest_predictions,
    parse_mapping,
)
from analysis.cli.main import main
from analysis.metrics.sql import VERSION, compute_metrics

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
    return pd.DataFrame({"rid": [f"r{i:02d}" for i in range(len(SCORES))], "model": "m1", "score": SCORES, "y": y})


def assert_metrics_equal_sklearn(store, project="p"):
    """Every binary metric of the stored project equals scikit-learn's on the input's rows."""
    y = np.array(IS_POS, dtype=int)
    s = np.array(SCORES)
    pred = (s >= 0.5).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, s),
        "pr_auc": skm.average_precision_score(y, s),
        "log_loss": skm.log_loss(y, s),
        "brier": skm.brier_score_loss(y, s),
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
    extra = {
        "positive": ['positive_label = "1"'],
        "both": ['positive_label = "+1"', "negative_label = -1"],
        "neither": [],
    }[named]
    source = write(scored_frame(PLUS_MINUS[values]), fmt, tmp_path / "preds")
    report = ingest(store, source, binary_mapping(*extra))
    assert report.inserted == 12
    with store.read() as con:
        project = get_project(con, "p")
    assert (project.positive_label, project.negative_label) == ("1", "-1")
    assert stored(db_path).label.tolist() == IS_POS
    assert_metrics_equal_sklearn(store)


@pytest.mark.parametrize("positive, negative", [("+1", None), (1, -1.0), (1.0, "-1"), (None, -1)])
def test_classes_of_a_mapping_built_in_python_are_normalized(store, db_path, positive, negative):
    mapping = binary_mapping().with_(positive_label=positive, negative_label=negative)
    ingest(store, scored_frame(PLUS_MINUS["ints"]), mapping)
    with store.read() as con:
        project = get_project(con, "p")
    assert (project.positive_label, project.negative_label) == ("1", "-1")
    assert stored(db_path).label.tolist() == IS_POS


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "extra",
    [
        ['positive_label = "churned"'],
        ['positive_label = "churned"', 'negative_label = "stayed"'],
        ['negative_label = "stayed"'],
    ],
)
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
    err = rejected(
        store, db_path, lambda: ingest(store, scored_frame(y), binary_mapping()), "positive_label", ConfigError
    )
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


def test_a_label_outside_the_stored_classes_is_refused_by_row(store, db_path):
    ingest(store, scored_frame(PLUS_MINUS["ints"]), binary_mapping())
    y = PLUS_MINUS["ints"][:3] + ["maybe"]
    more = scored_frame(PLUS_MINUS["ints"]).iloc[:4].assign(rid=lambda f: f.rid + "b", y=y)
    rejected(
        store,
        db_path,
        lambda: ingest(store, more, binary_mapping()),
        r"column 'y': 1 row is not one of the two classes '1' \(positive\) and '-1' \(negative\) "
        r"\(position 3: 'maybe'\)",
        IngestError,
    )


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
    rejected(
        store,
        db_path,
        lambda: ingest(store, more, binary_mapping('positive_label = "1"', 'negative_label = "0"')),
        "negative",
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", ["plus-minus", "plus-minus named", "churn named", "churn named later"])
def test_labels_for_a_project_created_from_scores_alone(store, db_path, tmp_path, fmt, case):
    extra = {
        "plus-minus": [],
        "plus-minus named": ['positive_label = "1"'],
        "churn named": ['positive_label = "churned"'],
        "churn named later": [],
    }[case]
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
    code = main(
        [
            "labels",
            path,
            "--project",
            "p",
            "--id-column",
            "rid",
            "--label-column",
            "y",
            "--positive-label",
            "churned",
            "--db",
            str(db_path),
        ]
    )
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
    err = rejected(
        store,
        db_path,
        lambda: labels(store, frame, id_column="rid", label_column="y", positive_label="a"),
        "two classes",
    )
    assert "'b'" in str(err) and "'c'" in str(err)


# --- the matrix: broken and awkward inputs --------------------------------------------------

MAPPING = parse_mapping("""
[project]
task = "binary"

[columns]
id = "rid"
version = "model"
timestamp = "ts"
score = "score"
label = "y"
""")


def base(n: int = 4, start: int = 0, **columns) -> pd.DataFrame:
    """A small binary log: ids r<start>.., one model, scores, 0/1 labels and two features."""
    i = np.arange(start, start + n)
    frame = pd.DataFrame(
        {
            "rid": [f"r{k}" for k in i],
            "model": "m1",
            "ts": [f"2026-03-0{1 + k % 9} 12:00:00" for k in i],
            "score": np.round(0.1 + (i % 8) / 10, 2),
            "y": i % 2,
            "country": np.array(["NG", "US", "DE"])[i % 3],
            "age": 20 + i,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def features_of(store, project="p") -> dict[str, str]:
    with store.read() as con:
        return {c.name: c.kind for c in get_project(con, project).features}


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_mapped_column(store, db_path, tmp_path, fmt):
    source = write(base().drop(columns="score"), fmt, tmp_path / "preds")
    err = rejected(
        store, db_path, lambda: ingest(store, source, MAPPING), r"column 'score' \(mapped as score\) is not in"
    )
    assert err.column == "score"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "column, value, message",
    [
        ("score", "abc", r"column 'score': 1 row is not a number \((line 3|row 2|position 1): 'abc'\)"),
        ("ts", "yesterday", r"column 'ts': 1 row is not a timestamp \((line 3|row 2|position 1): 'yesterday'\)"),
        ("y", "maybe", r"a binary task has two classes, but column 'y' holds 3 values: '0', '1', 'maybe'"),
    ],
)
def test_wrong_types_are_named_with_row_and_value(store, db_path, tmp_path, fmt, column, value, message):
    frame = base().astype({column: object})
    frame.loc[1, column] = value
    if fmt == "parquet":  # a Parquet column has one type: text here
        frame[column] = frame[column].astype(str)
    source = write(frame, fmt, tmp_path / "preds")
    rejected(store, db_path, lambda: ingest(store, source, MAPPING), message, IngestError)


def test_two_bad_rows_are_counted_in_the_plural(store, db_path):
    frame = base().astype({"score": object})
    frame.loc[[1, 2], "score"] = "abc"
    rejected(
        store, db_path, lambda: ingest(store, frame, MAPPING), r"column 'score': 2 rows are not numbers", IngestError
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_feature_of_another_type_on_a_second_ingest(store, db_path, tmp_path, fmt):
    ingest(store, base(), MAPPING)
    frame = base(start=10).astype({"age": object})
    frame.loc[2, "age"] = "old"
    if fmt == "parquet":
        frame["age"] = frame["age"].astype(str)
    source = write(frame, fmt, tmp_path / "more")
    rejected(
        store,
        db_path,
        lambda: ingest(store, source, MAPPING),
        r"column 'age': 1 row does not convert to BIGINT.*'old'",
        IngestError,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_ids_within_a_file(store, db_path, tmp_path, fmt):
    frame = base()
    frame.loc[3, "rid"] = "r1"
    source = write(frame, fmt, tmp_path / "preds")
    err = rejected(
        store, db_path, lambda: ingest(store, source, MAPPING), r"column 'rid': 1 row repeats an id.*'r1' \(2 times\)"
    )
    assert err.count == 1


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("how", ["folder", "glob"])
def test_duplicate_ids_across_files(store, db_path, tmp_path, fmt, how):
    folder = tmp_path / "logs"
    folder.mkdir()
    write(base(3), fmt, folder / "a")
    write(base(3, start=2), fmt, folder / "b")  # r2 is in both files
    source = str(folder) if how == "folder" else str(folder / f"*.{fmt}")
    rejected(
        store,
        db_path,
        lambda: ingest(store, source, MAPPING),
        rf"column 'rid': 1 row repeats an id.*'r2' \(2 times in a\.{fmt}, b\.{fmt}\)",
    )


def test_duplicate_ids_in_a_second_ingest(store, db_path):
    ingest(store, base(), MAPPING)
    rejected(
        store,
        db_path,
        lambda: ingest(store, base(2, start=3), MAPPING),
        r"1 of 2 prediction ids is already stored.*'r3'",
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_zero_byte_file_is_empty(store, db_path, tmp_path, fmt):
    path = tmp_path / f"empty.{fmt}"
    path.write_bytes(b"")
    err = rejected(store, db_path, lambda: ingest(store, str(path), MAPPING), "empty", IngestError)
    assert "empty.csv" in str(err) or "empty.parquet" in str(err)
    assert "not in the input" not in str(err)
    ingest(store, base(), MAPPING)
    rejected(store, db_path, lambda: labels(store, str(path)), "empty", IngestError)


def test_a_zero_byte_file_in_a_folder_is_named(store, db_path, tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    write(base(), "csv", folder / "a")
    (folder / "b.csv").write_bytes(b"")
    err = rejected(store, db_path, lambda: ingest(store, str(folder), MAPPING), "the file is empty", IngestError)
    assert str(err).startswith(str(folder / "b.csv"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_with_columns_but_no_rows(store, db_path, tmp_path, fmt):
    frame = base().iloc[:0]
    if fmt == "csv":
        path = tmp_path / "header.csv"
        path.write_text(",".join(frame.columns) + "\n")
        source = str(path)
    else:
        source = write(frame, fmt, tmp_path / "header")
    store.initialize()
    before = db_digest(db_path)
    report = ingest(store, source, MAPPING)
    assert report.inserted == 0 and "the input has no rows; nothing was written" in report.warnings
    assert db_digest(db_path) == before


def test_labels_with_no_rows(store, db_path, tmp_path):
    ingest(store, base(), MAPPING)
    path = tmp_path / "labels.csv"
    path.write_text("rid,y\n")
    before = db_digest(db_path)
    report = labels(store, str(path))
    assert report.rows_read == 0 and "the input has no rows; nothing was written" in report.warnings
    assert db_digest(db_path) == before


def test_a_truncated_parquet_file(store, db_path, tmp_path):
    path = write(base(50), "parquet", tmp_path / "whole")
    data = open(path, "rb").read()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    err = rejected(store, db_path, lambda: ingest(store, str(cut), MAPPING), "cannot be read as Parquet", IngestError)
    assert "cut.parquet" in str(err)
    ingest(store, base(), MAPPING)
    rejected(store, db_path, lambda: labels(store, str(cut)), "cannot be read as Parquet", IngestError)


@pytest.mark.parametrize("fmt", FORMATS)
def test_megabyte_cells_are_stored_whole(store, db_path, tmp_path, fmt):
    big = "x" * 1_000_000 + "😀"
    frame = base(3, note=["short", big, big[::-1]])
    frame.loc[0, "rid"] = "r" * 1_000_000
    ingest(store, write(frame, fmt, tmp_path / "preds"), MAPPING)
    got = stored(db_path, "SELECT prediction_id, note FROM log_1 ORDER BY score")
    assert got.note.tolist() == ["short", big, big[::-1]]
    assert got.prediction_id.tolist()[0] == "r" * 1_000_000
    assert features_of(store)["note"] == "text"


def test_a_csv_line_beyond_the_readers_limit_says_so(store, db_path, tmp_path):
    frame = base(2, note=["x" * 2_100_000, "short"])
    source = write(frame, "csv", tmp_path / "preds")
    rejected(
        store,
        db_path,
        lambda: ingest(store, source, MAPPING),
        r"preds.csv: cannot be read as CSV: .*CSV Error on Line: \d+: Maximum line size of \d+ bytes exceeded",
        IngestError,
    )


CONTROL = ["a\x00b", "a\tb", "a\nb", "a\x1bb", "a\x85b"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("column", ["rid", "model"])
@pytest.mark.parametrize("value", CONTROL, ids=["nul", "tab", "newline", "escape", "c1"])
def test_control_characters_in_ids_and_versions_are_refused(store, db_path, tmp_path, fmt, column, value):
    frame = base()
    frame.loc[2, column] = value
    source = write(frame, fmt, tmp_path / "preds")
    what = {"rid": "id", "model": "model version"}[column]
    err = rejected(
        store,
        db_path,
        lambda: ingest(store, source, MAPPING),
        rf"column '{column}': 1 row has a control character in its {what} \(such as NUL, a tab or a line "
        r"break\) \((line 4|row 3|position 2): ",
        IngestError,
    )
    assert err.column == column


def test_control_characters_in_example_ids_are_refused(store, db_path):
    frame = base(ex=["e1", "e\x00", "e3", "e4"])
    rejected(
        store,
        db_path,
        lambda: ingest(store, frame, MAPPING.with_(example="ex")),
        r"column 'ex': 1 row has a control character in its example id \(.*\) \(position 1: 'e\\x00'\)",
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_in_a_stage_column_are_refused(store, db_path, tmp_path, fmt):
    frame = base(stage=["production", "shadow", "production\x00", "canary"])
    source = write(frame, fmt, tmp_path / "preds")
    rejected(
        store,
        db_path,
        lambda: ingest(store, source, MAPPING.with_(stage="stage")),
        r"column 'stage': 1 row is not a stage \(offline, shadow, canary, production\) \(.* 'production\\x00'\)",
        IngestError,
    )


@pytest.mark.parametrize("option", ["version", "stage"])
def test_control_characters_in_a_constant_version_or_stage_are_refused(store, db_path, option):
    value = {"version": "v\x001", "stage": "production\x00"}[option]
    rejected(store, db_path, lambda: ingest(store, base(), MAPPING, **{option: value}), option, ConfigError)


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_in_label_keys_are_refused(store, db_path, tmp_path, fmt):
    ingest(store, base(), MAPPING)
    frame = pd.DataFrame({"rid": ["r1", "r\x002"], "y": [1, 0]})
    source = write(frame, fmt, tmp_path / "labels")
    rejected(
        store,
        db_path,
        lambda: labels(store, source),
        r"column 'rid': 1 row has a control character in its prediction id",
        IngestError,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_nul_and_emoji_in_feature_values_are_stored_as_given(store, db_path, tmp_path, fmt):
    values = ["a\x00b", "😀🇳🇬", "plain", "tab\there"]
    frame = base(note=values)
    frame.loc[1, "rid"] = "r😀"
    frame.loc[2, "model"] = "m🚀"
    ingest(store, write(frame, fmt, tmp_path / "preds"), MAPPING)
    got = stored(db_path, "SELECT prediction_id, model_version, note FROM log_1 ORDER BY score")
    assert got.note.tolist() == values
    assert got.prediction_id.tolist() == ["r0", "r😀", "r2", "r3"]
    assert got.model_version.tolist() == ["m1", "m1", "m🚀", "m1"]


ODD_NAMES = ["select", "from", "order", 'say "hi"', "it's", "a;b", "what?", "😀 mood", "x; DROP TABLE sb_projects; --"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_column_names_that_are_keywords_or_hold_quotes_semicolons_or_question_marks(store, db_path, tmp_path, fmt):
    frame = base()
    for k, name in enumerate(ODD_NAMES):
        frame[name] = [f"{k}-{j}" for j in range(len(frame))]
    ingest(store, write(frame, fmt, tmp_path / "preds"), MAPPING)
    assert set(ODD_NAMES) <= set(features_of(store))
    got = stored(db_path)
    for k, name in enumerate(ODD_NAMES):
        assert got[name].tolist() == [f"{k}-{j}" for j in range(4)], name
    # The same names work as mapped roles, and in a second ingest.
    renamed = base(start=10).rename(columns={"rid": "select", "model": "what?", "score": 'say "hi"'})
    for k, name in enumerate(ODD_NAMES):
        if name not in renamed:
            renamed[name] = "z"
    odd = MAPPING.with_(id="select", version="what?", score='say "hi"')
    report = ingest(store, write(renamed, fmt, tmp_path / "more"), odd, project="odd")
    assert report.inserted == 4
    assert stored(db_path, "SELECT prediction_id FROM log_2 ORDER BY 1").prediction_id.tolist() == [
        "r10",
        "r11",
        "r12",
        "r13",
    ]


@pytest.mark.parametrize("fmt", ["parquet", "dataframe"])
def test_a_nul_in_a_column_name(store, db_path, tmp_path, fmt):
    frame = base()
    frame["a\x00b"] = ["x", "y", "z", "w"]
    source = write(frame, fmt, tmp_path / "preds")
    rejected(store, db_path, lambda: ingest(store, source, MAPPING), r"name contains a NUL character: 'a\\x00b'")


MIXED = ["2026-03-01T10:00:00+02:00", "2026-03-01T10:00:00-05:00", "2026-03-01T10:00:00Z", "2026-03-01 10:00:00"]
UTC = [
    pd.Timestamp("2026-03-01 08:00"),
    pd.Timestamp("2026-03-01 15:00"),
    pd.Timestamp("2026-03-01 10:00"),
    pd.Timestamp("2026-03-01 10:00"),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_mixed_time_zones_in_one_column_are_stored_as_utc_instants(store, db_path, tmp_path, fmt):
    ingest(store, write(base(ts=MIXED), fmt, tmp_path / "preds"), MAPPING)
    assert stored(db_path)["timestamp"].tolist() == UTC


def test_mixed_time_zone_datetimes_in_a_dataframe(store, db_path):
    from datetime import datetime, timedelta, timezone

    values = [datetime(2026, 3, 1, 10, tzinfo=timezone(timedelta(hours=h))) for h in (2, -5, 0, 0)]
    frame = base(ts=pd.Series(values, dtype=object))
    ingest(store, frame, MAPPING)
    assert stored(db_path)["timestamp"].tolist() == UTC


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_second_ingest_with_an_extra_feature_column(store, db_path, tmp_path, fmt):
    ingest(store, base(), MAPPING)
    report = ingest(store, write(base(start=10, extra=1.5), fmt, tmp_path / "more"), MAPPING)
    assert report.inserted == 4 and any("extra" in w for w in report.warnings)
    assert "extra" not in features_of(store)
    assert stored(db_path, "SELECT age FROM log_1 ORDER BY age").age.tolist() == [20, 21, 22, 23, 30, 31, 32, 33]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_second_ingest_missing_a_feature_column(store, db_path, tmp_path, fmt):
    ingest(store, base(), MAPPING)
    source = write(base(start=10).drop(columns="age"), fmt, tmp_path / "more")
    err = rejected(
        store, db_path, lambda: ingest(store, source, MAPPING), r"feature column 'age' of project 'p' is not in"
    )
    assert err.column == "age"


# --- labels --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_labels_for_unknown_ids_wait_for_their_predictions(store, db_path, tmp_path, fmt):
    ingest(store, base().drop(columns="y"), MAPPING)
    frame = pd.DataFrame({"rid": ["r1", "zz9"], "y": [1, 0]})
    report = labels(store, write(frame, fmt, tmp_path / "labels"))
    assert (report.applied, report.pending) == (1, 1)
    waiting = stored(db_path, "SELECT key, label FROM pending_1")
    assert waiting.values.tolist() == [["zz9", False]]
    ingest(store, base(1, start=9).assign(rid="zz9").drop(columns="y"), MAPPING)
    assert stored(db_path, "SELECT label FROM log_1 WHERE prediction_id = 'zz9'").label.tolist() == [False]


@pytest.mark.parametrize("fmt", FORMATS)
def test_conflicting_labels_are_reported_not_applied(store, db_path, tmp_path, fmt):
    ingest(store, base(), MAPPING)  # r1 is labeled 1
    frame = pd.DataFrame({"rid": ["r1", "r2"], "y": [0, 0]})  # r1 conflicts, r2 agrees
    before = db_digest(db_path)
    report = labels(store, write(frame, fmt, tmp_path / "labels"))
    assert (report.conflicting, report.applied, report.unchanged) == (1, 0, 1)
    assert report.warnings == [
        "1 label or outcome disagrees with stored values and was not changed; rerun with --overwrite to replace them"
    ]
    assert stored(db_path).label.tolist() == [False, True, False, True]
    after = db_digest(db_path)
    # Only the record of the attempt and the data version changed.
    assert {t for t in after if after[t] != before[t]} == {"sb_ingests", "sb_meta"}


def test_the_same_id_twice_with_different_labels_is_refused(store, db_path):
    ingest(store, base().drop(columns="y"), MAPPING)
    frame = pd.DataFrame({"rid": ["r1", "r1"], "y": [0, 1]})
    rejected(store, db_path, lambda: labels(store, frame), r"column 'rid': 1 row repeats an id.*'r1' \(2 times\)")


@pytest.mark.parametrize("fmt", FORMATS)
def test_text_labels_for_a_regression_project_are_refused(store, db_path, tmp_path, fmt):
    frame = pd.DataFrame({"rid": ["a", "b", "c"], "model": "m", "pred": [1.5, 2.0, 3.25]})
    mapping = parse_mapping(
        '[project]\ntask = "regression"\n[columns]\nid = "rid"\nversion = "model"\nprediction = "pred"\nlabel = "y"\n'
    )
    ingest(store, frame, mapping)
    lab = pd.DataFrame({"rid": ["a", "b", "c"], "y": ["1.5", "high", "2"]})
    rejected(
        store,
        db_path,
        lambda: labels(store, write(lab, fmt, tmp_path / "labels")),
        r"column 'y': 1 row is not a number \((line 3|row 2|position 1): 'high'\)",
        IngestError,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_aware_timestamp_column_is_stored_in_utc(store, db_path, tmp_path, fmt):
    ts = pd.Series(pd.to_datetime(["2026-03-01 10:00"] * 4)).dt.tz_localize("America/New_York")
    ingest(store, write(base(ts=ts), fmt, tmp_path / "preds"), MAPPING)
    assert stored(db_path)["timestamp"].tolist() == [pd.Timestamp("2026-03-01 15:00")] * 4


@pytest.mark.parametrize("fmt", FORMATS)
def test_labels_name_a_missing_column(store, db_path, tmp_path, fmt):
    ingest(store, base(), MAPPING)
    source = write(pd.DataFrame({"rid": ["r1"], "y": [1]}), fmt, tmp_path / "labels")
    rejected(
        store,
        db_path,
        lambda: labels(store, source, label_column="outcome"),
        r"column 'outcome' \(mapped as label\) is not in the input",
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_labels_repeating_an_id_across_files(store, db_path, tmp_path, fmt):
    ingest(store, base().drop(columns="y"), MAPPING)
    folder = tmp_path / "labels"
    folder.mkdir()
    write(pd.DataFrame({"rid": ["r0", "r1"], "y": [1, 0]}), fmt, folder / "a")
    write(pd.DataFrame({"rid": ["r1", "r2"], "y": [1, 0]}), fmt, folder / "b")
    rejected(
        store,
        db_path,
        lambda: labels(store, str(folder)),
        rf"column 'rid': 1 row repeats an id.*'r1' \(2 times in a\.{fmt}, b\.{fmt}\)",
    )


# --- found here, fixed by the NaN/inf and attach work (analysis/ingest/convert.py, analysis/ingest/external.py) ---


def test_a_nan_score_in_parquet_is_refused_with_its_row(store, db_path, tmp_path):
    frame = base()
    frame.loc[1, "score"] = np.nan
    source = write(frame, "parquet", tmp_path / "preds")
    rejected(store, db_path, lambda: ingest(store, source, MAPPING), r"column 'score': 1 row .*\(row 2", IngestError)


def test_attach_a_parquet_file_with_a_question_mark_in_a_column_name(store, db_path, tmp_path):
    from analysis.ingest.external import attach_parquet

    source = write(base(**{"what?": ["a", "b", "c", "d"]}), "parquet", tmp_path / "preds")
    with store.write(create=True) as con:
        attach_parquet(con, source, project="p", mapping=MAPPING)
    assert "what?" in features_of(store)


@pytest.mark.parametrize("later", ["labels", "ingest"])
def test_a_negative_class_guessed_by_an_earlier_version_gives_way_to_the_labels(store, db_path, later):
    ingest(store, scored_frame([None] * 12).drop(columns="y"), binary_mapping('positive_label = "1"', label=False))
    # Sliceboard before 2026-12 stored the guess "0" for such a project.
    with duckdb.connect(str(db_path)) as con:
        con.execute("UPDATE sb_projects SET negative_label = '0'")
    frame = scored_frame(PLUS_MINUS["ints"])
    if later == "labels":
        labels(store, frame[["rid", "y"]], id_column="rid", label_column="y")
    else:
        ingest(store, frame.assign(rid=frame.rid + "b"), binary_mapping(), project="p")
    with store.read() as con:
        project = get_project(con, "p")
    assert (project.positive_label, project.negative_label) == ("1", "-1")
    assert (
        stored(db_path, "SELECT label FROM log_1 WHERE label IS NOT NULL ORDER BY prediction_id").label.tolist()
        == IS_POS
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_folder_of_files_is_stored_without_the_file_names_as_a_feature(store, db_path, tmp_path, fmt):
    folder = tmp_path / "logs"
    folder.mkdir()
    write(base(3), fmt, folder / "a")
    write(base(3, start=5), fmt, folder / "b")
    assert ingest(store, str(folder), MAPPING).inserted == 6
    assert set(features_of(store)) == {"country", "age"}
    assert stored(db_path, "SELECT prediction_id FROM log_1 ORDER BY 1").prediction_id.tolist() == [
        "r0",
        "r1",
        "r2",
        "r5",
        "r6",
        "r7",
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_bad_value_in_a_folder_of_files_names_the_file_and_row(store, db_path, tmp_path, fmt):
    folder = tmp_path / "logs"
    folder.mkdir()
    write(base(3), fmt, folder / "a")
    frame = base(3, start=5)
    frame.loc[1, "score"] = 7.0
    write(frame, fmt, folder / "b")
    rejected(
        store,
        db_path,
        lambda: ingest(store, str(folder), MAPPING),
        rf"column 'score': 1 row is outside \[0, 1\] \((line 3|row 2) of .*b\.{fmt}: '7\.0'\)",
        IngestError,
    )


def header_file(tmp_path, fmt: str, names: list[str]) -> str:
    """One row under a header that may repeat a name (pandas cannot write that, pyarrow can)."""
    values = {"rid": "r1", "model": "m1", "ts": "2026-03-01 12:00:00", "score": 0.5, "y": 1}
    row = [values.get(n, 3) for n in names]
    if fmt == "csv":
        path = tmp_path / "repeat.csv"
        path.write_text(",".join(names) + "\n" + ",".join(str(v) for v in row) + "\n")
    else:
        path = tmp_path / "repeat.parquet"
        pq.write_table(pa.table([pa.array([v]) for v in row], names=names), path)
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    "names, repeated",
    [
        (["rid", "model", "ts", "score", "y", "score"], "'score' and 'score'"),
        (["rid", "model", "ts", "score", "y", "age", "age"], "'age' and 'age'"),
        (["rid", "model", "ts", "score", "y", "Age", "age"], "'Age' and 'age'"),
    ],
)
def test_a_header_that_repeats_a_column_name_is_refused(store, db_path, tmp_path, fmt, names, repeated):
    source = header_file(tmp_path, fmt, names)
    err = rejected(
        store, db_path, lambda: ingest(store, source, MAPPING), "differ only in case \\(or repeat\\)", IngestError
    )
    assert repeated in str(err)


def test_a_csv_without_a_header_row_is_not_taken_for_repeated_names(store, db_path, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("rid,y\nr1,1\nr2,1\n")
    ingest(store, base(), MAPPING)
    assert labels(store, str(path)).matched_predictions == 2

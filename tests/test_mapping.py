"""Column mappings: TOML parsing and writing, rejected keys and values, guesses from
column names, and the normal form class labels are compared in."""

from __future__ import annotations

import math

import pytest

from analysis import ConfigError, Mapping, guess_mapping, load_mapping, mapping_to_toml, parse_mapping
from analysis.demo import DEMO_MAPPING_PATH
from analysis.ingest.mapping import normalize_class_value

FULL = """
[project]
name = "loans"
task = "binary"
positive_label = "default"
threshold = 0.3

[columns]
id = "request_id"
example = "application_id"
timestamp = "scored_at"
version = "model"
stage = "stage"
prediction = "decision"
score = "p_default"
label = "outcome"
label_timestamp = "outcome_at"
features = ["age", "income", "zip code"]
outcomes = ["revenue", "loss"]

[kinds]
"zip code" = "categorical"
age = "numeric"
"""


def test_parse_full_mapping():
    m = parse_mapping(FULL)
    assert (m.name, m.task, m.positive_label, m.threshold) == ("loans", "binary", "default", 0.3)
    assert m.role_columns() == {
        "id": "request_id",
        "example": "application_id",
        "timestamp": "scored_at",
        "version": "model",
        "stage": "stage",
        "prediction": "decision",
        "score": "p_default",
        "label": "outcome",
        "label_timestamp": "outcome_at",
    }
    assert m.features == ["age", "income", "zip code"] and m.outcomes == ["revenue", "loss"]
    assert m.kinds == {"zip code": "categorical", "age": "numeric"}


def test_defaults_of_a_minimal_mapping():
    m = parse_mapping('[columns]\nid = "rid"\n')
    assert m == Mapping(id="rid")
    assert m.threshold == 0.5 and m.features is None and m.outcomes == [] and m.kinds == {}
    assert m.task is None and m.positive_label is None


@pytest.mark.parametrize(
    "mapping",
    [
        parse_mapping(FULL),
        Mapping(id="rid"),
        Mapping(
            name="ünïcode",
            task="multiclass",
            id="Request ID",
            example="Request ID",
            version="m",
            prediction="pred",
            features=[],
            outcomes=['a "quoted" name'],
        ),
        Mapping(
            task="regression",
            id="id",
            version="v",
            prediction="y_hat",
            label="y",
            threshold=1.0,
            features=["x"],
            kinds={"x": "text"},
        ),
        load_mapping(DEMO_MAPPING_PATH),
        Mapping(task="binary", positive_label="1", negative_label="-1", id="id", version="v", score="s"),
    ],
    ids=["full", "minimal", "odd-names", "regression", "demo", "both-classes"],
)
def test_toml_round_trip(mapping):
    text = mapping_to_toml(mapping)
    again = parse_mapping(text)
    assert again == mapping
    assert mapping_to_toml(again) == text
    # features = None (every unmapped column) and features = [] (none) stay different.
    assert ("features" in text) == (mapping.features is not None)


def test_load_mapping_reads_files_and_names_them(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(FULL, encoding="utf-8")
    assert load_mapping(path) == parse_mapping(FULL)
    assert load_mapping(str(path)) == parse_mapping(FULL)
    with pytest.raises(ConfigError, match=r"Cannot read mapping file .*missing\.toml"):
        load_mapping(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('[project]\ntask = "binary"\ncolour = "red"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.toml") as info:
        load_mapping(bad)
    assert "colour" in str(info.value)


def test_demo_mapping_file():
    m = load_mapping(DEMO_MAPPING_PATH)
    assert (m.name, m.task, m.positive_label) == ("lending-demo", "binary", "default")
    assert m.id == "prediction_id" and m.example == "application_id" and m.score == "p_default"
    assert "credit_history_years" in m.features and m.outcomes == ["revenue", "loss"]


# --- rejected ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('[project]\ntask = "binary"\ntreshold = 0.4\n', "unknown key(s) in [project]: treshold."),
        ('[columns]\nid = "a"\nlabels = "y"\nfeature = ["x"]\n', "unknown key(s) in [columns]: feature, labels."),
        ('[colums]\nid = "a"\n', "unknown section(s) colums;"),
        ('version = 2\n[columns]\nid = "a"\n', "unknown section(s) version;"),
    ],
)
def test_unknown_keys_are_rejected_by_name(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse_mapping(text, origin="loans.toml")
    message = str(info.value)
    assert message.startswith("loans.toml: ") and fragment in message


@pytest.mark.parametrize(
    "text, match",
    [
        (
            '[project]\ntask = "classification"\n',
            r"task = 'classification' is not one of binary, multiclass, regression",
        ),
        ("[project]\ntask = 1\n", r"\[project\] task must be a string"),
        ('[project]\nname = ["a"]\n', r"\[project\] name must be a string"),
        ("[project]\nthreshold = 1.5\n", r"threshold must be a number in \[0, 1\]"),
        ("[project]\nthreshold = -0.1\n", r"threshold must be a number in \[0, 1\]"),
        ("[project]\nthreshold = nan\n", r"threshold must be a number in \[0, 1\]"),
        ('[project]\nthreshold = "0.5"\n', r"threshold must be a number"),
        ("[project]\nthreshold = true\n", r"threshold must be a number"),
        (
            '[kinds]\nzip = "category"\n',
            r"\[kinds\] zip = 'category' is not one of categorical, numeric, boolean, text, timestamp",
        ),
        ("[kinds]\nzip = 3\n", r"\[kinds\] must map column names to kind names"),
        ('kinds = "categorical"\n', r"\[kinds\] must map column names to kind names"),
        ('project = "loans"\n', r"\[project\] must be a table"),
        ('[columns]\nid = ["a", "b"]\n', r"\[columns\] id must be a column name"),
        ('[columns]\nfeatures = "age"\n', r"\[columns\] features must be a list of column names"),
        ("[columns]\noutcomes = [1, 2]\n", r"\[columns\] outcomes must be a list of column names"),
        ('[columns]\nid = "a"\nlabel = "a"\n', r"Column 'a' is mapped twice: as id and as label"),
        ('[columns]\nid = "a"\nscore = "s"\nfeatures = ["s"]\n', r"Column 's' is mapped as score and also listed"),
        ('[columns]\nfeatures = ["x", "y"]\noutcomes = ["y"]\n', r"both as features and outcomes: y"),
        ('[project\ntask = "binary"\n', r"is not valid TOML"),
        (
            '[project]\npositive_label = "1"\nnegative_label = 1.0\n',
            r"positive_label and negative_label name the same class \('1'\)",
        ),
        ('[project]\nnegative_label = ""\n', r"\[project\] negative_label is empty"),
        ('[project]\nnegative_label = ["no"]\n', r"\[project\] negative_label must be a class value"),
        ("[project]\npositive_label = {a = 1}\n", r"\[project\] positive_label must be a class value"),
        ('[metrics.x]\nexpression = "sum(revenue)"\ndirection = 3\n', r"\[metrics.x\] direction, unit and format"),
        ('[metrics.x]\nexpr = "sum(revenue)"\n', r"\[metrics.x\] needs expression .*unknown key\(s\) expr"),
        ('[metrics]\nx = "sum(revenue)"\n', r"product metrics are tables \[metrics.NAME\]"),
        ("[engine]\nname = 2\n", r"\[engine\] name and spark_remote are strings"),
        ('engine = "spark"\n', r"\[engine\] must be a table"),
    ],
)
def test_bad_values_are_rejected(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_mapping(text)


@pytest.mark.parametrize(
    "literal, expected",
    [("-1", "-1"), ("-1.0", "-1"), ('"-1"', "-1"), ('" stayed "', "stayed"), ("false", "false"), ('"No"', "No")],
)
def test_negative_label_is_read_and_normalized(literal, expected):
    m = parse_mapping(f"[project]\nnegative_label = {literal}\n")
    assert m.negative_label == expected and m.positive_label is None


def test_example_may_be_the_id_column():
    m = parse_mapping('[columns]\nid = "rid"\nexample = "rid"\n')
    assert (m.id, m.example) == ("rid", "rid")
    with pytest.raises(ConfigError, match="mapped twice"):
        parse_mapping('[columns]\nid = "rid"\ntimestamp = "rid"\n')


def test_validate_catches_bad_task_on_a_hand_built_mapping():
    with pytest.raises(ConfigError, match="'ranking' is not one of"):
        Mapping(id="a", task="ranking").validate()
    assert Mapping(id="a", task="regression").validate().task == "regression"


@pytest.mark.parametrize(
    "literal, expected", [("1", "1"), ("1.0", "1"), ("true", "true"), ('" Default "', "Default"), ('"YES"', "YES")]
)
def test_positive_label_is_normalized(literal, expected):
    assert parse_mapping(f"[project]\npositive_label = {literal}\n").positive_label == expected


# --- guesses -------------------------------------------------------------------------------------


def test_guess_typical_log():
    m = guess_mapping(["request_id", "ts", "model", "score", "label", "stage", "country", "revenue"])
    assert m.role_columns() == {
        "id": "request_id",
        "timestamp": "ts",
        "version": "model",
        "stage": "stage",
        "score": "score",
        "label": "label",
    }
    # The id column is not reused as the example; features stay "every other column".
    assert m.example is None and m.features is None and m.outcomes == ["revenue"]
    assert m.task is None and m.prediction is None


def test_guess_prefers_the_most_specific_name():
    cols = [
        "id",
        "prediction_id",
        "request_id",
        "ts",
        "timestamp",
        "model",
        "model_version",
        "prob",
        "proba",
        "prediction",
        "pred",
        "y",
        "label",
        "label_ts",
        "environment",
    ]
    m = guess_mapping(cols)
    assert m.role_columns() == {
        "id": "prediction_id",
        "example": "request_id",
        "timestamp": "timestamp",
        "version": "model_version",
        "stage": "environment",
        "prediction": "prediction",
        "score": "proba",
        "label": "label",
        "label_timestamp": "label_ts",
    }


def test_guess_ignores_case_spaces_and_dashes_and_keeps_original_names():
    m = guess_mapping(["Request-ID", "Model Version", "TS", "Predicted Label", "Y_TRUE", "Revenue", "Clicks"])
    assert m.role_columns() == {
        "id": "Request-ID",
        "timestamp": "TS",
        "version": "Model Version",
        "prediction": "Predicted Label",
        "label": "Y_TRUE",
    }
    assert m.outcomes == ["Revenue", "Clicks"]


def test_guess_other_typical_names():
    m = guess_mapping(
        ["uuid", "sample_id", "created_at", "model_name", "y_pred", "confidence", "target", "labeled_at", "deployment"]
    )
    assert m.role_columns() == {
        "id": "uuid",
        "example": "sample_id",
        "timestamp": "created_at",
        "version": "model_name",
        "stage": "deployment",
        "prediction": "y_pred",
        "score": "confidence",
        "label": "target",
        "label_timestamp": "labeled_at",
    }


def test_guess_finds_nothing_in_unrelated_names():
    m = guess_mapping(["alpha", "beta", "gamma"])
    assert m.role_columns() == {} and m.outcomes == []


def test_guess_keeps_what_the_base_sets():
    base = Mapping(id="score", task="binary", positive_label="yes", outcomes=["loss"])
    m = guess_mapping(["id", "score", "label", "ts", "revenue", "loss"], base=base)
    # "score" is taken as the id, so it is not guessed as the score; "id" names no other role.
    assert m.id == "score" and m.score is None and m.label == "label" and m.timestamp == "ts"
    assert (m.task, m.positive_label, m.outcomes) == ("binary", "yes", ["loss"])
    assert base == Mapping(id="score", task="binary", positive_label="yes", outcomes=["loss"]), "base unchanged"


def test_guessed_mapping_round_trips():
    m = guess_mapping(["prediction_id", "ts", "model", "score", "label", "revenue"]).with_(task="binary")
    assert parse_mapping(mapping_to_toml(m)) == m


# --- class values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        (float("nan"), None),
        (True, "true"),
        (False, "false"),
        ("TRUE", "true"),
        (" False ", "false"),
        (1, "1"),
        (0, "0"),
        (-3, "-3"),
        (1.0, "1"),
        (0.0, "0"),
        (-0.0, "0"),
        (2.5, "2.5"),
        ("1", "1"),
        ("1.0", "1"),
        ("01", "1"),
        (" 7 ", "7"),
        ("1e3", "1000"),
        ("-0", "0"),
        ("default", "default"),
        (" Yes ", "Yes"),
        ("cat dog", "cat dog"),
        ("", ""),
        ("0.25", "0.25"),
        (10**20, str(10**20)),
    ],
)
def test_normalize_class_value(value, expected):
    assert normalize_class_value(value) == expected


def test_numpy_scalars_normalize_like_python_values():
    np = pytest.importorskip("numpy")
    assert normalize_class_value(np.int64(1)) == "1"
    assert normalize_class_value(np.float64(0.0)) == "0"
    assert normalize_class_value(np.bool_(True)) == "true"
    assert normalize_class_value(np.float64("nan")) is None


def test_text_and_number_forms_of_a_class_agree():
    for number in (0, 1, 2, 42, -5, 1e6):
        assert normalize_class_value(str(number)) == normalize_class_value(number)
    assert math.isclose(float(normalize_class_value(0.1)), 0.1)


def test_large_integer_text_keeps_its_digits():
    assert normalize_class_value("9007199254740993") == "9007199254740993"
    assert normalize_class_value("9007199254740993") == normalize_class_value(9007199254740993)
    assert normalize_class_value("9007199254740993") != normalize_class_value("9007199254740992")


def test_the_declared_sections_are_the_mapping_roles():
    """The file's declared [columns] keys are the mapping's roles plus features and outcomes,
    and a mapping written back to TOML reads as the same mapping."""
    from analysis.ingest.mapping import ROLE_KEYS, Mapping, mapping_to_toml
    from analysis.ingest.mapping_file import ColumnsSection

    assert set(ColumnsSection.model_fields) == set(ROLE_KEYS) | {"features", "outcomes"}
    full = Mapping(
        name="loans",
        task="binary",
        positive_label="1",
        negative_label="0",
        threshold=0.3,
        features=["age"],
        outcomes=["revenue"],
        kinds={"age": "numeric"},
        metrics={"rev": {"expression": "sum(revenue)", "unit": "$"}},
        engine={"name": "duckdb"},
        **{role: f"c_{role}" for role in ROLE_KEYS},
    )
    assert parse_mapping(mapping_to_toml(full)) == full

"""The one formatting of numbers: hand-checked cases of what people read."""

import math

import pandas as pd
import pytest

from analysis.numbers import (
    format_count,
    format_delta,
    format_number,
    format_p,
    format_value,
    metric_name,
    metric_title,
)

MONEY = [
    {"name": "revenue", "expression": "sum(outcome_revenue)", "direction": "higher", "unit": "$", "format": ",.2f"}
]


@pytest.mark.parametrize(
    "p, shown",
    [
        (0.0, "< 1e-16"),
        (1e-300, "< 1e-16"),
        (3.2e-7, "3.2e−7"),
        (0.0041, "0.0041"),
        (0.032, "0.032"),
        (0.5, "0.5"),
        (1.0, "1"),
        (None, "–"),
        (math.nan, "–"),
        (pd.NA, "–"),
    ],
)
def test_p_values_read_as_people_write_them(p, shown):
    assert format_p(p) == shown


def test_large_numbers_keep_every_digit_with_separators():
    assert format_number(18_523_881.38) == "18,523,881"
    assert format_number(1_234.5) == "1,234.5"
    assert format_number(1.07) == "1.070"
    assert format_count(12345) == "12,345"
    assert format_count(None) == "–"


def test_values_take_their_meaning_from_the_name():
    assert format_value("error_rate", 0.419) == "41.9%"
    assert format_value("roc_auc", 0.5512) == "0.551"
    assert format_value("log_loss", 1.0712) == "1.0712"
    assert format_value("revenue", -1204.5, MONEY) == "−$1,204.50"
    assert format_value("n_rows", 1_000_000) == "1,000,000"
    assert format_value("accuracy", None) == "–"


def test_changes_are_signed_in_their_unit():
    assert format_delta("accuracy", -0.031) == "−3.1 points"
    assert format_delta("revenue", -1204.5, MONEY) == "−$1,204.50"
    assert format_delta("roc_auc", 0.042) == "+0.042"


def test_names_read_as_words():
    assert metric_title("roc_auc") == "ROC AUC"
    assert metric_title("error_rate") == "Error rate"
    assert metric_name("macro_f1") == "macro F1"
    assert metric_title("revenue", MONEY) == "Revenue"


def test_a_change_that_rounds_to_zero_has_no_sign():
    assert format_delta("accuracy", -0.00001) == "0.0 points"
    assert format_delta("roc_auc", -0.0001) == "0.000"


def test_a_small_value_in_a_totals_format_keeps_three_significant_digits():
    """A total's format (",.0f") would show revenue per prediction of $0.43 as "$0"."""
    whole = [
        {"name": "revenue", "expression": "sum(outcome_revenue)", "direction": "higher", "unit": "$", "format": ",.0f"}
    ]
    assert format_value("revenue", 0.4312, whole) == "$0.431"
    assert format_value("revenue", 12.5, whole) == "$12.5"
    assert format_value("revenue", 1060.2, whole) == "$1,060"
    assert format_value("revenue", 0.0, whole) == "$0"
    assert format_delta("revenue", -0.0213, whole) == "−$0.0213"


@pytest.mark.parametrize(
    "value, shown",
    [
        (9.44403, "9.444"),
        (11.91494, "11.91"),
        (34.7317, "34.73"),
        (1234.56, "1,235"),
        (0.123456, "0.1235"),
        (0.0123456, "0.0123"),
        (-3.14159, "−3.142"),
        (123456.7, "123,457"),
    ],
)
def test_an_error_in_the_labels_units_has_four_significant_digits(value, shown):
    """MAE and RMSE are in the label's units (dollars, minutes): four significant digits,
    never scientific notation, where fixed decimals showed 9.4440 and 11.9149."""
    from analysis.numbers import format_value

    assert format_value("mae", value) == shown and format_value("rmse", value) == shown

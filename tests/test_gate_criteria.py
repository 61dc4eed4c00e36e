"""Gate criteria are checked against a declared model (pydantic, strict) when they are
set and when they are read back: each refusal names the criterion and what it must be,
and stored criteria that a person or an older version left malformed are refused the
same way rather than failing deep inside the gate."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import db_digest

from analysis import ConfigError, Mapping, Store, get_project, ingest_predictions
from analysis.compare.gate import CRITERIA_WORDS, GateCriteria, criteria_from_dict, get_criteria, set_criteria


@pytest.mark.parametrize(
    "values, refused",
    [
        ({"slice_min_rows": 0}, "slice_min_rows is a whole number of rows, at least 1"),
        ({"slice_min_rows": True}, "slice_min_rows"),
        ({"slice_min_rows": 2.5}, "slice_min_rows"),
        ({"product_max_worse": "0.1"}, "product_max_worse is a share"),
        ({"product_max_worse": -0.01}, "product_max_worse"),
        ({"slice_max_worse": 1.5}, "slice_max_worse is a difference of error rates"),
        ({"overall_max_worse": float("inf")}, "overall_max_worse"),
        ({"overall_max_worse": float("nan")}, "overall_max_worse"),
        ({"discovered_slices": 51}, "discovered_slices is a whole number from 0"),
        ({"required_sets": "some"}, "required_sets is 'all' or a list"),
        ({"required_sets": ["a", 1]}, "required_sets"),
        ({"slice_max_wrose": 0.1}, "unknown criterion 'slice_max_wrose'"),
    ],
)
def test_a_criterion_out_of_its_range_is_refused_by_name(values, refused):
    with pytest.raises(ConfigError, match=refused):
        criteria_from_dict(values)


def test_the_defaults_and_good_values_pass_unchanged():
    assert criteria_from_dict({}) == GateCriteria()
    good = {"product_max_worse": 0, "slice_min_rows": 100, "required_sets": ["partner"], "overall_max_worse": 0.5}
    assert criteria_from_dict(good) == GateCriteria(
        product_max_worse=0.0, slice_min_rows=100, required_sets=("partner",), overall_max_worse=0.5
    )
    assert set(CRITERIA_WORDS) == set(GateCriteria.__dataclass_fields__)


def test_malformed_stored_criteria_are_refused_readably_and_setting_bad_ones_writes_nothing(tmp_path):
    store = Store(tmp_path / "g.duckdb")
    frame = pd.DataFrame({"id": ["a", "b"], "v": "m", "label": [1, 0], "prediction": [1, 1]})
    mapping = Mapping(task="binary", id="id", version="v", label="label", prediction="prediction", positive_label="1")
    with store.write() as con:
        ingest_predictions(con, frame, project="p", mapping=mapping)
        project = get_project(con, "p")
        set_criteria(con, project, GateCriteria(slice_min_rows=100))
    before = db_digest(store.path)
    with store.write() as con:
        with pytest.raises(ConfigError, match="discovered_slices"):
            set_criteria(con, project, GateCriteria(discovered_slices=-1))
    assert db_digest(store.path) == before
    with store.write() as con:
        con.execute("UPDATE sb_gates SET criteria = ?", [json.dumps({"slice_min_rows": "many"})])
    with store.read() as con:
        with pytest.raises(ConfigError, match="slice_min_rows is a whole number"):
            get_criteria(con, project)

"""Guessing which column is which from names and values (analysis/ingest/guess_columns.py),
checked by hand on small files."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import Mapping
from analysis.ingest.guess_columns import ColumnProfile, guess_columns, guess_source, profile_source


def churn_frame(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "scored_at": pd.date_range("2026-10-01", periods=n, freq="h"),
            "plan": ["basic", "pro"] * (n // 2),
            "region": ["north", "south", "east", "west"] * (n // 4),
            "tenure_months": list(range(n)),
            "p_churn": [round(0.01 + i / (n + 1), 4) for i in range(n)],
            "churned": [0, 1] * (n // 2),
            "monthly_revenue": [10.5 + i for i in range(n)],
        }
    )


def test_a_churn_file_gets_its_score_label_outcome_and_id():
    g = guess_source(churn_frame())
    m = g.mapping
    assert (m.id, m.timestamp, m.score, m.label) == ("customer_id", "scored_at", "p_churn", "churned")
    assert m.outcomes == ["monthly_revenue"]
    assert m.features == ["plan", "region", "tenure_months"]
    assert m.task == "binary"
    # Each guess says why.
    assert "p_" in g.reasons["score"] and "[0, 1]" in g.reasons["score"]
    assert "churn" in g.reasons["label"] and "two values (0, 1)" in g.reasons["label"]
    assert "revenue" in g.reasons["outcomes"]


@pytest.mark.parametrize("as_file", [False, True])
def test_the_profile_of_a_sample_is_what_the_rows_hold(tmp_path, as_file):
    source = churn_frame()
    if as_file:  # a CSV's values are read as text, its types as DuckDB's sniffer sees them
        source.assign(vip=[True, False] * 20).to_csv(tmp_path / "churn.csv", index=False)
        source = str(tmp_path / "churn.csv")
    profiles = {p.name: p for p in profile_source(source)}
    churned = profiles["churned"]
    assert churned.numeric and churned.n_distinct == 2 and churned.values == ("0", "1")
    assert profiles["customer_id"].unique and not profiles["customer_id"].numeric
    assert profiles["scored_at"].temporal
    assert profiles["p_churn"].in_unit_interval and not profiles["p_churn"].integral
    assert profiles["tenure_months"].integral and profiles["tenure_months"].max == 39


def test_score_name_patterns_need_values_in_the_unit_interval():
    def score(name, lo, hi):
        return ColumnProfile(name, numeric=True, n_distinct=50, n_values=50, min=lo, max=hi)

    for name in ("fraud_score", "prob_default", "click_prob", "score", "p_fraud"):
        assert guess_columns([score(name, 0.01, 0.97)]).mapping.score == name, name
    # A "score" from 300 to 850 is a credit bureau score, a feature: not the model's score.
    g = guess_columns([score("bureau_score", 300, 850)])
    assert g.mapping.score is None and g.mapping.features == ["bureau_score"]


def test_label_names_need_two_values_for_a_classifier():
    def col(name, distinct, values=()):
        return ColumnProfile(
            name, numeric=True, n_distinct=distinct, n_values=100, min=0, max=1, integral=True, values=values
        )

    score = ColumnProfile("risk_score", numeric=True, n_distinct=90, n_values=100, min=0.0, max=0.99)
    for name in ("is_fraud", "default_flag", "target", "label", "y", "defaulted"):
        g = guess_columns([score, col(name, 2, ("0", "1"))])
        assert g.mapping.label == name, name
    # Many values under a label-like name, next to a score: not a label.
    assert guess_columns([score, col("is_active_days", 30)]).mapping.label is None
    # The column naming what the score scores wins over a generic yes/no name.
    g = guess_columns(
        [
            ColumnProfile("p_churn", numeric=True, n_distinct=90, n_values=100, min=0.0, max=0.9),
            col("is_premium", 2, ("0", "1")),
            col("churned", 2, ("0", "1")),
        ]
    )
    assert g.mapping.label == "churned"


def test_a_regression_file():
    frame = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(30)],
            "created_at": pd.date_range("2026-10-01", periods=30, freq="D"),
            "model_version": ["eta-1", "eta-2"] * 15,
            "distance_km": [1.5 + i for i in range(30)],
            "predicted_minutes": [10.0 + 2 * i for i in range(30)],
            "actual_minutes": [11.5 + 2 * i for i in range(30)],
            "delivery_cost": [3.25 + i for i in range(30)],
        }
    )
    m = guess_source(frame).mapping
    assert (m.id, m.version, m.prediction, m.label) == (
        "order_id",
        "model_version",
        "predicted_minutes",
        "actual_minutes",
    )
    assert m.task == "regression" and m.outcomes == ["delivery_cost"] and m.features == ["distance_km"]


def test_a_multiclass_file_and_an_id_left_out_of_the_features():
    frame = pd.DataFrame(
        {
            "pred_id": range(60),
            "session_id": [f"s{i}" for i in range(60)],
            "predicted_class": ["cat", "dog", "bird"] * 20,
            "label": ["cat", "dog", "bird", "dog"] * 15,
            "brightness": [i / 60 for i in range(60)],
        }
    )
    g = guess_source(frame)
    assert (g.mapping.id, g.mapping.prediction, g.mapping.label) == ("pred_id", "predicted_class", "label")
    assert g.mapping.task == "multiclass"
    assert g.mapping.features == ["brightness"] and g.left_out == ["session_id"]
    assert "session_id" in g.reasons["features"]


def test_an_existing_projects_mapping_wins_and_nothing_is_guessed_twice():
    base = Mapping(
        task="binary",
        id="customer_id",
        score="p_churn",
        label="churned",
        outcomes=["monthly_revenue"],
        features=["plan"],
    )
    g = guess_source(churn_frame(), base=base)
    assert g.mapping.label == "churned" and g.reasons["label"] == "as in the project's mapping"
    assert g.mapping.features == ["plan"] and g.mapping.outcomes == ["monthly_revenue"]
    roles = [c for c in g.mapping.role_columns().values()]
    assert len(roles) == len(set(roles))


def test_an_id_that_repeats_is_the_example_not_the_prediction():
    # Two versions scored the same 20 customers: customer_id repeats, score_id is unique.
    frame = pd.concat([churn_frame(20).assign(model="a"), churn_frame(20).assign(model="b")], ignore_index=True)
    frame.insert(0, "score_id", [f"s{i}" for i in range(40)])
    g = guess_source(frame)
    assert (g.mapping.id, g.mapping.example, g.mapping.version) == ("score_id", "customer_id", "model")
    assert "repeated (20 distinct in 40 rows)" in g.reasons["example"]
    assert "customer_id" not in g.mapping.features

"""The Import page under AppTest: it works on the project chosen in the sidebar, guesses
columns from names and values (and says why), and shows the new state after a write."""

from __future__ import annotations

import duckdb
import pandas as pd
from test_app import app_on, texts

from analysis import Store, get_project


def churn_file(n: int = 40, start: int = 0) -> pd.DataFrame:
    i = range(start, start + n)
    return pd.DataFrame(
        {
            "customer_id": [f"c{k}" for k in i],
            "scored_at": [pd.Timestamp("2026-10-01") + pd.Timedelta(hours=k) for k in i],
            "plan": [["basic", "pro"][k % 2] for k in i],
            "region": [["north", "south", "east", "west"][k % 4] for k in i],
            "tenure_months": [1 + k % 30 for k in i],
            "p_churn": [round(0.05 + (k % 9) / 10, 2) for k in i],
            "churned": [k % 3 == 0 for k in i],
            "monthly_revenue": [round(20 + 1.5 * k, 2) for k in i],
        }
    )


def upload(at, frame: pd.DataFrame, name: str, key: str = "imp_pred_upload"):
    at.file_uploader(key=key).set_value((name, frame.to_csv(index=False).encode(), "text/csv"))
    return at.run()


def stored(path, project: str) -> pd.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f'SELECT * FROM "{get_project(con, project).log_table}"').df()
    finally:
        con.close()


def test_a_churn_file_gets_its_columns_guessed_and_a_new_project_shows_at_once(monkeypatch, tmp_path):
    path = tmp_path / "churn.duckdb"
    Store(path).initialize()
    at = app_on(monkeypatch, path).run()
    at.switch_page("pages/import.py").run()
    upload(at, churn_file(), "churn.csv")
    assert not at.exception
    # Guessed from names and values, preselected.
    assert at.selectbox(key="imp_role_id").value == "customer_id"
    assert at.selectbox(key="imp_role_timestamp").value == "scored_at"
    assert at.selectbox(key="imp_role_score").value == "p_churn"
    assert at.selectbox(key="imp_role_label").value == "churned"
    assert at.multiselect(key="imp_outcomes").value == ["monthly_revenue"]
    assert at.multiselect(key="imp_features").value == ["plan", "region", "tenure_months"]
    assert at.selectbox(key="imp_task").value == "binary"
    # And why.
    said = texts(at)
    assert at.expander[-1].label == "What was guessed, and why"
    assert "named like a probability" in said and "two values (False, True)" in said
    assert "monthly_revenue: a number named like a product outcome (revenue)" in said
    # The user overrides a guess, and it stays.
    at.selectbox(key="imp_role_version").set_value("—").run()
    at.multiselect(key="imp_features").set_value(["plan", "tenure_months"]).run()
    assert at.multiselect(key="imp_features").value == ["plan", "tenure_months"]
    assert at.selectbox(key="imp_role_score").value == "p_churn"
    at.text_input(key="imp_new_name").input("churn").run()
    at.text_input(key="imp_const_version").input("churn-a").run()
    at.button(key="imp_ingest").click().run()
    assert not at.exception
    # The new state at once: a confirmation, and the sidebar lists and selects the project.
    assert [t.value for t in at.toast] and "Ingested 40 predictions into **churn**" in at.toast[0].value
    assert at.selectbox(key="project").options == ["churn"] and at.selectbox(key="project").value == "churn"
    rows = stored(path, "churn")
    assert len(rows) == 40 and rows["label"].notna().sum() == 40
    assert set(rows["model_version"]) == {"churn-a"}
    project = Store(path)
    with project.read() as con:
        p = get_project(con, "churn")
        assert [c.name for c in p.features] == ["plan", "tenure_months"]
        assert [c.name for c in p.outcomes] == ["monthly_revenue"]
    # Labels and outcomes go to the sidebar's project, with no picker of their own.
    at.radio(key="imp_kind").set_value("Labels and outcomes").run()
    assert "**churn**" in texts(at) and not [s for s in at.selectbox if s.key == "imp_lab_project"]


def test_adding_to_the_sidebars_project_by_default(monkeypatch, tmp_path):
    path = tmp_path / "two.duckdb"
    Store(path).initialize()
    at = app_on(monkeypatch, path).run()
    at.switch_page("pages/import.py").run()
    for name in ("alpha", "beta"):
        upload(at, churn_file(10, start=0 if name == "alpha" else 100), f"{name}.csv")
        at.radio(key="imp_target").set_value("new").run()
        at.text_input(key="imp_new_name").input(name).run()
        at.text_input(key="imp_const_version").input("v1").run()
        at.button(key="imp_ingest").click().run()
        assert not at.exception and at.selectbox(key="project").value == name
    # The sidebar says alpha: the page adds to alpha.
    at.selectbox(key="project").set_value("alpha").run()
    upload(at, churn_file(5, start=500), "more.csv")
    at.text_input(key="imp_const_version").input("v1").run()
    target = at.radio(key="imp_target")
    assert target.value == "add" and "alpha" in target.format_func("add")
    assert not [t for t in at.text_input if t.key == "imp_new_name"]
    assert not at.warning
    at.button(key="imp_ingest").click().run()
    assert not at.exception and "into **alpha**" in at.toast[0].value
    # A file that does not fit the sidebar's project says so before anything is written.
    upload(at, churn_file(5, start=900).drop(columns=["plan", "region"]), "other.csv")
    assert "lacks 2 of the 3 features of alpha (plan, region)" in at.warning[0].value.replace("\\", "")
    assert len(stored(path, "alpha")) == 15 and len(stored(path, "beta")) == 10


def test_late_labels_with_other_names_are_guessed_for_the_sidebars_project(monkeypatch, tmp_path):
    path = tmp_path / "late.duckdb"
    Store(path).initialize()
    at = app_on(monkeypatch, path).run()
    at.switch_page("pages/import.py").run()
    upload(at, churn_file(12).drop(columns=["churned", "monthly_revenue"]), "scores.csv")
    at.text_input(key="imp_new_name").input("churn").run()
    at.text_input(key="imp_const_version").input("v1").run()
    at.button(key="imp_ingest").click().run()
    assert not at.exception and at.selectbox(key="project").value == "churn"
    at.radio(key="imp_kind").set_value("Labels and outcomes").run()
    labels = pd.DataFrame(
        {
            "customer_id": [f"c{k}" for k in range(6)],
            "is_churned": [1, 0, 0, 1, 0, 0],
            "revenue_usd": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
        }
    )
    upload(at, labels, "outcomes.csv", key="imp_lab_upload")
    assert at.selectbox(key="imp_lab_id").value == "customer_id"
    assert at.selectbox(key="imp_lab_label").value == "is_churned"
    assert at.multiselect(key="imp_lab_outcomes").value == ["revenue_usd"]
    at.button(key="imp_lab_go").click().run()
    assert not at.exception and "6 predictions updated" in at.toast[0].value
    assert stored(path, "churn")["label"].notna().sum() == 6

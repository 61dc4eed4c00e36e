"""A write invalidates what it changed: every area of a project has a signature
(analysis.store.changes), each write changes exactly its own, and the app keeps every cached
answer whose areas did not change, while still seeing writes of other processes."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from conftest import SMALL_MAPPING, small_predictions
from test_app import app_on

from analysis import ConfigError, Store, attach_labels, get_project, ingest_predictions, parse_mapping
from analysis.compare.gate import GateCriteria, set_criteria
from analysis.engines.settings import EngineSettings, set_settings
from analysis.estimation import ReferenceChoice, set_reference_choice
from analysis.metrics.product import ProductMetric, define_metric
from analysis.reports import add_block
from analysis.slices import parse_slice
from analysis.slices.saved import save_slice
from analysis.store.changes import AREAS, READS, areas_read, signatures
from analysis.valsets import Selection, create_set, promote


def _two_projects(path) -> Store:
    store = Store(path, busy_timeout=10)
    with store.write() as con:
        for name in ("p", "q"):
            ingest_predictions(con, small_predictions(40), project=name, mapping=parse_mapping(SMALL_MAPPING))
    return store


def _labels(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "label": [i % 3 == 0 for i in range(n)],
            "revenue": [float(i) for i in range(n)],
        }
    )


def _changed(store: Store, write) -> set:
    """``(project, area)`` pairs whose signature ``write(con, project p)`` changed, and
    ``"projects"`` when the list of projects changed."""
    with store.read() as con:
        before = signatures(con)
    with store.write() as con:
        write(con, get_project(con, "p"))
    with store.read() as con:
        after = signatures(con)
    changed = {
        (name, area)
        for name, (_, areas) in before.projects.items()
        for area in AREAS
        if after.projects[name][1][area] != areas[area]
    }
    return changed | ({"projects"} if before.database != after.database else set())


WRITES = {
    "slices": lambda con, p: save_slice(con, p, "young", parse_slice("age < 30")),
    "valsets": lambda con, p: (create_set(con, p, "hard"), promote(con, p, "hard", Selection(), reason="all")),
    "reports": lambda con, p: add_block(con, p, "review", "note", {"text": "hello"}),
    "metrics": lambda con, p: define_metric(con, p, ProductMetric("rev", "sum(revenue)")),
    "gates": lambda con, p: set_criteria(con, p, GateCriteria(slice_min_rows=10)),
    "engine": lambda con, p: set_settings(con, p, EngineSettings("duckdb")),
    "data": lambda con, p: attach_labels(con, _labels(), project=p.name),
    "monitoring": lambda con, p: set_reference_choice(con, p, ReferenceChoice(recent_days=3)),
}


@pytest.mark.parametrize("area", list(WRITES))
def test_each_write_changes_its_own_area_of_its_own_project_only(tmp_path, area):
    store = _two_projects(tmp_path / "db.duckdb")
    assert _changed(store, WRITES[area]) == {("p", area)}


def test_a_new_project_changes_the_list_of_projects_and_leaves_the_others(tmp_path):
    store = _two_projects(tmp_path / "db.duckdb")

    def new_project(con, _):
        ingest_predictions(con, small_predictions(5), project="r", mapping=parse_mapping(SMALL_MAPPING))

    with store.read() as con:
        before = signatures(con)
    assert _changed(store, new_project) == {"projects"}
    with store.read() as con:
        after = signatures(con)
    assert set(after.projects) == {"p", "q", "r"}
    assert after.projects["p"] == before.projects["p"]


def test_more_predictions_change_the_data(tmp_path):
    store = _two_projects(tmp_path / "db.duckdb")

    def more(con, p):
        ingest_predictions(con, small_predictions(10, start=100), project="p", mapping=parse_mapping(SMALL_MAPPING))

    assert _changed(store, more) == {("p", "data")}


def test_a_refused_write_changes_nothing(tmp_path):
    store = _two_projects(tmp_path / "db.duckdb")

    def refused(con, p):
        save_slice(con, p, "young", parse_slice("age < 30"))
        save_slice(con, p, "bad", parse_slice("no_such_column = 1"))

    with store.read() as con:
        before = signatures(con)
    with pytest.raises(ConfigError):
        with store.write() as con:
            refused(con, get_project(con, "p"))
    with store.read() as con:
        after = signatures(con)
    # The first save was committed (its own write), the refused one left no trace.
    assert after.projects["p"][1]["slices"] != before.projects["p"][1]["slices"]
    with store.write() as con:
        with pytest.raises(ConfigError):
            save_slice(con, get_project(con, "p"), "bad", parse_slice("no_such_column = 1"))
    with store.read() as con:
        assert signatures(con) == after


def test_every_declared_function_exists_and_reads_its_project_and_engine():
    import importlib

    for path, extra in READS.items():
        module, name = path.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), path
        assert set(extra) <= set(AREAS)
        assert {"data", "engine"} <= set(areas_read(path))
    assert areas_read("analysis.some.undeclared_function") == AREAS
    assert areas_read("analysis.slices.saved.list_slices") == ("data", "engine", "slices")


def _answers(at) -> list[tuple]:
    return list(at.session_state["sb_answers"])


def _labeled_per_version(path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        table = get_project(con, "p").log_table
        return dict(con.execute(f'SELECT model_version, count(label) FROM "{table}" GROUP BY ALL').fetchall())
    finally:
        con.close()


def test_after_saving_a_slice_the_page_is_served_from_cache_and_after_labels_it_is_recomputed(monkeypatch, tmp_path):
    path = tmp_path / "db.duckdb"
    store = _two_projects(path)
    at = app_on(monkeypatch, path).run()
    assert not at.exception
    first = _answers(at)
    assert first and not any(cached for *_, cached in first)  # a new database: all computed
    assert set(at.dataframe[0].value["n_labeled"]) == {0}

    # Another writer (the CLI would do the same from its own process) saves a slice.
    with store.write() as con:
        save_slice(con, get_project(con, "p"), "young", parse_slice("age < 30"))
    at.run()
    assert not at.exception
    after_save = _answers(at)
    assert len(after_save) == len(first) and all(cached for *_, cached in after_save)
    assert "from cache" in at.sidebar.caption[-1].value

    # Labels change the data: the page computes again and shows the new numbers.
    with store.write() as con:
        attach_labels(con, _labels(), project="p")
    at.run()
    assert not at.exception
    after_labels = _answers(at)
    assert any(not cached for *_, cached in after_labels)
    shown = at.dataframe[0].value.groupby("model_version")["n_labeled"].sum().to_dict()
    assert shown == _labeled_per_version(path)
    assert sum(shown.values()) == 40  # every row of p got its label

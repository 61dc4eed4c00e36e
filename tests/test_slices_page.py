"""The Slices page under AppTest (the real app through app.py, a copy of the demo):
the condition builder keeps what a person picked, the page keeps its state in the URL,
and the numbers shown are those of a direct engine call, formatted by analysis.numbers."""

from __future__ import annotations

import duckdb
import pytest

from analysis import Store, get_project

from test_app import app_on, literal, texts


def count_rows(path, where: str, params=()) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        table = get_project(con, "lending-demo").log_table
        return con.execute(f'SELECT count(*) FROM "{table}" WHERE {where}', list(params)).fetchall()[0][0]
    finally:
        con.close()


def slices_page(monkeypatch, path, **params):
    at = app_on(monkeypatch, path)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("pages/slices.py").run()
    assert not at.exception
    return at


def query_param(at, name):
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_a_picked_value_survives_version_changes(monkeypatch, demo_copy):
    """Issue 21, item 2: the value labels carry counts that change with the version;
    a picked value stays picked (with the new version's count) and can be added."""
    at = slices_page(monkeypatch, demo_copy)
    at.selectbox(key="sl_column").set_value("region").run()
    at.multiselect(key="sl_values_region").set_value(["east"]).run()
    for version in ("credit-v2", "credit-v3", "credit-v2"):
        at.selectbox(key="sl_version").set_value(version).run()
        assert not at.exception, version
        widget = at.multiselect(key="sl_values_region")
        assert widget.value == ["east"], version
        n = count_rows(demo_copy, "model_version = ? AND region = 'east'", [version])
        assert widget.format_func("east") == f"east  ·  {n:,}"
    at.button(key="sl_add").click().run()
    assert not at.exception
    assert at.text_input(key="sl_text").value == "region = east"

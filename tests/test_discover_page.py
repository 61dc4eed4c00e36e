"""The Discover page (issue 21, items 5 and 6): the ranking and its versions in the URL,
the engine's entries with their folded variants, figures formatted by analysis.numbers, a
table per error measure, and the error tree naming the error."""

from __future__ import annotations

import json

from test_app import app_on, literal, open_page

from analysis import Store, get_project
from analysis.discovery.run import discover
from analysis.store.scope import Scope


def _open(monkeypatch, path, **params):
    return open_page(monkeypatch, path, "pages/discover.py", **params)


def _table(at):
    return next(d for d in at.dataframe if "where" in d.value)


def test_a_link_reproduces_a_version_ranking_and_the_page_shows_the_engines_entries(monkeypatch, demo_copy):
    at = _open(monkeypatch, demo_copy, version="credit-v2", ranking="version", against="credit-v1", top="5")
    assert at.session_state["dc_ranking"] == "version" and at.session_state["dc_against"] == "credit-v1"
    assert at.query_params["ranking"] == "version" and at.query_params["against"] == "credit-v1"
    with Store(demo_copy).read() as con:
        stages = tuple(sorted(set(at.multiselect(key="dc_stages").value)))
        expected = discover(
            con,
            get_project(con, "lending-demo"),
            Scope.of(versions="credit-v2", stages=stages),
            ranking="version",
            other_version="credit-v1",
            top_k=5,
        )
    shown = _table(at).value
    assert list(shown["where"]) == list(expected.slices["where"])
    assert list(shown["size"]) == list(expected.slices["size"])
    assert "Ranked by: worse than credit-v1." in "\n".join(c.value for c in at.caption)
    # The default ranking, when the link does not say: worse than its scores predict.
    at2 = _open(monkeypatch, demo_copy, version="credit-v1")
    assert at2.session_state["dc_ranking"] == "expected" and at2.query_params["ranking"] == "expected"


def test_selected_entry_lists_its_variants(monkeypatch, demo_copy):
    at = _open(monkeypatch, demo_copy, version="credit-v1", top="3")
    at.session_state["dc_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    top = _table(at).value["where"].iloc[0]
    assert top == "employment = self_employed AND channel = partner_api"
    listed = "\n".join(t.value for t in at.text)
    assert "• employment = self_employed AND device = server" in listed  # the same rows under another name


def test_large_money_figures_keep_their_digits_after_switching_the_measure(monkeypatch, demo_copy):
    """After switching to money lost, the table is a new one (its own widths) and its impact
    column is formatted with thousands separators, not cut; the error tree says "loss"."""
    at = _open(monkeypatch, demo_copy, version="credit-v1", top="3")
    first_key = _table(at).proto.id
    at.selectbox(key="dc_error").set_value("loss").run()
    assert not at.exception
    table = _table(at)
    assert table.proto.id != first_key
    config = json.loads(table.proto.columns)
    assert config["impact"]["type_config"]["format"] == "localized"
    assert round(table.value["impact"].iloc[0]) == 18523881  # 18,523,881 on screen
    at.radio(key="dc_view").set_value("Error tree").run()
    assert not at.exception
    tree = next(json.loads(e.proto.spec) for e in at.get("plotly_chart"))
    assert tree["data"][0]["marker"]["colorbar"]["title"]["text"] == "loss"
    assert "error_rate" not in json.dumps(tree["layout"]["title"])
    leaves = next(d for d in at.dataframe if "errors" in d.value)
    assert json.loads(leaves.proto.columns)["error_rate"]["label"] == "loss"


def test_a_slow_search_says_it_is_coming_and_fills_in_with_the_engines_entries(monkeypatch, demo_copy):
    """On millions of rows a search takes seconds: it runs on a worker, the page says so
    and stays usable, and then shows the engine's entries (here: a page that waits no time)."""
    from pages.parts import _slow

    at = app_on(monkeypatch, demo_copy)
    monkeypatch.setenv(_slow.WAIT_ENV, "0")
    link = {"version": "credit-v3", "top": "4"}
    at.query_params.update(link)
    at.run()
    at.query_params.update(link)
    at.switch_page("pages/discover.py").run()
    assert not at.exception
    assert any(literal(i.value).startswith("Searching slices (worse than its scores predict)") for i in at.info), [
        i.value for i in at.info
    ]
    assert not any("where" in d.value for d in at.dataframe)
    assert _slow.wait_for_answers(timeout=300)
    at.run()
    assert not at.exception
    with Store(demo_copy).read() as con:
        stages = tuple(sorted(set(at.multiselect(key="dc_stages").value)))
        expected = discover(
            con, get_project(con, "lending-demo"), Scope.of(versions="credit-v3", stages=stages), top_k=4
        )
    assert list(_table(at).value["where"]) == list(expected.slices["where"])

"""Many slices' rows from one scan (:class:`analysis.slices.cells.SliceCells`): each slice's
entries add up to what pandas counts on the same rows, for slices of every shape (values
missing, numbers, OR, NOT, a slice of no row, the whole log) on a real DuckDB file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import Mapping, Store, get_project, ingest_predictions
from analysis.slices import Slice, parse_slice
from analysis.slices.cells import SliceCells
from analysis.store.sql import Sql, quote_ident

SLICES = {
    "region = north": lambda f: f.region == "north",
    "region is null": lambda f: f.region.isna(),
    "region != north": lambda f: f.region != "north",  # a missing region is not north
    "region = north OR channel = kiosk": lambda f: (f.region == "north") | (f.channel == "kiosk"),
    "NOT (channel = web)": lambda f: ~(f.channel == "web"),
    "channel in (web, app) AND amount >= 50": lambda f: f.channel.isin(["web", "app"]) & (f.amount >= 50),
    "amount < 10": lambda f: f.amount < 10,
    "region = nowhere": lambda f: f.region == "nowhere",
    "": lambda f: pd.Series(True, index=f.index),
}


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    rng = np.random.default_rng(11)
    n = 3000
    ts = pd.Timestamp("2026-05-01") + pd.to_timedelta(rng.integers(0, 6 * 86400, n), unit="s")
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "ts": ts,
            "v": "m1",
            "score": np.round(rng.random(n), 2),  # rows alike in score
            "label": rng.integers(0, 2, n),
            "region": rng.choice(np.array(["north", "south", None], dtype=object), n, p=[0.5, 0.4, 0.1]),
            "channel": rng.choice(["web", "app", "kiosk"], n, p=[0.6, 0.37, 0.03]),
            "amount": np.round(rng.gamma(2.0, 30.0, n)),
        }
    )
    mapping = Mapping(
        task="binary", id="id", timestamp="ts", version="v", score="score", label="label", positive_label="1",
        features=["region", "channel", "amount"],
    )  # fmt: skip
    store = Store(tmp_path_factory.mktemp("cells") / "cells.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame, project="shop", mapping=mapping)
    with store.read() as con:
        yield con, get_project(con, "shop"), frame


def test_each_slices_entries_add_up_to_its_rows_by_day_and_score(logged):
    con, project, frame = logged
    slices = [parse_slice(s) if s else Slice() for s in SLICES]
    where = Sql('"timestamp" >= ?', [pd.Timestamp("2026-05-02").to_pydatetime()])
    cells = SliceCells(project, slices, quote_ident(project.log_table), where)
    keys = Sql('CAST("timestamp" AS DATE) AS day, score')
    totals = [("rows", "count(*)"), ("amounts", Sql("sum(amount * ?)", [2]))]
    data = cells.read(con, keys, ["day", "score"], totals)
    # Entries come by combination, then by keys; equal keys share one number.
    order = np.lexsort((data["score"], data["day"], data["sb_combo"]))
    assert np.array_equal(order, np.arange(len(order)))
    key_of = pd.Series(data["sb_key"]).groupby([data["day"], data["score"]]).nunique()
    assert (key_of == 1).all() and len(key_of) == len(np.unique(data["sb_key"]))

    rows = frame[frame.ts >= pd.Timestamp("2026-05-02")].assign(day=lambda f: f.ts.dt.floor("D"))
    for (text, inside), at in zip(SLICES.items(), cells.positions(con, data["sb_combo"])):
        found = pd.DataFrame({k: data[k][at] for k in ("day", "score", "rows", "amounts")})
        got = found.groupby(["day", "score"])[["rows", "amounts"]].sum().sort_index()
        chosen = rows[inside(rows).fillna(False).astype(bool)]
        want = (
            chosen.assign(rows=1, amounts=2 * chosen.amount)
            .groupby(["day", "score"])[["rows", "amounts"]]
            .sum()
            .sort_index()
        )
        assert len(got) == len(want), text
        assert np.array_equal(got.index.get_level_values("score"), want.index.get_level_values("score")), text
        assert np.array_equal(got.rows.to_numpy(), want.rows.to_numpy()), text
        np.testing.assert_allclose(got.amounts.to_numpy(), want.amounts.to_numpy(), rtol=1e-12, err_msg=text)


def test_a_slice_without_columns_is_every_row_and_no_slice_asks_nothing(logged):
    con, project, frame = logged
    cells = SliceCells(project, [Slice()], quote_ident(project.log_table), Sql("TRUE"))
    data = cells.read(con, Sql("score"), ["score"], [("rows", "count(*)")])
    (at,) = cells.positions(con, data["sb_combo"])
    assert data["rows"][at].sum() == len(frame)
    assert SliceCells(project, [], quote_ident(project.log_table), Sql("TRUE")).members(con) == []

"""Every leaf of the error tree is a slice that opens in Slices: compiled by the one slice
compiler, it selects exactly the leaf's rows and errors, and the leaves' slices cover
every row once. Checked on data made to need OR and the lumped values: numbers, categories
with more values than the encoding keeps, and booleans, each with missing values, so
that branches keep "a range or missing", "anything but these values" and "the rest"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import Mapping, Store, get_project, ingest_predictions
from analysis.discovery.tree import error_tree
from analysis.slices import And, Not, Or, compile_slice, parse_slice


def frame(seed: int, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 80, n).round(1)
    age[rng.random(n) < 0.15] = np.nan
    city = rng.choice([f"c{i}" for i in range(60)], n, p=np.r_[np.full(5, 0.12), np.full(55, 0.4 / 55)])
    city = np.where(rng.random(n) < 0.1, None, city)
    member = np.where(rng.random(n) < 0.2, None, rng.random(n) < 0.5).astype(object)
    # Errors planted where the tree must keep missing values with present ones.
    p_err = 0.1 + 0.5 * (np.isnan(age) | (age < 30)) + 0.2 * pd.isna(city) + 0.15 * (member == True)  # noqa: E712
    label = rng.integers(0, 2, n)
    prediction = np.where(rng.random(n) < np.clip(p_err, 0, 0.95), 1 - label, label)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "label": label,
            "prediction": prediction,
            "age": age,
            "city": city,
            "member": member,
        }
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_leaf_is_a_slice_selecting_exactly_its_rows(tmp_path, seed):
    rows = frame(seed)
    store = Store(tmp_path / "t.duckdb")
    mapping = Mapping(
        task="binary",
        id="id",
        version="v",
        label="label",
        prediction="prediction",
        positive_label="1",
        features=["age", "city", "member"],
    )
    with store.write() as con:
        ingest_predictions(con, rows, project="p", mapping=mapping)
    with store.read() as con:
        project = get_project(con, "p")
        tree = error_tree(con, project, max_depth=4, min_leaf=40)
        leaves = tree.leaves
        assert leaves["slice"].notna().all()
        seen = set()
        compound = 0
        for leaf in leaves.itertuples():
            sql, params = compile_slice(leaf.slice, project)
            ids = con.execute(
                f'SELECT prediction_id, label <> prediction FROM "{project.log_table}" WHERE {sql}', params
            ).fetchall()
            assert (len(ids), sum(e for _, e in ids)) == (leaf.size, leaf.errors), leaf.where
            assert not seen & {i for i, _ in ids}, "leaves overlap"
            seen |= {i for i, _ in ids}
            compound += any(isinstance(t, (Or, And, Not)) for t in leaf.slice.conditions)
            # the link to Slices carries the readable form: it reads back as the same rows
            again = compile_slice(parse_slice(leaf.slice.readable()), project)
            assert con.execute(f'SELECT count(*) FROM "{project.log_table}" WHERE {again[0]}', again[1]).fetchone()[
                0
            ] == len(ids)
        assert seen == set(rows["id"])
    assert compound, "no leaf needed an OR: the data did not exercise what it was made for"

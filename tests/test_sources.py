"""Inputs opened for reading: what columns a file, a folder or a glob brings."""

from __future__ import annotations

import pytest
from conftest import SMALL_MAPPING, small_predictions

from analysis import IngestError, Store, get_project, ingest_predictions, parse_mapping


def test_a_folder_of_parquet_files_brings_only_its_own_columns(tmp_path):
    folder = tmp_path / "lake"
    folder.mkdir()
    rows = small_predictions(30)
    for part in range(3):
        rows.iloc[part * 10 : (part + 1) * 10].to_parquet(folder / f"part-{part}.parquet", index=False)
    store = Store(tmp_path / "db.duckdb")
    with store.write() as con:
        report = ingest_predictions(con, str(folder), project="p", mapping=parse_mapping(SMALL_MAPPING))
        project = get_project(con, "p")
    assert report.inserted == 30
    assert [c.name for c in project.features] == ["country", "age", "vip"]
    with store.read() as con:
        views = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE NOT internal AND NOT temporary "
            "AND view_name LIKE 'sb\\_%' ESCAPE '\\'"
        ).fetchall()[0][0]
    assert views == 0


def test_a_bad_value_in_the_second_file_is_named_with_its_file_and_row(tmp_path):
    folder = tmp_path / "lake"
    folder.mkdir()
    rows = small_predictions(20).astype({"score": object})
    rows.iloc[:10].to_parquet(folder / "a.parquet", index=False)
    bad = rows.iloc[10:].copy()
    bad.loc[bad.index[3], "score"] = "high"
    bad.astype({"score": str}).to_parquet(folder / "b.parquet", index=False)
    store = Store(tmp_path / "db.duckdb")
    with pytest.raises(IngestError) as info:
        with store.write() as con:
            ingest_predictions(con, str(folder / "*.parquet"), project="p", mapping=parse_mapping(SMALL_MAPPING))
    message = str(info.value)
    assert "b.parquet" in message and "row 4" in message and "'high'" in message
    assert not (tmp_path / "db.duckdb").exists()

"""Promotion: the examples a selection (a slice, its errors, an error bucket, hand-picked
ids) adds to a validation set, previewed and then written; members removed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from analysis.errors import ConfigError
from analysis.slices import Slice, compile_slice
from analysis.slices.buckets import bucket_filter, buckets_for
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import and_all, in_transaction, quote_ident
from analysis.valsets.sets import get_set

MAX_HAND_PICKED = 10_000


@dataclass(frozen=True)
class Promotion:
    """What a promotion selects: ``selected`` examples, ``already`` in the draft, ``added`` now."""

    set_name: str
    selected: int
    already: int
    added: int

    @property
    def new(self) -> int:
        return self.selected - self.already


# -- promotion -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which examples a promotion takes: the rows of ``scope`` and ``slice_`` (optionally
    only the errors, or one error bucket), or hand-picked prediction ids; at most
    ``sample`` of them, drawn at random with ``seed``. Of several predictions of one
    example, the latest is the one promoted."""

    scope: Scope = field(default_factory=Scope)
    slice_: Slice = field(default_factory=Slice)
    only_errors: bool = False
    bucket: str | None = None
    confidence: float = 0.9
    prediction_ids: tuple[str, ...] | None = None
    sample: int | None = None
    seed: int = 0

    def source(self) -> dict:
        if self.prediction_ids is not None:
            return {"kind": "hand-picked", "predictions": len(self.prediction_ids)}
        out = {
            "kind": "slice",
            "where": self.slice_.readable() or "all rows",
            "slice": self.slice_.to_dict(),
            "scope": self.scope.to_dict(),
        }
        if self.only_errors:
            out["only_errors"] = True
        if self.bucket:
            out["bucket"] = self.bucket
        if self.sample:
            out["sample"] = int(self.sample)
        return out


def _mae(con, project: Project, sel: Selection) -> float:
    where = and_all([sel.scope.to_sql(), compile_slice(sel.slice_, project)])
    value = con.execute(
        f"SELECT avg(abs(label - prediction)) FROM {quote_ident(project.log_table)} WHERE {where[0]}", where[1]
    ).fetchall()[0][0]
    return float(value) if value else 1.0


def _error_filter(con, project: Project, sel: Selection) -> tuple[str, list]:
    """The rows the model got wrong; for regression, residuals beyond the slice's MAE."""
    if project.task == "regression":
        return (
            "label IS NOT NULL AND prediction IS NOT NULL AND abs(label - prediction) > ?",
            [_mae(con, project, sel)],
        )
    return ("label IS NOT NULL AND prediction IS NOT NULL AND label <> prediction", [])


def _selected_rows(con, project: Project, sel: Selection) -> tuple[str, list]:
    """``(sql, params)``: one row per selected example, the columns a member keeps."""
    if sel.prediction_ids is not None:
        ids = list(dict.fromkeys(str(i) for i in sel.prediction_ids))
        if not ids:
            raise ConfigError("Select at least one row to promote.")
        if len(ids) > MAX_HAND_PICKED:
            raise ConfigError(f"Hand-pick at most {MAX_HAND_PICKED:,} rows; promote a slice for more.")
        filters = [(f"prediction_id IN ({', '.join('?' for _ in ids)})", ids)]
    else:
        filters = [sel.scope.to_sql(), compile_slice(sel.slice_, project)]
        if sel.only_errors:
            filters.append(_error_filter(con, project, sel))
        if sel.bucket is not None:
            if sel.bucket not in buckets_for(project.task):
                raise ConfigError(f"Unknown bucket {sel.bucket!r}; buckets are {', '.join(buckets_for(project.task))}.")
            mae = _mae(con, project, sel) if project.task == "regression" else 1.0
            filters.append(bucket_filter(project, sel.bucket, confidence=sel.confidence, mae=mae))
    where, params = and_all(filters)
    feats = "".join(f", {quote_ident(f.name)}" for f in project.features)
    sql = (
        f"SELECT prediction_id, example_id, label{feats} FROM (SELECT prediction_id, example_id, label{feats}, "
        'row_number() OVER (PARTITION BY example_id ORDER BY "timestamp" DESC, prediction_id DESC) AS sb_rank '
        f"FROM {quote_ident(project.log_table)} WHERE {where}) AS ranked WHERE sb_rank = 1"
    )
    if sel.sample is not None:
        if int(sel.sample) < 1:
            raise ConfigError("A sample holds at least one example.")
        # A fixed random order from the example id and the seed: the same sample every time.
        sql = f"SELECT * FROM ({sql}) AS chosen ORDER BY md5(example_id || ?), example_id LIMIT ?"
        params = [*params, str(int(sel.seed)), int(sel.sample)]
    return sql, list(params)


def _counts(con, project: Project, set_id: int, rows: tuple[str, list]) -> tuple[int, int]:
    members = quote_ident(project.members_table)
    selected, already = con.execute(
        f"SELECT count(*), count(m.example_id) FROM ({rows[0]}) AS r LEFT JOIN {members} AS m "
        "ON m.set_id = ? AND m.set_version = 0 AND m.example_id = r.example_id",
        [*rows[1], set_id],
    ).fetchall()[0]
    return int(selected), int(already)


def preview_promotion(con: duckdb.DuckDBPyConnection, project: Project, name: str, selection: Selection) -> Promotion:
    """How many examples a promotion selects and how many of them the draft already holds."""
    vs = get_set(con, project, name)
    selected, already = _counts(con, project, vs.set_id, _selected_rows(con, project, selection))
    return Promotion(vs.name, selected, already, 0)


def promote(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    name: str,
    selection: Selection,
    *,
    reason: str = "",
    source: dict | None = None,
) -> Promotion:
    """Add the selected examples to the set's draft in one transaction (those already in
    it stay as they are), each with its label and features as of now, ``reason`` and
    ``source`` (default: the selection itself)."""
    vs = get_set(con, project, name)
    rows = _selected_rows(con, project, selection)
    source_text = json.dumps(source if source is not None else selection.source(), sort_keys=True, default=str)
    members = quote_ident(project.members_table)
    feats = "".join(f", r.{quote_ident(f.name)}" for f in project.features)

    def work():
        selected, already = _counts(con, project, vs.set_id, rows)
        con.execute(
            f"INSERT INTO {members} SELECT ?, 0, r.example_id, r.prediction_id, r.label{feats}, ?, ?, ? "
            f"FROM ({rows[0]}) AS r WHERE NOT EXISTS (SELECT 1 FROM {members} AS m WHERE m.set_id = ? "
            "AND m.set_version = 0 AND m.example_id = r.example_id)",
            [vs.set_id, reason or "", source_text, utc_now(), *rows[1], vs.set_id],
        )
        return Promotion(vs.name, selected, already, selected - already)

    return in_transaction(con, work)


def remove_members(con: duckdb.DuckDBPyConnection, project: Project, name: str, example_ids: list[str]) -> int:
    """Take examples out of the draft (committed versions keep them); returns how many left it."""
    vs = get_set(con, project, name)
    ids = list(dict.fromkeys(str(i) for i in example_ids))
    if not ids:
        return 0
    members = quote_ident(project.members_table)

    def work():
        marks = ", ".join("?" for _ in ids)
        n = con.execute(
            f"SELECT count(*) FROM {members} WHERE set_id = ? AND set_version = 0 AND example_id IN ({marks})",
            [vs.set_id, *ids],
        ).fetchall()[0][0]
        con.execute(
            f"DELETE FROM {members} WHERE set_id = ? AND set_version = 0 AND example_id IN ({marks})", [vs.set_id, *ids]
        )
        return int(n)

    return in_transaction(con, work)

"""Reports: named, ordered lists of blocks, stored with what they showed.

Adding a block pins the view (:func:`.blocks.pin`), computes its snapshot and records
the data's fingerprint; the report then shows those numbers until it is refreshed.
:func:`rerun` computes every block again on the current data and says, per block,
which figures changed and how the data changed; :func:`refresh` keeps the new numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.reports import blocks as kinds
from analysis.reports.fingerprint import describe_changes, fingerprint
from analysis.reports.kinds import kind_of
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.store.sql import in_transaction

MAX_NAME = 200


@dataclass
class Block:
    block_id: int
    position: int
    kind: str
    title: str
    params: dict
    snapshot: dict
    fingerprint: dict
    computed_at: datetime


@dataclass
class Report:
    name: str
    title: str
    project: str
    blocks: list[Block] = field(default_factory=list)
    report_id: int | None = None  # None: not stored (the default report)
    updated_at: datetime | None = None


@dataclass
class BlockRerun:
    block: Block
    snapshot: dict  # computed now
    fingerprint: dict
    changes: list[tuple[str, object, object]]  # (figure, then, now)
    data_changes: list[str]

    @property
    def same(self) -> bool:
        return not self.changes


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise ConfigError(f"A report name has 1 to {MAX_NAME} printable characters; not {name!r}.")
    return name


def _report_row(con, project: Project, name: str):
    rows = con.execute(
        "SELECT report_id, name, title, updated_at FROM sb_reports WHERE project_id = ? AND name = ?",
        [project.project_id, name],
    ).fetchall()
    if not rows:
        raise ConfigError(f"No report named {name!r} in {project.name}.")
    return rows[0]


def create_report(con: duckdb.DuckDBPyConnection, project: Project, name: str, title: str = "") -> Report:
    name = _check_name(name)
    exists = con.execute(
        "SELECT count(*) FROM sb_reports WHERE project_id = ? AND name = ?", [project.project_id, name]
    ).fetchall()[0][0]
    if exists:
        raise ConfigError(f"{project.name} already has a report named {name!r}.")

    def work():
        rid = con.execute("SELECT coalesce(max(report_id), 0) + 1 FROM sb_reports").fetchall()[0][0]
        now = utc_now()
        con.execute(
            "INSERT INTO sb_reports VALUES (?, ?, ?, ?, ?, ?)",
            [rid, project.project_id, name, title.strip() or name, now, now],
        )

    in_transaction(con, work)
    return get_report(con, project, name)


def get_report(con: duckdb.DuckDBPyConnection, project: Project, name: str) -> Report:
    rid, name, title, updated = _report_row(con, project, name)
    rows = con.execute(
        "SELECT block_id, position, kind, title, params, snapshot, fingerprint, computed_at "
        "FROM sb_report_blocks WHERE report_id = ? ORDER BY position",
        [rid],
    ).fetchall()
    blocks = [
        Block(b, p, k, t, json.loads(pa), json.loads(sn), json.loads(fp), at) for b, p, k, t, pa, sn, fp, at in rows
    ]
    return Report(name, title, project.name, blocks, rid, updated)


def list_reports(con: duckdb.DuckDBPyConnection, project: Project) -> pd.DataFrame:
    return con.execute(
        "SELECT r.name, r.title, count(b.block_id) AS blocks, r.updated_at FROM sb_reports r "
        "LEFT JOIN sb_report_blocks b ON b.report_id = r.report_id WHERE r.project_id = ? "
        "GROUP BY ALL ORDER BY r.name",
        [project.project_id],
    ).df()


def delete_report(con: duckdb.DuckDBPyConnection, project: Project, name: str) -> None:
    rid = _report_row(con, project, name)[0]
    in_transaction(
        con,
        lambda: (
            con.execute("DELETE FROM sb_report_blocks WHERE report_id = ?", [rid]),
            con.execute("DELETE FROM sb_reports WHERE report_id = ?", [rid]),
        ),
    )


def add_block(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    report: str,
    kind: str,
    view: dict,
    *,
    title: str | None = None,
    create: bool = True,
    position: int | None = None,
) -> Block:
    """Pin ``view`` as a block of ``kind``, compute it and put it in ``report`` (created
    first when missing and ``create``): at ``position`` (1 is first; the blocks from there
    move down one place), or at the end when ``position`` is None or past the end."""
    if position is not None and (isinstance(position, bool) or int(position) != position or position < 1):
        raise ConfigError(f"A block's position is 1 (first) or more, not {position!r}.")
    params = kinds.pin(con, project, kind, view)
    snapshot = kinds.compute(con, project, kind, params)
    print_ = fingerprint(con, project)
    try:
        rid = _report_row(con, project, report)[0]
    except ConfigError:
        if not create:
            raise
        rid = create_report(con, project, report).report_id
    title = (title or "").strip() or default_title(kind, params)

    def work():
        order = [
            b
            for (b,) in con.execute(
                "SELECT block_id FROM sb_report_blocks WHERE report_id = ? ORDER BY position", [rid]
            ).fetchall()
        ]
        block_id = con.execute(
            "SELECT coalesce(max(block_id), 0) + 1 FROM sb_report_blocks WHERE report_id = ?", [rid]
        ).fetchall()[0][0]
        place = len(order) if position is None else min(int(position) - 1, len(order))
        order.insert(place, block_id)
        con.execute(
            "INSERT INTO sb_report_blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                project.project_id,
                rid,
                block_id,
                place + 1,
                kind,
                title,
                json.dumps(params),
                json.dumps(snapshot),
                json.dumps(print_),
                utc_now(),
            ],
        )
        _renumber(con, rid, order[place + 1 :], start=place + 2)
        con.execute("UPDATE sb_reports SET updated_at = ? WHERE report_id = ?", [utc_now(), rid])
        return block_id

    block_id = in_transaction(con, work)
    return next(b for b in get_report(con, project, report).blocks if b.block_id == block_id)


def _renumber(con, rid: int, block_ids: list[int], start: int = 1) -> None:
    """Positions ``start``, ``start + 1``, ... for ``block_ids``, in that order."""
    for position, bid in enumerate(block_ids, start=start):
        con.execute(
            "UPDATE sb_report_blocks SET position = ? WHERE report_id = ? AND block_id = ?", [position, rid, bid]
        )


def position_after(report: Report, block_id: int) -> int:
    """The position just after block ``block_id`` of ``report`` (for :func:`add_block`)."""
    for i, b in enumerate(report.blocks):
        if b.block_id == block_id:
            return i + 2
    raise ConfigError(f"Report {report.name!r} has no block {block_id}.")


def default_title(kind: str, params: dict) -> str:
    return kind_of(kind).default_title(params)


def _block(con, project: Project, report: str, block_id: int) -> tuple[int, Block]:
    r = get_report(con, project, report)
    for b in r.blocks:
        if b.block_id == block_id:
            return r.report_id, b
    raise ConfigError(f"Report {report!r} has no block {block_id}.")


def edit_block(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    report: str,
    block_id: int,
    *,
    title: str | None = None,
    text: str | None = None,
) -> Block:
    """A block's new title, or a note's new text."""
    rid, block = _block(con, project, report, block_id)
    updates: dict[str, str] = {}
    if title is not None:
        if not title.strip() or len(title) > MAX_NAME:
            raise ConfigError(f"A block title has 1 to {MAX_NAME} characters.")
        updates["title"] = title.strip()
    if text is not None:
        if block.kind != "note":
            raise ConfigError("Only a note's text can be edited; other blocks show what was computed.")
        params = kinds.pin(con, project, "note", {"text": text})
        updates["params"] = json.dumps(params)
        updates["snapshot"] = json.dumps(kinds.compute(con, project, "note", params))

    def work():
        for column, value in updates.items():
            con.execute(
                f"UPDATE sb_report_blocks SET {column} = ? WHERE report_id = ? AND block_id = ?", [value, rid, block_id]
            )
        con.execute("UPDATE sb_reports SET updated_at = ? WHERE report_id = ?", [utc_now(), rid])

    in_transaction(con, work)
    return _block(con, project, report, block_id)[1]


def move_block(con: duckdb.DuckDBPyConnection, project: Project, report: str, block_id: int, offset: int) -> Report:
    """Move a block ``offset`` places (negative: up), within the report."""
    r = get_report(con, project, report)
    order = [b.block_id for b in r.blocks]
    if block_id not in order:
        raise ConfigError(f"Report {report!r} has no block {block_id}.")
    i = order.index(block_id)
    order.insert(max(0, min(len(order) - 1, i + int(offset))), order.pop(i))

    def work():
        _renumber(con, r.report_id, order)
        con.execute("UPDATE sb_reports SET updated_at = ? WHERE report_id = ?", [utc_now(), r.report_id])

    in_transaction(con, work)
    return get_report(con, project, report)


def delete_block(con: duckdb.DuckDBPyConnection, project: Project, report: str, block_id: int) -> Report:
    rid, _ = _block(con, project, report, block_id)
    in_transaction(
        con, lambda: con.execute("DELETE FROM sb_report_blocks WHERE report_id = ? AND block_id = ?", [rid, block_id])
    )
    return get_report(con, project, report)


def rerun(con: duckdb.DuckDBPyConnection, project: Project, report: Report | str) -> list[BlockRerun]:
    """Every block computed again with its pinned parameters: what changed, and why."""
    r = report if isinstance(report, Report) else get_report(con, project, report)
    now = fingerprint(con, project)
    out = []
    for b in r.blocks:
        try:
            snapshot = kinds.compute(con, project, b.kind, b.params)
        except ConfigError as exc:  # e.g. a validation set version or a version that no longer exists
            out.append(
                BlockRerun(
                    b,
                    b.snapshot,
                    now,
                    [("could not be computed again", "", str(exc))],
                    describe_changes(b.fingerprint, now),
                )
            )
            continue
        out.append(
            BlockRerun(
                b, snapshot, now, kinds.differences(b.kind, b.snapshot, snapshot), describe_changes(b.fingerprint, now)
            )
        )
    return out


def refresh(con: duckdb.DuckDBPyConnection, project: Project, report: str) -> Report:
    """Keep the current numbers: every block's snapshot and fingerprint replaced by a re-run's."""
    r = get_report(con, project, report)
    results = [
        x for x in rerun(con, project, r) if not (x.changes and x.changes[0][0] == "could not be computed again")
    ]

    def work():
        for x in results:
            con.execute(
                "UPDATE sb_report_blocks SET snapshot = ?, fingerprint = ?, computed_at = ? "
                "WHERE report_id = ? AND block_id = ?",
                [json.dumps(x.snapshot), json.dumps(x.fingerprint), utc_now(), r.report_id, x.block.block_id],
            )
        con.execute("UPDATE sb_reports SET updated_at = ? WHERE report_id = ?", [utc_now(), r.report_id])

    in_transaction(con, work)
    return get_report(con, project, report)

"""Curated validation sets: promote failing examples, freeze them as immutable
versions, diff versions, and evaluate every model version on them.

A set has a working *draft* (set version 0 in the project's members table) and
numbered committed versions 1, 2, ...: each a frozen copy of the draft at commit
time, with a message and a content hash. Nothing here changes or deletes a
committed version: removing examples changes the draft, and the next commit is
a new version without them. An example is in a set version at most once (the
members table's primary key).

Every write is one transaction on the connection it is given. DuckDB lets one
process write a file at a time; :meth:`analysis.store.connection.Store.write` waits for the
file (retrying until its busy timeout) and serializes threads, so two people
promoting into one set at once are applied one after the other: nothing is lost
and nothing is added twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.store.sql import in_transaction, quote_ident
from analysis.valsets.criteria import Criterion, parse_criterion

MAX_NAME = 200


@dataclass(frozen=True)
class ValidationSet:
    set_id: int
    name: str
    description: str
    owner: str | None
    tags: tuple[str, ...]
    criteria: tuple[Criterion, ...]
    created_at: datetime
    latest_version: int  # 0: nothing committed yet

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "tags": list(self.tags),
            "criteria": [str(c) for c in self.criteria],
            "created_at": self.created_at.isoformat(),
            "latest_version": self.latest_version,
        }


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ConfigError("Give the validation set a name.")
    if len(name) > MAX_NAME:
        raise ConfigError(f"A validation set name has at most {MAX_NAME} characters.")
    return name


# -- sets ------------------------------------------------------------------------------------------


def create_set(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    name: str,
    *,
    description: str = "",
    owner: str | None = None,
    tags: tuple[str, ...] | list[str] = (),
    criteria: tuple[str, ...] | list[str] = (),
) -> ValidationSet:
    """A new, empty validation set; ``criteria`` such as ``"accuracy >= 0.9"``."""
    name = _check_name(name)
    checked = [parse_criterion(c, project) for c in criteria]
    tags = sorted({t.strip() for t in tags if t and t.strip()})

    def work():
        if _row(con, project, name) is not None:
            raise ConfigError(f"A validation set named {name!r} already exists in {project.name}.")
        set_id = con.execute("SELECT coalesce(max(set_id), 0) + 1 FROM sb_valsets").fetchall()[0][0]
        con.execute(
            "INSERT INTO sb_valsets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                set_id,
                project.project_id,
                name,
                description or "",
                (owner or "").strip() or None,
                json.dumps(tags),
                json.dumps([str(c) for c in checked]),
                utc_now(),
            ],
        )

    in_transaction(con, work)
    return get_set(con, project, name)


def _row(con, project: Project, name: str):
    rows = con.execute(
        "SELECT s.set_id, s.name, s.description, s.owner, s.tags, s.criteria, s.created_at, "
        "coalesce(max(v.version), 0) FROM sb_valsets s LEFT JOIN sb_valset_versions v ON v.set_id = s.set_id "
        "WHERE s.project_id = ? AND s.name = ? GROUP BY ALL",
        [project.project_id, name],
    ).fetchall()
    return rows[0] if rows else None


def _from_row(row, project: Project) -> ValidationSet:
    criteria = tuple(parse_criterion(c, project) for c in json.loads(row[5]))
    return ValidationSet(int(row[0]), row[1], row[2], row[3], tuple(json.loads(row[4])), criteria, row[6], int(row[7]))


def get_set(con: duckdb.DuckDBPyConnection, project: Project, name: str) -> ValidationSet:
    row = _row(con, project, name)
    if row is None:
        known = ", ".join(list_sets(con, project)["name"]) or "none yet"
        raise ConfigError(f"No validation set named {name!r} in {project.name}. Sets: {known}.")
    return _from_row(row, project)


def list_sets(con: duckdb.DuckDBPyConnection, project: Project) -> pd.DataFrame:
    """One row per set: description, owner, tags, criteria, latest version and member counts."""
    members = quote_ident(project.members_table)
    frame = con.execute(
        f"""SELECT s.name, s.description, s.owner, s.tags, s.criteria, s.created_at,
                   coalesce(v.latest, 0) AS latest_version, coalesce(v.latest_members, 0) AS latest_members,
                   coalesce(d.draft_members, 0) AS draft_members
            FROM sb_valsets s
            LEFT JOIN (SELECT set_id, max(version) AS latest, arg_max(n_members, version) AS latest_members
                       FROM sb_valset_versions GROUP BY set_id) v ON v.set_id = s.set_id
            LEFT JOIN (SELECT set_id, count(*) AS draft_members FROM {members} WHERE set_version = 0
                       GROUP BY set_id) d ON d.set_id = s.set_id
            WHERE s.project_id = ? ORDER BY s.name""",
        [project.project_id],
    ).df()
    frame["tags"] = [", ".join(json.loads(t)) for t in frame["tags"]]
    frame["criteria"] = ["; ".join(json.loads(c)) for c in frame["criteria"]]
    for c in ("latest_version", "latest_members", "draft_members"):
        frame[c] = frame[c].astype("int64")
    return frame


def delete_set(con: duckdb.DuckDBPyConnection, project: Project, name: str) -> None:
    """Delete a set that has never been committed (committed versions are kept forever)."""
    vs = get_set(con, project, name)
    if vs.latest_version:
        raise ConfigError(
            f"{name!r} has {vs.latest_version} committed version(s); committed versions are never "
            "deleted. Remove examples from its draft and commit instead."
        )

    def work():
        con.execute(f"DELETE FROM {quote_ident(project.members_table)} WHERE set_id = ?", [vs.set_id])
        con.execute("DELETE FROM sb_valsets WHERE set_id = ?", [vs.set_id])

    in_transaction(con, work)


def version_number(con, project: Project, vs: ValidationSet, version: int | str | None) -> int:
    """A version number: ``None`` or ``"draft"`` is the draft (0), ``"latest"`` the latest commit."""
    if version in (None, "draft", 0, "0"):
        return 0
    if version == "latest":
        if not vs.latest_version:
            raise ConfigError(f"{vs.name!r} has no committed version yet.")
        return vs.latest_version
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise ConfigError(f"A set version is a number, 'latest' or 'draft', not {version!r}.") from None
    if not 1 <= number <= vs.latest_version:
        have = f"versions 1 to {vs.latest_version}" if vs.latest_version else "no committed version yet"
        raise ConfigError(f"{vs.name!r} has no version {number} ({have}).")
    return number


def members(
    con: duckdb.DuckDBPyConnection, project: Project, name: str, version: int | str | None = None
) -> pd.DataFrame:
    """The members of one version (default: the draft), with their reason and source."""
    vs = get_set(con, project, name)
    number = version_number(con, project, vs, version)
    feats = "".join(f", {quote_ident(f.name)}" for f in project.features)
    return con.execute(
        f"SELECT example_id, prediction_id, label{feats}, reason, source, added_at "
        f"FROM {quote_ident(project.members_table)} WHERE set_id = ? AND set_version = ? ORDER BY added_at, example_id",
        [vs.set_id, number],
    ).df()

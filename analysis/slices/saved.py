"""Saved slices: named, described, revised (the old definitions stay in the
history), deleted (a deleted revision; the history stays), and tracked over
time and across model versions.

A saved slice remembers the model versions and stages it was looked at in (empty:
all). They are stored beside the conditions in the definition's JSON
(``{"conditions": [...], "scope": {"versions": [...], "stages": [...]}}``); a
definition saved before has no ``scope`` and means every version and stage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.metrics.sql import DAY, STAGE, VERSION, GroupKey, compute_metrics
from analysis.slices.compile import compile_slice, validate_slice
from analysis.slices.json_types import load as load_json
from analysis.slices.model import Slice
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, quote_ident

MAX_NAME = 200


@dataclass(frozen=True)
class SavedSlice:
    name: str
    revision: int
    description: str
    slice: Slice
    saved_at: datetime
    versions: tuple[str, ...] = ()  # the model versions it was saved for (empty: all)
    stages: tuple[str, ...] = ()  # and the stages (empty: all)

    @property
    def scope(self) -> Scope:
        return Scope.of(versions=self.versions, stages=self.stages)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "revision": self.revision,
            "description": self.description,
            "where": self.slice.readable(),
            "slice": self.slice.to_dict(),
            "saved_at": self.saved_at.isoformat(),
            "versions": list(self.versions),
            "stages": list(self.stages),
        }


def _definition(slice_: Slice, scope: Scope | None) -> str:
    d = slice_.to_dict()
    if scope is not None and (scope.versions or scope.stages):
        d["scope"] = {"versions": list(scope.versions), "stages": list(scope.stages)}
    return json.dumps(d, ensure_ascii=False, sort_keys=True, allow_nan=False)


def _read(definition: str) -> tuple[Slice, tuple[str, ...], tuple[str, ...]]:
    """A stored definition: the slice, and the versions and stages it was saved for."""
    d = load_json(definition)
    scope = d.pop("scope", None) if isinstance(d, dict) else None
    scope = scope if isinstance(scope, dict) else {}
    return (
        Slice.from_dict(d),
        tuple(str(v) for v in scope.get("versions") or ()),
        tuple(str(v) for v in scope.get("stages") or ()),
    )


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ConfigError("Give the slice a name.")
    if len(name) > MAX_NAME:
        raise ConfigError(f"A slice name has at most {MAX_NAME} characters.")
    return name


def _latest(con, project: Project, name: str) -> tuple | None:
    rows = con.execute(
        "SELECT revision, description, definition, deleted, saved_at FROM sb_saved_slices "
        "WHERE project_id = ? AND name = ? ORDER BY revision DESC LIMIT 1",
        [project.project_id, name],
    ).fetchall()
    return rows[0] if rows else None


def save_slice(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    name: str,
    slice_: Slice,
    description: str | None = None,
    scope: Scope | None = None,
) -> SavedSlice:
    """Save ``slice_`` as ``name``: a new slice, or a new revision of an existing one
    (without a ``description`` the revision keeps the previous one). ``scope``: the
    versions and stages it is saved for (its time window is not kept)."""
    name = _check_name(name)
    slice_ = validate_slice(slice_, project)
    latest = _latest(con, project, name)
    revision = 1 if latest is None else latest[0] + 1
    if description is None:
        description = latest[1] if latest is not None else ""
    now = utc_now()
    con.execute(
        "INSERT INTO sb_saved_slices VALUES (?, ?, ?, ?, ?, FALSE, ?)",
        [project.project_id, name, revision, description or "", _definition(slice_, scope), now],
    )
    scope = scope or Scope()
    return SavedSlice(name, revision, description or "", slice_, now, scope.versions, scope.stages)


def get_slice(con: duckdb.DuckDBPyConnection, project: Project, name: str, revision: int | None = None) -> SavedSlice:
    if revision is None:
        row = _latest(con, project, name)
    else:
        rows = con.execute(
            "SELECT revision, description, definition, deleted, saved_at FROM sb_saved_slices "
            "WHERE project_id = ? AND name = ? AND revision = ?",
            [project.project_id, name, int(revision)],
        ).fetchall()
        row = rows[0] if rows else None
    if row is None or (revision is None and row[3]):
        known = ", ".join(list_slices(con, project)["name"]) or "none yet"
        raise ConfigError(f"No saved slice named {name!r} in {project.name}. Saved slices: {known}.")
    slice_, versions, stages = _read(row[2])
    return SavedSlice(name, row[0], row[1], slice_, row[4], versions, stages)


def delete_slice(con: duckdb.DuckDBPyConnection, project: Project, name: str) -> None:
    current = get_slice(con, project, name)
    now = utc_now()
    con.execute(
        "INSERT INTO sb_saved_slices VALUES (?, ?, ?, ?, ?, TRUE, ?)",
        [
            project.project_id,
            name,
            current.revision + 1,
            current.description,
            _definition(current.slice, current.scope),
            now,
        ],
    )


def list_slices(con: duckdb.DuckDBPyConnection, project: Project) -> pd.DataFrame:
    """The latest revision of every slice that is not deleted: name, revision, description, where,
    saved_at, versions and stages (lists; empty: all)."""
    rows = con.execute(
        "SELECT s.name, s.revision, s.description, s.definition, s.saved_at FROM sb_saved_slices s "
        "JOIN (SELECT name, max(revision) AS revision FROM sb_saved_slices WHERE project_id = ? GROUP BY name) m "
        "ON s.name = m.name AND s.revision = m.revision WHERE s.project_id = ? AND NOT s.deleted ORDER BY s.name",
        [project.project_id, project.project_id],
    ).fetchall()
    out = []
    for n, r, d, j, t in rows:
        slice_, versions, stages = _read(j)
        out.append((n, r, d, slice_.readable(), t, list(versions), list(stages)))
    return pd.DataFrame(out, columns=["name", "revision", "description", "where", "saved_at", "versions", "stages"])


def slice_history(con: duckdb.DuckDBPyConnection, project: Project, name: str) -> pd.DataFrame:
    rows = con.execute(
        "SELECT revision, description, definition, deleted, saved_at FROM sb_saved_slices "
        "WHERE project_id = ? AND name = ? ORDER BY revision",
        [project.project_id, name],
    ).fetchall()
    if not rows:
        raise ConfigError(f"No saved slice named {name!r} in {project.name}.")
    out = []
    for r, d, j, x, t in rows:
        slice_, versions, stages = _read(j)
        out.append((r, d, slice_.readable(), list(versions), list(stages), x, t))
    return pd.DataFrame(out, columns=["revision", "description", "where", "versions", "stages", "deleted", "saved_at"])


def _with_part(project: Project, slice_: Slice, scope: Scope) -> Sql:
    return Sql.compose(
        "SELECT *, CASE WHEN {slice} THEN 'slice' ELSE 'rest' END AS sb_part FROM {log} WHERE {scope}",
        slice=compile_slice(slice_, project),
        log=quote_ident(project.log_table),
        scope=scope.to_sql(),
    )


PART = GroupKey("part", "sb_part")


def slice_over_time(
    con: duckdb.DuckDBPyConnection, project: Project, slice_: Slice, scope: Scope = Scope()
) -> pd.DataFrame:
    """Every metric per day, for the slice and for the rest of the scope."""
    frame = compute_metrics(con, project, group_by=[DAY, PART], rows=_with_part(project, slice_, scope))
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def slice_by_version(
    con: duckdb.DuckDBPyConnection, project: Project, slice_: Slice, scope: Scope = Scope()
) -> pd.DataFrame:
    """Every metric per model version and stage, for the slice and for the rest."""
    return compute_metrics(con, project, group_by=[VERSION, STAGE, PART], rows=_with_part(project, slice_, scope))

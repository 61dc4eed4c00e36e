"""Projects: one prediction task each, with its columns as stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from analysis.errors import ConfigError, ProjectNotFoundError
from analysis.store.schema import (
    label_type,
    labeled_table,
    log_table,
    members_table,
    pending_table,
    ranks_table,
    rollup_table,
)


@dataclass(frozen=True)
class Column:
    """A feature or outcome column of a project's log table."""

    name: str
    role: str  # "feature" or "outcome"
    dtype: str  # DuckDB storage type
    kind: str  # categorical | numeric | boolean | text | timestamp (features); "outcome"


@dataclass(frozen=True)
class Project:
    project_id: int
    name: str
    task: str
    positive_label: str | None
    negative_label: str | None
    threshold: float
    mapping_toml: str
    created_at: datetime
    columns: tuple[Column, ...] = field(default=())
    external: str | None = None  # the Parquet dataset the log reads in place (None: stored here)

    @property
    def log_table(self) -> str:
        return log_table(self.project_id)

    @property
    def labeled_table(self) -> str:
        """The log's labeled rows: their own copy for a stored log (see
        ``analysis.store.schema.create_labeled_table``), the log itself for an external one
        (read with ``label IS NOT NULL`` either way)."""
        return labeled_table(self.project_id) if self.external is None else log_table(self.project_id)

    @property
    def pending_table(self) -> str:
        return pending_table(self.project_id)

    @property
    def rollup_table(self) -> str:
        return rollup_table(self.project_id)

    @property
    def ranks_table(self) -> str:
        return ranks_table(self.project_id)

    @property
    def members_table(self) -> str:
        return members_table(self.project_id)

    @property
    def label_type(self) -> str:
        return label_type(self.task)

    @property
    def features(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.role == "feature")

    @property
    def outcomes(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.role == "outcome")

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    def class_names(self) -> dict[bool, str | None]:
        """Binary tasks store labels as booleans; these are the original names."""
        return {True: self.positive_label, False: self.negative_label}


def _row_to_project(con: duckdb.DuckDBPyConnection, row: tuple) -> Project:
    pid = row[0]
    cols = con.execute(
        "SELECT name, role, dtype, kind FROM sb_columns WHERE project_id = ? ORDER BY position",
        [pid],
    ).fetchall()
    external = con.execute("SELECT uri FROM sb_external WHERE project_id = ?", [pid]).fetchall()
    return Project(
        external=external[0][0] if external else None,
        project_id=pid,
        name=row[1],
        task=row[2],
        positive_label=row[3],
        negative_label=row[4],
        threshold=row[5],
        mapping_toml=row[6],
        created_at=row[7],
        columns=tuple(Column(*c) for c in cols),
    )


_PROJECT_COLS = "project_id, name, task, positive_label, negative_label, threshold, mapping_toml, created_at"


def find_project(con: duckdb.DuckDBPyConnection, name: str) -> Project | None:
    rows = con.execute(f"SELECT {_PROJECT_COLS} FROM sb_projects WHERE name = ?", [name]).fetchall()
    return _row_to_project(con, rows[0]) if rows else None


def project_name(project: "str | Project") -> str:
    """The name of a project given as its name or as a :class:`Project` (the write
    functions take either; they read the project again inside their transaction)."""
    return project.name if isinstance(project, Project) else project


def get_project(con: duckdb.DuckDBPyConnection, name: str) -> Project:
    project = find_project(con, name)
    if project is None:
        names = [p.name for p in list_projects(con)]
        known = ", ".join(names) if names else "none yet"
        raise ProjectNotFoundError(f"No project named {name!r}. Projects: {known}.")
    return project


def list_projects(con: duckdb.DuckDBPyConnection) -> list[Project]:
    rows = con.execute(f"SELECT {_PROJECT_COLS} FROM sb_projects ORDER BY name").fetchall()
    return [_row_to_project(con, r) for r in rows]


def require_stored(project: Project, action: str) -> None:
    """Refuse a write to the log of a project that reads an external dataset."""
    if project.external is not None:
        raise ConfigError(
            f"{project.name} reads its predictions from {project.external}; {action} changes that "
            "dataset, not Sliceboard: write to the dataset, then refresh the project."
        )

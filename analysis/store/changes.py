"""What a write changed: one signature per project and area of the database, so that a
cache can keep every answer whose areas a write did not touch.

Areas of a project:

* ``data``: its predictions, labels and outcomes, and its definition (columns, task,
  external dataset). Every write of rows records an ingest (``sb_ingests``) in the
  same transaction, so the ingest log, the project's rows and the shapes of its tables
  tell when the data changed without reading ten million rows;
* ``engine``: which engine answers it (``sb_engine``);
* ``slices``: saved slices; ``valsets``: validation sets, their versions and members;
  ``reports``: reports and their blocks (notes included);
* ``metrics``: product metrics; ``gates``: deployment-gate criteria;
* ``monitoring``: the reference window of label-free estimates and drift; monitors and
  the false-alarm budget.

And one area of the whole database, ``projects``: the list of projects.

A signature is a hash of the area's rows (its tables are small) read in the same
snapshot as the data, so it changes exactly when the area does, whoever wrote it (the
app, the CLI in another process, a write killed after its commit), and needs neither a
counter nor the writer's cooperation. Computing all of them costs one short query
(milliseconds, see docs/benchmarks.md); the app does it only when the database file
changed on disk.

``READS`` declares, once, which areas each engine function reads; a function not listed
is taken to read every area.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import duckdb

from analysis.store.sql import quote_ident

AREAS = ("data", "engine", "slices", "valsets", "reports", "metrics", "gates", "monitoring")
DATABASE_AREA = "projects"

# Metadata tables (with a project_id column) of each area.
AREA_TABLES = {
    "data": ("sb_projects", "sb_columns", "sb_ingests", "sb_external", "sb_key_repeats"),
    "engine": ("sb_engine",),
    "slices": ("sb_saved_slices",),
    "valsets": ("sb_valsets", "sb_valset_versions"),
    "reports": ("sb_reports", "sb_report_blocks"),
    "metrics": ("sb_product_metrics",),
    "gates": ("sb_gates",),
    "monitoring": (
        "sb_reference_windows",
        "sb_monitors",
        "sb_monitor_settings",
        "sb_monitor_state",
        "sb_monitor_observations",
        "sb_alerts",
        "sb_alert_events",
        "sb_webhooks",
        "sb_deliveries",
    ),
}
# What ``list_projects`` reads of every project.
DEFINITION_TABLES = ("sb_projects", "sb_columns", "sb_external")
# Per-project tables: the data's (their shapes only) and the members of validation sets (their rows).
_DATA_TABLE = re.compile(r"^(log|labeled|pending|rollup|ranks)_(\d+)$")
_MEMBERS_TABLE = re.compile(r"^members_(\d+)$")

# Every call with a project also reads the project (``data``) and its engine setting
# (``engine``); listed here: the other areas each function reads.
READS: dict[str, tuple[str, ...]] = {
    "analysis.store.project.list_projects": (),
    "analysis.store.project.get_project": (),
    "analysis.engines.settings.get_settings": (),
    "analysis.overview.project_summary": (),
    "analysis.overview.overview_data": (),
    "analysis.overview.overview_table": (),
    "analysis.overview.daily_series": (),
    "analysis.slices.metrics.slice_metrics": (),
    "analysis.slices.column_profile.histogram": (),
    "analysis.slices.column_profile.value_counts": (),
    "analysis.slices.breakdown.breakdown": (),
    "analysis.slices.breakdown.grouping": (),
    "analysis.slices.breakdown.leaderboard": (),
    "analysis.slices.buckets.bucket_counts": (),
    "analysis.slices.buckets.examples": (),
    "analysis.discovery.run.discover": (),
    "analysis.discovery.tree.error_tree": (),
    "analysis.slices.saved.list_slices": ("slices",),
    "analysis.slices.saved.slice_history": ("slices",),
    "analysis.slices.saved.slice_by_version": ("slices",),
    "analysis.slices.saved.slice_over_time": ("slices",),
    "analysis.valsets.sets.list_sets": ("valsets",),
    "analysis.valsets.versions.history": ("valsets",),
    "analysis.valsets.versions.diff": ("valsets",),
    "analysis.valsets.sets.members": ("valsets",),
    "analysis.valsets.evaluate.evaluate": ("valsets",),
    "analysis.valsets.promote.preview_promotion": ("valsets",),
    "analysis.metrics.product.list_metrics": ("metrics",),
    "analysis.compare.comparison.daily": ("metrics",),
    "analysis.compare.gate.get_criteria": ("gates",),
    "analysis.compare.gate.run_gate": ("gates", "metrics", "slices", "valsets"),
    "analysis.reports.saved.list_reports": ("reports",),
    "analysis.reports.saved.get_report": ("reports",),
    "analysis.estimation.reference.get_reference_choice": ("monitoring",),
    "analysis.estimation.reference.resolve_reference": ("monitoring",),
    "analysis.estimation.fit.fit_slice": (),
    "analysis.estimation.reference.version_stages": (),
    "analysis.estimation.timeline.estimate_timeline": (),
    "analysis.estimation.run.estimate": ("monitoring",),
}
ALWAYS = ("data", "engine")


def areas_read(func_path: str) -> tuple[str, ...]:
    """The areas of its project that ``module.name`` reads (every area when not declared)."""
    extra = READS.get(func_path)
    if extra is None:
        return AREAS
    return tuple(a for a in AREAS if a in ALWAYS or a in extra)


@dataclass(frozen=True)
class Signatures:
    """The database's signatures: ``projects`` (the list of projects) and, per project
    name, its id and a signature per area."""

    database: str
    projects: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)

    def key(self, func_path: str, project: str | None) -> tuple:
        """What a cached answer of ``func_path`` on ``project`` depends on."""
        if project is None:
            if func_path in READS:  # database-wide and declared: the list of projects
                return (self.database,)
            return (self.database, tuple(sorted((n, tuple(sorted(a.items()))) for n, (_, a) in self.projects.items())))
        if project not in self.projects:
            return (self.database, project)
        pid, areas = self.projects[project]
        return (pid,) + tuple(areas.get(a, "") for a in areas_read(func_path))


def _digest(parts) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


def signatures(con: duckdb.DuckDBPyConnection) -> Signatures:
    """Every area's signature, read in one snapshot."""
    existing = {
        r[0]: r[1]
        for r in con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary"
        ).fetchall()
    }
    views = {
        r[0]: r[1]
        for r in con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal AND NOT temporary"
        ).fetchall()
    }
    columns = {
        r[0]: r[1]
        for r in con.execute(
            "SELECT table_name, count(*) FROM duckdb_columns() WHERE schema_name = 'main' GROUP BY ALL"
        ).fetchall()
    }
    selects = []
    for area, tables in AREA_TABLES.items():
        for table in tables:
            if table in existing:
                selects.append(
                    f"SELECT '{area}' AS area, '{table}' AS tbl, project_id, count(*) AS n, "
                    f"bit_xor(hash(t)) AS h FROM {quote_ident(table)} AS t GROUP BY ALL"
                )
    for table in existing:
        match = _MEMBERS_TABLE.match(table)
        if match:
            selects.append(
                f"SELECT 'valsets', '{table}', {int(match.group(1))}, count(*), bit_xor(hash(t)) "
                f"FROM {quote_ident(table)} AS t"
            )
    rows = con.execute(" UNION ALL ".join(selects)).fetchall() if selects else []
    parts: dict[tuple[int, str], list] = {}
    for area, table, pid, n, h in rows:
        parts.setdefault((pid, area), []).append((table, n, h))
    # The data's tables: their shapes (rows and columns; a view, its definition).
    for name in sorted(set(existing) | set(views)):
        match = _DATA_TABLE.match(name)
        if match:
            shape = (name, existing.get(name), columns.get(name), views.get(name))
            parts.setdefault((int(match.group(2)), "data"), []).append(shape)
    names = (
        dict(con.execute("SELECT project_id, name FROM sb_projects").fetchall()) if "sb_projects" in existing else {}
    )
    projects = {
        name: (pid, {area: _digest(sorted(parts.get((pid, area), []), key=repr)) for area in AREAS})
        for pid, name in names.items()
    }
    # The list of projects (each with its definition): what ``list_projects`` reads.
    database = _digest(sorted((r for r in rows if r[1] in DEFINITION_TABLES), key=repr))
    return Signatures(database, projects)

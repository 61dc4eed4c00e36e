"""The report a project gets without building one: headline numbers per version, the
latest comparison with its gate verdict, the top discovered slices of the main version,
and the validation-set matrix."""

from __future__ import annotations

import json

import duckdb

from analysis.compare.comparison import Side
from analysis.compare.gate import get_criteria
from analysis.errors import ConfigError
from analysis.reports import blocks as kinds
from analysis.reports.fingerprint import fingerprint
from analysis.reports.saved import Block, Report, default_title
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.store.sql import quote_ident


def latest_comparison(con: duckdb.DuckDBPyConnection, project: Project) -> tuple[Side, Side] | None:
    """The comparison last added to one of the project's reports; otherwise the version
    with the most production rows (or the most rows) against the busiest other version."""
    rows = con.execute(
        "SELECT params FROM sb_report_blocks WHERE project_id = ? AND kind IN ('comparison', 'gate') "
        "ORDER BY computed_at DESC LIMIT 1",
        [project.project_id],
    ).fetchall()
    if rows:
        params = json.loads(rows[0][0])
        return kinds.side_of(params["baseline"]), kinds.side_of(params["candidate"])
    counts = con.execute(
        f"SELECT model_version, count(*), count(*) FILTER (WHERE stage = 'production') "
        f"FROM {quote_ident(project.log_table)} GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1"
    ).fetchall()
    if len(counts) < 2:
        return None
    baseline = counts[0][0]
    candidate = max(counts[1:], key=lambda r: (r[1], r[0]))[0]
    return Side(baseline), Side(candidate)


def default_report(con: duckdb.DuckDBPyConnection, project: Project, progress=None) -> Report:
    """Computed now, not stored. ``progress(fraction, text)`` hears of each step."""

    def step(fraction: float, text: str) -> None:
        if progress is not None:
            progress(fraction, text)

    views: list[tuple[str, dict]] = [("headline", {})]
    pair = latest_comparison(con, project)
    if pair is not None:
        # The comparison block looks as far as the gate does, so both show one comparison.
        found = get_criteria(con, project).discovered_slices
        views += [
            ("comparison", {"baseline": pair[0], "candidate": pair[1], "discovered": found}),
            ("gate", {"baseline": pair[0], "candidate": pair[1]}),
        ]
    main = pair[0].version if pair is not None else None
    views.append(("discovery", {"scope": {"versions": [main] if main else []}, "top_k": 5}))
    has_sets = con.execute("SELECT count(*) FROM sb_valsets WHERE project_id = ?", [project.project_id]).fetchall()[0][
        0
    ]
    if has_sets:
        views.append(("valsets", {}))
    print_ = fingerprint(con, project)
    out, shared = [], None
    for i, (kind, view) in enumerate(views, start=1):
        step((i - 1) / len(views), f"Computing {kinds.TITLES[kind].lower()}")
        try:
            params = kinds.pin(con, project, kind, view)
            if kind == "comparison":  # the gate that follows judges the same comparison
                shared = kinds.comparison_for(con, project, params)
            snapshot = kinds.compute(con, project, kind, params, comparison=shared)
        except ConfigError as exc:  # e.g. nothing labeled to discover from: leave the block out, say why
            params = {"text": f"{kinds.TITLES[kind]}: {exc}"}
            kind, snapshot = "note", params
        out.append(Block(i, i, kind, default_title(kind, params), params, snapshot, print_, utc_now()))
    step(1.0, "Done")
    return Report(f"{project.name} (default)", f"{project.name}: model report", project.name, out)

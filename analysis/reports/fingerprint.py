"""A project's data fingerprint: enough to tell, later, whether the data a report
showed has changed and how (rows, labels, ingests, per version and stage)."""

from __future__ import annotations

import duckdb

from analysis.store.project import Project
from analysis.store.sql import quote_ident


def fingerprint(con: duckdb.DuckDBPyConnection, project: Project) -> dict:
    """Rows and labeled rows overall and per version × stage, the number of ingests
    and the time of the last one (from the per-day rollup and the ingest log:
    milliseconds at any size)."""
    log = quote_ident(project.log_table)
    per = con.execute(
        f'SELECT model_version, stage, count(*), count(label), max("timestamp") FROM {log} '
        "GROUP BY model_version, stage ORDER BY model_version, stage"
    ).fetchall()
    ingests, last = con.execute(
        "SELECT count(*), max(ingested_at) FROM sb_ingests WHERE project_id = ?", [project.project_id]
    ).fetchall()[0]
    return {
        "project": project.name,
        "rows": int(sum(r[2] for r in per)),
        "labeled": int(sum(r[3] for r in per)),
        "versions": {
            f"{v} ({s})": {"rows": int(n), "labeled": int(k), "last_prediction": t.isoformat() if t else None}
            for v, s, n, k, t in per
        },
        "ingests": int(ingests),
        "last_ingest": last.isoformat(sep=" ", timespec="seconds") if last else None,
    }


def describe_changes(old: dict, new: dict) -> list[str]:
    """What changed between two fingerprints, in words (empty: nothing)."""
    out = []
    for key, word in (("rows", "rows"), ("labeled", "labeled rows")):
        if old.get(key) != new.get(key):
            out.append(f"{word}: {old.get(key, 0):,} → {new.get(key, 0):,} ({new.get(key, 0) - old.get(key, 0):+,})")
    before, after = old.get("versions", {}), new.get("versions", {})
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None:
            out.append(f"{name}: new, {b['rows']:,} rows")
        elif b is None:
            out.append(f"{name}: no longer in the data ({a['rows']:,} rows before)")
        elif (a["rows"], a["labeled"]) != (b["rows"], b["labeled"]):
            out.append(f"{name}: {a['rows']:,} → {b['rows']:,} rows, {a['labeled']:,} → {b['labeled']:,} labeled")
    if old.get("ingests") != new.get("ingests"):
        out.append(
            f"ingests: {old.get('ingests', 0)} → {new.get('ingests', 0)} "
            f"(last {old.get('last_ingest')} → {new.get('last_ingest')})"
        )
    return out

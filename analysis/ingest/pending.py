"""Labels that arrived before their predictions wait in the project's pending table; an
ingest of predictions takes in the ones that now have a row (and says where they disagree)."""

from __future__ import annotations

from analysis.store.project import Project
from analysis.store.sql import quote_ident

# --- waiting labels ------------------------------------------------------------------------


def disagree_sql(a: str, b: str, fields: list[str]) -> str:
    """SQL: some field is set on both sides to different values."""
    return (
        " OR ".join(
            f"({a}.{quote_ident(f)} IS NOT NULL AND {b}.{quote_ident(f)} IS NOT NULL "
            f"AND {a}.{quote_ident(f)} <> {b}.{quote_ident(f)})"
            for f in fields
        )
        or "FALSE"
    )


def fills_sql(a: str, b: str, fields: list[str]) -> str:
    """SQL: ``b`` has a value for some field that ``a`` lacks."""
    return (
        " OR ".join(f"({a}.{quote_ident(f)} IS NULL AND {b}.{quote_ident(f)} IS NOT NULL)" for f in fields) or "FALSE"
    )


def apply_pending(con, proj: Project, ingest_id: int) -> tuple[int, int]:
    """Apply waiting labels/outcomes to the rows of ``ingest_id``.

    Returns (rows that received a label or outcome, conflicts). Prediction-keyed
    entries are removed once applied; example-keyed entries stay, so that later
    predictions of the same example receive them too. Values already in the row
    win over waiting ones; disagreements are counted as conflicts.
    """
    pending = quote_ident(proj.pending_table)
    if not con.execute(f"SELECT count(*) FROM {pending}").fetchall()[0][0]:
        return 0, 0
    log = quote_ident(proj.log_table)
    values = ["label"] + [c.name for c in proj.outcomes]
    fields = ["label", "label_timestamp"] + [c.name for c in proj.outcomes]
    applied = conflicts = 0
    for key_kind, key_col in (("prediction", "prediction_id"), ("example", "example_id")):
        conflicts += con.execute(
            f"SELECT count(*) FROM {log} l JOIN {pending} p ON p.key_kind = ? "
            f"AND l.{key_col} = p.key AND l.ingest_id = ? WHERE {disagree_sql('l', 'p', values)}",
            [key_kind, ingest_id],
        ).fetchall()[0][0]
        sets = ", ".join(f"{quote_ident(f)} = coalesce({log}.{quote_ident(f)}, p.{quote_ident(f)})" for f in fields)
        applied += con.execute(
            f"UPDATE {log} SET {sets} FROM {pending} p WHERE p.key_kind = ? AND "
            f"{log}.{key_col} = p.key AND {log}.ingest_id = ? AND ({fills_sql(log, 'p', fields)})",
            [key_kind, ingest_id],
        ).fetchall()[0][0]
        if key_kind == "prediction":
            con.execute(
                f"DELETE FROM {pending} WHERE key_kind = 'prediction' AND key IN "
                f"(SELECT prediction_id FROM {log} WHERE ingest_id = ?)",
                [ingest_id],
            )
    return applied, conflicts

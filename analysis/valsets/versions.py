"""A validation set's versions: committed with a content hash (immutable), their
history and the difference between two."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.store.sql import in_transaction, quote_ident
from analysis.valsets.sets import get_set, version_number


@dataclass(frozen=True)
class CommittedVersion:
    set_name: str
    version: int
    message: str
    content_hash: str
    n_members: int
    committed_at: datetime


# -- versions --------------------------------------------------------------------------------------

HASH_BATCH_ROWS = 50_000


def content_hash(con: duckdb.DuckDBPyConnection, project: Project, set_id: int, version: int) -> tuple[str, int]:
    """The content hash of one set version and its number of members.

    SHA-256 of every member's id, source prediction, label, features, reason and
    source, rows in example-id order (fields separated by U+001F, rows by U+001E).
    The rows are fed to the hash in batches, so a set of any size is hashed in
    bounded memory; the digest equals the one of the rows joined into one string."""
    parts = ["example_id", "coalesce(prediction_id, '')", "coalesce(CAST(label AS VARCHAR), '')"]
    parts += [f"coalesce(CAST({quote_ident(f.name)} AS VARCHAR), '')" for f in project.features]
    parts += ["reason", "source"]
    row = " || chr(31) || ".join(parts)
    reader = con.sql(
        f"SELECT {row} FROM {quote_ident(project.members_table)} WHERE set_id = ? AND set_version = ? "
        "ORDER BY example_id",
        params=[set_id, version],
    ).to_arrow_reader(HASH_BATCH_ROWS)
    digest, members = hashlib.sha256(), 0
    for batch in reader:
        texts = batch.column(0).to_pylist()
        if members:
            digest.update(b"\x1e")
        digest.update("\x1e".join(texts).encode("utf-8"))
        members += len(texts)
    return digest.hexdigest(), members


def commit(con: duckdb.DuckDBPyConnection, project: Project, name: str, message: str) -> CommittedVersion:
    """Freeze the draft as the next numbered version (immutable from then on)."""
    message = (message or "").strip()
    if not message:
        raise ConfigError("Say in a message what this version changes.")
    vs = get_set(con, project, name)
    members = quote_ident(project.members_table)
    cols = ", ".join(
        [
            "example_id",
            "prediction_id",
            "label",
            *(quote_ident(f.name) for f in project.features),
            "reason",
            "source",
            "added_at",
        ]
    )

    def work():
        draft_hash, n = content_hash(con, project, vs.set_id, 0)
        if not n:
            raise ConfigError(f"The draft of {name!r} is empty: promote examples into it first.")
        last = con.execute(
            "SELECT version, content_hash FROM sb_valset_versions WHERE set_id = ? ORDER BY version DESC LIMIT 1",
            [vs.set_id],
        ).fetchall()
        if last and last[0][1] == draft_hash:
            raise ConfigError(f"The draft of {name!r} equals version {last[0][0]}: nothing to commit.")
        version = (last[0][0] if last else 0) + 1
        con.execute(
            f"INSERT INTO {members} (set_id, set_version, {cols}) SELECT set_id, ?, {cols} FROM {members} "
            "WHERE set_id = ? AND set_version = 0",
            [version, vs.set_id],
        )
        now = utc_now()
        con.execute(
            "INSERT INTO sb_valset_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [project.project_id, vs.set_id, version, message, draft_hash, int(n), now],
        )
        return CommittedVersion(vs.name, version, message, draft_hash, int(n), now)

    return in_transaction(con, work)


def history(con: duckdb.DuckDBPyConnection, project: Project, name: str) -> pd.DataFrame:
    """Committed versions, newest first: message, hash, members, and what each added and removed."""
    vs = get_set(con, project, name)
    m = quote_ident(project.members_table)
    return con.execute(
        f"""SELECT v.version, v.message, v.content_hash, v.n_members, v.committed_at,
                   CASE WHEN v.version = 1 THEN v.n_members ELSE
                   (SELECT count(*) FROM {m} a WHERE a.set_id = v.set_id AND a.set_version = v.version
                      AND NOT EXISTS (SELECT 1 FROM {m} b WHERE b.set_id = v.set_id AND b.set_version = v.version - 1
                                      AND b.example_id = a.example_id)) END AS added,
                   (SELECT count(*) FROM {m} b WHERE b.set_id = v.set_id AND b.set_version = v.version - 1
                      AND v.version > 1 AND NOT EXISTS (SELECT 1 FROM {m} a WHERE a.set_id = v.set_id
                                      AND a.set_version = v.version AND a.example_id = b.example_id)) AS removed
            FROM sb_valset_versions v WHERE v.set_id = ? ORDER BY v.version DESC""",
        [vs.set_id],
    ).df()


def diff(con: duckdb.DuckDBPyConnection, project: Project, name: str, old: int | str, new: int | str) -> pd.DataFrame:
    """Members added (in ``new``, not in ``old``) and removed (in ``old``, not in ``new``),
    with their reasons and sources; either side may be ``"draft"``."""
    vs = get_set(con, project, name)
    a, b = version_number(con, project, vs, old), version_number(con, project, vs, new)
    m = quote_ident(project.members_table)
    return con.execute(
        f"""SELECT 'added' AS change, example_id, prediction_id, label, reason, source, added_at FROM {m} x
              WHERE set_id = ? AND set_version = ? AND NOT EXISTS (SELECT 1 FROM {m} y WHERE y.set_id = x.set_id
                    AND y.set_version = ? AND y.example_id = x.example_id)
            UNION ALL
            SELECT 'removed', example_id, prediction_id, label, reason, source, added_at FROM {m} x
              WHERE set_id = ? AND set_version = ? AND NOT EXISTS (SELECT 1 FROM {m} y WHERE y.set_id = x.set_id
                    AND y.set_version = ? AND y.example_id = x.example_id)
            ORDER BY change, example_id""",
        [vs.set_id, b, a, vs.set_id, a, b],
    ).df()

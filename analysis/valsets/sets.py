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

import hashlib
import json
import math
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

import duckdb
import pandas as pd

from analysis.errors import ConfigError
from analysis.metrics.registry import metrics_for
from analysis.metrics.sql import GroupKey, compute_metrics
from analysis.slices import Slice, compile_slice
from analysis.slices.buckets import bucket_filter, buckets_for
from analysis.slices.metrics import add_counts, with_intervals
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import and_all, in_transaction, quote_ident
from analysis.wording import count

MAX_NAME = 200
MAX_HAND_PICKED = 10_000
OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}


@dataclass(frozen=True)
class Criterion:
    """A pass criterion such as ``accuracy >= 0.9``."""

    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def holds(self, observed: float) -> bool:
        return observed == observed and OPS[self.op](observed, self.value)


def parse_criterion(text: str, project: Project) -> Criterion:
    """``"recall >= 0.8"`` into a :class:`Criterion` of one of the task's metrics."""
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*", text or "")
    names = [*metrics_for(project.task)] + (["error_rate"] if project.task != "regression" else [])
    if not m:
        raise ConfigError(f"Write a criterion as 'metric >= value', such as 'accuracy >= 0.9'; got {text!r}.")
    metric, op, value = m.group(1), m.group(2), m.group(3)
    if metric not in names:
        raise ConfigError(
            f"Unknown metric {metric!r} in {text!r}; a {project.task} set can require {', '.join(names)}."
        )
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{value!r} in {text!r} is not a number.") from None
    if not math.isfinite(number):
        raise ConfigError(f"{value!r} in {text!r} is not a finite number.")
    return Criterion(metric, op, number)


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


@dataclass(frozen=True)
class CommittedVersion:
    set_name: str
    version: int
    message: str
    content_hash: str
    n_members: int
    committed_at: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


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
                _now(),
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
            [vs.set_id, reason or "", source_text, _now(), *rows[1], vs.set_id],
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
        now = _now()
        con.execute(
            "INSERT INTO sb_valset_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [project.project_id, vs.set_id, version, message, draft_hash, int(n), now],
        )
        return CommittedVersion(vs.name, version, message, draft_hash, int(n), now)

    return in_transaction(con, work)


def _version(con, project: Project, vs: ValidationSet, version: int | str | None) -> int:
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
    number = _version(con, project, vs, version)
    feats = "".join(f", {quote_ident(f.name)}" for f in project.features)
    return con.execute(
        f"SELECT example_id, prediction_id, label{feats}, reason, source, added_at "
        f"FROM {quote_ident(project.members_table)} WHERE set_id = ? AND set_version = ? ORDER BY added_at, example_id",
        [vs.set_id, number],
    ).df()


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
    a, b = _version(con, project, vs, old), _version(con, project, vs, new)
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


# -- evaluation ------------------------------------------------------------------------------------


@contextmanager
def _member_predictions(
    con, project: Project, pairs: list[tuple[int, int]], scope: Scope
) -> Iterator[tuple[str, list]]:
    """Rows ``set_id, set_version, model_version, stage, label, prediction, score, outcomes``:
    each member with the latest prediction every version × stage made for it, and
    its label: the latest one the log knows for the example, else the one it was
    promoted with (so labels that arrive after promotion are used).

    The log rows of the members' examples are copied once into a temporary table
    (one scan of the log); everything else reads that small table."""
    m = quote_ident(project.members_table)
    keys = " OR ".join("(set_id = ? AND set_version = ?)" for _ in pairs)
    key_params = [x for pair in pairs for x in pair]
    outs = "".join(f", {quote_ident(o.name)}" for o in project.outcomes)
    table = quote_ident(f"sb_member_rows_{uuid.uuid4().hex}")
    # Not prediction_id: reading it for every row of the log costs more than the rest
    # together, and ties on the timestamp break on the values that count (score, prediction).
    con.execute(
        f'CREATE TEMP TABLE {table} AS SELECT example_id, model_version, stage, "timestamp", '
        f"prediction, score, label, label_timestamp{outs} FROM {quote_ident(project.log_table)} "
        f"WHERE example_id IN (SELECT example_id FROM {m} WHERE {keys})",
        key_params,
    )
    where, params = scope.to_sql()
    sql = f"""
        SELECT mem.set_id, mem.set_version, p.model_version, p.stage, coalesce(known.label, mem.label) AS label,
               p.prediction, p.score{"".join(f", p.{quote_ident(o.name)}" for o in project.outcomes)}
        FROM (SELECT set_id, set_version, example_id, label FROM {m} WHERE {keys}) AS mem
        JOIN (SELECT example_id, model_version, stage, prediction, score{outs},
                     row_number() OVER (PARTITION BY model_version, stage, example_id
                                        ORDER BY "timestamp" DESC, score DESC NULLS LAST,
                                                 CAST(prediction AS VARCHAR) DESC NULLS LAST) AS sb_rank
              FROM {table} WHERE {where}) AS p
          ON p.example_id = mem.example_id AND p.sb_rank = 1
        LEFT JOIN (SELECT example_id, arg_max(label, coalesce(label_timestamp, "timestamp")) AS label
                   FROM {table} WHERE label IS NOT NULL GROUP BY example_id) AS known
          ON known.example_id = mem.example_id"""
    try:
        yield sql, [*key_params, *params]
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")


def evaluate(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    names: list[str] | None = None,
    *,
    version: int | str = "latest",
    scope: Scope = Scope(),
) -> pd.DataFrame:
    """Every model version × stage on each set's committed ``version`` (default: the latest).

    One row per set × model version × stage: ``members``, ``scored`` (members that
    version made a prediction for), ``labeled`` (scored members with a label; the
    rest are counted, not evaluated), every metric with 95% intervals where one
    exists, and ``verdict``: ``pass`` / ``fail`` against the set's criteria,
    ``no criteria``, or ``no data``.
    """
    sets = [get_set(con, project, n) for n in (names if names is not None else list_sets(con, project)["name"])]
    sets = [s for s in sets if s.latest_version]
    columns = [
        "set",
        "set_version",
        "model_version",
        "stage",
        "members",
        "scored",
        "labeled",
        "unlabeled",
        "coverage",
        "verdict",
        "failed",
    ]
    if not sets:
        return pd.DataFrame(columns=columns)
    pairs = [(s.set_id, _version(con, project, s, version)) for s in sets]
    with _member_predictions(con, project, pairs, scope) as rows:
        frame = compute_metrics(
            con,
            project,
            rows=rows,
            group_by=[
                GroupKey("set_id", "set_id"),
                GroupKey("set_version", "set_version"),
                GroupKey("model_version", "model_version"),
                GroupKey("stage", "stage"),
            ],
        )
    # Every version x stage in scope, from the small per-day rollup where the window allows.
    table, (where, params) = (
        (project.rollup_table, scope.to_rollup_sql()) if scope.day_aligned() else (project.log_table, scope.to_sql())
    )
    grid = con.execute(f"SELECT DISTINCT model_version, stage FROM {quote_ident(table)} WHERE {where}", params).df()
    sizes = {
        (sid, ver): n
        for sid, ver, n in con.execute(
            f"SELECT set_id, set_version, count(*) FROM {quote_ident(project.members_table)} WHERE "
            + " OR ".join("(set_id = ? AND set_version = ?)" for _ in pairs)
            + " GROUP BY ALL",
            [x for p in pairs for x in p],
        ).fetchall()
    }
    full = pd.DataFrame(
        [(sid, ver, mv, st) for sid, ver in pairs for mv, st in zip(grid["model_version"], grid["stage"])],
        columns=["set_id", "set_version", "model_version", "stage"],
    )
    frame = full.merge(frame, on=["set_id", "set_version", "model_version", "stage"], how="left")
    for c in frame.columns:
        if c.startswith("n_") or c in ("tp", "fp", "fn", "tn"):
            frame[c] = frame[c].fillna(0).astype("int64")
    by_id = {s.set_id: s for s in sets}
    frame.insert(0, "set", [by_id[i].name for i in frame["set_id"]])
    frame["members"] = [sizes.get((i, v), 0) for i, v in zip(frame["set_id"], frame["set_version"])]
    frame["scored"] = frame["n_rows"]
    frame["labeled"] = frame["n_labeled"]
    frame["unlabeled"] = frame["scored"] - frame["labeled"]
    frame["coverage"] = frame["scored"] / frame["members"].where(frame["members"] > 0)
    add_counts(frame, project)
    frame = with_intervals(frame, project)
    verdicts, failed = [], []
    for r in frame.itertuples(index=False):
        criteria = by_id[r.set_id].criteria
        if not r.labeled:
            verdicts.append("no data")
            failed.append("")
        elif not criteria:
            verdicts.append("no criteria")
            failed.append("")
        else:
            broken = [str(c) for c in criteria if not c.holds(float(getattr(r, c.metric)))]
            verdicts.append("fail" if broken else "pass")
            failed.append("; ".join(broken))
    frame["verdict"] = verdicts
    frame["failed"] = failed
    frame = frame.drop(columns=["set_id"])
    lead = [c for c in columns if c in frame]
    return (
        frame[lead + [c for c in frame.columns if c not in lead]]
        .sort_values(["set", "model_version", "stage"])
        .reset_index(drop=True)
    )


# -- the re-scoring loop ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    path: str
    rows: int
    columns: tuple[str, ...]


def _with_class_names(frame: pd.DataFrame, project: Project) -> pd.DataFrame:
    """Binary labels as the project's class names, as the log's source files had them."""
    if project.task == "binary":
        names = project.class_names()
        frame["label"] = frame["label"].map(lambda v: None if pd.isna(v) else names[bool(v)])
    return frame


def export_bytes(
    con: duckdb.DuckDBPyConnection, project: Project, name: str, version: int | str = "latest", fmt: str = "parquet"
) -> tuple[bytes, Export]:
    """A committed version's examples (ids, features as promoted, labels as now known) as
    the bytes of a Parquet or CSV file (``fmt``), for scoring offline; nothing is written."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"Export to a .parquet or .csv file, not {fmt!r}.")
    vs = get_set(con, project, name)
    number = _version(con, project, vs, version)
    if number == 0:
        raise ConfigError("Export a committed version: commit the draft first, so the scores can be traced to it.")
    m, log = quote_ident(project.members_table), quote_ident(project.log_table)
    feats = "".join(f", m.{quote_ident(f.name)}" for f in project.features)
    frame = con.execute(
        f"""SELECT m.example_id{feats}, coalesce(known.label, m.label) AS label, ? AS validation_set,
                   m.set_version AS set_version
            FROM {m} AS m LEFT JOIN (SELECT example_id, arg_max(label, coalesce(label_timestamp, "timestamp")) AS label
                                     FROM {log} WHERE label IS NOT NULL AND example_id IN
                                       (SELECT example_id FROM {m} WHERE set_id = ? AND set_version = ?)
                                     GROUP BY example_id) AS known ON known.example_id = m.example_id
            WHERE m.set_id = ? AND m.set_version = ? ORDER BY m.example_id""",
        [vs.name, vs.set_id, number, vs.set_id, number],
    ).df()
    frame = _with_class_names(frame, project)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    if fmt == "parquet":
        pq.write_table(table, sink)
    else:
        pacsv.write_csv(table, sink)
    return sink.getvalue().to_pybytes(), Export("", len(frame), tuple(frame.columns))


def export_set(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    name: str,
    path: str,
    version: int | str = "latest",
    *,
    force: bool = True,
    protect=(),
) -> Export:
    """Write a committed version's examples to Parquet or CSV (by the file's suffix), for
    scoring offline: through :func:`analysis.store.paths.write_file` (no links followed, never a
    database, replaced only with ``force``, never half a file)."""
    from analysis.store.paths import check_target, write_file

    suffix = str(path).lower().rsplit(".", 1)[-1]
    if suffix not in ("parquet", "csv"):
        raise ConfigError(f"Export to a .parquet or .csv file, not {path!r}.")
    check_target(path, force=force, protect=protect)  # before the query: a refusal costs nothing
    data, done = export_bytes(con, project, name, version, suffix)
    write_file(path, data, force=force, protect=protect)
    return Export(str(path), done.rows, done.columns)


def ingest_scores(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    name: str,
    source,
    *,
    model_version: str,
    version: int | str = "latest",
    prediction: str = "prediction",
    score: str | None = "score",
    on_duplicate: str = "error",
    source_name: str | None = None,
):
    """Ingest a scored export (``example_id`` and ``prediction``, optionally ``score``) as
    predictions of ``model_version`` at stage ``offline``, so that the set's evaluation
    fills in. Each member becomes one prediction with id
    ``<set>@<version>/<model_version>/<example_id>``, the member's features and its
    label; rows for examples that are not members are refused."""
    from analysis.errors import IngestError
    from analysis.ingest.mapping import Mapping
    from analysis.ingest.predictions import ingest_predictions
    from analysis.ingest.sources import close_source, open_source

    if not model_version or not str(model_version).strip():
        raise ConfigError("Name the model version that scored the file (--model-version).")
    vs = get_set(con, project, name)
    number = _version(con, project, vs, version)
    if number == 0:
        raise ConfigError("Scores belong to a committed version of the set.")
    label = source_name or (str(source) if not isinstance(source, pd.DataFrame) else "scored rows")
    src = open_source(con, source, name=label, view="sb_scored")
    try:
        missing = [c for c in ("example_id", prediction) if c not in src.columns]
        if missing:
            raise IngestError(
                f"has no column {', '.join(repr(c) for c in missing)}; a scored export needs "
                f"example_id and {prediction!r}",
                source=label,
            )
        use_score = bool(score) and score in src.columns
        scored = con.execute(
            f"SELECT CAST(example_id AS VARCHAR) AS example_id, {quote_ident(prediction)} AS prediction"
            + (f", {quote_ident(score)} AS score" if use_score else "")
            + " FROM sb_scored"
        ).df()
    finally:
        close_source(con, src)
    if scored["example_id"].isna().any():
        raise IngestError(f"{int(scored['example_id'].isna().sum())} row(s) have no example_id", source=label)
    repeated = scored["example_id"][scored["example_id"].duplicated()].unique().tolist()
    if repeated:
        raise IngestError(f"{len(repeated)} example id(s) appear more than once, such as {repeated[:3]}", source=label)
    mem = members(con, project, name, number)
    unknown = sorted(set(scored["example_id"]) - set(mem["example_id"]))
    if unknown:
        member = "is not a member" if len(unknown) == 1 else "are not members"
        raise IngestError(
            f"{count(len(unknown), 'example id')} {member} of {vs.name!r} version {number}, such as "
            f"{', '.join(repr(u) for u in unknown[:3])}",
            source=label,
        )
    frame = scored.merge(mem.drop(columns=["prediction", "score"], errors="ignore"), on="example_id", how="left")
    frame = _with_class_names(frame, project)
    frame["prediction_id"] = [f"{vs.name}@{number}/{model_version}/{e}" for e in frame["example_id"]]
    frame["timestamp"] = pd.Timestamp(_now())
    mapping = Mapping(
        task=project.task,
        positive_label=project.positive_label,
        threshold=project.threshold,
        id="prediction_id",
        example="example_id",
        timestamp="timestamp",
        prediction="prediction",
        score="score" if use_score else None,
        label="label",
        features=[f.name for f in project.features],
        outcomes=[],
        kinds={f.name: f.kind for f in project.features},
    )
    keep = [
        "prediction_id",
        "example_id",
        "timestamp",
        "prediction",
        *(["score"] if use_score else []),
        "label",
        *(f.name for f in project.features),
    ]
    return ingest_predictions(
        con,
        frame[keep],
        project=project.name,
        mapping=mapping,
        version=str(model_version),
        stage="offline",
        on_duplicate=on_duplicate,
        source_name=label,
    )

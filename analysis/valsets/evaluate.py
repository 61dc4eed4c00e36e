"""Every model version scored on a validation set's version: metrics with intervals
on the members' latest predictions, and the verdict against the set's criteria."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

import duckdb
import pandas as pd

from analysis.metrics.sql import GroupKey, compute_metrics
from analysis.slices.metrics import add_counts, with_intervals
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident
from analysis.valsets.sets import get_set, list_sets, version_number

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
    pairs = [(s.set_id, version_number(con, project, s, version)) for s in sets]
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

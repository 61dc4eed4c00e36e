"""The rows a comparison compares: each side's own rows (unpaired), or the examples both
sides scored, joined into pairs (paired), with their buckets for the bootstrap."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import pandas as pd

from analysis.compare.sides import MIN_PAIRS, N_BUCKETS, Side, for_side
from analysis.compare.sums import ml_sums
from analysis.ingest.key_repeats import examples_unique
from analysis.metrics.decompose import Decomposed
from analysis.slices import parse_slice
from analysis.slices.grouping import GROUPABLE
from analysis.slices.saved import list_slices
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident

# -- the rows compared -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    paired: bool
    n_pairs: int
    base: tuple[str, list]  # canonical columns + sb_bucket
    cand: tuple[str, list]
    pairs_table: str | None
    buckets: tuple[pd.DataFrame, pd.DataFrame] | None = None  # paired: both sides' bucket sums
    discordant: tuple[int, int] = (0, 0)  # paired: (baseline right only, candidate right only)


def _latest_per_example(project: Project, scope: Scope, outs: str, feats: str) -> tuple[str, list]:
    where, params = scope.to_sql()
    return (
        f"SELECT example_id, example_key, label, prediction, score{outs}{feats} FROM (SELECT example_id, "
        f"example_key, label, prediction, "
        f'score{outs}{feats}, row_number() OVER (PARTITION BY example_id ORDER BY "timestamp" DESC, '
        f"prediction_id DESC) AS sb_rank FROM {quote_ident(project.log_table)} WHERE {where}) AS ranked "
        "WHERE sb_rank = 1",
        params,
    )


def saved_wheres(con, project: Project, saved: list[str] | None) -> list[str]:
    return list(saved) if saved is not None else list(list_slices(con, project)["where"])


# Columns of a logged row (not features) that a slice may name: carried with the rows compared.
ROW_COLUMNS = ("model_version", "stage", "timestamp", "label_timestamp")


def _pair_features(con, project: Project, saved: list[str] | None = None) -> list[str]:
    """Columns the slices can use: the groupable features, any other a saved slice names
    (free text is wide; it is carried only when needed), and the row's own columns a saved
    slice names (its time, its stage)."""
    wanted = {c for w in saved_wheres(con, project, saved) for c in parse_slice(w).columns()}
    return [f.name for f in project.features if f.kind in GROUPABLE or f.name in wanted] + [
        c for c in ROW_COLUMNS if c in wanted
    ]


def _pair_buckets(con, project: Project, table: str, decomposed: list[Decomposed], count_keys: bool) -> tuple:
    """One pass over the pairs: per bucket, both sides' sums (ML terms, product metric
    parts) and the discordant pairs; then, if ``count_keys``, the number of distinct
    example keys (else None)."""
    sums = ml_sums(project)
    parts = [(f"m{i}_p{j}", term) for i, d in enumerate(decomposed) if d.outer for j, term in enumerate(d.terms)]
    cols = []
    for tag in ("b", "c"):
        cols += [
            f"sum({for_side(term, project, tag)}) AS {quote_ident(name + '__' + tag)}"
            for name, term in [*sums.items(), *parts]
        ]
    both = "label IS NOT NULL AND prediction__b IS NOT NULL AND prediction__c IS NOT NULL"
    if project.task != "regression":
        cols += [
            f"count(*) FILTER (WHERE {both} AND prediction__b = label AND prediction__c <> label) AS sb_n01",
            f"count(*) FILTER (WHERE {both} AND prediction__b <> label AND prediction__c = label) AS sb_n10",
        ]
    frame = (
        con.execute(
            f"SELECT sb_hash % {N_BUCKETS} AS sb_bucket, count(*) AS sb_rows, "
            f"{', '.join(cols)} FROM {quote_ident(table)} "
            "GROUP BY ALL"
        )
        .df()
        .set_index("sb_bucket")
        .reindex(range(N_BUCKETS))
        .fillna(0.0)
    )
    # One distinct count over all pairs costs less than one per bucket.
    distinct = (
        con.execute(f"SELECT count(DISTINCT sb_hash) FROM {quote_ident(table)}").fetchall()[0][0] or 0
        if count_keys
        else None
    )
    sides = []
    for tag in ("b", "c"):
        names = [name for name, _ in [*sums.items(), *parts]]
        side = frame[[f"{n}__{tag}" for n in names]].set_axis(names, axis=1).astype(float)
        sides.append(side.assign(sb_rows=frame["sb_rows"].astype(float)))
    discordant = (int(frame["sb_n01"].sum()), int(frame["sb_n10"].sum())) if "sb_n01" in frame else (0, 0)
    return (sides[0], sides[1]), discordant, int(frame["sb_rows"].sum()), distinct


@contextmanager
def rows_compared(
    con,
    project: Project,
    base: Side,
    cand: Side,
    start,
    end,
    pair: bool,
    decomposed: list[Decomposed],
    saved: list[str] | None = None,
) -> Iterator[Sources]:
    outs_list = [o.name for o in project.outcomes]
    outs = "".join(f", {quote_ident(o)}" for o in outs_list)
    log = quote_ident(project.log_table)
    n_pairs = 0
    if pair:
        table = f"sb_pairs_{uuid.uuid4().hex}"
        carried = _pair_features(con, project, saved)
        pair_feats = "".join(f", {quote_ident(f)}" for f in carried)
        side_cols = "".join(
            f", {side}.{quote_ident(c)} AS {quote_ident(c + '__' + side)}"
            for side in ("b", "c")
            for c in ["prediction", "score", *outs_list]
        )
        # The pairs keep the example key, not the id (the widest column): it spreads them
        # over buckets and proves the ids unique (equal keys at worst send the check down
        # the exact, slower path). It is the same number on every engine (analysis.store.example_key).
        # A saved slice may name the prediction, score or an outcome: the baseline's, as for features.
        named = {c for w in saved_wheres(con, project, saved) for c in parse_slice(w).columns()}
        carried_own = [c for c in ["prediction", "score", *outs_list] if c in named]
        select = (
            f"SELECT b.example_key AS sb_hash, coalesce(b.label, c.label) AS label{side_cols}"
            f"{''.join(f', b.{quote_ident(f)}' for f in [*carried, *carried_own])}"
        )
        (b_where, b_params), (c_where, c_params) = base.scope(start, end).to_sql(), cand.scope(start, end).to_sql()
        # Usually each version scored an example once: join the rows as they are, and
        # only when an example repeats take each side's latest prediction (a sort). The
        # store's flags say which (analysis.ingest.key_repeats); a lake's pairs are counted.
        unique = examples_unique(con, project, [(base.version, base.stage), (cand.version, cand.stage)])
        n_pairs = n_examples = 0
        if unique is not False:
            con.execute(
                f"CREATE TEMP TABLE {quote_ident(table)} AS {select} "
                f"FROM (SELECT example_key, label, prediction, score{outs}{pair_feats} FROM {log} "
                f"WHERE {b_where}) AS b JOIN (SELECT example_key, label, prediction, score{outs} FROM {log} "
                f"WHERE {c_where}) AS c ON b.example_key = c.example_key",
                [*b_params, *c_params],
            )
            buckets, discordant, n_pairs, n_examples = _pair_buckets(con, project, table, decomposed, unique is None)
            if unique is True:
                n_examples = n_pairs
        if unique is False or n_pairs != n_examples:
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
            b_sql, b_params = _latest_per_example(project, base.scope(start, end), outs, pair_feats)
            c_sql, c_params = _latest_per_example(project, cand.scope(start, end), outs, "")
            con.execute(
                f"CREATE TEMP TABLE {quote_ident(table)} AS {select} FROM ({b_sql}) AS b JOIN ({c_sql}) AS c "
                "ON b.example_id = c.example_id",
                [*b_params, *c_params],
            )
            buckets, discordant, n_pairs, _ = _pair_buckets(con, project, table, decomposed, False)
        if n_pairs >= MIN_PAIRS:

            def side(tag: str) -> tuple[str, list]:
                cols = ", ".join(
                    f"{quote_ident(c + '__' + tag)} AS {quote_ident(c)}" for c in ["prediction", "score", *outs_list]
                )
                return (
                    f"SELECT label, {cols}{pair_feats}, sb_hash % {N_BUCKETS} AS sb_bucket FROM {quote_ident(table)}",
                    [],
                )

            try:
                yield Sources(True, int(n_pairs), side("b"), side("c"), table, buckets, discordant)
            finally:
                con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
            return
        con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
    yield own_sources(project, base, cand, start, end, int(n_pairs))


def own_sources(project: Project, base: Side, cand: Side, start, end, n_pairs: int = 0) -> Sources:
    """Unpaired: each side's own rows in the window."""
    cols = "".join(
        f", {quote_ident(c)}"
        for c in [*(o.name for o in project.outcomes), *(f.name for f in project.features), *ROW_COLUMNS]
    )

    def own(side: Side) -> tuple[str, list]:
        where, params = side.scope(start, end).to_sql()
        return (
            f"SELECT label, prediction, score{cols}, example_key % {N_BUCKETS} "
            f"AS sb_bucket FROM {quote_ident(project.log_table)} WHERE {where}",
            params,
        )

    return Sources(False, n_pairs, own(base), own(cand), None)

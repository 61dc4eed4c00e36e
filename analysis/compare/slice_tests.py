"""A comparison per slice: the saved, typed and searched slices, every value of every
feature, each with both sides' error, the difference, its test and the FDR-controlled
verdict."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.compare.overall import evaluate_outer
from analysis.compare.pairs import Sources, saved_wheres
from analysis.compare.sides import N_BUCKETS, Progress, Side, for_side, silent
from analysis.compare.slices import Found, with_search
from analysis.compare.slices import search as search_difference
from analysis.discovery.encode import RowsError
from analysis.discovery.run import discover_each
from analysis.errors import ConfigError
from analysis.metrics.decompose import Decomposed
from analysis.slices import Slice, compile_slice, parse_slice
from analysis.slices.grouping import CUT_SAMPLE, GROUPABLE, MISSING, CutSample, group_condition, groupings
from analysis.stats.multiple_testing import bh_qvalues
from analysis.stats.tests import paired_mean_tests, paired_tests, unpaired_slice_tests, welch_tests
from analysis.store.project import Project
from analysis.store.sql import Sql, quote_ident

# -- slices --------------------------------------------------------------------------------------


def _slice_list(
    con,
    project: Project,
    src: Sources,
    base: Side,
    cand: Side,
    start,
    end,
    discovered: int,
    saved: list[str] | None = None,
    cuts: list | None = None,
    bins: int = 5,
    say: Progress | None = None,
    notes: list[str] | None = None,
    sample: CutSample = CUT_SAMPLE,
) -> tuple[list[tuple[str, str, Slice]], Found | None]:
    """``(source, where, slice)`` of every saved slice and the top found slices, and the
    search of the difference (:mod:`analysis.compare.slices`: where the candidate's
    error exceeds the baseline's on the same slice, paired or not). Paired, SliceLine
    also runs on the pairs with the disagreements as errors: where the candidate errs
    and the baseline does not, and the other way round; a search that cannot run says
    why in ``notes``."""
    out = [("saved", where, parse_slice(where)) for where in saved_wheres(con, project, saved)]
    found = None
    if discovered:
        columns = [f.name for f in project.features if f.kind in GROUPABLE]
        say = say or silent
        say(0.2, "searching where the candidate is worse than the baseline")
        if src.paired:
            pairs = f"SELECT * FROM {quote_ident(src.pairs_table)}"
            keyed = f"SELECT *, sb_hash % {N_BUCKETS} AS sb_bucket FROM {quote_ident(src.pairs_table)}"
            found = search_difference(
                con,
                project,
                paired=True,
                base=(keyed, []),
                cand=None,
                columns=columns,
                top_k=discovered,
                buckets=N_BUCKETS,
                sample=sample,
            )
            both = "label IS NOT NULL AND prediction__b IS NOT NULL AND prediction__c IS NOT NULL"
            searches = [
                (
                    "found where the candidate errs",
                    RowsError(
                        f"{cand} wrong where {base} was right",
                        (pairs, []),
                        "CASE WHEN prediction__c <> label AND prediction__b = label THEN 1 ELSE 0 END",
                        both,
                    ),
                ),
                (
                    "found where the baseline errs",
                    RowsError(
                        f"{base} wrong where {cand} was right",
                        (pairs, []),
                        "CASE WHEN prediction__b <> label AND prediction__c = label THEN 1 ELSE 0 END",
                        both,
                    ),
                ),
            ]
            # both directions over the same pairs: encoded once
            say(0.65, "searching where each version errs and the other does not")
            results = discover_each(
                con, project, base.scope(start, end), [e for _, e in searches], top_k=discovered, bins=bins, cuts=cuts
            )
            for (label, error), result in zip(searches, results):
                if isinstance(result, ConfigError):
                    if notes is not None:
                        notes.append(f"No slices {label} ({error.name}): {result}")
                    continue
                kept = result.slices[result.slices["folded_under"].isna()]  # near-duplicates: once
                out += [(label, r["where"], r["slice"]) for _, r in kept.iterrows()]
        else:
            found = search_difference(
                con,
                project,
                paired=False,
                base=src.base,
                cand=src.cand,
                columns=columns,
                top_k=discovered,
                buckets=N_BUCKETS,
                sample=sample,
            )
        out += found.slices
    seen, unique = set(), []
    for source, where, slice_ in out:
        if where not in seen:
            seen.add(where)
            unique.append((source, where, slice_))
    return unique, found


def _error_term(project: Project, side: str | None = None) -> tuple[str, str]:
    """``(labeled, wrong)`` per-row terms (of one side of the pairs table, or of a side's rows)."""
    pred = f"prediction__{side}" if side else "prediction"
    labeled = f"label IS NOT NULL AND {pred} IS NOT NULL"
    wrong = f"abs(label - {pred})" if project.task == "regression" else f"CASE WHEN label = {pred} THEN 0 ELSE 1 END"
    return (f"CASE WHEN {labeled} THEN 1 ELSE 0 END", f"CASE WHEN {labeled} THEN {wrong} ELSE 0 END")


@dataclass(frozen=True)
class _Key:
    """One grouping of the slices query: ``sql`` per row, ``label`` of each group's key value."""

    name: str
    sql: str
    params: tuple
    label: object  # callable: key value -> group label (None: drop the group)
    where: str | None = None  # a slice's predicate: its rows are aggregated by a filtered scan


def _keys(cuts, predicate_slices, project: Project) -> list[_Key]:

    keys = []
    for g in cuts:
        if g.order:  # numbers and timestamps: the bin's number, labelled afterwards
            sql, params = g.key_for()
            keys.append(_Key(g.column, sql, params, lambda v, g=g: g.order[int(v)]))
        elif g.kind == "boolean":
            keys.append(
                _Key(
                    g.column, quote_ident(g.column), (), lambda v: MISSING if pd.isna(v) else ("true" if v else "false")
                )
            )
        else:  # categories: the raw value (no string conversion per row)
            keys.append(_Key(g.column, quote_ident(g.column), (), lambda v: MISSING if pd.isna(v) else str(v)))
    for i, (_, _, slice_) in enumerate(predicate_slices):
        sql, params = compile_slice(slice_, project)
        keys.append(
            _Key(
                f"#slice{i}",
                f"CASE WHEN {sql} THEN TRUE END",
                tuple(params),
                lambda v: "in" if v is True or v == 1 else None,
                where=sql,
            )
        )
    return keys


def _grouped(con, keys: list[_Key], aggregates: list[str], source: tuple[str, list]) -> pd.DataFrame:
    """``aggregates`` per group of every key: one scan with one grouping set per feature,
    and for each slice predicate a scan filtered by it (DuckDB then evaluates the
    predicate in the scan and aggregates the slice's rows only, where a grouping set
    would hash every row)."""
    frames = []
    features = [k for k in keys if k.where is None]
    if features:
        frames.append(_grouping_sets(con, features, aggregates, source))
    predicates = [k for k in keys if k.where is not None]
    if predicates:
        scan = "SELECT {key} AS sb_key, count(*) AS sb_n, {aggregates} FROM ({rows}) AS s WHERE {slice}"
        scans = [
            Sql.compose(scan, key=str(i), aggregates=", ".join(aggregates), rows=source, slice=(k.where, k.params))
            for i, k in enumerate(predicates)
        ]
        frame = con.execute(*Sql.join(" UNION ALL ", scans)).df()
        frame = frame[frame["sb_n"] > 0]  # an empty slice has no group, as in a grouping set
        frame = frame.assign(key=[predicates[int(i)].name for i in frame["sb_key"]], value="in")
        frames.append(frame.drop(columns=["sb_key", "sb_n"]))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _grouping_sets(con, keys: list[_Key], aggregates: list[str], source: tuple[str, list]) -> pd.DataFrame:
    key_sql = [f"{k.sql} AS k{i}" for i, k in enumerate(keys)]
    params = [p for k in keys for p in k.params] + list(source[1])
    sets = ", ".join(f"(k{i})" for i in range(len(keys)))
    flags = ", ".join(f"grouping(k{i}) AS g{i}" for i in range(len(keys)))
    frame = con.execute(
        f"SELECT {', '.join(f'k{i}' for i in range(len(keys)))}, {flags}, {', '.join(aggregates)} "
        f"FROM (SELECT *, {', '.join(key_sql)} FROM ({source[0]}) AS s) AS keyed GROUP BY GROUPING SETS ({sets})",
        params,
    ).df()
    out = []
    for i, k in enumerate(keys):
        part = frame[frame[f"g{i}"] == 0]
        values = [k.label(None if v is pd.NA else v) for v in part[f"k{i}"].astype(object)]
        out.append(part.assign(key=k.name, value=values))
    frame = pd.concat(out, ignore_index=True)
    return frame[frame["value"].notna()].drop(
        columns=[c for c in frame.columns if c[:1] in ("k", "g") and c[1:].isdigit()]
    )


def _metric_aggregates(products: list[Decomposed], project: Project, tag: str | None) -> tuple[list, list]:
    """``(per-row terms, aggregates)`` for the product metrics: decomposable ones as sums
    of row terms (cheap under GROUPING SETS), the others as they are."""
    terms, aggs = [], []
    for i, d in enumerate(products):
        suffix = f"_{tag}" if tag else ""
        if d.outer:
            for name, term in zip(d.part_names(i), d.terms):
                column = quote_ident(f"t_{name}{suffix}")
                terms.append(f"{for_side(term, project, tag) if tag else term} AS {column}")
                aggs.append(f"sum({column}) AS {quote_ident(name + suffix)}")
        else:
            aggs.append(
                f"{for_side(d.sql, project, tag) if tag else d.sql} AS {quote_ident(f'pm_{d.metric.name}{suffix}')}"
            )
    return terms, aggs


def _finish_metrics(con, frame: pd.DataFrame, products: list[Decomposed], tags: list[str]) -> pd.DataFrame:
    """Each decomposable product metric from its summed parts, per group."""
    for i, d in enumerate(products):
        if not d.outer:
            continue
        for tag in tags:
            suffix = f"_{tag}" if tag else ""
            cols = {name: frame[name + suffix].astype(float).to_numpy() for name in d.part_names(i)}
            frame[f"pm_{d.metric.name}{suffix}"] = evaluate_outer(con, d.outer, cols) if len(frame) else []
    return frame


def _side_stats(
    con, project: Project, source: tuple[str, list], keys: list[_Key], products: list[Decomposed]
) -> pd.DataFrame:
    labeled, wrong = _error_term(project)
    terms, metric_aggs = _metric_aggregates(products, project, None)
    inner = [f"{labeled} AS t_labeled", f"{wrong} AS t_wrong", *terms]
    aggs = [
        "count(*) AS n_rows",
        "sum(t_labeled) AS n_labeled",
        "sum(t_wrong) AS errors",
        "sum(t_wrong * t_wrong) AS errors_sq",
        *metric_aggs,
    ]
    frame = _grouped(con, keys, aggs, (f"SELECT *, {', '.join(inner)} FROM ({source[0]}) AS src", source[1]))
    return _finish_metrics(con, frame, products, [""])


def _paired_stats(con, project: Project, table: str, keys: list[_Key], products: list[Decomposed]) -> pd.DataFrame:
    """Both sides' figures and the discordant pairs per group, in one scan of the pairs."""
    inner, aggs = [], ["count(*) AS n_rows_b", "count(*) AS n_rows_c"]
    for tag in ("b", "c"):
        labeled, wrong = _error_term(project, tag)
        terms, metric_aggs = _metric_aggregates(products, project, tag)
        inner += [f"{labeled} AS t_labeled_{tag}", f"{wrong} AS t_wrong_{tag}", *terms]
        aggs += [f"sum(t_labeled_{tag}) AS n_labeled_{tag}", f"sum(t_wrong_{tag}) AS errors_{tag}", *metric_aggs]
    both = "label IS NOT NULL AND prediction__b IS NOT NULL AND prediction__c IS NOT NULL"
    if project.task == "regression":  # each pair's change of absolute error, for the paired t-test
        inner.append(f"CASE WHEN {both} THEN abs(label - prediction__c) - abs(label - prediction__b) END AS t_d")
        aggs += ["sum(t_d) AS d_sum", "sum(t_d * t_d) AS d_sq", "count(t_d) AS n_both"]
    else:
        inner += [
            f"CASE WHEN {both} AND prediction__b = label AND prediction__c <> label THEN 1 ELSE 0 END AS t01",
            f"CASE WHEN {both} AND prediction__b <> label AND prediction__c = label THEN 1 ELSE 0 END AS t10",
            f"CASE WHEN {both} THEN 1 ELSE 0 END AS t_both",
        ]
        aggs += ["sum(t01) AS n01", "sum(t10) AS n10", "sum(t_both) AS n_both"]
    frame = _grouped(con, keys, aggs, (f"SELECT *, {', '.join(inner)} FROM {quote_ident(table)}", []))
    return _finish_metrics(con, frame, products, ["b", "c"])


def slice_rows(
    con,
    project: Project,
    src: Sources,
    base: Side,
    cand: Side,
    start,
    end,
    products: list[Decomposed],
    bins: int,
    discovered: int,
    saved: list[str] | None = None,
    say: Progress | None = None,
    notes: list[str] | None = None,
    sample: CutSample = CUT_SAMPLE,
) -> pd.DataFrame:
    """Every saved, grouped and found slice's figures in both versions; the cut points of
    more than a million rows come from a sample (``sample``)."""
    say = say or silent

    columns = [f.name for f in project.features if f.kind in GROUPABLE]
    # Paired, the bins are quantiles of the pairs' features (what is compared), read from
    # the stored pairs; unpaired, of the baseline's rows.
    rows = (src.pairs_table, "sb_hash") if src.paired else None
    cuts = (
        groupings(con, project, columns, base.scope(start, end), bins=bins, rows=rows, sample=sample) if columns else []
    )
    predicate_slices, found = _slice_list(
        con, project, src, base, cand, start, end, discovered, saved, cuts, bins, say, notes, sample
    )
    say(0.8, "every saved slice, feature value and found slice, in both versions")
    keys = _keys(cuts, predicate_slices, project)
    if not keys:
        return pd.DataFrame()
    if src.paired:
        frame = _paired_stats(con, project, src.pairs_table, keys, products)
    else:
        sb = _side_stats(con, project, src.base, keys, products)
        sc = _side_stats(con, project, src.cand, keys, products)
        frame = sb.merge(sc, on=["key", "value"], how="outer", suffixes=("_b", "_c"))
    for c in ("n_rows_b", "n_rows_c", "n_labeled_b", "n_labeled_c", "errors_b", "errors_c"):
        frame[c] = frame[c].fillna(0)
    by_column = {g.column: g for g in cuts}
    wheres, sources, slices = [], [], []
    for key, value in zip(frame["key"], frame["value"]):
        if key.startswith("#slice"):
            source, where, slice_ = predicate_slices[int(key[6:])]
        else:
            slice_ = Slice.of(group_condition(by_column[key], value))
            source, where = "feature value", slice_.readable()
        sources.append(source)
        wheres.append(where)
        slices.append(slice_)
    frame.insert(0, "where", wheres)
    frame.insert(0, "source", sources)
    frame["slice"] = slices
    frame["error_rate_b"] = frame["errors_b"] / frame["n_labeled_b"].where(frame["n_labeled_b"] > 0)
    frame["error_rate_c"] = frame["errors_c"] / frame["n_labeled_c"].where(frame["n_labeled_c"] > 0)
    frame["delta"] = frame["error_rate_c"] - frame["error_rate_b"]
    if src.paired:
        (paired_mean_tests if project.task == "regression" else paired_tests)(frame)
    elif project.task == "regression":
        welch_tests(frame)
    else:
        unpaired_slice_tests(frame)
    for d in products:  # a total over unequal traffic: per prediction, as overall
        per = d.additive and not src.paired
        value_b, value_c = frame[f"pm_{d.metric.name}_b"], frame[f"pm_{d.metric.name}_c"]
        if per:
            value_b = value_b / frame["n_rows_b"].where(frame["n_rows_b"] > 0)
            value_c = value_c / frame["n_rows_c"].where(frame["n_rows_c"] > 0)
        frame[f"{d.metric.name}_delta"] = value_c - value_b
    # A slice found in several ways (saved, discovered, a feature value) is tested once.
    rank = frame["source"].map(lambda x: 0 if x == "saved" else 2 if x == "feature value" else 1)
    frame = frame.assign(sb_rank=rank).sort_values("sb_rank", kind="stable").drop_duplicates("where")
    frame = frame.drop(columns=["sb_rank"])
    frame["q_value"] = bh_qvalues(frame["p_value"].to_numpy(dtype=float))
    if found is not None:  # the search's slices: the p- and q-values of its own family (every slice it tested)
        with_search(frame, found)
    significant = frame["q_value"] < 0.05
    frame["verdict"] = np.where(
        significant & (frame["delta"] > 0),
        "regression",
        np.where(significant & (frame["delta"] < 0), "improvement", ""),
    )
    order = frame["verdict"].map({"regression": 0, "improvement": 1, "": 2})
    frame = frame.assign(sb_order=order, sb_abs=-frame["delta"].abs()).sort_values(["sb_order", "q_value", "sb_abs"])
    parts = [c for c in frame.columns if re.fullmatch(r"m\d+_p\d+(_[bc])?", c)]  # product metrics' sums
    return frame.drop(
        columns=[
            "key",
            "value",
            "sb_order",
            "sb_abs",
            "n01",
            "n10",
            "n_both",
            "d_sum",
            "d_sq",
            "errors_sq_b",
            "errors_sq_c",
            *parts,
        ],
        errors="ignore",
    ).reset_index(drop=True)

"""Compare a candidate model version with a baseline: overall and per slice, on ML
metrics and product metrics, paired where both scored the same examples.

**Pairing.** When both versions scored the same example ids in the window (shadow
mode), the comparison uses those pairs only: each example's latest prediction of
each version, one shared label. Otherwise each version is measured on its own rows,
by default on the days both served (:mod:`analysis.compare.traffic`; :attr:`Comparison.window`
says what was left out). :attr:`Comparison.method` says which, and on how many pairs.

**Intervals and tests** (95%; the delta is candidate − baseline):

* accuracy and error rate: paired, McNemar's test (statsmodels; exact binomial
  below 25 discordant pairs) and a bootstrap interval; unpaired, the two-proportion
  z-test and Newcombe's interval (statsmodels);
* ROC AUC: Hanley–McNeil standard errors, z-test (conservative when paired);
* every other metric and every product metric: a bootstrap of 1,000 resamples.
  Rows are spread over 1,000 buckets by their example key (analysis.store.example_key,
  the same on every engine); the engine sums each bucket once, and numpy resamples the buckets
  (a multinomial draw per resample, the same draw for both versions when
  paired). The interval is the percentile interval, the p-value the normal one
  from the bootstrap standard error. A product metric is decomposed into its
  aggregates (``avg`` into ``sum / count``), which add up over buckets; one with
  ``min``, ``max`` or ``count(DISTINCT …)`` gets no interval. Unpaired, a total (a sum
  or a count) is compared per prediction (:mod:`analysis.metrics.decompose`).

**Slices**: every saved slice, every value of every groupable feature (numbers in
quantile bins) and the top slices of the search of the difference, where the
candidate's error exceeds the baseline's (:mod:`analysis.compare.slices`, with the
q-values of its own family); paired, also SliceLine's slices where the candidate errs
and the baseline does not (and the other way round). For
each: rows and error rates (regression: mean absolute errors) of both versions, the
delta with a 95% interval (paired: Wald for paired proportions and McNemar, or the
paired t-test; unpaired: Wald and the pooled z-test, or Welch's t-test),
Benjamini–Hochberg q-values over all of them, and each product metric's delta.
A slice is a *regression* (candidate worse) or an *improvement* when q < 0.05.
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Callable, Iterator

import duckdb
import numpy as np
import pandas as pd
import sqlglot
from scipy import stats
from sklearn.metrics import roc_auc_score
from sqlglot import exp
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

from analysis.compare.slices import Found, with_search
from analysis.compare.slices import search as search_difference
from analysis.compare.traffic import Window, window
from analysis.errors import ConfigError
from analysis.ingest.key_repeats import examples_unique
from analysis.metrics.decompose import ML_DEFINED, Decomposed, decompose
from analysis.metrics.failures import split as split_failing
from analysis.metrics.failures import with_failures
from analysis.metrics.product import ProductMetric, list_metrics, product_metrics
from analysis.metrics.registry import METRICS, headline_metrics, metrics_for
from analysis.metrics.sql import binary_terms, compute_metrics
from analysis.slices import Slice, compile_slice, parse_slice
from analysis.slices.breakdown import GROUPABLE, groupings
from analysis.slices.saved import list_slices
from analysis.stats.intervals import hanley_mcneil_se
from analysis.stats.multiple_testing import bh_qvalues
from analysis.stats.tests import Z, mcnemar_p, paired_mean_tests, paired_tests, unpaired_slice_tests, welch_tests
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident

N_BUCKETS = 1000
N_RESAMPLES = 1000
SEED = 7
MIN_PAIRS = 30


# Told each step of a long computation as it starts: ``progress(fraction done, what now)``.
Progress = Callable[[float, str], None]


def _silent(fraction: float, text: str) -> None:
    """No one is listening."""


@dataclass(frozen=True)
class Side:
    """One model version, at one stage (None: all its stages)."""

    version: str
    stage: str | None = None

    def scope(self, start=None, end=None) -> Scope:
        return Scope.of(versions=self.version, stages=self.stage, start=start, end=end)

    def __str__(self) -> str:
        return self.version + (f" ({self.stage})" if self.stage else "")


@dataclass
class Comparison:
    project: str
    baseline: Side
    candidate: Side
    start: datetime | None
    end: datetime | None
    paired: bool
    n_pairs: int
    rows: tuple[int, int]  # rows measured: baseline, candidate
    overall: pd.DataFrame  # one row per metric
    slices: pd.DataFrame  # one row per slice, regressions and improvements first
    product_metrics: list[ProductMetric] = field(default_factory=list)
    window: Window | None = None  # the days compared, and what was left out of each side
    notes: list[str] = field(default_factory=list)  # what the comparison could not do, and why

    @property
    def method(self) -> str:
        if self.paired:
            return f"paired: both versions scored the same {self.n_pairs:,} examples"
        return f"unpaired: {self.rows[0]:,} and {self.rows[1]:,} rows" + (
            f" (only {self.n_pairs:,} examples scored by both)" if self.n_pairs else ""
        )

    def to_dict(self) -> dict:
        slices = self.slices.drop(columns=["slice"], errors="ignore")
        return {
            "project": self.project,
            "baseline": str(self.baseline),
            "candidate": str(self.candidate),
            "start": self.start,
            "end": self.end,
            "method": self.method,
            "paired": self.paired,
            "pairs": self.n_pairs,
            "overall": self.overall.to_dict(orient="records"),
            "window": self.window.to_dict() if self.window else None,
            "notes": list(self.notes),
            "normalisation": {
                r["metric"]: r.get("normalisation")
                for r in self.overall.to_dict(orient="records")
                if r.get("kind") == "product"
            },
            "slices": slices.to_dict(orient="records"),
        }


# Told a comparison's overall figures as soon as they are in, before its slices.
Figures = Callable[[Comparison], None]


# -- what is summed per bucket ---------------------------------------------------------------------


def _ml_sums(project: Project) -> dict[str, str]:
    """Per-row terms whose sums give every compared ML metric of the task."""
    if project.task == "binary":
        return dict(binary_terms())
    labeled = "label IS NOT NULL AND prediction IS NOT NULL"
    if project.task == "multiclass":
        return {
            "n_labeled": f"CASE WHEN {labeled} THEN 1 ELSE 0 END",
            "correct": f"CASE WHEN {labeled} AND label = prediction THEN 1 ELSE 0 END",
        }
    return {
        "n_labeled": f"CASE WHEN {labeled} THEN 1 ELSE 0 END",
        "abs_sum": f"CASE WHEN {labeled} THEN abs(label - prediction) ELSE 0 END",
        "sq_sum": f"CASE WHEN {labeled} THEN (label - prediction) * (label - prediction) ELSE 0 END",
    }


def _ratio(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


# Each compared ML metric as a function of the summed columns of _ml_sums (its direction
# is the registry's).
FROM_SUMS = {
    "binary": {
        "accuracy": lambda s: _ratio(s["tp"] + s["tn"], s["tp"] + s["tn"] + s["fp"] + s["fn"]),
        "precision": lambda s: _ratio(s["tp"], s["tp"] + s["fp"]),
        "recall": lambda s: _ratio(s["tp"], s["tp"] + s["fn"]),
        "f1": lambda s: _ratio(2 * s["tp"], 2 * s["tp"] + s["fp"] + s["fn"]),
        "log_loss": lambda s: _ratio(s["ll_sum"], s["n_scored"]),
        "brier": lambda s: _ratio(s["brier_sum"], s["n_scored"]),
    },
    "multiclass": {"accuracy": lambda s: _ratio(s["correct"], s["n_labeled"])},
    "regression": {
        "mae": lambda s: _ratio(s["abs_sum"], s["n_labeled"]),
        "rmse": lambda s: np.sqrt(_ratio(s["sq_sum"], s["n_labeled"])),
    },
}


def direction(name: str) -> str:
    return "higher" if METRICS[name].higher_is_better else "lower"


# -- the rows compared -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sources:
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


def _saved_wheres(con, project: Project, saved: list[str] | None) -> list[str]:
    return list(saved) if saved is not None else list(list_slices(con, project)["where"])


# Columns of a logged row (not features) that a slice may name: carried with the rows compared.
ROW_COLUMNS = ("model_version", "stage", "timestamp", "label_timestamp")


def _pair_features(con, project: Project, saved: list[str] | None = None) -> list[str]:
    """Columns the slices can use: the groupable features, any other a saved slice names
    (free text is wide; it is carried only when needed), and the row's own columns a saved
    slice names (its time, its stage)."""
    wanted = {c for w in _saved_wheres(con, project, saved) for c in parse_slice(w).columns()}
    return [f.name for f in project.features if f.kind in GROUPABLE or f.name in wanted] + [
        c for c in ROW_COLUMNS if c in wanted
    ]


def _pair_buckets(con, project: Project, table: str, decomposed: list[Decomposed], count_keys: bool) -> tuple:
    """One pass over the pairs: per bucket, both sides' sums (ML terms, product metric
    parts) and the discordant pairs; then, if ``count_keys``, the number of distinct
    example keys (else None)."""
    sums = _ml_sums(project)
    parts = [(f"m{i}_p{j}", term) for i, d in enumerate(decomposed) if d.outer for j, term in enumerate(d.terms)]
    cols = []
    for tag in ("b", "c"):
        cols += [
            f"sum({_for_side(term, project, tag)}) AS {quote_ident(name + '__' + tag)}"
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
def _sources(
    con,
    project: Project,
    base: Side,
    cand: Side,
    start,
    end,
    pair: bool,
    decomposed: list[Decomposed],
    saved: list[str] | None = None,
) -> Iterator[_Sources]:
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
        named = {c for w in _saved_wheres(con, project, saved) for c in parse_slice(w).columns()}
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
                yield _Sources(True, int(n_pairs), side("b"), side("c"), table, buckets, discordant)
            finally:
                con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
            return
        con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
    yield own_sources(project, base, cand, start, end, int(n_pairs))


def own_sources(project: Project, base: Side, cand: Side, start, end, n_pairs: int = 0) -> _Sources:
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

    return _Sources(False, n_pairs, own(base), own(cand), None)


# -- overall -------------------------------------------------------------------------------------


def _bucket_sums(con, source: tuple[str, list], sums: dict[str, str], parts: list[str]) -> pd.DataFrame:
    cols = [f"sum({term}) AS {quote_ident(name)}" for name, term in sums.items()]
    cols += [f"{sql} AS {quote_ident(name)}" for name, sql in parts]
    frame = con.execute(
        f"SELECT sb_bucket, count(*) AS sb_rows, {', '.join(cols)} FROM ({source[0]}) AS s GROUP BY sb_bucket",
        source[1],
    ).df()
    return frame.set_index("sb_bucket").reindex(range(N_BUCKETS)).fillna(0.0)


@functools.lru_cache(maxsize=1)
def _resample_weights() -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap's two draws of bucket weights (the baseline's, then an unpaired
    candidate's): fixed by SEED, so drawn once per process."""
    rng = np.random.default_rng(SEED)
    draws = tuple(
        rng.multinomial(N_BUCKETS, np.full(N_BUCKETS, 1.0 / N_BUCKETS), size=N_RESAMPLES).astype(float)
        for _ in range(2)
    )
    for draw in draws:
        draw.setflags(write=False)
    return draws


def _evaluate_outer(con, outer: str, columns: dict[str, np.ndarray]) -> np.ndarray:
    """A decomposed product metric's outer expression over replicate sums, in DuckDB."""
    frame = pd.DataFrame({k: np.atleast_1d(v).astype(float) for k, v in columns.items()})
    name = f"sb_replicates_{uuid.uuid4().hex}"
    con.register(name, frame)
    try:
        return con.execute(f"SELECT CAST({outer} AS DOUBLE) AS v FROM {quote_ident(name)}").fetchnumpy()["v"]
    finally:
        con.unregister(name)


def _overall(con, project: Project, src: _Sources, decomposed: list[Decomposed]) -> tuple[pd.DataFrame, tuple]:
    sums = _ml_sums(project)
    parts = [(f"m{i}_p{j}", sql) for i, d in enumerate(decomposed) if d.outer for j, sql in enumerate(d.parts)]
    b, c = src.buckets or (_bucket_sums(con, src.base, sums, parts), _bucket_sums(con, src.cand, sums, parts))
    w_b, w_other = _resample_weights()
    w_c = w_b if src.paired else w_other
    rep_b = {k: w_b @ b[k].to_numpy() for k in b.columns}
    rep_c = {k: w_c @ c[k].to_numpy() for k in c.columns}
    tot_b, tot_c = {k: b[k].sum() for k in b.columns}, {k: c[k].sum() for k in c.columns}
    rows = []
    for name, f in FROM_SUMS[project.task].items():
        vb, vc = float(f(tot_b)), float(f(tot_c))
        rows.append({**_row(name, "ml", direction(name), vb, vc, f(rep_c) - f(rep_b)), "normalisation": ML_DEFINED})
    if project.task == "binary":
        _accuracy_tests(rows, src, tot_b, tot_c)
        rows.append(_auc_row(con, project, src))
    for i, d in enumerate(decomposed):
        reps = None
        totals = (math.nan, math.nan)
        if d.outer:  # the value from its summed parts; the bootstrap from the replicates' parts
            cols = [f"m{i}_p{j}" for j in range(len(d.parts))]
            point_b, point_c = (
                float(_evaluate_outer(con, d.outer, {k: np.array([tot[k]]) for k in cols})[0]) for tot in (tot_b, tot_c)
            )
            point_b, point_c = (math.nan if v is None or v != v else v for v in (point_b, point_c))
            rep_vb = _evaluate_outer(con, d.outer, {k: rep_b[k] for k in cols})
            rep_vc = _evaluate_outer(con, d.outer, {k: rep_c[k] for k in cols})
            totals = (point_b, point_c)
            if d.additive and not src.paired:  # a total over unequal traffic: per prediction (a ratio estimate)
                point_b, point_c = point_b / tot_b["sb_rows"], point_c / tot_c["sb_rows"]
                rep_vb, rep_vc = _ratio(rep_vb, rep_b["sb_rows"]), _ratio(rep_vc, rep_c["sb_rows"])
            reps = rep_vc - rep_vb
        else:
            point_b, point_c = _product_value(con, d, src.base), _product_value(con, d, src.cand)
        row = _row(d.metric.name, "product", d.metric.direction, point_b, point_c, reps)
        rows.append(
            {
                **row,
                "normalisation": d.normalisation(src.paired),
                "baseline_total": totals[0],
                "candidate_total": totals[1],
            }
        )
    return pd.DataFrame(rows), (int(b["sb_rows"].sum()), int(c["sb_rows"].sum()))


def _product_value(con, d: Decomposed, source: tuple[str, list]) -> float:
    value = con.execute(f"SELECT CAST({d.sql} AS DOUBLE) FROM ({source[0]}) AS s", source[1]).fetchall()[0][0]
    return math.nan if value is None else float(value)


def _row(name: str, kind: str, direction: str, vb: float, vc: float, reps) -> dict:
    delta = vc - vb
    low = high = p = math.nan
    test = ""
    if reps is not None:
        reps = np.asarray(reps, dtype=float)
        reps = reps[np.isfinite(reps)]
        if len(reps) > 1 and math.isfinite(delta):
            low, high = (float(x) for x in np.percentile(reps, [2.5, 97.5]))
            se = float(reps.std(ddof=1))
            p = float(2 * stats.norm.sf(abs(delta) / se)) if se > 0 else (1.0 if delta == 0 else 0.0)
            test = f"bootstrap ({N_RESAMPLES:,} resamples of {N_BUCKETS:,} buckets)"
    return {
        "metric": name,
        "kind": kind,
        "direction": direction,
        "baseline": vb,
        "candidate": vc,
        "delta": delta,
        "ci_low": low,
        "ci_high": high,
        "p_value": p,
        "test": test,
    }


def _accuracy_tests(rows: list[dict], src: _Sources, tot_b: dict, tot_c: dict) -> None:
    """Replace the bootstrap test of accuracy by McNemar (paired) or the two-proportion test."""
    row = next(r for r in rows if r["metric"] == "accuracy")
    if src.paired:
        n01, n10 = src.discordant
        row["p_value"] = mcnemar_p(n01, n10)
        row["test"] = f"McNemar ({n01 + n10:,} discordant pairs); interval by bootstrap"
    else:
        kb = tot_b["tp"] + tot_b["tn"]
        nb = kb + tot_b["fp"] + tot_b["fn"]
        kc = tot_c["tp"] + tot_c["tn"]
        nc = kc + tot_c["fp"] + tot_c["fn"]
        if nb and nc:
            row["p_value"] = float(test_proportions_2indep(kc, nc, kb, nb, method="wald").pvalue)
            row["ci_low"], row["ci_high"] = (
                float(x) for x in confint_proportions_2indep(kc, nc, kb, nb, method="newcomb")
            )
            row["test"] = "two-proportion z-test; Newcombe interval"


def auc_from_counts(label, score, n) -> tuple[float, int, int]:
    """Exact ROC AUC, ties counting half, from labeled rows counted per (label, score):
    ``(auc, n_pos, n_neg)``; scikit-learn's, each distinct row weighted by its count."""
    label, n = np.asarray(label, dtype=bool), np.asarray(n, dtype=float)
    n_pos, n_neg = n[label].sum(), n[~label].sum()
    if not (n_pos > 0 and n_neg > 0):
        return math.nan, int(n_pos), int(n_neg)
    auc = roc_auc_score(label, np.asarray(score, dtype=float), sample_weight=n)
    return float(auc), int(n_pos), int(n_neg)


def _auc_row(con, project: Project, src: _Sources) -> dict:
    if src.paired:  # both sides' labeled pairs per distinct score, in one pass
        counts = con.execute(
            f"SELECT label, score__b, score__c, grouping(score__b) AS g_b, count(*) AS n FROM "
            f"{quote_ident(src.pairs_table)} WHERE label IS NOT NULL GROUP BY GROUPING SETS "
            "((label, score__b), (label, score__c))"
        ).df()
        values = []
        for tag, flag in (("b", 0), ("c", 1)):
            part = counts[(counts["g_b"] == flag) & counts[f"score__{tag}"].notna()]
            values.append(auc_from_counts(part["label"], part[f"score__{tag}"], part["n"]))
    else:
        values = []
        for source in (src.base, src.cand):
            m = compute_metrics(con, project, rows=source, include_outcomes=False)
            values.append((float(m["roc_auc"].iloc[0]), int(m["n_pos"].iloc[0]), int(m["n_neg"].iloc[0])))
    (ab, pb, nb), (ac, pc, nc) = values
    se = math.hypot(hanley_mcneil_se(ab, pb, nb), hanley_mcneil_se(ac, pc, nc))
    delta = ac - ab
    ok = se > 0 and math.isfinite(se) and math.isfinite(delta)
    return {
        "metric": "roc_auc",
        "kind": "ml",
        "normalisation": ML_DEFINED,
        "direction": direction("roc_auc"),
        "baseline": ab,
        "candidate": ac,
        "delta": delta,
        "ci_low": delta - Z * se if ok else math.nan,
        "ci_high": delta + Z * se if ok else math.nan,
        "p_value": float(2 * stats.norm.sf(abs(delta) / se)) if ok else math.nan,
        "test": "z-test, Hanley-McNeil standard errors" + (" (conservative for pairs)" if src.paired else ""),
    }


# -- slices --------------------------------------------------------------------------------------


def _slice_list(
    con,
    project: Project,
    src: _Sources,
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
) -> tuple[list[tuple[str, str, Slice]], Found | None]:
    """``(source, where, slice)`` of every saved slice and the top found slices, and the
    search of the difference (:mod:`analysis.compare.slices`: where the candidate's
    error exceeds the baseline's on the same slice, paired or not). Paired, SliceLine
    also runs on the pairs with the disagreements as errors: where the candidate errs
    and the baseline does not, and the other way round; a search that cannot run says
    why in ``notes``."""
    out = [("saved", where, parse_slice(where)) for where in _saved_wheres(con, project, saved)]
    found = None
    if discovered:
        from analysis.discovery.encode import RowsError
        from analysis.discovery.run import discover_each

        columns = [f.name for f in project.features if f.kind in GROUPABLE]
        say = say or _silent
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


def _for_side(sql: str, project: Project, tag: str) -> str:
    """A product metric's SQL over one side's columns of the pairs table."""
    renamed = {c: f"{c}__{tag}" for c in ["prediction", "score", *(o.name for o in project.outcomes)]}
    tree = sqlglot.parse_one(sql, read="duckdb")
    return tree.transform(
        lambda n: exp.column(renamed[n.name], quoted=True) if isinstance(n, exp.Column) and n.name in renamed else n
    ).sql(dialect="duckdb")


@dataclass(frozen=True)
class _Key:
    """One grouping of the slices query: ``sql`` per row, ``label`` of each group's key value."""

    name: str
    sql: str
    params: tuple
    label: object  # callable: key value -> group label (None: drop the group)
    where: str | None = None  # a slice's predicate: its rows are aggregated by a filtered scan


def _keys(cuts, predicate_slices, project: Project) -> list[_Key]:
    from analysis.slices.breakdown import MISSING

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
        selects = [
            f"SELECT {i} AS sb_key, count(*) AS sb_n, {', '.join(aggregates)} FROM ({source[0]}) AS s WHERE {k.where}"
            for i, k in enumerate(predicates)
        ]
        params = [p for k in predicates for p in (*source[1], *k.params)]
        frame = con.execute(" UNION ALL ".join(selects), params).df()
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
                terms.append(f"{_for_side(term, project, tag) if tag else term} AS {column}")
                aggs.append(f"sum({column}) AS {quote_ident(name + suffix)}")
        else:
            aggs.append(
                f"{_for_side(d.sql, project, tag) if tag else d.sql} AS {quote_ident(f'pm_{d.metric.name}{suffix}')}"
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
            frame[f"pm_{d.metric.name}{suffix}"] = _evaluate_outer(con, d.outer, cols) if len(frame) else []
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


def _slices(
    con,
    project: Project,
    src: _Sources,
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
) -> pd.DataFrame:
    say = say or _silent
    from analysis.slices.breakdown import group_condition

    columns = [f.name for f in project.features if f.kind in GROUPABLE]
    # Paired, the bins are quantiles of the pairs' features (what is compared), read from
    # the stored pairs; unpaired, of the baseline's rows.
    rows = (src.pairs_table, "sb_hash") if src.paired else None
    cuts = groupings(con, project, columns, base.scope(start, end), bins=bins, rows=rows) if columns else []
    predicate_slices, found = _slice_list(
        con, project, src, base, cand, start, end, discovered, saved, cuts, bins, say, notes
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


# -- entry point -----------------------------------------------------------------------------------


def compare(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    baseline: Side,
    candidate: Side,
    *,
    start=None,
    end=None,
    pair: bool = True,
    bins: int = 5,
    discovered: int = 5,
    slices: bool = True,
    saved: list[str] | None = None,
    metrics: list[ProductMetric] | None = None,
    overlap: bool = True,
    progress: Progress | None = None,
    figures: Figures | None = None,
) -> Comparison:
    """The comparison described in the module docstring. ``saved`` (slice definitions)
    and ``metrics`` replace the project's saved slices and product metrics (a report
    re-runs a comparison with what it showed). Unpaired, ``overlap`` keeps only the
    days both sides served (:mod:`analysis.compare.traffic`). ``progress(fraction, text)`` is
    told each step as it starts (a page shows it while the comparison runs);
    ``figures(comparison)`` the overall figures as soon as they are in (the comparison
    without its slices: a page shows them while the slices are searched)."""
    say = progress or _silent
    if (baseline.version, baseline.stage) == (candidate.version, candidate.stage):
        raise ConfigError("Pick two different versions (or stages) to compare.")
    for side in (baseline, candidate):
        where, params = side.scope(start, end).to_sql()
        n = con.execute(f"SELECT count(*) FROM {quote_ident(project.log_table)} WHERE {where}", params).fetchall()[0][0]
        if not n:
            raise ConfigError(f"{side} has no predictions in this window.")
    metrics = list(metrics) if metrics is not None else list_metrics(con, project)
    usable, failed = split_failing(con, project, metrics, [baseline.scope(start, end), candidate.scope(start, end)])
    decomposed = [decompose(m, project, i) for i, m in enumerate(usable)]
    scope_start, scope_end = Scope.of(start=start, end=end).start, Scope.of(start=start, end=end).end
    say(0.0, "reading both versions' rows")
    with _sources(con, project, baseline, candidate, start, end, pair, decomposed, saved) as src:
        say(0.15, "the overall figures")
        days = window(con, project, baseline, candidate, start, end, overlap=overlap, paired=src.paired)
        if days.restricted:  # unpaired: each side's rows on the days both served
            start, end = days.start, days.end
            src = own_sources(project, baseline, candidate, start, end, src.n_pairs)
        overall, rows = _overall(con, project, src, decomposed)
        first = Comparison(
            project.name,
            baseline,
            candidate,
            scope_start,
            scope_end,
            src.paired,
            src.n_pairs,
            rows,
            with_failures(overall, metrics, failed),
            pd.DataFrame(),
            metrics,
            days,
        )
        if not slices:
            return first
        if figures is not None:
            figures(first)
        notes: list[str] = []
        per_slice = _slices(
            con, project, src, baseline, candidate, start, end, decomposed, bins, discovered, saved, say, notes
        )
    return replace(first, slices=per_slice, notes=notes)


def daily(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    baseline: Side,
    candidate: Side,
    *,
    start=None,
    end=None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Per day and side: rows, one ML metric (``metric``, by default the task's headline)
    and every product metric (on each side's own rows), for the side-by-side series and
    the ML-vs-product plot."""
    from analysis.metrics.sql import DAY

    headline = metric or headline_metrics(project.task)[0]
    if headline not in metrics_for(project.task):
        raise ConfigError(
            f"{headline!r} is not a metric of a {project.task} project: {', '.join(metrics_for(project.task))}."
        )
    frames = []
    for label, side in (("baseline", baseline), ("candidate", candidate)):
        scope = side.scope(start, end)
        ml = compute_metrics(con, project, group_by=[DAY], where=scope.to_sql(), include_outcomes=False)
        ml = ml[["day", "n_rows", headline]]
        pm = product_metrics(con, project, scope, group_by=(DAY,))
        frame = ml.merge(pm, on="day", how="left") if not pm.empty else ml
        frames.append(frame.assign(side=label, version=str(side)))
    out = pd.concat(frames, ignore_index=True).sort_values(["day", "side"]).reset_index(drop=True)
    out.attrs["headline"] = headline
    return out

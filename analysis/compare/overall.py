"""A comparison's overall figures: every ML and product metric of both sides, their
difference and its interval (bootstrap over buckets, or the metric's own test)."""

from __future__ import annotations

import functools
import math
import uuid

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

from analysis.compare.pairs import Sources
from analysis.compare.sides import N_BUCKETS, N_RESAMPLES, SEED
from analysis.compare.sums import FROM_SUMS, direction, ml_sums, ratio
from analysis.metrics.decompose import ML_DEFINED, Decomposed
from analysis.metrics.sql import compute_metrics
from analysis.stats.intervals import hanley_mcneil_se
from analysis.stats.tests import Z, mcnemar_p
from analysis.store.project import Project
from analysis.store.sql import quote_ident

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


def evaluate_outer(con, outer: str, columns: dict[str, np.ndarray]) -> np.ndarray:
    """A decomposed product metric's outer expression over replicate sums, in DuckDB."""
    frame = pd.DataFrame({k: np.atleast_1d(v).astype(float) for k, v in columns.items()})
    name = f"sb_replicates_{uuid.uuid4().hex}"
    con.register(name, frame)
    try:
        return con.execute(f"SELECT CAST({outer} AS DOUBLE) AS v FROM {quote_ident(name)}").fetchnumpy()["v"]
    finally:
        con.unregister(name)


def overall_rows(con, project: Project, src: Sources, decomposed: list[Decomposed]) -> tuple[pd.DataFrame, tuple]:
    sums = ml_sums(project)
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
                float(evaluate_outer(con, d.outer, {k: np.array([tot[k]]) for k in cols})[0]) for tot in (tot_b, tot_c)
            )
            point_b, point_c = (math.nan if v is None or v != v else v for v in (point_b, point_c))
            rep_vb = evaluate_outer(con, d.outer, {k: rep_b[k] for k in cols})
            rep_vc = evaluate_outer(con, d.outer, {k: rep_c[k] for k in cols})
            totals = (point_b, point_c)
            if d.additive and not src.paired:  # a total over unequal traffic: per prediction (a ratio estimate)
                point_b, point_c = point_b / tot_b["sb_rows"], point_c / tot_c["sb_rows"]
                rep_vb, rep_vc = ratio(rep_vb, rep_b["sb_rows"]), ratio(rep_vc, rep_c["sb_rows"])
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


def _accuracy_tests(rows: list[dict], src: Sources, tot_b: dict, tot_c: dict) -> None:
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


def _auc_row(con, project: Project, src: Sources) -> dict:
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

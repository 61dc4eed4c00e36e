"""Why a slice's estimate moved: how much of the change of its estimated performance from
the reference to a period each feature's shift accounts for.

The measure is each row's expected correctness (a classifier: the calibrated probability
that its prediction is right; the period's mean is its estimated accuracy) or expected
absolute error (a regression model; the mean is its estimated MAE), from the slice's fit
(:mod:`analysis.estimation.fit`). For a feature, the period's rows are held to the
reference's mix of that feature: each group of rows (a category, missing included; for a
number, one of ten bins cut at the period's deciles) weighs what it weighed on the
reference, and the mean is taken again (direct standardization). What the estimate would
have been had only that feature not moved is that mean; the feature *accounts for* the
difference between the period's estimate and it. Groups the period lacks are left out,
and the share of the reference they held is said (``unmatched``): the more of it, the less
the figure says. Features interact: the figures of several features need not add up to
the whole change.

The period's rows come to Python (the measure is computed there, from the fit); the
reference's mix of each feature is counted in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import numpy as np
import pandas as pd

from analysis.drift.features import NUMBERS, measured_features
from analysis.errors import ConfigError
from analysis.estimation.fit import fit_slice
from analysis.estimation.periods import Period
from analysis.estimation.reference import ReferenceWindow
from analysis.slices import Slice, compile_slice
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import Sql, quote_ident

BINS = 10
MISSING = "\u2205 missing"


@dataclass(frozen=True)
class Explanation:
    feature: str
    measure: str  # "accuracy" (expected correctness) or "mae" (expected absolute error)
    period: float  # the period's estimate of the measure
    held: float  # the same with this feature's mix held at the reference's
    accounts_for: float  # period - held
    unmatched: float  # the reference's share in groups the period lacks


def _measure(fit, project: Project, frame: pd.DataFrame) -> tuple[str, np.ndarray]:
    """Each row's expected correctness (classifiers) or expected absolute error (regression)."""
    if project.task == "regression":
        return "mae", fit.model.expected(frame)[0]
    p = fit.calibrator.apply(frame["score"].to_numpy(float))
    if project.task == "binary":
        return "accuracy", np.where(frame["prediction"].astype(bool).to_numpy(), p, 1.0 - p)
    return "accuracy", p


def _groups(frame: pd.DataFrame, feature: str, numeric: bool) -> tuple[pd.Series, list[float]]:
    """Each row's group of ``feature``, and the bin edges of a number (cut at the period's deciles)."""
    values = frame[feature]
    if not numeric:
        return values.astype(object).where(values.notna(), MISSING).astype(str), []
    numbers = pd.to_numeric(values, errors="coerce")
    edges = sorted(set(np.nanquantile(numbers, np.linspace(0, 1, BINS + 1)[1:-1]))) if numbers.notna().any() else []
    codes = np.searchsorted(np.asarray(edges), numbers.to_numpy(float), side="right").astype(object)
    codes[numbers.isna().to_numpy()] = MISSING
    return pd.Series(codes, index=frame.index).astype(str), edges


def _reference_mix(con, project: Project, reference: ReferenceWindow, slice_: Slice, feature, edges) -> pd.Series:
    """The reference's share of rows in each group of ``feature``, counted in SQL."""
    column = feature.sql
    if feature.measured_as == NUMBERS:
        cases = " ".join(f"WHEN {column} < ? THEN '{i}'" for i in range(len(edges)))
        group = Sql(f"CASE WHEN {column} IS NULL THEN ? {cases} ELSE '{len(edges)}' END", [MISSING, *edges])
    else:
        group = Sql(f"coalesce(CAST({column} AS VARCHAR), ?)", [MISSING])
    counts = con.execute(
        *Sql.compose(
            "SELECT g, count(*) AS n FROM (SELECT {group} AS g FROM {log} WHERE {scope} AND {slice}) AS grouped "
            "GROUP BY g",
            group=group,
            log=quote_ident(project.log_table),
            scope=reference.scope.to_sql(),
            slice=compile_slice(slice_, project),
        )
    ).fetchall()
    mix = pd.Series({str(g): n for g, n in counts}, dtype=float)
    return mix / mix.sum() if mix.sum() else mix


def explain_change(
    con, project: Project, reference: ReferenceWindow, slice_: Slice, period_start: date, by: str, features=None
) -> list[Explanation]:
    """How much each feature's shift accounts for the change of ``slice_``'s estimate in
    the ``by`` period starting ``period_start``, largest first."""
    period = Period.starting(period_start, by)
    fit = fit_slice(con, project, reference, slice_)
    measured = [f for f in measured_features(project) if features is None or f.name in features]
    columns = ", ".join(f"{f.sql} AS {quote_ident(f.name)}" for f in measured)
    within = Scope.of(
        reference.version, reference.stage, datetime.combine(period.start, time()), datetime.combine(period.end, time())
    )
    frame = con.execute(
        *Sql.compose(
            "SELECT {columns}, score, prediction FROM {log} WHERE {scope} AND {slice} AND prediction IS NOT NULL"
            + (" AND score IS NOT NULL" if project.task != "regression" else ""),
            columns=columns,
            log=quote_ident(project.log_table),
            scope=within.to_sql(),
            slice=compile_slice(slice_, project),
        )
    ).df()
    if frame.empty:
        raise ConfigError(f"The slice has no rows in {period.label} to explain.")
    measure, values = _measure(fit, project, frame)
    estimate = float(values.mean())
    out = []
    for feature in measured:
        groups, edges = _groups(frame, feature.name, feature.measured_as == NUMBERS)
        mix = _reference_mix(con, project, reference, slice_, feature, edges)
        means = pd.Series(values, index=frame.index).groupby(groups).mean()
        shared = mix.index.intersection(means.index)
        if not len(shared) or mix[shared].sum() == 0:
            continue
        held = float((mix[shared] * means[shared]).sum() / mix[shared].sum())
        out.append(Explanation(feature.name, measure, estimate, held, estimate - held, float(1 - mix[shared].sum())))
    return sorted(out, key=lambda e: -abs(e.accounts_for))

"""Drift of one slice of one version and stage, by period, against the reference window:
:func:`drift_table`. Two queries do the counting (one for the features read as categories,
one for the numbers), each reading the rows once; Python finishes the p-values and the
Benjamini–Hochberg q-values over every feature and period of the call."""

from __future__ import annotations

from datetime import date

from analysis.drift.buckets import Buckets
from analysis.drift.category_stats import category_stats_sql
from analysis.drift.features import CATEGORIES, NUMBERS, MeasuredFeature, measured_features
from analysis.drift.number_stats import number_stats_sql
from analysis.drift.pvalues import FALSE_DISCOVERY_RATE, chi_square_p, js_distance, ks_p, q_values
from analysis.drift.result import MEASURES, DriftResult, FeatureDrift, PeriodDrift
from analysis.errors import ConfigError
from analysis.estimation.periods import check_granularity
from analysis.estimation.reference import ReferenceWindow
from analysis.slices import Slice, compile_slice
from analysis.store.project import Project
from analysis.store.sql import Sql, quote_ident


def drift_table(
    con, project: Project, reference: ReferenceWindow, slice_: Slice, by: str, only: list[str] | None = None
) -> DriftResult:
    """Each feature's drift (``only``: of these features) in ``slice_`` (no terms: every
    row) for every ``by`` period (day, week or month) after ``reference``, against the
    reference window's rows of the same slice. See :mod:`analysis.drift` for what each
    figure is."""
    check_granularity(by)
    features = [f for f in measured_features(project) if only is None or f.name in only]
    buckets = Buckets(project, reference, slice_, by)
    reference_rows = slice_reference_rows(con, buckets)
    found: dict[tuple[str, date], FeatureDrift] = {}
    period_rows: dict[date, int] = {}
    categories = [f for f in features if f.measured_as == CATEGORIES]
    if categories:
        sql = category_stats_sql(buckets, [f.sql for f in categories])
        for row in con.execute(*sql).fetchall():
            feature_drift = category_drift(categories[row[0]], row)
            found[(feature_drift.feature, row[1])] = feature_drift
            period_rows[row[1]] = feature_drift.rows
    numbers = [f for f in features if f.measured_as == NUMBERS]
    if numbers:
        for row in con.execute(*number_stats_sql(buckets, [f.sql for f in numbers])).fetchall():
            feature_drift = number_drift(numbers[row[0]], row)
            found[(feature_drift.feature, row[1])] = feature_drift
            period_rows[row[1]] = feature_drift.rows
    periods = [
        PeriodDrift(
            period,
            period_rows.get(period.start, 0),
            [found.get((f.name, period.start)) or empty(f) for f in features],
        )
        for period in buckets.periods(con)
    ]
    adjust(periods)
    return DriftResult(project.name, reference, slice_, by, reference_rows, periods, FALSE_DISCOVERY_RATE)


def slice_reference_rows(con, buckets: Buckets) -> int:
    """The slice's rows in the reference window; a slice with none has nothing to drift from."""
    reference = buckets.reference
    rows = con.execute(
        *Sql.compose(
            "SELECT count(*) FROM {log} WHERE {scope} AND ({slice})",
            log=quote_ident(buckets.project.log_table),
            scope=reference.scope.to_sql(),
            slice=compile_slice(buckets.slice_, buckets.project),
        )
    ).fetchall()[0][0]
    if not rows:
        raise ConfigError(
            f"The slice {buckets.slice_.readable()} has no rows of {reference.version} ({reference.stage}) in the "
            f"reference window {reference.start} to {reference.end}: there is nothing to measure its drift against."
        )
    return int(rows)


def category_drift(feature: MeasuredFeature, row: tuple) -> FeatureDrift:
    """From a row of :data:`analysis.drift.category_stats.CATEGORY_STATS`."""
    _, _, rows, _, nulls, new, categories, chi_square, js_sum = row
    rows = int(rows)
    return FeatureDrift(
        feature.name,
        feature.kind,
        *MEASURES[CATEGORIES],
        rows=rows,
        values=rows,
        distance=js_distance(js_sum),
        statistic=max(float(chi_square), 0.0),
        p_value=chi_square_p(max(float(chi_square), 0.0), int(categories)),
        null_rate=float(nulls) / rows,
        new_categories=int(new),
    )


def number_drift(feature: MeasuredFeature, row: tuple) -> FeatureDrift:
    """From a row of :data:`analysis.drift.number_stats.NUMBER_STATS`; no figures but the
    null rate when either side has no values."""
    _, _, rows, nulls, reference_values, d, wasserstein, out_of_range = row
    rows, values = int(rows), int(rows) - int(nulls)
    drift = FeatureDrift(
        feature.name, feature.kind, *MEASURES[NUMBERS], rows=rows, values=values, null_rate=float(nulls) / rows
    )
    if values and reference_values and d is not None:
        drift.distance = max(float(wasserstein), 0.0)  # a sum of areas: below zero only by rounding
        drift.statistic = float(d)
        drift.p_value = ks_p(float(d), values, int(reference_values))
        drift.out_of_range = float(out_of_range) / values
    return drift


def empty(feature: MeasuredFeature) -> FeatureDrift:
    """A feature in a period where the slice has no rows."""
    return FeatureDrift(feature.name, feature.kind, *MEASURES[feature.measured_as], rows=0, values=0)


def adjust(periods: list[PeriodDrift]) -> None:
    """q-values by Benjamini–Hochberg over every test of the call; drifted below the rate."""
    tested = [f for p in periods for f in p.features if f.p_value is not None]
    for feature_drift, q in zip(tested, q_values([f.p_value for f in tested])):
        feature_drift.q_value = q
        feature_drift.drifted = q < FALSE_DISCOVERY_RATE

"""Label-free estimates for a regression model: a model of its errors.

On the reference's labeled rows, two gradient-boosted models (scikit-learn's
``HistGradientBoostingRegressor``, Poisson loss: a mean of a non-negative target) learn a
row's expected absolute error and expected squared error from its features and its
prediction. A period's mean absolute error is estimated as the mean of its rows' expected
absolute errors, its RMSE as the root of the mean expected squared error; no label of the
period is used.

Intervals add, to the sampling error of the period's rows (a row's absolute error varies
by ``E[e²] - E[|e|]²``; its squared error by ``(κ - 1) E[e²]²``, with ``κ`` the reference's
``mean(e⁴) / mean(e²)²``), the error the models make on the slice's reference rows, measured
with models that did not see them (three folds), and how far the three folds' models
disagree on the period (what the estimate owes to which rows the models learned from).
As labels arrive, a period's labeled rows
count with their own errors and the unlabeled ones with the models' corrected by the
labeled rows' mean residual, weighted as for classifiers (:func:`.figures.shrink`).

The models are fitted on at most ``FIT_ROWS`` reference rows (a uniform sample beyond), on
one thread: scikit-learn's OpenMP threads spin against each other on a busy machine (a
fit of seconds took minutes on two loaded cores).
R² is not estimated: it needs the spread of the labels themselves, which the errors do
not tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from analysis.errors import ConfigError
from analysis.estimation.calibration import FOLD_SEED
from analysis.estimation.figures import MetricError, MetricEstimate, bounds, shrink
from analysis.estimation.reference import ReferenceWindow
from analysis.slices import Slice, compile_slice
from analysis.store.project import Project
from analysis.store.sql import Sql, quote_ident

FIT_ROWS = 100_000
FOLDS = 3
MAX_CATEGORIES = 250  # a category beyond the most common ones counts as missing
TARGETS = ("absolute", "squared")
REGRESSION_METRICS = ("mae", "rmse")
MODEL_KINDS = ("numeric", "boolean", "categorical")


@dataclass(frozen=True)
class ErrorModel:
    """The two fitted models and how a row's columns are put to them."""

    numeric: tuple[str, ...]
    categories: dict[str, tuple]
    models: dict[str, HistGradientBoostingRegressor] = field(repr=False)

    def inputs(self, data: pd.DataFrame) -> pd.DataFrame:
        columns = {"prediction": pd.to_numeric(data["prediction"], errors="coerce").astype(float)}
        for name in self.numeric:
            columns[name] = pd.to_numeric(data[name], errors="coerce").astype(float)
        for name, kept in self.categories.items():
            columns[name] = pd.Categorical(data[name].astype("string").astype(object), categories=list(kept))
        return pd.DataFrame(columns, index=data.index)

    def expected(self, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each row's expected absolute and squared error."""
        if len(data) == 0:
            return np.zeros(0), np.zeros(0)
        x = self.inputs(data)
        with threadpool_limits(limits=1, user_api="openmp"):
            return self.models["absolute"].predict(x), self.models["squared"].predict(x)


def _fit_models(frame: pd.DataFrame, features: list[tuple[str, str]], seed: int) -> ErrorModel:
    numeric = tuple(n for n, kind in features if kind in ("numeric", "boolean"))
    categories = {}
    for name, kind in features:
        if kind == "categorical":
            common = frame[name].astype("string").value_counts().head(MAX_CATEGORIES)
            categories[name] = tuple(common.index.astype(object))
    model = ErrorModel(numeric, categories, {})
    x = model.inputs(frame)
    error = frame["label"].to_numpy(float) - frame["prediction"].to_numpy(float)
    targets = {"absolute": np.abs(error), "squared": error**2}
    for target in TARGETS:
        fitted = HistGradientBoostingRegressor(
            loss="poisson", max_iter=80, learning_rate=0.1, categorical_features="from_dtype", random_state=seed
        )
        with threadpool_limits(limits=1, user_api="openmp"):
            model.models[target] = fitted.fit(x, targets[target])
    return model


@dataclass(frozen=True)
class RegressionFit:
    reference: ReferenceWindow
    slice_: Slice
    model: ErrorModel = field(repr=False)
    folds: tuple[ErrorModel, ...] = field(repr=False)  # fitted without a fold each: their spread
    rows: int  # the slice's labeled reference rows
    errors: dict[str, MetricError]  # per target: the held-out models' bias on the slice
    kurtosis: float  # mean(e⁴) / mean(e²)² on the reference
    score_quantiles: np.ndarray = field(repr=False)  # of the predictions, for the shift notes
    notes: tuple[str, ...] = ()
    task: str = "regression"
    method: str = "error model"
    within_slice: bool = False
    classes: None = None
    compared: str = "predictions"  # what a period's shift is measured on (score_quantiles)

    def describe(self) -> str:
        return "a model of the errors (gradient-boosted trees on the features and the prediction)"

    def to_dict(self) -> dict:
        return {
            **self.reference.to_dict(),
            "slice": self.slice_.readable() or "every row",
            "slice_rows": self.rows,
            "calibration": self.method,
            "calibrated_within_slice": False,
            "calibration_words": self.describe(),
            "notes": list(self.notes),
        }


def regression_rows_sql(
    project: Project, where: Sql, slice_: Slice, period: str | None = None, log: Sql | None = None
) -> Sql:
    """The features, prediction, label and slice membership of the rows ``where`` selects."""
    columns = [quote_ident(c.name) for c in project.features if c.kind in MODEL_KINDS]
    return Sql.compose(
        "SELECT {period} {features} prediction, label, CASE WHEN {slice} THEN 1 ELSE 0 END AS in_slice "
        "FROM {log} WHERE {where} AND prediction IS NOT NULL ORDER BY {order}prediction_id",
        period=f"{period} AS period," if period else "",
        features="".join(f"{c}, " for c in columns),
        slice=compile_slice(slice_, project),
        log=log if log is not None else quote_ident(project.log_table),
        where=where,
        order=f"{period}, " if period else "",
    )


def fit_regression(con, project: Project, reference: ReferenceWindow, slice_: Slice, method=None) -> RegressionFit:
    where = Sql.compose("{scope} AND label IS NOT NULL", scope=reference.scope.to_sql())
    frame = con.execute(*regression_rows_sql(project, where, slice_)).df()
    if frame.empty:
        raise ConfigError(
            f"The reference window {reference.start} to {reference.end} has no labeled predictions of "
            f"{reference.version} ({reference.stage})."
        )
    inside = frame["in_slice"].to_numpy() == 1
    if not inside.any():
        raise ConfigError(
            f"The slice {slice_.readable()} has no labeled rows in the reference window "
            f"{reference.start} to {reference.end}: there is nothing to measure its estimates on."
        )
    rng = np.random.default_rng(FOLD_SEED)
    features = [(c.name, c.kind) for c in project.features if c.kind in MODEL_KINDS]
    sample = frame if len(frame) <= FIT_ROWS else frame.iloc[np.sort(rng.choice(len(frame), FIT_ROWS, replace=False))]
    folds = rng.permutation(len(sample)) % FOLDS
    held = {t: np.full(len(sample), np.nan) for t in TARGETS}
    fold_models = []
    for fold in range(FOLDS):
        model = _fit_models(sample[folds != fold], features, FOLD_SEED + fold)
        fold_models.append(model)
        absolute, squared = model.expected(sample[folds == fold])
        held["absolute"][folds == fold], held["squared"][folds == fold] = absolute, squared
    error = sample["label"].to_numpy(float) - sample["prediction"].to_numpy(float)
    kurtosis = float(np.mean(error**4) / np.mean(error**2) ** 2) if np.any(error != 0) else 3.0
    mask = sample["in_slice"].to_numpy() == 1
    errors = _measured(error[mask], held["absolute"][mask], held["squared"][mask], kurtosis)
    notes = () if mask.sum() >= 200 else (f"few reference rows in the slice ({int(mask.sum()):,}): a wide interval",)
    return RegressionFit(
        reference,
        slice_,
        _fit_models(sample, features, FOLD_SEED),
        tuple(fold_models),
        int(inside.sum()),
        errors,
        kurtosis,
        np.quantile(frame.loc[inside, "prediction"].to_numpy(float), np.linspace(0, 1, 201)),
        notes,
    )


def _measured(error: np.ndarray, absolute: np.ndarray, squared: np.ndarray, kurtosis: float) -> dict:
    n = len(error)
    if n == 0:
        return {t: MetricError(0.0, 0.0) for t in TARGETS}
    spread_abs = np.maximum(squared - absolute**2, 0.0)
    spread_sq = (kurtosis - 1) * squared**2
    return {
        "absolute": MetricError(float(np.mean(np.abs(error) - absolute)), float(spread_abs.sum()) / n**2),
        "squared": MetricError(float(np.mean(error**2 - squared)), float(spread_sq.sum()) / n**2),
    }


@dataclass(frozen=True)
class _Mean:
    """A mean over the period's rows of a per-row error (absolute or squared): the estimate,
    the combined figure, their variances, and the test of the labeled rows."""

    estimated: float
    variance: float
    combined: float
    combined_variance: float
    disagreement_p: float


def _mean(
    fit: RegressionFit, target: str, expected: np.ndarray, spread: np.ndarray, actual: np.ndarray, model: np.ndarray
) -> _Mean:
    """``model``: the expected errors of the models fitted without a fold each (one row per
    fold): how much the estimate rests on which rows the model learned from."""
    n = len(expected)
    labeled = ~np.isnan(actual)
    k = int(labeled.sum())
    prior = fit.errors[target].squared
    estimated = float(expected.mean())
    learned = float(np.var(model.mean(axis=1), ddof=1)) if len(model) > 1 else 0.0
    variance = float(spread.sum()) / n**2 + prior + learned
    if k == 0:
        return _Mean(estimated, variance, estimated, variance, float("nan"))
    residual = actual[labeled] - expected[labeled]
    noise = float(spread[labeled].sum()) / k**2
    shift, left = shrink(prior, float(residual.mean()), noise)
    unlabeled = ~labeled
    combined = (float(actual[labeled].sum()) + float((expected[unlabeled] + shift).sum())) / n
    combined_variance = float(spread[unlabeled].sum()) / n**2 + ((n - k) / n) ** 2 * (left + learned)
    test = noise + prior
    p = float(2 * stats.norm.sf(abs(residual.mean()) / np.sqrt(test))) if test > 0 else float("nan")
    return _Mean(estimated, variance, combined, combined_variance, p)


class RegressionPeriods:
    """A regression model's periods: rows read with their features, estimated by the models."""

    def read(self, con, project: Project, fit: RegressionFit, where: Sql, period_sql: str, log: Sql | None = None):
        frame = con.execute(*regression_rows_sql(project, where, fit.slice_, period_sql, log)).df()
        starts = pd.to_datetime(frame["period"]).to_numpy().astype("datetime64[D]")
        # Every row's expected errors at once (a model's call has a cost of its own).
        expected = {}
        for i, model in enumerate((fit.model, *fit.folds)):
            expected[f"sb_absolute_{i}"], expected[f"sb_squared_{i}"] = model.expected(frame)
        return starts, frame.assign(**expected)

    def scores(self, frame: pd.DataFrame) -> tuple[np.ndarray, None]:
        return frame["prediction"].to_numpy(float), None

    def subset(self, frame: pd.DataFrame, at: slice) -> pd.DataFrame:
        return frame.iloc[at]

    def counts(self, frame: pd.DataFrame) -> tuple[int, int]:
        """The period's rows with a prediction, and how many of them are labeled."""
        return len(frame), int(frame["label"].notna().sum())

    def estimate(self, fit: RegressionFit, frame: pd.DataFrame, names) -> dict[str, MetricEstimate]:
        absolute, squared = frame["sb_absolute_0"].to_numpy(), frame["sb_squared_0"].to_numpy()
        folds = [
            (frame[f"sb_absolute_{i}"].to_numpy(), frame[f"sb_squared_{i}"].to_numpy())
            for i in range(1, len(fit.folds) + 1)
        ]
        label = pd.to_numeric(frame["label"], errors="coerce").to_numpy(float)
        error = label - frame["prediction"].to_numpy(float)
        seen = error[~np.isnan(error)]
        realized = {"mae": float(np.mean(np.abs(seen))), "rmse": float(np.sqrt(np.mean(seen**2)))} if len(seen) else {}
        spread = np.maximum(squared - absolute**2, 0.0)
        means = {
            "mae": _mean(fit, "absolute", absolute, spread, np.abs(error), np.array([f[0] for f in folds])),
            "rmse": _mean(
                fit, "squared", squared, (fit.kurtosis - 1) * squared**2, error**2, np.array([f[1] for f in folds])
            ),
        }
        out = {}
        for name in names:
            m = means[name]
            if name == "rmse":  # the root of a mean square: its variance by the delta method
                values = [np.sqrt(max(v, 0.0)) for v in (m.estimated, m.combined)]
                variances = [
                    var / (4 * max(v, 1e-300))
                    for var, v in ((m.variance, m.estimated), (m.combined_variance, m.combined))
                ]
            else:
                values, variances = [m.estimated, m.combined], [m.variance, m.combined_variance]
            low, high = bounds(name, values[0], variances[0])
            c_low, c_high = bounds(name, values[1], variances[1])
            out[name] = MetricEstimate(
                realized.get(name), values[0], low, high, values[1], c_low, c_high, False, m.disagreement_p
            )
        return out

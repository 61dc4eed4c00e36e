"""Every interval and test of a slice's metrics, against an independent
computation on the same rows (scikit-learn, statsmodels, scipy), for binary,
regression and multiclass projects with unlabeled rows and missing outcomes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.special import expit, logit
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from analysis import Mapping, Store, get_project, ingest_predictions
from analysis.slices import parse_slice
from analysis.slices.metrics import slice_metrics
from analysis.stats.intervals import average_precision_interval, f1_interval
from analysis.store.scope import Scope

TOL = 1e-9
EPS = np.finfo(np.float64).eps


def t_interval(values: pd.Series) -> tuple[float, float]:
    return sps.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sps.sem(values))


def log_interval(values: pd.Series, ceiling: float = math.inf) -> tuple[float, float]:
    """The log-scale interval of a mean of non-negative values, from the rows (numpy, scipy)."""
    m, n = values.mean(), len(values)
    v = values.var(ddof=1) / (n * m * m)
    t = sps.t.ppf(0.975, n - 1)
    return m * math.exp(v / 2 - t * math.sqrt(v)), min(m * math.exp(v / 2 + t * math.sqrt(v)), ceiling)


def wilson(k: int, n: int) -> tuple[float, float]:
    return proportion_confint(k, n, alpha=0.05, method="wilson")


def ingest(tmp_path, frame, **mapping):
    store = Store(tmp_path / "p.duckdb")
    with store.write() as con:
        ingest_predictions(con, frame, project="p", mapping=Mapping(id="id", version="v", **mapping))
    with store.read() as con:
        return store, get_project(con, "p")


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    rng = np.random.default_rng(11)
    n = 600
    segment = rng.choice(["a", "b", "c"], n)
    score = np.round(rng.random(n), 2)  # ties in the scores
    label = pd.array(
        (rng.random(n) < np.clip(score + np.where(segment == "a", 0.2, 0.0), 0, 1)).astype(int), dtype="Int64"
    )
    label[rng.random(n) < 0.3] = pd.NA  # late labels still pending
    revenue = rng.normal(50, 20, n)
    revenue[rng.random(n) < 0.15] = np.nan
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "segment": segment,
            "score": score,
            "label": label,
            "revenue": revenue,
        }
    )
    store, project = ingest(
        tmp_path_factory.mktemp("bin"),
        frame,
        task="binary",
        score="score",
        label="label",
        positive_label="1",
        features=["segment"],
        outcomes=["revenue"],
    )
    frame["prediction"] = frame.score >= 0.5
    with store.read() as con:
        result = slice_metrics(con, project, parse_slice("segment = a"))
    return frame, result


def test_binary_metrics_and_intervals_match_independent_computation(binary):
    frame, result = binary
    table = result.table.set_index("part")
    for part, rows in (
        ("slice", frame[frame.segment == "a"]),
        ("rest", frame[frame.segment != "a"]),
        ("overall", frame),
    ):
        row = table.loc[part]
        lab = rows[rows.label.notna()]
        y, p, s = lab.label.astype(int).to_numpy(), lab.prediction.to_numpy(), lab.score.to_numpy()
        assert (row.n_rows, row.n_labeled) == (len(rows), len(lab))
        assert row.labeled_share_low == pytest.approx(wilson(len(lab), len(rows))[0], abs=TOL)
        tn, fp, fn, tp = skm.confusion_matrix(y, p).ravel()
        assert (row.tp, row.fp, row.fn, row.tn) == (tp, fp, fn, tn)
        assert (row.precision_low, row.precision_high) == pytest.approx(wilson(tp, tp + fp), abs=TOL)
        assert (row.recall_low, row.recall_high) == pytest.approx(wilson(tp, tp + fn), abs=TOL)
        # F1 = 2q / (1 + q), q = tp / (tp + fp + fn): the interval of q, mapped.
        assert row.f1 == pytest.approx(skm.f1_score(y, p), abs=TOL)
        q_low, q_high = wilson(tp, tp + fp + fn)
        assert (row.f1_low, row.f1_high) == pytest.approx((2 * q_low / (1 + q_low), 2 * q_high / (1 + q_high)), abs=TOL)
        assert row.f1_low <= row.f1 <= row.f1_high
        # Average precision: Boyd et al.'s logit interval.
        ap = skm.average_precision_score(y, s)
        assert row.pr_auc == pytest.approx(ap, abs=TOL)
        half = 1.959963984540054 / math.sqrt(y.sum() * ap * (1 - ap))
        assert (row.pr_auc_low, row.pr_auc_high) == pytest.approx(
            (expit(logit(ap) - half), expit(logit(ap) + half)), abs=TOL
        )
        # Log loss and Brier score are means of a non-negative per-row loss: log-scale intervals.
        clipped = np.clip(s, EPS, 1 - EPS)
        losses = pd.Series(-(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))
        assert row.log_loss == pytest.approx(skm.log_loss(y, s), rel=1e-9)
        assert (row.log_loss_low, row.log_loss_high) == pytest.approx(log_interval(losses), rel=1e-9)
        squares = pd.Series((s - y) ** 2)
        assert row.brier == pytest.approx(skm.brier_score_loss(y, s), rel=1e-9)
        assert (row.brier_low, row.brier_high) == pytest.approx(log_interval(squares, 1.0), rel=1e-9)
        revenue = rows.revenue.dropna()
        assert (row.revenue_count, row.revenue_mean) == (len(revenue), pytest.approx(revenue.mean(), rel=1e-9))
        assert (row.revenue_mean_low, row.revenue_mean_high) == pytest.approx(t_interval(revenue), rel=1e-9)


def test_binary_tests_match_independent_computation(binary):
    frame, result = binary
    comp = result.comparison.set_index("metric")
    lab = frame[frame.label.notna()]
    a, b = lab[lab.segment == "a"], lab[lab.segment != "a"]

    def cells(rows):
        tn, fp, fn, tp = skm.confusion_matrix(rows.label.astype(int), rows.prediction).ravel()
        return tp, fp, fn

    (tp1, fp1, fn1), (tp2, fp2, fn2) = cells(a), cells(b)
    assert comp.loc["f1", "p_value"] == pytest.approx(
        proportions_ztest([tp1, tp2], [tp1 + fp1 + fn1, tp2 + fp2 + fn2])[1], rel=1e-9
    )
    assert comp.loc["precision", "p_value"] == pytest.approx(
        proportions_ztest([tp1, tp2], [tp1 + fp1, tp2 + fp2])[1], rel=1e-9
    )

    def loss(rows):
        y, s = rows.label.astype(int).to_numpy(), np.clip(rows.score.to_numpy(), EPS, 1 - EPS)
        return -(y * np.log(s) + (1 - y) * np.log(1 - s))

    assert comp.loc["log_loss", "p_value"] == pytest.approx(
        sps.ttest_ind(loss(a), loss(b), equal_var=False).pvalue, rel=1e-9
    )
    aps = [(skm.average_precision_score(r.label.astype(int), r.score), int(r.label.sum())) for r in (a, b)]
    se = math.sqrt(sum(ap * (1 - ap) / n for ap, n in aps))
    z = (aps[0][0] - aps[1][0]) / se
    assert comp.loc["pr_auc", "p_value"] == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
    assert comp.loc["revenue_mean", "p_value"] == pytest.approx(
        sps.ttest_ind(
            frame[frame.segment == "a"].revenue.dropna(), frame[frame.segment != "a"].revenue.dropna(), equal_var=False
        ).pvalue,
        rel=1e-9,
    )
    assert set(comp.test[comp.p_value.notna()]) >= {
        "two-proportion z-test",
        "Welch t-test",
        "z-test on average precisions",
    }


def test_regression_intervals_match_scipy(tmp_path):
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame(
        {"id": [f"r{i}" for i in range(n)], "v": "m", "region": rng.choice(["n", "s"], n), "pred": rng.normal(10, 3, n)}
    )
    frame["label"] = frame.pred + rng.normal(0, 2, n) + np.where(frame.region == "n", 1.5, 0)
    frame.loc[frame.index % 7 == 0, "label"] = np.nan
    store, project = ingest(tmp_path, frame, task="regression", prediction="pred", label="label", features=["region"])
    with store.read() as con:
        result = slice_metrics(con, project, parse_slice("region = n"), Scope())
    table = result.table.set_index("part")
    for part, rows in (("slice", frame[frame.region == "n"]), ("rest", frame[frame.region != "n"]), ("overall", frame)):
        lab = rows[rows.label.notna()]
        row = table.loc[part]
        abs_err, sq_err = (lab.label - lab.pred).abs(), (lab.label - lab.pred) ** 2
        assert row.mae == pytest.approx(skm.mean_absolute_error(lab.label, lab.pred), rel=1e-9)
        assert (row.mae_low, row.mae_high) == pytest.approx(log_interval(abs_err), rel=1e-9)
        assert row.rmse == pytest.approx(math.sqrt(skm.mean_squared_error(lab.label, lab.pred)), rel=1e-9)
        low, high = log_interval(sq_err)
        assert (row.rmse_low, row.rmse_high) == pytest.approx((math.sqrt(low), math.sqrt(high)), rel=1e-9)
        assert row.r2 == pytest.approx(skm.r2_score(lab.label, lab.pred), rel=1e-9)
    comp = result.comparison.set_index("metric")
    inside, rest = (
        frame[(frame.region == "n") & frame.label.notna()],
        frame[(frame.region != "n") & frame.label.notna()],
    )
    assert comp.loc["mae", "p_value"] == pytest.approx(
        sps.ttest_ind((inside.label - inside.pred).abs(), (rest.label - rest.pred).abs(), equal_var=False).pvalue,
        rel=1e-9,
    )
    assert comp.loc["rmse", "p_value"] == pytest.approx(
        sps.ttest_ind((inside.label - inside.pred) ** 2, (rest.label - rest.pred) ** 2, equal_var=False).pvalue,
        rel=1e-9,
    )
    assert comp.loc["rmse", "test"] == "Welch t-test on squared errors"


def test_multiclass_accuracy_interval_and_macro_f1(tmp_path):
    rng = np.random.default_rng(8)
    n = 240
    labels = rng.choice(["cat", "dog", "fox"], n)
    pred = np.where(rng.random(n) < 0.7, labels, rng.choice(["cat", "dog", "fox"], n))
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "v": "m",
            "src": rng.choice(["x", "y"], n),
            "prediction": pred,
            "label": labels,
        }
    )
    store, project = ingest(
        tmp_path, frame, task="multiclass", prediction="prediction", label="label", features=["src"]
    )
    with store.read() as con:
        result = slice_metrics(con, project, parse_slice("src = x"))
    row = result.row("slice")
    rows = frame[frame.src == "x"]
    correct = int((rows.label == rows.prediction).sum())
    assert (row.accuracy_low, row.accuracy_high) == pytest.approx(wilson(correct, len(rows)), abs=TOL)
    assert row.macro_f1 == pytest.approx(skm.f1_score(rows.label, rows.prediction, average="macro"), abs=TOL)


def test_hand_computed_f1_and_average_precision_intervals():
    # tp = 6, fp = 2, fn = 2: q = 0.6, F1 = 1.2 / 1.6 = 0.75; Wilson(6, 10) maps through 2q / (1 + q).
    low, high = proportion_confint(6, 10, alpha=0.05, method="wilson")
    assert f1_interval(6, 2, 2) == pytest.approx((2 * low / (1 + low), 2 * high / (1 + high)), abs=1e-12)
    assert all(math.isnan(x) for x in f1_interval(0, 0, 0))
    # AP = 0.5 with 16 positives: logit 0, tau = 1 / sqrt(16 * 0.25) = 0.5.
    assert average_precision_interval(0.5, 16) == pytest.approx(
        (expit(-1.959963984540054 * 0.5), expit(1.959963984540054 * 0.5)), abs=1e-12
    )
    assert average_precision_interval(1.0, 5) == (1.0, 1.0)
    assert all(math.isnan(x) for x in average_precision_interval(0.5, 0))


def test_breakdown_with_pending_labels_and_missing_outcomes(binary, tmp_path):
    """Rows and outcomes per group count every row; metrics only the labeled ones."""
    from analysis.slices.breakdown import breakdown

    frame, _ = binary
    store, project = ingest(
        tmp_path,
        frame.drop(columns=["prediction"]),
        task="binary",
        score="score",
        label="label",
        positive_label="1",
        features=["segment"],
        outcomes=["revenue"],
    )
    with store.read() as con:
        got = breakdown(con, project, "segment").set_index("value")
    for value, rows in frame.groupby("segment"):
        row = got.loc[value]
        lab = rows[rows.label.notna()]
        assert (row.n_rows, row.n_labeled) == (len(rows), len(lab))
        assert row.labeled_share == pytest.approx(len(lab) / len(rows), abs=TOL)
        assert row.revenue_count == rows.revenue.notna().sum()
        assert row.revenue_mean == pytest.approx(rows.revenue.mean(), rel=1e-9)
        assert row.accuracy == pytest.approx(skm.accuracy_score(lab.label.astype(int), lab.prediction), abs=TOL)
        assert row.roc_auc == pytest.approx(skm.roc_auc_score(lab.label.astype(int), lab.score), abs=TOL)


def test_vectorized_intervals_equal_statsmodels_and_scipy_per_value():
    from analysis.stats.intervals import mean_intervals, wilson_bounds

    k, n = np.array([0, 3, 7, 0, 1]), np.array([0, 10, 7, 10, 1])
    lows, highs = wilson_bounds(k, n)
    assert math.isnan(lows[0]) and math.isnan(highs[0])  # no trials
    for i in range(1, len(k)):
        low, high = proportion_confint(k[i], n[i], alpha=0.05, method="wilson")
        assert lows[i] == pytest.approx(low, abs=TOL) and highs[i] == pytest.approx(high, abs=TOL)
    rng = np.random.default_rng(3)
    samples = [rng.normal(5, 2, size=m) for m in (0, 1, 2, 40)]
    means, sds, lows, highs = mean_intervals(
        [len(x) for x in samples], [x.sum() for x in samples], [(x * x).sum() for x in samples]
    )
    assert np.isnan([means[0], sds[0], sds[1], lows[1]]).all() and means[1] == samples[1][0]
    for i in (2, 3):
        x = samples[i]
        low, high = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
        assert (means[i], sds[i]) == pytest.approx((x.mean(), x.std(ddof=1)), abs=1e-9)
        assert (lows[i], highs[i]) == pytest.approx((low, high), abs=1e-9)


# --- Intervals stay in their domain (issue 20, item 6) -------------------------------------------------------


def _coverage(draw, mu: float, n: int, reps: int = 4000):
    """Share of 95% intervals (from count, sum and sum of squares) covering ``mu``, and the lowest bound."""
    from analysis.stats.intervals import positive_mean_intervals

    x = draw((reps, n))
    _, _, low, high = positive_mean_intervals(np.full(reps, n), x.sum(axis=1), (x * x).sum(axis=1))
    return float(np.mean((low <= mu) & (mu <= high))), float(low.min()), float(np.mean((high - low) > 0))


@pytest.mark.parametrize("n", [10, 20, 50, 200])
def test_non_negative_mean_interval_covers_skewed_errors_and_stays_non_negative(n):
    rng = np.random.default_rng(100 + n)
    for draw, mu in (
        (lambda size: rng.exponential(2.0, size), 2.0),
        (lambda size: rng.lognormal(0.0, 0.5, size), math.exp(0.125)),
    ):
        covered, lowest, proper = _coverage(draw, mu, n)
        assert covered >= 0.93, (n, mu, covered)
        assert lowest >= 0 and proper == 1.0


def test_plain_t_interval_of_the_same_errors_goes_negative_and_undercovers():
    """The reason for the log scale: the t interval of 10 exponential errors."""
    from analysis.stats.intervals import mean_intervals

    rng = np.random.default_rng(7)
    x = rng.exponential(2.0, (4000, 10))
    _, _, low, high = mean_intervals(np.full(4000, 10), x.sum(axis=1), (x * x).sum(axis=1))
    assert low.min() < 0
    assert np.mean((low <= 2.0) & (2.0 <= high)) < 0.92


def test_non_negative_mean_interval_pinned_to_scipy_on_rows():
    """m · exp(v/2 ± t √v), v = s² / (n m²): mean, sd and t quantile from numpy/scipy on the rows."""
    from analysis.stats.intervals import positive_mean_interval

    x = np.array([0.1, 0.1, 0.2, 0.1, 20.0])  # one large error among small ones
    m, s, n = x.mean(), x.std(ddof=1), len(x)
    v = s * s / (n * m * m)
    t = sps.t.ppf(0.975, n - 1)
    mean, sd, low, high = positive_mean_interval(n, x.sum(), (x * x).sum())
    assert (mean, sd) == pytest.approx((m, s), rel=1e-9)
    assert (low, high) == pytest.approx(
        (m * math.exp(v / 2 - t * math.sqrt(v)), m * math.exp(v / 2 + t * math.sqrt(v))), rel=1e-9
    )
    assert sps.t.interval(0.95, n - 1, loc=m, scale=sps.sem(x))[0] < 0 < low  # t went below zero
    assert positive_mean_interval(4, 0.0, 0.0)[2:] == (0.0, 0.0)  # every error 0
    assert positive_mean_interval(20, 19.0, 19.0, ceiling=1.0)[3] <= 1.0  # Brier stays <= 1
    assert all(math.isnan(v) for v in positive_mean_interval(1, 3.0, 9.0)[1:])


def test_auc_interval_is_on_the_logit_scale_and_covers():
    from analysis.stats.intervals import auc_interval, hanley_mcneil_se

    # Pinned: the Hanley-McNeil se of the observed AUC, the interval expit(logit(auc) ± z se / (auc (1 - auc))).
    auc, p, q = 0.9, 12, 15
    se, low, high = auc_interval(auc, p, q)
    assert se == pytest.approx(hanley_mcneil_se(auc, p, q))
    tau = 1.959963984540054 * se / (auc * (1 - auc))
    assert (low, high) == pytest.approx((expit(logit(auc) - tau), expit(logit(auc) + tau)), rel=1e-12)
    assert auc_interval(1.0, 5, 5)[2] == 1.0 and auc_interval(1.0, 5, 5)[1] < 1.0  # a perfect AUC still has a width
    assert auc_interval(0.0, 5, 5)[1] == 0.0 and auc_interval(0.0, 5, 5)[2] > 0.0
    rng = np.random.default_rng(21)
    for d, n_pos, n_neg in ((1.19, 10, 10), (1.19, 30, 60), (2.33, 20, 20), (2.33, 100, 100)):
        truth = sps.norm.cdf(d / math.sqrt(2))  # binormal AUC
        pos, neg = rng.normal(d, 1, (1500, n_pos)), rng.normal(0, 1, (1500, n_neg))
        aucs = (pos[:, :, None] > neg[:, None, :]).mean(axis=(1, 2))
        assert aucs[0] == pytest.approx(skm.roc_auc_score([1] * n_pos + [0] * n_neg, [*pos[0], *neg[0]]))
        bounds = np.array([auc_interval(a, n_pos, n_neg)[1:] for a in aucs])
        assert bounds.min() >= 0 and bounds.max() <= 1
        assert np.mean((bounds[:, 0] <= truth) & (truth <= bounds[:, 1])) >= 0.93, (d, n_pos, n_neg)

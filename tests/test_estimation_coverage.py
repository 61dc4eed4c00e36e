"""Do the estimates' 95% intervals cover the realized metric? Simulated streams with known
truth: scores calibrated overall, a 2% slice where the model is over-confident, covariate
shift into regions of lower confidence, and labels that arrive for a random share of a
period's rows. Each case runs 500 periods; every metric's estimate interval (no label of
the period used) and combined interval (the labels that arrived used) must cover the
period's realized metric (every label known) in at least 93% of them, overall and in the
slice. Fixed seeds: the figures are the same on every run."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from analysis.estimation.calibration import draw_folds
from analysis.estimation.combine import estimate_period
from analysis.estimation.expected import EXPECTED, Rows
from analysis.estimation.fit import ReferenceRows, fit_rows
from analysis.estimation.reference import ReferenceChoice, ReferenceWindow
from analysis.slices import Slice, parse_slice

PERIODS = 500
PER_PERIOD = 5000
SLICE_SHARE = 0.02
REFERENCE = ReferenceWindow("m", "production", date(2026, 1, 1), date(2026, 1, 14), 0, 0, ReferenceChoice())


def draw(rng, n: int, shift: float, over_confident: bool):
    """Scores from a latent logit (``shift`` pulls it toward 0: less confident rows); labels
    from the true probability, which in the slice is flatter than the score says when the
    model is over-confident there."""
    z = rng.normal(-1.0, 1.6, n) * (1 - shift)
    in_slice = rng.random(n) < SLICE_SHARE
    truth = 1 / (1 + np.exp(-np.where(in_slice & over_confident, 0.5 * z, z)))
    labels = (rng.random(n) < truth).astype(float)
    scores = 1 / (1 + np.exp(-z))
    return Rows(scores, (scores >= 0.3).astype(float)), labels, in_slice


CASES = {
    "calibrated": dict(shift=0.0, lag=False, over_confident=False),
    "covariate shift": dict(shift=0.6, lag=False, over_confident=False),
    "label lag": dict(shift=0.0, lag=True, over_confident=False),
    "over-confident slice, shift and lag": dict(shift=0.6, lag=True, over_confident=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_intervals_cover_the_realized_metric(case):
    spec = CASES[case]
    rng = np.random.default_rng(list(CASES).index(case) + 101)
    rows, labels, in_slice = draw(rng, PER_PERIOD * 14, 0.0, spec["over_confident"])
    folds = draw_folds(len(labels))
    fits = {
        "overall": fit_rows(REFERENCE, Slice(), ReferenceRows(rows, labels, np.ones(len(labels), bool), folds)),
        "2% slice": fit_rows(REFERENCE, parse_slice("a = b"), ReferenceRows(rows, labels, in_slice, folds)),
    }
    hits = {(part, kind, m): [] for part in fits for kind in ("estimate", "combined") for m in EXPECTED}
    errors = {(part, m): [] for part in fits for m in EXPECTED}
    for t in range(PERIODS):
        rows, labels, in_slice = draw(rng, PER_PERIOD, spec["shift"] * t / PERIODS, spec["over_confident"])
        arrived = rng.random(PER_PERIOD) < (rng.random() if spec["lag"] else 0.0)
        for part, fit in fits.items():
            keep = in_slice if part == "2% slice" else np.ones(PER_PERIOD, bool)
            period = rows.subset(keep)
            truth = {m: f(period, labels[keep]).value for m, f in EXPECTED.items()}
            seen = np.where(arrived[keep], labels[keep], -1.0)
            for m, e in estimate_period(fit, period, seen, list(EXPECTED)).items():
                if not (np.isfinite(truth[m]) and np.isfinite(e.low)):
                    continue
                hits[(part, "estimate", m)].append(e.low <= truth[m] <= e.high)
                hits[(part, "combined", m)].append(e.combined_low <= truth[m] <= e.combined_high)
                errors[(part, m)].append(abs(e.estimated - truth[m]))
    coverage = {key: float(np.mean(v)) for key, v in hits.items()}
    report = "\n".join(
        f"{part:9} {kind:9} {m:10} coverage {coverage[(part, kind, m)]:.3f} of {len(hits[(part, kind, m)])}"
        + (f", mean absolute error {np.mean(errors[(part, m)]):.4f}" if kind == "estimate" else "")
        for part, kind, m in hits
    )
    assert all(len(v) >= 0.95 * PERIODS for v in hits.values()), report
    print(f"\n{case}:\n{report}")
    assert min(coverage.values()) >= 0.93, f"{case}:\n{report}"
    if spec["over_confident"]:
        assert fits["2% slice"].within_slice, "the over-confident slice is calibrated on its own rows"

"""The isotonic calibrator against scikit-learn's ``IsotonicRegression`` (the referee) on
rows with ties, weights and both orders of scores."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression

from analysis.estimation.calibration import fit_isotonic


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    distinct=st.integers(1, 40),
    weighted=st.booleans(),
    in_order=st.booleans(),
)
def test_the_isotonic_calibrator_is_scikit_learns(seed, n, distinct, weighted, in_order):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, distinct, n) / max(distinct - 1, 1)  # ties when distinct < n
    labels = (rng.random(n) < scores * 0.8 + 0.1).astype(float)
    weights = rng.integers(0, 5, n).astype(float) if weighted else None
    if in_order:
        order = np.argsort(scores, kind="stable")
        scores, labels = scores[order], labels[order]
        weights = None if weights is None else weights[order]
    if weights is not None and not (weights > 0).any():
        weights[0] = 1.0
    ours = fit_isotonic(scores, labels, weights)
    theirs = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels, sample_weight=weights)
    np.testing.assert_allclose(ours.x, theirs.X_thresholds_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.y, theirs.y_thresholds_, rtol=0, atol=1e-12)
    probe = np.linspace(-0.2, 1.2, 57)
    np.testing.assert_allclose(ours.apply(probe), theirs.predict(probe), rtol=0, atol=1e-12)
    kept = scores if weights is None else scores[weights > 0]
    # Each level pools the rows (weights) whose fitted value it is.
    assert np.isclose(ours.counts.sum(), len(kept) if weights is None else weights.sum())

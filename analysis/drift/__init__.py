"""Input drift and data quality per slice: for one version and stage, each feature of a
slice's rows in every period after the reference window, against the window's rows of
the same slice (:func:`drift_table`).

Per feature and period:

* **distance**: the Jensen–Shannon distance in base 2 (0 same, 1 disjoint) between the two
  distributions of categories (categorical and boolean features; a missing value is a
  category of its own), or the Wasserstein-1 distance between the two samples of a
  numeric feature, in its units, or of a text's length (missing values left out). Both exact, equal to scipy's
  ``jensenshannon(base=2)`` and ``wasserstein_distance``.
* **test**: Pearson's chi-square on the 2 × K table of the categories either sample has
  (as ``chi2_contingency(correction=False)``), or the two-sample Kolmogorov–Smirnov test
  (D exact, the p-value from Smirnov's asymptotic distribution as ``ks_2samp(method=
  "asymp")``). Two samples: the reference is a sample too, not the truth.
* **q-value**: Benjamini–Hochberg over every feature and period of the call; a feature
  drifted when its q-value is below 5%.
* **null_rate** (the period's rows where the feature is missing), **new_categories**
  (categories the reference never had; missing not counted) and, for numbers,
  **out_of_range** (the share of the period's values outside the reference's [min, max]).

Timestamp features are not measured (see :mod:`.features`). All counting runs in SQL
(:mod:`.category_stats`, :mod:`.number_stats`, portable to Spark); only one row per feature
and period comes back to Python (:mod:`.pvalues`).
"""

from analysis.drift.features import MeasuredFeature, measured_features
from analysis.drift.pvalues import FALSE_DISCOVERY_RATE
from analysis.drift.result import FRAME_COLUMNS, DriftResult, FeatureDrift, PeriodDrift
from analysis.drift.table import drift_table

__all__ = [
    "FALSE_DISCOVERY_RATE",
    "FRAME_COLUMNS",
    "DriftResult",
    "FeatureDrift",
    "MeasuredFeature",
    "PeriodDrift",
    "drift_table",
    "measured_features",
]

"""What a drift call found (:class:`DriftResult`): for each period after the reference
window, the slice's rows and, per feature, the distance from the reference, the test's
p- and q-value, and the data-quality figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from analysis.drift.features import CATEGORIES, NUMBERS
from analysis.estimation.periods import Period
from analysis.estimation.reference import ReferenceWindow
from analysis.slices import Slice

# How each kind of feature is compared: (distance, test).
MEASURES = {
    CATEGORIES: ("jensen_shannon", "chi_square"),
    NUMBERS: ("wasserstein", "kolmogorov_smirnov"),
}
FRAME_COLUMNS = [
    "period",
    "start",
    "end",
    "rows",
    "feature",
    "kind",
    "distance_measure",
    "distance",
    "test",
    "statistic",
    "p_value",
    "q_value",
    "drifted",
    "values",
    "null_rate",
    "new_categories",
    "out_of_range",
]


@dataclass
class FeatureDrift:
    """One feature in one period, against the reference window's rows of the same slice.

    ``distance``: Jensen–Shannon distance in base 2 (categories) or Wasserstein-1 in the
    feature's units (numbers); ``statistic``: chi-square or Kolmogorov–Smirnov D; ``values``:
    the period's values compared (its rows for categories, its non-missing values for
    numbers). ``None`` where there is nothing to compare (no rows, or no values on one side).
    ``new_categories`` is ``None`` for numbers, ``out_of_range`` (a share of the period's
    values) ``None`` for categories."""

    feature: str
    kind: str
    distance_measure: str
    test: str
    rows: int
    values: int
    distance: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    drifted: bool = False
    null_rate: float | None = None
    new_categories: int | None = None
    out_of_range: float | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        del out["rows"]  # the period's, given once per period
        return {"feature": out.pop("feature"), **out}


@dataclass
class PeriodDrift:
    period: Period
    rows: int
    features: list[FeatureDrift] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**self.period.to_dict(), "rows": self.rows, "features": [f.to_dict() for f in self.features]}


@dataclass
class DriftResult:
    """Drift of one slice of one version and stage, by period (see the module docstring).
    ``reference_rows``: the slice's rows in the reference window."""

    project: str
    reference: ReferenceWindow
    slice_: Slice
    by: str
    reference_rows: int
    periods: list[PeriodDrift]
    false_discovery_rate: float

    @property
    def tests(self) -> int:
        """How many tests the q-values are adjusted over."""
        return sum(f.p_value is not None for p in self.periods for f in p.features)

    def to_dict(self) -> dict:
        return {
            "reference": self.reference.to_dict(),
            "where": self.slice_.readable(),
            "by": self.by,
            "slice_reference_rows": self.reference_rows,
            "tests": self.tests,
            "false_discovery_rate": self.false_discovery_rate,
            "periods": [p.to_dict() for p in self.periods],
        }

    def frame(self) -> pd.DataFrame:
        """One row per period and feature (:data:`FRAME_COLUMNS`), for a page or a chart."""
        rows = [
            {
                "period": p.period.label,
                "start": p.period.start,
                "end": p.period.end,
                "rows": p.rows,
                **{k: v for k, v in asdict(f).items() if k != "rows"},
            }
            for p in self.periods
            for f in p.features
        ]
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)

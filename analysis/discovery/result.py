"""What a discovery search found (:class:`Discovery`): the ranked slices, the columns they
are shown in, what the errors were held against, and how the search went."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from analysis.store.scope import Scope

RANKINGS = ("score", "impact")
AGAINST = ("expected", "version", "error")  # what a slice's errors are held against
RANKING_WORDS = {
    "expected": "worse than its scores predict",
    "version": "worse than another version",
    "error": "plain error",
}
COLUMNS = [
    "rank",
    "where",
    "predicates",
    "level",
    "size",
    "errors",
    "error_rate",
    "ci_low",
    "ci_high",
    "rest_error_rate",
    "score",
    "impact",
    "p_value",
    "q_value",
    "significant",
    "folded_under",
    "slice",
]
EXCESS_COLUMNS = ["expected_errors", "expected_rate", "excess", "excess_rate", "other_error_rate", "z", "variants"]


@dataclass
class Discovery:
    """The result of :func:`discover` (see the module docstring for ``slices``)."""

    project: str
    scope: Scope
    error: str
    slices: pd.DataFrame
    n_rows: int
    total_errors: float
    n_evaluated: int
    candidates_per_level: list[dict]
    min_support: int
    alpha: float
    max_level: int
    top_k: int
    rank_by: str = "score"
    q_threshold: float = 0.05
    seconds: float = 0.0
    features: list[str] = field(default_factory=list)
    evaluated: pd.DataFrame | None = None  # every slice tested: predicates, size, errors, score, p, q
    skipped_features: list[dict] = field(default_factory=list)  # id-like features left out: column, distinct, rows
    notes: list[str] = field(default_factory=list)  # what a reader must know about the search (features left out)
    ranking: str = "error"  # what the errors are held against (AGAINST)
    other_version: str | None = None  # the version held against, for ranking "version"

    @property
    def ranking_words(self) -> str:
        """The ranking in words: "worse than its scores predict", "worse than credit-v1", "plain error"."""
        if self.ranking == "version" and self.other_version:
            return f"worse than {self.other_version}"
        return RANKING_WORDS[self.ranking]

    @property
    def mean_error(self) -> float:
        return self.total_errors / self.n_rows if self.n_rows else math.nan

    def to_dict(self) -> dict:
        rows = []
        for r in self.slices.itertuples(index=False):
            rows.append(
                {
                    "rank": int(r.rank),
                    "where": r.where,
                    "predicates": r.predicates,
                    "slice": r.slice.to_dict(),
                    "level": int(r.level),
                    "size": int(r.size),
                    "errors": float(r.errors),
                    "error_rate": float(r.error_rate),
                    "ci_low": as_number(r.ci_low),
                    "ci_high": as_number(r.ci_high),
                    "rest_error_rate": as_number(r.rest_error_rate),
                    "score": float(r.score),
                    "impact": float(r.impact),
                    "p_value": as_number(r.p_value),
                    "q_value": as_number(r.q_value),
                    "significant": bool(r.significant),
                    "folded_under": None if pd.isna(r.folded_under) else int(r.folded_under),
                    "expected_errors": as_number(r.expected_errors),
                    "expected_rate": as_number(r.expected_rate),
                    "excess": as_number(r.excess),
                    "excess_rate": as_number(r.excess_rate),
                    "other_error_rate": as_number(r.other_error_rate),
                    "z": as_number(r.z),
                    "variants": [
                        {"where": v["where"], "size": int(v["size"]), "error_rate": as_number(v["error_rate"])}
                        for v in r.variants
                    ],
                }
            )
        return {
            "project": self.project,
            "error": self.error,
            "rank_by": self.rank_by,
            "rows": self.n_rows,
            "total_errors": self.total_errors,
            "mean_error": as_number(self.mean_error),
            "alpha": self.alpha,
            "min_support": self.min_support,
            "max_level": self.max_level,
            "top": self.top_k,
            "features": self.features,
            "evaluated": self.n_evaluated,
            "q_threshold": self.q_threshold,
            "candidates_per_level": self.candidates_per_level,
            "seconds": self.seconds,
            "slices": rows,
            "skipped_features": self.skipped_features,
            "notes": self.notes,
            "ranking": self.ranking,
            "ranking_words": self.ranking_words,
            "other_version": self.other_version,
        }


def as_number(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)

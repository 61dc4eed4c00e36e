"""A drift result as text for people (the command line's table format): one line per
period with the features that drifted, then one line per feature over all periods."""

from __future__ import annotations

import pandas as pd

from analysis.drift.result import DriftResult, FeatureDrift
from analysis.numbers import MISSING, format_count, format_number, format_p, format_percent

SHORT = {"jensen_shannon": "JS", "wasserstein": "W1"}
WORDS = {"jensen_shannon": "Jensen–Shannon", "wasserstein": "Wasserstein-1"}


def summary_lines(result: DriftResult) -> list[str]:
    reference = result.reference
    return [
        f"Drift of {reference.version} ({reference.stage}), {result.slice_.readable()}, by {result.by}: "
        f"{len(result.periods)} periods after the reference window {reference.start} to {reference.end} "
        f"({format_count(result.reference_rows)} rows of the slice).",
        "Categories: Jensen–Shannon distance (base 2, 0 to 1), chi-square test; numbers: Wasserstein-1 distance "
        "(in the feature's units), Kolmogorov–Smirnov test.",
        f"Drifted: q < {format_p(result.false_discovery_rate)}, Benjamini–Hochberg over all {result.tests} tests.",
    ]


def distance_text(feature: FeatureDrift) -> str:
    return f"{feature.feature} ({SHORT[feature.distance_measure]} {format_number(feature.distance)})"


def period_table(result: DriftResult) -> pd.DataFrame:
    rows = []
    for p in result.periods:
        drifted = sorted((f for f in p.features if f.drifted), key=lambda f: f.q_value)
        rows.append(
            {
                "period": p.period.label,
                "rows": format_count(p.rows),
                "drifted": f"{len(drifted)} of {len(p.features)}",
                "features that drifted": ", ".join(distance_text(f) for f in drifted) or MISSING,
            }
        )
    return pd.DataFrame(rows)


def feature_table(result: DriftResult) -> pd.DataFrame:
    frame = result.frame()
    rows = []
    for name, part in frame.groupby("feature", sort=False):
        first = part.iloc[0]
        numbers = first["distance_measure"] == "wasserstein"
        rows.append(
            {
                "feature": name,
                "kind": first["kind"],
                "distance": WORDS[first["distance_measure"]],
                "periods drifted": f"{int(part['drifted'].sum())} of {len(part)}",
                "largest distance": format_number(part["distance"].max()),
                "smallest q": format_p(part["q_value"].min()),
                "null rate (max)": format_percent(part["null_rate"].max()),
                "new categories (max)": MISSING if numbers else format_count(part["new_categories"].max()),
                "out of range (max)": format_percent(part["out_of_range"].max()) if numbers else MISSING,
            }
        )
    return pd.DataFrame(rows)


def aligned(frame: pd.DataFrame, left: tuple[str, ...]) -> str:
    """The frame's text cells in columns: words to the left, figures to the right."""
    widths = {c: max([len(c)] + [len(v) for v in frame[c]]) for c in frame.columns}

    def line(cells: dict) -> str:
        return "  ".join(
            str(cells[c]).ljust(widths[c]) if c in left else str(cells[c]).rjust(widths[c]) for c in frame.columns
        ).rstrip()

    return "\n".join([line({c: c for c in frame.columns})] + [line(row) for row in frame.to_dict("records")])


def drift_text(result: DriftResult) -> str:
    lines = summary_lines(result) + [""]
    if not result.periods:
        return "\n".join(lines + ["No period starts after the reference window yet."])
    periods = aligned(period_table(result), left=("period", "features that drifted"))
    features = aligned(feature_table(result), left=("feature", "kind", "distance"))
    return "\n".join(lines + [periods, "", features])

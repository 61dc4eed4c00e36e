"""The Discover page's search settings (the "Search settings" expander): how deep and how
wide the search goes, and over which features."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from analysis.discovery.encode import is_cost
from analysis.discovery.run import DEFAULT_BINS
from analysis.slices.grouping import GROUPABLE


@dataclass(frozen=True)
class SearchSettings:
    max_level: int
    top_k: int
    support: float
    alpha: float
    features: tuple[str, ...]
    bins: int
    rank_by: str


def search_settings(project, ranking: str, error: str) -> SearchSettings:
    """The settings as the expander's widgets hold them (keys ``dc_…``, started from the URL by the page)."""
    features = [f.name for f in project.features if f.kind in GROUPABLE]
    with st.expander("Search settings"):
        s1, s2, s3, s4 = st.columns(4)
        max_level = s1.number_input("Conditions per slice (L)", 1, 4, key="dc_level")
        top_k = s2.number_input("Slices to report (k)", 1, 50, key="dc_top")
        support = s3.number_input(
            "Minimum support σ (share of rows)", 0.0005, 0.5, step=0.005, format="%.4f", key="dc_support"
        )
        alpha = s4.slider(
            "α: error vs size (plain error)", 0.5, 1.0, 0.95, 0.01, key="dc_alpha", disabled=ranking != "error"
        )
        f1, f2, f3 = st.columns([4, 1, 1])
        if any(f not in features for f in st.session_state.get("dc_features", ())):  # another project's features
            del st.session_state["dc_features"]
        chosen = f1.multiselect("Features", features, default=features, key="dc_features")
        # A cost falls back to plain error (the scores do not predict amounts): its bins too.
        effective = "error" if ranking == "expected" and is_cost(project, error) else ranking
        bins = f2.number_input(
            "Bins for numbers",
            2,
            60,
            DEFAULT_BINS[effective],
            key=f"dc_bins_{effective}",
            help="Numbers and timestamps are cut into this many quantile bins; the rankings "
            "against a baseline also try every 'below / from a cut point' band.",
        )
        rank_by = f3.selectbox("Order (plain error)", ["score", "impact"], key="dc_rank", disabled=ranking != "error")
    return SearchSettings(int(max_level), int(top_k), float(support), float(alpha), tuple(chosen), int(bins), rank_by)

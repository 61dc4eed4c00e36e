"""Comparing a candidate model version with a baseline: the comparison
(:mod:`.comparison`, from its parts :mod:`.sides`, :mod:`.pairs`, :mod:`.sums`,
:mod:`.overall` and :mod:`.slice_tests`) over the days both served (:mod:`.traffic`), the
search for slices where the candidate is worse (:mod:`.slices`), and the deployment gate
(:mod:`.gate`)."""

__all__ = ["Comparison", "Side", "compare", "daily", "run_gate"]


def __getattr__(name: str):
    # A comparison needs scipy and statsmodels; the pages that only list versions or
    # criteria import this package without paying for them.
    if name in ("Comparison", "Side", "compare", "daily"):
        from analysis.compare import comparison

        return getattr(comparison, name)
    if name == "run_gate":
        from analysis.compare import gate

        return gate.run_gate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

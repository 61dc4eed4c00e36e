"""What the kinds' plain-language lines share (each kind says its own lines, for example
"credit-v3 (shadow): approval_rate 62.0% vs 65.1% for credit-v1 (production), 3.1 points
lower (worse)"): how a change is judged and how a slice's error is named."""

from __future__ import annotations

from analysis.numbers import missing


def judged(row: dict) -> str:
    """'better' / 'worse' for the candidate, and whether the change is significant."""
    delta, direction = row.get("delta"), row.get("direction", "higher")
    if missing(delta) or delta == 0:
        return "no change"
    better = (delta > 0) == (direction == "higher")
    low, high = row.get("ci_low"), row.get("ci_high")
    significant = not missing(low) and not missing(high) and (low > 0 or high < 0)
    return ("better" if better else "worse") + ("" if significant else ", not significant")


def slice_measure(s: dict) -> str:
    """What a comparison's slices differ in: a regression's mean absolute error, else the
    error rate (the snapshot's ``error_rate_b``/``error_rate_c`` hold one or the other)."""
    return "mae" if any(r.get("metric") == "mae" for r in s.get("overall", [])) else "error_rate"

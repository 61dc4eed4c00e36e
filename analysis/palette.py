"""Colours that mean something, safe for colour-blind readers (Okabe and Ito's palette):
blue for pass or better, vermillion for fail or worse, grey for what was not judged.
Blue and vermillion differ in hue for every common colour vision deficiency and in
lightness too, so a failing cell never reads as a passing one; the words (✓ pass,
✗ fail) are always written beside the colour.
"""

from __future__ import annotations

PASS = BETTER = "#0072B2"  # blue
FAIL = WORSE = "#D55E00"  # vermillion
NOT_SCORED = "#BBBBBB"  # grey: no labeled member was scored
NOT_JUDGED = "#E4E4E4"  # light grey: scored, but the set has no pass criteria
NEUTRAL = "#999999"
# Two sides of a comparison, or a few series: blue, orange, sky blue, bluish green.
SERIES = ("#0072B2", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#F0E442")
BASELINE, CANDIDATE = SERIES[0], SERIES[1]

VERDICT_COLOURS = {"pass": PASS, "fail": FAIL, "no criteria": NOT_JUDGED, "no data": NOT_SCORED}
VERDICT_WORDS = {"pass": "✓ pass", "fail": "✗ fail", "no criteria": "no criteria", "no data": "no data"}
# A verdict as a number for a heatmap's discrete colour scale (VERDICT_SCALE).
VERDICT_LEVEL = {"no data": 0, "no criteria": 1, "fail": 2, "pass": 3}


def verdict_scale() -> list[list]:
    """A plotly colour scale mapping :data:`VERDICT_LEVEL` (``zmin=0, zmax=3``) to
    :data:`VERDICT_COLOURS` in flat bands."""
    colours = [VERDICT_COLOURS[v] for v in sorted(VERDICT_LEVEL, key=VERDICT_LEVEL.get)]
    scale = []
    for i, colour in enumerate(colours):
        scale += [[i / len(colours), colour], [(i + 1) / len(colours), colour]]
    return scale

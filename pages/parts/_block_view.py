"""One report block drawn as words, charts and tables (the Reports and Present pages).
Apart from "Add to report", which every page shows: the pages that only add blocks do
not load the charts and the HTML export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.errors import ConfigError
from analysis.palette import FAIL, PASS
from analysis.reports.html import inert_figure
from analysis.reports.kinds import Card, kind_of
from analysis.reports.tables import Table
from pages.parts import _ui


def draw_block(kind_name: str, snapshot: dict, *, key: str, big: bool = False) -> None:
    """The block's plain-language lines, charts and (unless ``big``) its main table; stored
    numbers that do not fit the kind are said so in the block's place."""
    kind = kind_of(kind_name)
    try:
        kind.check(snapshot)
    except ConfigError as exc:
        st.warning(str(exc), icon=":material/error:")
        return
    said = [_ui.plain(x) for x in kind.lines(snapshot)]  # sentences quoting names and values
    if kind.text:
        _ui.note(snapshot["text"])  # Markdown without images, raw HTML or links to other hosts
    elif said:
        if big:
            _big_numbers(kind.cards(snapshot))
            lead = kind.summary_first  # a summary line first, then the details
            st.markdown("\n".join(f"### {x}" if i == 0 and lead else f"- **{x}**" for i, x in enumerate(said)))
        else:
            st.markdown("\n".join(f"- {x}" for x in said))
    for i, fig in enumerate(map(inert_figure, kind.figures(snapshot))):
        st.plotly_chart(fig, key=f"{key}_fig{i}", config={"displaylogo": False})
    if not big:
        for i, table in enumerate(kind.tables(snapshot)):
            if table.rows:
                st.dataframe(table_frame(table), hide_index=True, key=f"{key}_table{i}")
                if table.note:
                    st.caption(_ui.plain(table.note))


def table_frame(table: Table):
    """A block's table as the texts the HTML export shows (one formatting), verdicts in
    their colours."""
    frame = pd.DataFrame([[c.text for c in row] for row in table.rows], columns=_unique(table.headings))
    tones = pd.DataFrame([[_TONE.get(c.tone, "") for c in row] for row in table.rows], columns=frame.columns)
    return frame.style.apply(lambda _: tones, axis=None) if tones.to_numpy().any() else frame


_TONE = {"pass": f"color: {PASS}; font-weight: 600", "fail": f"color: {FAIL}; font-weight: 600"}


def _unique(headings: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for h in headings:
        seen[h] = seen.get(h, 0) + 1
        out.append(h if seen[h] == 1 else f"{h} ({seen[h]})")
    return out


# A card's tone as Streamlit's delta colour and arrow: a change is blue when better and
# orange when worse (colour-blind safe); a figure or a verdict has no arrow.
_CARD_DELTA = {
    "better": ("blue", "auto"),
    "worse": ("orange", "auto"),
    "neutral": ("gray", "auto"),
    "plain": ("off", "off"),
}


def _big_numbers(cards: list[Card]) -> None:
    """Up to four big figures in a row (the presentation view)."""
    # Four cards to a row fit figures up to 12 characters ($182,955,000) at 1280 pixels; longer ones two to a
    # row, so that no figure is cut.
    per_row = 4 if max((len(c.value) for c in cards), default=0) <= 12 else 2
    for start in range(0, len(cards), per_row):
        for col, card in zip(st.columns(per_row), cards[start : start + per_row]):
            color, arrow = _CARD_DELTA[card.tone]
            if card.delta and card.delta[0] not in "+-−":  # words ("3 of 6 criteria fail"): no arrow
                arrow = "off"
            # An ASCII minus, so that the arrow follows the sign.
            delta = card.delta.replace("−", "-") if card.delta and arrow == "auto" else card.delta
            col.metric(_ui.plain(card.label), card.value, delta, delta_color=color, delta_arrow=arrow, border=True)

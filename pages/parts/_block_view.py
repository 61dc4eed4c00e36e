"""One report block drawn as words, charts and tables (the Reports and Present pages).
Apart from "Add to report", which every page shows: the pages that only add blocks do
not load the charts and the HTML export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.palette import FAIL, PASS
from analysis.reports.charts import figures
from analysis.reports.html import inert_figure
from analysis.reports.tables import Table, tables
from analysis.reports.words import lines
from pages.parts import _ui


def draw_block(kind: str, snapshot: dict, *, key: str, big: bool = False) -> None:
    """The block's plain-language lines, charts and (unless ``big``) its main table."""
    said = [_ui.plain(x) for x in lines(kind, snapshot)]  # sentences quoting names and values
    if kind == "note":
        _ui.note(snapshot["text"])  # Markdown without images, raw HTML or links to other hosts
    elif said:
        if big:
            _big_numbers(kind, snapshot)
            lead = kind not in ("headline",)  # a summary line first, then the details
            st.markdown("\n".join(f"### {x}" if i == 0 and lead else f"- **{x}**" for i, x in enumerate(said)))
        else:
            st.markdown("\n".join(f"- {x}" for x in said))
    for i, fig in enumerate(map(inert_figure, figures(kind, snapshot))):
        st.plotly_chart(fig, key=f"{key}_fig{i}", config={"displaylogo": False})
    if not big:
        for i, table in enumerate(tables(kind, snapshot)):
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


def _big_numbers(kind: str, s: dict) -> None:
    """Up to four headline figures as large metrics (the presentation view). A change is
    blue when better and orange when worse (colour-blind safe); a verdict has no arrow."""
    from analysis.numbers import higher_is_better, metric_title
    from analysis.reports.words import show, show_delta

    cards = []  # (label, value, delta, colour, arrow)
    if kind == "comparison":
        products = s.get("product_metrics", [])
        for r in [r for r in s["overall"] if r["kind"] == "product"][:3] + [
            r for r in s["overall"] if r["metric"] == "accuracy"
        ]:
            delta = r["delta"]
            better = None if not delta else (delta > 0) == higher_is_better(r["metric"], products)
            # An ASCII minus, so the card's arrow follows the sign.
            text = None if delta is None else show_delta(r["metric"], delta, products).replace("−", "-")
            cards.append(
                (
                    metric_title(r["metric"], products),
                    show(r["metric"], r["candidate"], products),
                    text,
                    "gray" if better is None else "blue" if better else "orange",
                    "auto",
                )
            )
    elif kind == "headline":
        metric = next((m for m in s["metrics"] if m != "error_rate"), None)
        for r in s["rows"][:4]:
            cards.append((f"{r['side']}: {metric_title(metric)}", show(metric, r.get(metric)), None, "off", "off"))
    elif kind == "gate":
        failed = sum(not r["passed"] for r in s["results"])
        cards.append(
            (
                "Deployment gate",
                "✓ PASS" if s["passed"] else "✗ FAIL",
                f"{failed} of {len(s['results'])} criteria fail" if failed else "every criterion holds",
                "orange" if failed else "blue",
                "off",
            )
        )
    # Four cards to a row fit figures up to 12 characters ($182,955,000) at 1280 pixels; longer ones two to a
    # row, so that no figure is cut.
    per_row = 4 if max((len(c[1]) for c in cards), default=0) <= 12 else 2
    for start in range(0, len(cards), per_row):
        row = cards[start : start + per_row]
        for col, (label, value, delta, color, arrow) in zip(st.columns(per_row), row):
            col.metric(_ui.plain(label), value, delta, delta_color=color, delta_arrow=arrow, border=True)

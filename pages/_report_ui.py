"""Report helpers shared by the pages: "Add to report" on any view, and one block drawn
as words, charts and tables (the Reports and Present pages)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis import SliceboardError, get_project
from analysis.reports import add_block, list_reports
from analysis.reports.charts import figures
from analysis.reports.html import inert_figure
from analysis.reports.words import lines
from pages import _ui

NEW = "New report…"


def add_to_report(project_name: str, options: list[tuple[str, str, dict]], *, key: str) -> None:
    """A popover that pins the current view into a report: ``options`` are
    ``(label, kind, view)``, for example ``("The comparison", "comparison", {...})``.
    Not shown in read-only mode."""
    if _ui.read_only():
        return
    with st.popover("Add to report", icon=":material/post_add:"):
        labels = [o[0] for o in options]
        chosen = st.radio("What", labels, key=f"{key}_what") if len(options) > 1 else labels[0]
        _, kind, view = options[labels.index(chosen)]
        reports = list(_ui.query(list_reports, project_name)["name"])
        default = st.session_state.get("sb_report")
        choice = st.selectbox("Report", [*reports, NEW], key=f"{key}_report",
                              index=reports.index(default) if default in reports else 0)
        name = st.text_input("New report's name", key=f"{key}_new", placeholder="Weekly model review") \
            if choice == NEW else choice
        title = st.text_input("Block title (optional)", key=f"{key}_title")
        if st.button("Add", key=f"{key}_add", type="primary", disabled=not name):
            try:
                with st.spinner("Computing and pinning the numbers…"):
                    with _ui.store().write() as con:
                        block = add_block(con, get_project(con, project_name), name, kind, view, title=title)
                _ui.clear_caches()
                st.session_state["sb_report"] = name
                st.success(f"Added “{_ui.plain(block.title)}” to {_ui.plain(name)}.", icon=":material/check:")
                st.page_link("pages/reports.py", label="Open Reports", icon=":material/description:")
            except SliceboardError as exc:
                _ui.show_error(exc)


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
        table = _table(kind, snapshot)
        if table is not None and len(table):
            st.dataframe(table, hide_index=True, key=f"{key}_table")


def _big_numbers(kind: str, s: dict) -> None:
    """Up to four headline figures as large metrics (the presentation view)."""
    from analysis.reports.words import metric_name, show, show_delta

    cards = []
    if kind == "comparison":
        products = s.get("product_metrics", [])
        for r in [r for r in s["overall"] if r["kind"] == "product"][:3] + \
                 [r for r in s["overall"] if r["metric"] == "accuracy"]:
            better = r["direction"] == "higher"
            # An ASCII minus, so the card shows the direction (and the colour says better or worse).
            delta = show_delta(r["metric"], r["delta"], products).replace("−", "-")
            cards.append((metric_name(r["metric"]), show(r["metric"], r["candidate"], products), delta,
                          "normal" if better else "inverse"))
    elif kind == "headline":
        metric = next((m for m in s["metrics"] if m != "error_rate"), None)
        for r in s["rows"][:4]:
            cards.append((f"{r['side']}: {metric_name(metric)}", show(metric, r.get(metric)), None, "off"))
    elif kind == "gate":
        cards.append(("Deployment gate", "PASS" if s["passed"] else "FAIL",
                      f"{sum(not r['passed'] for r in s['results'])} criteria fail" if not s["passed"] else None,
                      "off"))
    if cards:
        for col, (label, value, delta, color) in zip(st.columns(len(cards)), cards):
            col.metric(_ui.plain(label), value, delta, delta_color=color, border=True)


def _table(kind: str, s: dict) -> pd.DataFrame | None:
    if kind == "headline":
        return pd.DataFrame(s["rows"])[["side", "n_rows", "n_labeled", *s["metrics"],
                                        *(m["name"] for m in s["product_metrics"])]]
    if kind == "comparison":
        return pd.DataFrame(s["overall"])[["metric", "baseline", "candidate", "delta", "ci_low", "ci_high", "p_value"]]
    if kind == "gate":
        return pd.DataFrame(s["results"])
    if kind == "slice":
        return pd.DataFrame(s["comparison"])
    if kind == "discovery":
        return pd.DataFrame(s["slices"])
    if kind == "valsets":
        return pd.DataFrame(s["rows"])
    return None

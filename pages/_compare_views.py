"""The Compare page's parts: the gate's verdict, the overall table, slices, charts,
validation sets and the product-metric editor."""

from __future__ import annotations

from urllib.parse import urlencode

import plotly.express as px
import streamlit as st
from plotly.subplots import make_subplots

from analysis import SliceboardError
from analysis.gate import GateCriteria, get_criteria, set_criteria
from analysis.metric_failures import failure_lines
from analysis.product_metrics import ProductMetric, define_metric, delete_metric, list_metrics
from analysis.valsets import list_sets
from pages import _ui


def verdict_view(verdict) -> None:
    text = "\n".join(f"- {':material/check:' if r.passed else ':material/close:'} **{_ui.plain(r.criterion)}**: "
                     f"{_ui.plain(r.detail)}" for r in verdict.results)
    head = (f"**Gate: {'PASS' if verdict.passed else 'FAIL'}** — {_ui.plain(verdict.comparison.candidate)} "
            f"against {_ui.plain(verdict.comparison.baseline)}")
    (st.success if verdict.passed else st.error)(head + "\n\n" + text)


def overall_view(comparison) -> None:
    st.subheader("Overall")
    frame = comparison.overall.copy()
    formats = {m.name: m for m in comparison.product_metrics}

    def shown(row, col):
        m = formats.get(row["metric"])
        return m.show(row[col]) if m and col in ("baseline", "candidate") else _ui.fmt_num(row[col], ".4g")

    for col in ("baseline", "candidate", "delta"):
        frame[col] = [shown(r, col) for _, r in frame.iterrows()]
    frame["95% interval"] = [f"[{_ui.fmt_num(lo, '.4g')}, {_ui.fmt_num(hi, '.4g')}]"
                             for lo, hi in zip(comparison.overall["ci_low"], comparison.overall["ci_high"])]
    better = [(d > 0) == (direction == "higher") if d == d and d != 0 else None
              for d, direction in zip(comparison.overall["delta"], comparison.overall["direction"])]
    frame["candidate is"] = ["better" if b else "worse" if b is False else "" for b in better]
    frame["p_value"] = [_ui.fmt_num(p, ".2g") for p in comparison.overall["p_value"]]
    st.dataframe(frame[["metric", "kind", "baseline", "candidate", "delta", "95% interval", "p_value",
                        "candidate is", "test"]], hide_index=True, key="cmp_overall")
    for line in failure_lines(comparison.overall):  # a product metric failing on these rows, with the reason
        st.warning(line[0].upper() + line[1:])


def slices_view(project_name: str, comparison) -> None:
    st.subheader("Slices: regressions and improvements first")
    s = comparison.slices
    if s.empty:
        st.caption("No slices to compare.")
        return
    counts = s["verdict"].value_counts()
    st.caption(f"{counts.get('regression', 0)} significantly worse, {counts.get('improvement', 0)} significantly "
               f"better (Benjamini–Hochberg q < 0.05) of {len(s):,} slices. Select a row to open it.")
    cols = ["verdict", "where", "source", "n_rows_b", "n_rows_c", "error_rate_b", "error_rate_c", "delta", "ci_low",
            "ci_high", "q_value"] + [c for c in s.columns if c.endswith("_delta") and c != "delta"]
    event = st.dataframe(s[cols], hide_index=True, key="cmp_slices", on_select="rerun", selection_mode="single-row",
                         column_config={"q_value": st.column_config.NumberColumn(format="%.2g"),
                                        "where": st.column_config.TextColumn("slice", width="large")})
    picked = event.selection.rows if event else []
    if picked:
        where = s["where"].iloc[picked[0]]
        link = "/slices?" + urlencode({"project": project_name, "version": comparison.candidate.version,
                                       "slice": where})
        st.link_button(f"Open “{_ui.plain(where)}” in Slices ({_ui.plain(comparison.candidate.version)})", link)


def series_view(days, comparison) -> None:
    if days.empty:
        return
    st.subheader("Over time")
    headline = days.attrs.get("headline", "accuracy")
    products = [m.name for m in comparison.product_metrics if m.name in days]
    product = st.selectbox("Product metric", products, key="cmp_series_product") if products else None
    fig = make_subplots(rows=1, cols=2 if product else 1, subplot_titles=[f"{headline} per day"]
                        + ([_ui.chart_text(f"{product} per day")] if product else []))
    for i, (label, part) in enumerate(days.groupby("version", sort=False)):
        color = ["#4c78a8", "#e45756"][i % 2]
        fig.add_scatter(x=part["day"], y=part[headline], name=_ui.chart_text(label), line_color=color, row=1, col=1)
        if product:
            fig.add_scatter(x=part["day"], y=part[product], name=_ui.chart_text(label), line_color=color,
                            showlegend=False, row=1, col=2)
    fig.update_layout(height=320, margin=dict(t=40, l=10, r=10, b=10))
    st.plotly_chart(fig, key="cmp_series")
    if product:
        scatter = px.scatter(days.assign(version=days["version"].map(_ui.chart_text)), x=headline, y=product,
                             color="version", size="n_rows", hover_data=["day"],
                             labels={product: _ui.chart_text(product)},
                             title=_ui.chart_text(f"{product} against {headline}, one point per version and day"),
                             color_discrete_sequence=["#4c78a8", "#e45756"])
        scatter.update_layout(height=360, margin=dict(t=40, l=10, r=10, b=10))
        st.plotly_chart(scatter, key="cmp_scatter")


def sets_view(results, baseline, candidate) -> None:
    st.subheader("Validation sets")
    if results.empty:
        st.caption("No committed validation set yet.")
        return
    rows = results[results["model_version"].isin([baseline.version, candidate.version])]
    metric = "accuracy" if "accuracy" in rows else "mae"
    st.dataframe(rows[["set", "set_version", "model_version", "stage", "members", "scored", "labeled", metric,
                       "verdict", "failed"]], hide_index=True, key="cmp_sets")


def product_metrics_editor(project_name: str, project) -> None:
    """The project's product metrics; read-only mode lists them without delete or save."""
    editable = not _ui.read_only()
    for m in _ui.query(list_metrics, project_name):
        a, b = st.columns([6, 1])
        a.markdown(f"**{_ui.plain(m.name)}** = {_ui.plain(m.expression)} · {_ui.plain(m.direction)} is better"
                   + (f" · {_ui.plain(m.unit)}" if m.unit else ""))
        if editable and b.button("Delete", key=f"cmp_pm_delete_{m.name}"):
            with _ui.store().write() as con:
                delete_metric(con, project, m.name)
            _ui.clear_caches()
            st.rerun()
    if not editable:
        return
    with st.form("cmp_pm_form"):
        a, b, c, d, e = st.columns([2, 5, 1, 1, 1])
        name = a.text_input("Name", key="cmp_pm_name", placeholder="loss_from_false_approvals")
        expression = b.text_input("Aggregate SQL", key="cmp_pm_expression",
                                  placeholder="sum(loss) FILTER (WHERE NOT prediction AND label)")
        direction = c.selectbox("Better", ["higher", "lower"], key="cmp_pm_direction")
        unit = d.text_input("Unit", key="cmp_pm_unit")
        number_format = e.text_input("Format", ",.2f", key="cmp_pm_format")
        if st.form_submit_button("Save metric"):
            try:
                with _ui.store().write() as con:
                    define_metric(con, project, ProductMetric(name.strip(), expression, direction, unit, number_format))
                _ui.clear_caches()
                st.rerun()
            except SliceboardError as exc:
                _ui.show_error(exc)


def criteria_editor(project_name: str, project) -> None:
    """The project's gate criteria; saving them reruns the verdict above."""
    current = _ui.query(get_criteria, project_name)
    if _ui.read_only():  # read-only mode: the criteria, not the form
        st.caption(_ui.plain(f"Product metrics may be worse by {current.product_max_worse:g} of the baseline; slices "
                             f"of {current.slice_min_rows:,} rows or more by {current.slice_max_worse:g}; "
                             f"{current.discovered_slices} discovered slices each way; sets that must pass: "
                             + (current.required_sets if current.required_sets == "all"
                                else ", ".join(current.required_sets) or "none") + "."))
        return
    sets = list(_ui.query(list_sets, project_name)["name"])
    with st.form("cmp_gate_form"):
        a, b, c = st.columns(3)
        product = a.number_input("Product metric may be worse by (share of baseline)", 0.0, 5.0,
                                 float(current.product_max_worse), 0.005, format="%.3f", key="cmp_gate_product")
        rows = b.number_input("Slices checked from (rows in both versions)", 1, 10_000_000,
                              int(current.slice_min_rows), key="cmp_gate_rows")
        worse = c.number_input("Slice error rate may be worse by (points)", 0.0, 1.0, float(current.slice_max_worse),
                               0.005, format="%.3f", key="cmp_gate_worse")
        found = st.number_input("Discovered slices checked, each direction (0: none, faster)", 0, 50,
                                int(current.discovered_slices), key="cmp_gate_found")
        every = st.checkbox("Every validation set with pass criteria must pass", current.required_sets == "all",
                            key="cmp_gate_all")
        chosen = st.multiselect("…or these sets", sets, default=[s for s in (() if current.required_sets == "all"
                                                                              else current.required_sets)
                                                                   if s in sets], key="cmp_gate_sets")
        if st.form_submit_button("Save the criteria"):
            try:
                with _ui.store().write() as con:
                    set_criteria(con, project, GateCriteria(float(product), int(rows), float(worse),
                                                            "all" if every else tuple(chosen), int(found)))
                _ui.clear_caches()
                st.rerun()
            except SliceboardError as exc:
                _ui.show_error(exc)

"""The Compare page's parts: the gate's verdict, the overall table, slices, charts,
validation sets and the product-metric editor."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import plotly.express as px
import streamlit as st
from plotly.subplots import make_subplots

from analysis import SliceboardError
from analysis.compare.gate import GateCriteria, compared_name, get_criteria, set_criteria
from analysis.compare.slices import SOURCE
from analysis.metrics.decompose import PER_PREDICTION, TOTAL
from analysis.metrics.failures import failure_lines
from analysis.metrics.product import ProductMetric, define_metric, delete_metric, list_metrics
from analysis.numbers import (
    format_count,
    format_delta,
    format_p,
    format_value,
    is_share,
    metric_name,
    metric_title,
    missing,
)
from analysis.valsets import list_sets
from pages.parts import _ui
from pages.parts._writes import flash

BLUE, ORANGE = "#1f77b4", "#ff7f0e"  # colour-blind-safe pair: baseline blue, candidate orange


def _products(comparison) -> list[dict]:
    return [m.to_dict() for m in comparison.product_metrics]


def method_caption(comparison) -> None:
    window = comparison.window.sentence() if comparison.window else ""
    st.caption(
        f"{_ui.plain(comparison.method)}. {_ui.plain(window)} Change = candidate − baseline; 95% intervals. "
        "Totals (sums, counts) of versions that did not score the same examples are compared per "
        "prediction."
    )
    for note in comparison.notes:  # a search that could not run, and why
        st.caption(_ui.plain(note))


def verdict_view(verdict) -> None:
    """PASS in blue, FAIL in orange (colour-blind safe), each with its word and icon."""
    text = "\n".join(
        f"- {':material/check:' if r.passed else ':material/close:'} "
        f"**{'pass' if r.passed else 'FAIL'}** · **{_ui.plain(r.criterion)}**: {_ui.plain(r.detail)}"
        for r in verdict.results
    )
    head = (
        f"**Gate: {'PASS' if verdict.passed else 'FAIL'}** — {_ui.plain(verdict.comparison.candidate)} "
        f"against {_ui.plain(verdict.comparison.baseline)}"
    )
    if verdict.passed:
        st.info(head + "\n\n" + text, icon=":material/check_circle:")
    else:
        st.warning(head + "\n\n" + text, icon=":material/cancel:")


def overall_view(comparison) -> None:
    st.subheader("Overall")
    products = _products(comparison)
    rows = []
    for r in comparison.overall.to_dict(orient="records"):
        m, delta = r["metric"], r["delta"]
        better = None if missing(delta) or delta == 0 else (delta > 0) == (r["direction"] == "higher")
        significant = not missing(r["ci_low"]) and (r["ci_low"] > 0 or r["ci_high"] < 0)
        rows.append(
            {
                "metric": compared_name(metric_title(m, products), r.get("normalisation")),
                "baseline": format_value(m, r["baseline"], products),
                "candidate": format_value(m, r["candidate"], products),
                "change": format_delta(m, delta, products),
                "95% interval": f"{format_delta(m, r['ci_low'], products)} to "
                f"{format_delta(m, r['ci_high'], products)}",
                "p-value": format_p(r["p_value"]),
                "candidate is": ""
                if better is None
                else ("better" if better else "worse") + ("" if significant else " (not significant)"),
                "compared": r.get("normalisation") or "",
                "test": r["test"],
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="cmp_overall")
    for line in failure_lines(comparison.overall):  # a product metric failing on these rows, with the reason
        st.warning(_ui.plain(line[0].upper() + line[1:]))


def slices_view(project_name: str, comparison) -> None:
    st.subheader("Slices: regressions and improvements first")
    s = comparison.slices
    if s.empty:
        st.caption("No slices to compare.")
        return
    counts = s["verdict"].value_counts()
    searched = s[s["source"] == SOURCE]
    st.caption(
        f"{format_count(counts.get('regression', 0))} significantly worse, "
        f"{format_count(counts.get('improvement', 0))} significantly better (Benjamini–Hochberg q < 0.05) of "
        f"{format_count(len(s))} slices. "
        + (
            f"“{SOURCE}”: the search of the difference (one-sided, weighted BH over every slice it tested). "
            if len(searched)
            else ""
        )
        + "Select a row to open it."
    )
    regression = "mae" in set(comparison.overall["metric"])
    rate = "mae" if regression else "error_rate"
    products = _products(comparison)
    table = pd.DataFrame(
        {
            "verdict": s["verdict"].map({"regression": "worse", "improvement": "better"}).fillna(""),
            "where": s["where"],
            "found by": s["source"],
            "rows (baseline)": [format_count(x) for x in s["n_rows_b"]],
            "rows (candidate)": [format_count(x) for x in s["n_rows_c"]],
            f"{metric_name(rate)} (baseline)": [format_value(rate, x) for x in s["error_rate_b"]],
            f"{metric_name(rate)} (candidate)": [format_value(rate, x) for x in s["error_rate_c"]],
            "change": [format_delta(rate, x) for x in s["delta"]],
            "95% interval": [
                f"{format_delta(rate, lo)} to {format_delta(rate, hi)}" for lo, hi in zip(s["ci_low"], s["ci_high"])
            ],
            "q-value": [format_p(q) for q in s["q_value"]],
            **{
                f"{compared_name(metric_name(m['name'], products), per)} change": [
                    format_delta(m["name"], x, products) for x in s[f"{m['name']}_delta"]
                ]
                for m, per in _normalised(comparison)
                if f"{m['name']}_delta" in s
            },
        }
    )
    styled = table.style.map(
        lambda v: (
            f"color: {ORANGE}; font-weight: bold"
            if v == "worse"
            else f"color: {BLUE}; font-weight: bold"
            if v == "better"
            else ""
        ),
        subset=["verdict"],
    )
    event = st.dataframe(
        styled,
        hide_index=True,
        key="cmp_slices",
        on_select="rerun",
        selection_mode="single-row",
        column_config={"where": st.column_config.TextColumn("slice", width="large")},
    )
    picked = event.selection.rows if event else []
    if picked:
        where = s["where"].iloc[picked[0]]
        link = "/slices?" + urlencode(
            {"project": project_name, "version": comparison.candidate.version, "slice": where}
        )
        st.link_button(f"Open “{_ui.plain(where)}” in Slices ({_ui.plain(comparison.candidate.version)})", link)


def _normalised(comparison) -> list[tuple[dict, str | None]]:
    how = {r["metric"]: r.get("normalisation") for r in comparison.overall.to_dict(orient="records")}
    return [(m, how.get(m["name"])) for m in _products(comparison)]


def series_view(days, comparison) -> None:
    """Each version per day on its own rows: totals (sums, counts) per prediction, since the
    two versions may have served different traffic."""
    if days.empty:
        return
    st.subheader("Over time")
    headline = days.attrs.get("headline", "accuracy")
    specs = _products(comparison)
    totals = {m["name"] for m, how in _normalised(comparison) if how in (PER_PREDICTION, TOTAL)}
    days = days.copy()
    for name in totals & set(days.columns):
        days[name] = days[name] / days["n_rows"].where(days["n_rows"] > 0)
    names = {
        m["name"]: compared_name(metric_name(m["name"], specs), PER_PREDICTION if m["name"] in totals else None)
        for m in specs
        if m["name"] in days
    }
    product = (
        st.selectbox("Product metric", list(names), format_func=names.get, key="cmp_series_product") if names else None
    )
    fig = make_subplots(
        rows=1,
        cols=2 if product else 1,
        subplot_titles=[f"{metric_title(headline)} per day"]
        + ([_ui.chart_text(f"{names[product]}, per day")] if product else []),
    )
    for i, (label, part) in enumerate(days.groupby("version", sort=False)):
        color = [BLUE, ORANGE][i % 2]
        fig.add_scatter(x=part["day"], y=part[headline], name=_ui.chart_text(label), line_color=color, row=1, col=1)
        if product:
            fig.add_scatter(
                x=part["day"],
                y=part[product],
                name=_ui.chart_text(label),
                line_color=color,
                showlegend=False,
                row=1,
                col=2,
            )
    if is_share(headline):
        fig.update_yaxes(tickformat=".0%", row=1, col=1)
    fig.update_layout(height=320, margin=dict(t=40, l=10, r=10, b=10))
    st.plotly_chart(fig, key="cmp_series")
    if product:
        scatter = px.scatter(
            days.assign(version=days["version"].map(_ui.chart_text)),
            x=headline,
            y=product,
            color="version",
            size="n_rows",
            hover_data=["day"],
            labels={product: _ui.chart_text(names[product]), headline: metric_title(headline)},
            title=_ui.chart_text(f"{names[product]} against {metric_name(headline)}, one point per version and day"),
            color_discrete_sequence=[BLUE, ORANGE],
        )
        scatter.update_layout(height=360, margin=dict(t=40, l=10, r=10, b=10))
        st.plotly_chart(scatter, key="cmp_scatter")


def sets_view(results, baseline, candidate) -> None:
    st.subheader("Validation sets")
    if results.empty:
        st.caption("No committed validation set yet.")
        return
    rows = results[results["model_version"].isin([baseline.version, candidate.version])]
    metric = "accuracy" if "accuracy" in rows else "mae"
    shown = rows[
        ["set", "set_version", "model_version", "stage", "members", "scored", "labeled", metric, "verdict", "failed"]
    ].copy()
    for column in ("members", "scored", "labeled"):
        shown[column] = [format_count(x) for x in shown[column]]
    shown[metric] = [format_value(metric, x) for x in shown[metric]]
    words = {
        "set": "Set",
        "set_version": "Set version",
        "model_version": "Model version",
        "stage": "Stage",
        "members": "Members",
        "scored": "Scored",
        "labeled": "Labeled",
        "verdict": "Verdict",
        "failed": "Failed criteria",
        metric: metric_title(metric),
    }
    st.dataframe(shown.rename(columns=words), hide_index=True, key="cmp_sets")


def product_metrics_editor(project_name: str, project) -> None:
    """The project's product metrics; read-only mode lists them without delete or save."""
    editable = not _ui.read_only()
    for m in _ui.query(list_metrics, project_name):
        a, b = st.columns([6, 1])
        a.markdown(
            f"**{_ui.plain(m.name)}** = {_ui.plain(m.expression)} · {_ui.plain(m.direction)} is better"
            + (f" · {_ui.plain(m.unit)}" if m.unit else "")
        )
        if editable and b.button("Delete", key=f"cmp_pm_delete_{m.name}"):
            with _ui.store().write() as con:
                delete_metric(con, project, m.name)
            _ui.clear_caches()
            flash(f"Deleted the product metric {_ui.plain(m.name)}.", rerun=True)
    if not editable:
        return
    with st.form("cmp_pm_form"):
        a, b, c, d, e = st.columns([2, 5, 1, 1, 1])
        outcome = next((c.name for c in project.outcomes), None)  # the examples, in this project's columns
        name = a.text_input("Name", key="cmp_pm_name", placeholder=f"total_{outcome}" if outcome else "labeled_rows")
        example = f"sum({outcome})" if outcome else "count(*) FILTER (WHERE label IS NOT NULL)"
        expression = b.text_input("Aggregate SQL", key="cmp_pm_expression", placeholder=example)
        direction = c.selectbox("Better", ["higher", "lower"], key="cmp_pm_direction")
        unit = d.text_input("Unit", key="cmp_pm_unit")
        number_format = e.text_input("Format", ",.2f", key="cmp_pm_format")
        if st.form_submit_button("Save metric"):
            try:
                with _ui.store().write() as con:
                    define_metric(con, project, ProductMetric(name.strip(), expression, direction, unit, number_format))
                _ui.clear_caches()
                flash(f"Saved the product metric {_ui.plain(name.strip())}.", rerun=True)
            except SliceboardError as exc:
                _ui.show_error(exc)


def criteria_editor(project_name: str, project) -> None:
    """The project's gate criteria; saving them reruns the verdict above."""
    current = _ui.query(get_criteria, project_name)
    if _ui.read_only():  # read-only mode: the criteria, not the form
        st.caption(
            _ui.plain(
                f"The overall error may be worse by {current.overall_max_worse:g}; product metrics by "
                f"{current.product_max_worse:g} of the baseline; slices "
                f"of {current.slice_min_rows:,} rows or more by {current.slice_max_worse:g}; "
                f"{current.discovered_slices} discovered slices each way; sets that must pass: "
                + (
                    current.required_sets
                    if current.required_sets == "all"
                    else ", ".join(current.required_sets) or "none"
                )
                + "."
            )
        )
        return
    sets = list(_ui.query(list_sets, project_name)["name"])
    with st.form("cmp_gate_form"):
        a, b, c = st.columns(3)
        product = a.number_input(
            "Product metric may be worse by (share of baseline)",
            0.0,
            5.0,
            float(current.product_max_worse),
            0.005,
            format="%.3f",
            key="cmp_gate_product",
        )
        rows = b.number_input(
            "Slices checked from (rows in both versions)",
            1,
            10_000_000,
            int(current.slice_min_rows),
            key="cmp_gate_rows",
        )
        limit = (
            "Slice mean absolute error may be worse by (in the label's unit)"
            if project.task == "regression"
            else "Slice error rate may be worse by (a share: 0.02 = 2 points)"
        )
        worse = c.number_input(
            limit, 0.0, 1.0, float(current.slice_max_worse), 0.005, format="%.3f", key="cmp_gate_worse"
        )
        d, e = st.columns(2)
        overall = d.number_input(
            "Overall mean absolute error may be worse by (in the label's unit)"
            if project.task == "regression"
            else "Overall error rate may be worse by (a share: 0.02 = 2 points)",
            0.0,
            None,
            float(current.overall_max_worse),
            0.005,
            format="%.3f",
            key="cmp_gate_overall",
        )
        found = e.number_input(
            "Discovered slices checked, each direction (0: none, faster)",
            0,
            50,
            int(current.discovered_slices),
            key="cmp_gate_found",
        )
        every = st.checkbox(
            "Every validation set with pass criteria must pass", current.required_sets == "all", key="cmp_gate_all"
        )
        chosen = st.multiselect(
            "…or these sets",
            sets,
            default=[s for s in (() if current.required_sets == "all" else current.required_sets) if s in sets],
            key="cmp_gate_sets",
        )
        if st.form_submit_button("Save the criteria"):
            try:
                with _ui.store().write() as con:
                    set_criteria(
                        con,
                        project,
                        GateCriteria(
                            float(product),
                            int(rows),
                            float(worse),
                            "all" if every else tuple(chosen),
                            int(found),
                            float(overall),
                        ),
                    )
                _ui.clear_caches()
                flash("Saved the gate criteria; the verdict above uses them.", rerun=True)
            except SliceboardError as exc:
                _ui.show_error(exc)

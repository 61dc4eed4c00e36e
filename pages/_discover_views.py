"""The Discover page's two views: SliceLine's ranked slices, and the error tree."""

from __future__ import annotations

from urllib.parse import urlencode

import plotly.graph_objects as go
import streamlit as st

from analysis import SliceboardError
from analysis.saved import save_slice
from pages import _ui
from pages._promote_view import promote_view


def _slice_link(project_name: str, version: str, where: str) -> str:
    return "/slices?" + urlencode({"project": project_name, "version": version, "slice": where})


def found_view(project_name: str, project, version: str, error: str, result) -> None:
    """Ranked slices: chart, table, and open or save the selected one."""
    m1, m2, m3 = st.columns(3)
    m1.metric("Rows searched", _ui.fmt_int(result.n_rows))
    m2.metric(f"Mean {_ui.plain(error)}", _ui.fmt_num(result.mean_error, ".4g"))
    m3.metric("Significant slices (q < 0.05)", int(result.slices["significant"].sum()))
    for note in result.notes:  # features left out of the search (id-like), as plain text
        st.text(f"Note: {note}")  # st.text: never Markdown
    table = result.slices
    if table.empty:
        st.info("No slice errs enough above average to score above zero. Lower σ or raise α to look at "
                "smaller slices.")
        return

    fig = go.Figure(go.Bar(
        y=[_ui.chart_text(f"#{r} {w}") for r, w in zip(table["rank"], table["where"])][::-1], x=table["error_rate"][::-1],
        orientation="h", marker_color=["#e45756" if s else "#bab0ac" for s in table["significant"]][::-1],
        error_x=dict(type="data", symmetric=False, array=(table["ci_high"] - table["error_rate"])[::-1],
                     arrayminus=(table["error_rate"] - table["ci_low"])[::-1])))
    fig.add_vline(x=result.mean_error, line_dash="dash", annotation_text="average")
    fig.update_layout(height=60 + 34 * len(table), margin=dict(t=30, l=10, r=10, b=10),
                      title="Error per slice with its 95% interval (red: significant)")
    st.plotly_chart(fig, key="dc_chart")

    shown = table.assign(folded_under=table["folded_under"].map(lambda r: "" if r != r else f"#{int(r)}"))
    event = st.dataframe(
        shown[["rank", "where", "size", "error_rate", "ci_low", "ci_high", "rest_error_rate", "score", "impact",
               "q_value", "significant", "folded_under"]],
        hide_index=True, on_select="rerun", selection_mode="single-row", key="dc_table",
        column_config={"where": st.column_config.TextColumn("slice", width="large"),
                       "folded_under": st.column_config.TextColumn("near-duplicate of")})
    picked = event.selection.rows if event else []
    if not picked:
        st.caption("Select a row to open the slice in the Slices page or save it.")
        return
    row = table.iloc[picked[0]]
    st.markdown(f"**#{int(row['rank'])}** {_ui.plain(row['where'])}")
    left, right = st.columns(2)
    left.link_button("Open in Slices", _slice_link(project_name, version, row["slice"].readable()))
    if _ui.read_only():  # read-only mode: no save, no promotion
        return
    with right.form("dc_save"):
        name = st.text_input("Save as", key="dc_save_name")
        if st.form_submit_button("Save slice"):
            try:
                with _ui.store().write() as con:
                    saved = save_slice(con, project, name, row["slice"],
                                       f"Found by Discover ({error}, {version}): rank {int(row['rank'])}, "
                                       f"error {row['error_rate']:.4g} vs {result.mean_error:.4g} average")
                _ui.clear_caches()
                st.success(f"Saved **{_ui.plain(saved.name)}**, revision {saved.revision}.")
            except SliceboardError as exc:
                _ui.show_error(exc)
    with st.expander("Promote its examples to a validation set"):
        promote_view(project_name, project, result.scope, row["slice"], key="dc_promote",
                     source={"kind": "discovered", "where": row["where"], "error": error, "version": version,
                             "rank": int(row["rank"]), "error_rate": float(row["error_rate"])})


def tree_view(project_name: str, version: str, tree) -> None:
    """The error tree as an icicle (click a box to zoom into its branch) and its leaves."""
    nodes = tree.nodes
    labels = [_ui.chart_text(s if len(s) < 60 else s[:57] + "…") for s in nodes["split"]]
    fig = go.Figure(go.Icicle(
        ids=nodes["id"].astype(str), parents=["" if p != p else str(int(p)) for p in nodes["parent"]],
        labels=labels, values=nodes["size"], branchvalues="total",
        marker=dict(colors=nodes["error_rate"], colorscale="Reds", showscale=True,
                    colorbar=dict(title="error")),
        customdata=nodes["error_rate"],
        hovertemplate="%{label}<br>%{value:,} rows · error %{customdata:.3f}<extra></extra>"))
    fig.update_layout(height=420, margin=dict(t=30, l=10, r=10, b=10),
                      title=f"Error tree: depth {tree.max_depth}, leaves of at least {tree.min_leaf:,} rows "
                            f"(fit on {tree.fit_rows:,} of {tree.n_rows:,} rows)")
    st.plotly_chart(fig, key="dc_tree")
    leaves = tree.leaves
    st.dataframe(leaves[["where", "size", "errors", "error_rate"]], hide_index=True, key="dc_leaves",
                 column_config={"where": st.column_config.TextColumn("leaf", width="large")})
    openable = leaves[leaves["slice"].notna()]
    if len(openable):
        a, b = st.columns([4, 1], vertical_alignment="bottom")
        where = a.selectbox("Leaf", list(openable["where"]), key="dc_leaf")
        b.link_button("Open in Slices", _slice_link(project_name, version, where))

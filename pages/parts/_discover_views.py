"""The Discover page's two views: the ranked slices (entries with their folded
variants), and the error tree. Every figure is formatted by analysis.numbers (through
analysis.discovery.shown), so a loss of 18,523,881 reads "18,523,881" in any column."""

from __future__ import annotations

from urllib.parse import urlencode

import plotly.graph_objects as go
import streamlit as st

from analysis import SliceboardError
from analysis.discovery.shown import error_words, format_error, is_share, ranking_caption
from analysis.numbers import format_count, format_number, format_p
from analysis.slices.saved import save_slice
from pages.parts import _ui
from pages.parts._promote_view import promote_view


def _slice_link(project_name: str, version: str, where: str) -> str:
    return "/slices?" + urlencode({"project": project_name, "version": version, "slice": where})


def searched(result) -> str:
    """The status line once the search is done."""
    return (
        f"Searched {format_count(result.n_evaluated)} slices of {format_count(result.n_rows)} rows in "
        f"{format_number(result.seconds, 2)} s ({result.ranking_words})"
    )


def _axis_format(error: str) -> str:
    return ".0%" if is_share(error) else ",.4~g"


def found_view(project_name: str, project, version: str, error: str, result) -> None:
    """Ranked entries: chart, table, the selected entry's variants, and open or save it."""
    what = error_words(result.error)
    m1, m2, m3 = st.columns(3)
    m1.metric("Rows searched", format_count(result.n_rows))
    m2.metric(f"Mean {what}", format_error(result.error, result.mean_error))
    m3.metric(
        f"Significant entries (q < {result.q_threshold:g})", format_count(int(result.slices["significant"].sum()))
    )
    for note in result.notes:  # features left out, a fallback of the ranking: as plain text
        st.text(f"Note: {note}")  # st.text: never Markdown
    st.caption(
        f"Ranked by: {_ui.plain(result.ranking_words)}. {_ui.plain(ranking_caption(result))} "
        "Near-duplicates (nearly the same rows, or a refinement or widening that adds nothing) are "
        "folded into one entry: select it to see its variants."
    )
    table = result.slices
    if table.empty:
        st.info(
            "No slice errs more than it should."
            if result.ranking != "error"
            else "No slice errs enough above average to score above zero. Lower σ or raise α to look at smaller slices."
        )
        return

    names = [_ui.chart_text(f"#{r} {w}") for r, w in zip(table["rank"], table["where"])][::-1]
    fig = go.Figure(
        go.Bar(
            y=names,
            x=table["error_rate"][::-1],
            orientation="h",
            name=what,
            marker_color=["#d55e00" if s else "#999999" for s in table["significant"]][::-1],
            error_x=dict(
                type="data",
                symmetric=False,
                array=(table["ci_high"] - table["error_rate"])[::-1],
                arrayminus=(table["error_rate"] - table["ci_low"])[::-1],
            ),
        )
    )
    if result.ranking != "error":
        fig.add_trace(
            go.Scatter(
                y=names,
                x=table["expected_rate"][::-1],
                mode="markers",
                name=(
                    "expected from its scores"
                    if result.ranking == "expected"
                    else f"{result.other_version}, same slice"
                ),
                marker=dict(symbol="line-ns-open", size=18, color="#0072b2", line=dict(width=3)),
            )
        )
    else:
        fig.add_vline(x=result.mean_error, line_dash="dash", annotation_text="average")
    fig.update_layout(
        height=80 + 34 * len(table),
        margin=dict(t=40, l=10, r=10, b=10),
        legend=dict(orientation="h"),
        title=f"{what.capitalize()} per slice with its 95% interval (orange: significant)",
    )
    fig.update_xaxes(tickformat=_axis_format(result.error))
    st.plotly_chart(fig, key="dc_chart")

    shown, config = _table(result)
    # A table per error measure and ranking: its columns are sized for its own figures.
    event = st.dataframe(
        shown,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=_table_key(result.ranking, error),
        column_config=config,
    )
    picked = event.selection.rows if event else []
    if not picked:
        st.caption("Select a row to see its variants, open the slice in the Slices page or save it.")
        return
    row = table.iloc[picked[0]]
    st.markdown(f"**#{int(row['rank'])}** {_ui.plain(row['where'])}")
    if row["variants"]:
        st.caption("Variants folded into this entry (nearly the same rows, or adding nothing to it):")
        st.text(
            "\n".join(
                f"• {v['where']}  ({format_count(v['size'])} rows, {what} "
                f"{format_error(result.error, v['error_rate'])})"
                for v in row["variants"]
            )
        )
    left, right = st.columns(2)
    left.link_button("Open in Slices", _slice_link(project_name, version, row["slice"].readable()))
    if _ui.read_only():  # read-only mode: no save, no promotion
        return
    with right.form("dc_save"):
        name = st.text_input("Save as", key="dc_save_name")
        if st.form_submit_button("Save slice"):
            try:
                with _ui.store().write() as con:
                    saved = save_slice(
                        con,
                        project,
                        name,
                        row["slice"],
                        f"Found by Discover ({what}, {version}, {result.ranking_words}): rank "
                        f"{int(row['rank'])}, {what} {format_error(result.error, row['error_rate'])} "
                        f"vs {format_error(result.error, result.mean_error)} average",
                    )
                _ui.clear_caches()
                st.toast(f"Saved {saved.name}, revision {saved.revision}.")
            except SliceboardError as exc:
                _ui.show_error(exc)
    with st.expander("Promote its examples to a validation set"):
        promote_view(
            project_name,
            project,
            result.scope,
            row["slice"],
            key="dc_promote",
            source={
                "kind": "discovered",
                "where": row["where"],
                "error": error,
                "version": version,
                "rank": int(row["rank"]),
                "error_rate": float(row["error_rate"]),
            },
        )


def _table_key(ranking: str, error: str) -> str:
    """A table per ranking and error measure (its columns sized for its own figures); the
    default view keeps the plain key."""
    return "dc_table" if (ranking, error) == ("expected", "misclassification") else f"dc_table_{ranking}_{error}"


def _shown(values, scale: float = 1.0):
    """Figures rounded as analysis.numbers.format_number rounds them (no decimals from
    100,000 on, one from 1,000 on, three below), for a column formatted "localized"."""
    v = values.astype(float) * scale
    return (
        v.where(v.abs() < 1e5, v.round(0))
        .where((v.abs() < 1000) | (v.abs() >= 1e5), v.round(1))
        .where(v.abs() >= 1000, v.round(3))
    )


def _table(result):
    """The entries with their numbers kept as numbers (sortable), each column formatted the
    way analysis.numbers formats it: shares in percent to one decimal, counts and money
    with thousands separators, p- and q-values by format_p (as text)."""
    t = result.slices
    share = is_share(result.error)
    scale = 100.0 if share else 1.0
    mean_format = "%.1f%%" if share else "localized"
    what = error_words(result.error)
    col = st.column_config
    frame = t[["rank", "where", "size"]].assign(error_rate=_shown(t["error_rate"], scale))
    config = {
        "rank": col.NumberColumn("#", format="%d", width="small"),
        "where": col.TextColumn("slice", width="medium"),
        "size": col.NumberColumn("rows", format="localized"),
        "error_rate": col.NumberColumn(what, format=mean_format),
    }
    if result.ranking == "error":
        frame["interval"] = [
            f"{format_error(result.error, lo)} – {format_error(result.error, hi)}"
            for lo, hi in zip(t["ci_low"], t["ci_high"])
        ]
        frame["score"] = t["score"]
        frame["impact"] = _shown(t["impact"])
        config.update(
            {
                "interval": col.TextColumn("95% interval"),
                "score": col.NumberColumn("score", format="%.3f"),
                "impact": col.NumberColumn(
                    "impact", format="localized", help="errors (or cost) beyond the average, in this slice"
                ),
            }
        )
    else:
        frame["expected_rate"] = _shown(t["expected_rate"], scale)
        frame["excess"] = _shown(t["excess"])
        frame["z"] = t["z"]
        label = "expected" if result.ranking == "expected" else f"{result.other_version}"
        config.update(
            {
                "expected_rate": col.NumberColumn(label, format=mean_format),
                "excess": col.NumberColumn(
                    "excess", format="localized", help="errors (or cost) beyond what they should be, in this slice"
                ),
                "z": col.NumberColumn("z", format="%.2f", help="the excess in standard errors"),
            }
        )
    frame["q_value"] = t["q_value"].map(format_p)
    frame["significant"] = t["significant"].astype(bool)
    frame["variants"] = t["variants"].map(len)
    config.update(
        {
            "q_value": col.TextColumn("q-value"),
            "significant": col.CheckboxColumn("significant"),
            "variants": col.NumberColumn("variants", format="%d", help="near-duplicates folded in"),
        }
    )
    return frame, config


def tree_view(project_name: str, version: str, error: str, tree) -> None:
    """The error tree as an icicle (click a box to zoom into its branch) and its leaves;
    the error is called by its name (money lost is "loss", not "error_rate")."""
    what = error_words(error)
    nodes = tree.nodes
    labels = [_ui.chart_text(s if len(s) < 60 else s[:57] + "…") for s in nodes["split"]]
    shown = [format_error(error, v) for v in nodes["error_rate"]]
    fig = go.Figure(
        go.Icicle(
            ids=nodes["id"].astype(str),
            parents=["" if p != p else str(int(p)) for p in nodes["parent"]],
            labels=labels,
            values=nodes["size"],
            branchvalues="total",
            marker=dict(
                colors=nodes["error_rate"],
                colorscale="Oranges",
                showscale=True,
                colorbar=dict(title=_ui.chart_text(what), tickformat=_axis_format(error)),
            ),
            customdata=shown,
            hovertemplate="%{label}<br>%{value:,} rows · " + _ui.chart_text(what) + " %{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        height=420,
        margin=dict(t=30, l=10, r=10, b=10),
        title=f"Error tree ({_ui.chart_text(what)}): depth {tree.max_depth}, leaves of at least "
        f"{format_count(tree.min_leaf)} row{'' if tree.min_leaf == 1 else 's'} "
        f"(fit on {format_count(tree.fit_rows)} of "
        f"{format_count(tree.n_rows)} rows)",
    )
    st.plotly_chart(fig, key="dc_tree")
    leaves = tree.leaves
    share = is_share(error)
    col = st.column_config
    shown_leaves = leaves[["where", "size", "errors", "error_rate"]]
    if share:
        shown_leaves = shown_leaves.assign(error_rate=shown_leaves["error_rate"] * 100)
    st.dataframe(
        shown_leaves,
        hide_index=True,
        key=f"dc_leaves_{error}",
        column_config={
            "where": col.TextColumn("leaf", width="large"),
            "size": col.NumberColumn("rows", format="localized"),
            "errors": col.NumberColumn("errors" if share else f"total {what}", format="localized"),
            "error_rate": col.NumberColumn(what, format="%.1f%%" if share else "localized"),
        },
    )
    if len(leaves):  # every leaf is a slice
        a, b = st.columns([4, 1], vertical_alignment="bottom")
        shown = dict(zip(leaves["where"], leaves["slice"]))
        where = a.selectbox("Leaf", list(shown), key="dc_leaf")
        b.link_button("Open in Slices", _slice_link(project_name, version, shown[where].readable()))

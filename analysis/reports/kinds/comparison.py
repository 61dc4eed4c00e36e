"""A comparison of two versions: overall ML and product metrics with intervals, and the
slices where the candidate is worse or better (the regressions and improvements first)."""

from __future__ import annotations

from typing import Any

from analysis.metrics.registry import HEADLINES, headline_metrics, is_headline
from analysis.numbers import (
    format_delta,
    format_p,
    format_value,
    higher_is_better,
    is_share,
    metric_name,
    metric_title,
    missing,
)
from analysis.numbers import format_delta as show_delta
from analysis.numbers import format_value as show
from analysis.palette import BETTER, NEUTRAL, WORSE
from analysis.reports.kinds.base import (
    BlockKind,
    Card,
    Rows,
    Snapshot,
    compared_title,
    metrics_of,
    pinned_sides,
    records,
    side_label,
    side_of,
)
from analysis.reports.tables import Table, count, delta, interval, p_value, text, value
from analysis.reports.words import judged, slice_measure

TOP_SLICES = 12  # per comparison: the regressions and improvements first
SLICE_COLUMNS = [
    "source",
    "where",
    "n_rows_b",
    "n_rows_c",
    "error_rate_b",
    "error_rate_c",
    "delta",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "verdict",
]


def pinned_comparison(con, project, view: dict) -> dict:
    """A comparison's sides and days, and the slices it tests: the saved ones (their
    definitions as of now) and how many it discovers."""
    from analysis.slices.saved import list_slices  # engine: see kinds/__init__

    params = pinned_sides(con, project, view)
    params["saved"] = list(view.get("saved") or list_slices(con, project)["where"])
    params["discovered"] = int(view.get("discovered", 5))
    return params


def comparison_of(con, project, params: dict, discovered: int):
    """The comparison a comparison or gate block with ``params`` shows."""
    from analysis.compare.comparison import compare  # engine: see kinds/__init__

    return compare(
        con,
        project,
        side_of(params["baseline"]),
        side_of(params["candidate"]),
        start=params["start"],
        end=params["end"],
        discovered=discovered,
        saved=params.get("saved", []),
        metrics=metrics_of(params),
        overlap=params.get("overlap", True),
    )


class ComparisonSnapshot(Snapshot):
    task: str | None = None
    baseline: str
    candidate: str
    method: str = ""
    paired: bool = False
    n_pairs: int | None = None
    rows: list[Any] = []
    overall: Rows
    slices: Rows = []
    n_slices: int = 0
    n_regressions: int = 0
    n_improvements: int = 0
    product_metrics: Rows = []
    start: str | None = None
    end: str | None = None
    window: dict[str, Any] | None = None
    window_sentence: str = ""


class Comparison(BlockKind):
    name = "comparison"
    title = "Comparison"
    snapshot_model = ComparisonSnapshot
    uses_comparison = True

    def pin(self, con, project, view: dict) -> dict:
        return pinned_comparison(con, project, dict(view))

    def default_title(self, params: dict) -> str:
        return compared_title(self, params)

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        comp = comparison or comparison_of(con, project, params, params.get("discovered", 5))
        slices = comp.slices
        columns = [*SLICE_COLUMNS, *[f"{m['name']}_delta" for m in params.get("metrics", [])]]
        counts = slices["verdict"].value_counts().to_dict() if len(slices) else {}
        return {
            "task": project.task,
            "baseline": side_label(params["baseline"]),
            "candidate": side_label(params["candidate"]),
            "method": comp.method,
            "paired": comp.paired,
            "n_pairs": comp.n_pairs,
            "rows": list(comp.rows),
            "overall": records(comp.overall),
            "slices": records(slices.head(TOP_SLICES), columns) if len(slices) else [],
            "n_slices": len(slices),
            "n_regressions": int(counts.get("regression", 0)),
            "n_improvements": int(counts.get("improvement", 0)),
            "product_metrics": params.get("metrics", []),
            "start": params["start"],
            "end": params["end"],
            "window": comp.window.to_dict() if comp.window else None,
            "window_sentence": comp.window.sentence() if comp.window else "",
        }

    def numbers(self, snapshot: dict) -> dict[str, object]:
        out: dict[str, object] = {"pairs": snapshot["n_pairs"]}
        for r in snapshot["overall"]:
            for key in ("baseline", "candidate", "delta"):
                out[f"{r['metric']} {key}"] = r[key]
        for r in snapshot["slices"]:
            out[f"slice {r['where']}: delta"] = r["delta"]
            out[f"slice {r['where']}: verdict"] = r["verdict"] or "no significant change"
        return out

    def cards(self, snapshot: dict) -> list[Card]:
        """Up to three product metrics and the task's headline metric (a snapshot from before
        the task was kept: the accuracy), as the candidate's value and its change: coloured
        better or worse (by the metric's direction) only when the change is significant."""
        products = snapshot.get("product_metrics", [])
        headline = headline_metrics(snapshot["task"])[0] if snapshot.get("task") in HEADLINES else "accuracy"
        rows = [r for r in snapshot["overall"] if r["kind"] == "product"][:3]
        rows += [r for r in snapshot["overall"] if r["metric"] == headline]
        cards = []
        for r in rows:
            delta = r["delta"]
            better = None if not delta else (delta > 0) == higher_is_better(r["metric"], products)
            # A change its interval does not tell from none is shown, not coloured as a finding.
            significant = "not significant" not in judged({**r, "direction": "higher"})
            tone = "neutral" if better is None or not significant else "better" if better else "worse"
            cards.append(
                Card(
                    metric_title(r["metric"], products),
                    format_value(r["metric"], r["candidate"], products),
                    None if delta is None else format_delta(r["metric"], delta, products),
                    tone,
                )
            )
        return cards

    def lines(self, s: dict) -> list:
        products = s.get("product_metrics", [])
        head = f"{s['candidate']} against {s['baseline']}, {s['method']}."
        lines = [head] + ([s["window_sentence"]] if s.get("window_sentence") else [])
        for row in s["overall"]:
            if row["kind"] == "ml" and not is_headline(row["metric"]):  # the rest are in the table
                continue
            name = row["metric"]
            if row.get("error"):  # a product metric that fails on the compared rows
                lines.append(f"{metric_title(name, products)}: could not be computed ({row['error']}).")
                continue
            base, cand = row["baseline"], row["candidate"]
            relative = ""  # a share of the baseline: for amounts, not for rates
            if (
                row["kind"] == "product"
                and not is_share(name, products)
                and not missing(base)
                and base
                and not missing(cand)
            ):
                relative = f", {100 * (cand - base) / abs(base):+.1f}%".replace("-", "−")
            per = " per prediction" if row.get("normalisation") == "per prediction" else ""
            lines.append(
                f"{metric_title(name, products)}{per}: {show(name, cand, products)} vs {show(name, base, products)} "
                f"({show_delta(name, row['delta'], products)}{relative}; {judged(row)})."
            )
        rate = slice_measure(s)
        worse = [r for r in s["slices"] if r["verdict"] == "regression"][:3]
        better = [r for r in s["slices"] if r["verdict"] == "improvement"][:3]
        for word, group in (("Worse", worse), ("Better", better)):
            for r in group:
                interval = (
                    ""
                    if missing(r.get("ci_low"))
                    else f", {show_delta(rate, r['ci_low'])} to {show_delta(rate, r['ci_high'])}"
                )
                lines.append(
                    f"{word} for {r['where']}: {metric_name(rate)} {show(rate, r['error_rate_b'])} → "
                    f"{show(rate, r['error_rate_c'])} ({show_delta(rate, r['delta'])}{interval}; "
                    f"{int(r['n_rows_b'] or 0):,} and {int(r['n_rows_c'] or 0):,} rows, "
                    f"q {format_p(r['q_value'])})."
                )
        if not worse and not better:
            lines.append(f"No slice of the {s['n_slices']:,} checked changed significantly.")
        return lines

    def tables(self, s: dict) -> list:
        products = s.get("product_metrics", [])
        overall = Table(
            ["metric", s["baseline"], s["candidate"], "change", "95% interval of the change", "p-value", "test"],
            name="overall",
        )
        for r in s["overall"]:
            m = r["metric"]
            overall.rows.append(
                [
                    text(metric_name(m, products)),
                    value(m, r["baseline"], products),
                    value(m, r["candidate"], products),
                    delta(m, r["delta"], products),
                    interval(m, r["ci_low"], r["ci_high"], products, change=True),
                    p_value(r["p_value"]),
                    text(r.get("test")),
                ]
            )
        rate = slice_measure(s)
        slices = Table(
            [
                "slice",
                "found as",
                "rows, baseline",
                "rows, candidate",
                f"{metric_name(rate)}, baseline",
                f"{metric_name(rate)}, candidate",
                "change",
                "95% interval of the change",
                "q-value",
                "verdict",
            ],
            name="slices",
            note=f"{s['n_slices']:,} slices checked: {s['n_regressions']:,} worse, "
            f"{s['n_improvements']:,} better (q < 0.05); the table lists the first "
            f"{len(s['slices'])}.",
        )
        for r in s["slices"]:
            slices.rows.append(
                [
                    text(r["where"]),
                    text(r["source"]),
                    count(r["n_rows_b"]),
                    count(r["n_rows_c"]),
                    value(rate, r["error_rate_b"]),
                    value(rate, r["error_rate_c"]),
                    delta(rate, r["delta"]),
                    interval(rate, r["ci_low"], r["ci_high"], change=True),
                    p_value(r["q_value"]),
                    text(r["verdict"] or "no significant change"),
                ]
            )
        return [overall, slices] if s["slices"] else [overall]

    def figures(self, s: dict) -> list:
        import plotly.graph_objects as go  # plotly: loaded when a chart is drawn

        from analysis.reports.charts import error_bars, layout  # plotly too

        figs = []
        rows = [r for r in s["overall"] if not missing(r["delta"])]
        if rows:
            # Relative change of each metric, so ML and product metrics share an axis.
            def rel(x, base):
                return None if missing(x) or missing(base) or not base else 100 * x / abs(base)

            names = [metric_name(r["metric"]) for r in rows]
            deltas = [rel(r["delta"], r["baseline"]) for r in rows]
            # Better or worse only where the interval excludes no change; grey otherwise.
            colors = [
                NEUTRAL
                if missing(r.get("ci_low")) or missing(r.get("ci_high")) or r["ci_low"] <= 0 <= r["ci_high"]
                else BETTER
                if (r["delta"] > 0) == (r["direction"] == "higher")
                else WORSE
                for r in rows
            ]
            fig = go.Figure(
                go.Bar(
                    y=names,
                    x=deltas,
                    orientation="h",
                    marker_color=colors,
                    hovertext=[format_delta(r["metric"], r["delta"], s.get("product_metrics", [])) for r in rows],
                    error_x=error_bars(
                        deltas,
                        [rel(r["ci_low"], r["baseline"]) for r in rows],
                        [rel(r["ci_high"], r["baseline"]) for r in rows],
                    ),
                )
            )
            fig.update_xaxes(title="change, % of the baseline (95% interval)", zeroline=True)
            fig.update_yaxes(autorange="reversed")
            figs.append(
                layout(fig, f"{s['candidate']} vs {s['baseline']} (grey: not significant)", 130 + 40 * len(rows))
            )
        slices = [r for r in s["slices"] if r["verdict"]]
        if slices:
            rate = slice_measure(s)  # a rate's change in points; a mean absolute error's as it is
            scale = 100 if rate == "error_rate" else 1
            deltas = [scale * r["delta"] for r in slices]
            fig = go.Figure(
                go.Bar(
                    y=[r["where"] for r in slices],
                    x=deltas,
                    orientation="h",
                    hovertext=[format_delta(rate, r["delta"]) for r in slices],
                    marker_color=[WORSE if r["verdict"] == "regression" else BETTER for r in slices],
                    error_x=error_bars(
                        deltas,
                        [scale * r["ci_low"] if not missing(r["ci_low"]) else None for r in slices],
                        [scale * r["ci_high"] if not missing(r["ci_high"]) else None for r in slices],
                    ),
                )
            )
            unit = "change, points" if rate == "error_rate" else "change"
            fig.update_xaxes(title=f"{metric_name(rate).lower()} {unit} (candidate − baseline)")
            fig.update_yaxes(autorange="reversed", automargin=True)
            figs.append(layout(fig, "Slices that changed significantly", 100 + 40 * len(slices)))
        return figs

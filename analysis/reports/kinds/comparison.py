"""A comparison of two versions: overall ML and product metrics with intervals, and the
slices where the candidate is worse or better (the regressions and improvements first)."""

from __future__ import annotations

from analysis.metrics.registry import HEADLINES, headline_metrics
from analysis.numbers import format_delta, format_value, higher_is_better, metric_title
from analysis.reports.kinds.base import (
    BlockKind,
    Card,
    compared_title,
    metrics_of,
    pinned_sides,
    records,
    side_label,
    side_of,
)

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


class Comparison(BlockKind):
    name = "comparison"
    title = "Comparison"
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
        the task was kept: the accuracy), as the candidate's value and its change (better or
        worse by the metric's direction)."""
        products = snapshot.get("product_metrics", [])
        headline = headline_metrics(snapshot["task"])[0] if snapshot.get("task") in HEADLINES else "accuracy"
        rows = [r for r in snapshot["overall"] if r["kind"] == "product"][:3]
        rows += [r for r in snapshot["overall"] if r["metric"] == headline]
        cards = []
        for r in rows:
            delta = r["delta"]
            better = None if not delta else (delta > 0) == higher_is_better(r["metric"], products)
            cards.append(
                Card(
                    metric_title(r["metric"], products),
                    format_value(r["metric"], r["candidate"], products),
                    None if delta is None else format_delta(r["metric"], delta, products),
                    "neutral" if better is None else "better" if better else "worse",
                )
            )
        return cards

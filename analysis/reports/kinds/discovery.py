"""Discovered slices: where the model errs beyond what it should, ranked, with the
test of each."""

from __future__ import annotations

from analysis.reports.kinds.base import BlockKind, pinned_scope, records, scope_of

SLICE_COLUMNS = [
    "rank",
    "where",
    "size",
    "errors",
    "error_rate",
    "ci_low",
    "ci_high",
    "rest_error_rate",
    "impact",
    "p_value",
    "q_value",
    "significant",
    "folded_under",
    "expected_rate",
    "excess",
    "z",
]


class Discovery(BlockKind):
    name = "discovery"
    title = "Discovered slices"

    def pin(self, con, project, view: dict) -> dict:
        view = dict(view)
        return {
            **pinned_scope(con, project, view),
            "error": str(view.get("error", "misclassification")),
            "top_k": int(view.get("top_k", 10)),
            "max_level": int(view.get("max_level", 3)),
            "alpha": float(view.get("alpha", 0.95)),
            "bins": None if view.get("bins") is None else int(view["bins"]),
            "min_support": view.get("min_support"),
            "rank_by": str(view.get("rank_by", "score")),
            "columns": list(view.get("columns") or []),
            "ranking": str(view.get("ranking", "expected")),
            "other_version": view.get("other_version") or None,
        }

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        from analysis.discovery.run import discover  # engine: see kinds/__init__

        found = discover(
            con,
            project,
            scope_of(params),
            error=params["error"],
            columns=params["columns"] or None,
            bins=params["bins"],
            alpha=params["alpha"],
            min_support=params["min_support"],
            max_level=params["max_level"],
            top_k=params["top_k"],
            rank_by=params.get("rank_by", "score"),
            # a block saved before the rankings against a baseline keeps its plain-error ranking
            ranking=params.get("ranking", "error"),
            other_version=params.get("other_version"),
        )
        slices = records(found.slices, SLICE_COLUMNS)
        for row, variants in zip(slices, found.slices["variants"]):
            row["variants"] = [v["where"] for v in variants]
        return {
            "error": found.error,
            "n_rows": found.n_rows,
            "mean_error": found.mean_error,
            "slices": slices,
            "features": found.features,
            "ranking": found.ranking,
            "ranking_words": found.ranking_words,
            "other_version": found.other_version,
            "scope": {k: params[k] for k in ("versions", "stages", "start", "end")},
        }

    def numbers(self, snapshot: dict) -> dict[str, object]:
        out: dict[str, object] = {"ranked by": snapshot.get("ranking_words", "plain error")}
        for r in snapshot["slices"]:
            out[f"#{r['rank']}"] = r["where"]
            out[f"#{r['rank']} error rate"] = r["error_rate"]
            out[f"#{r['rank']} size"] = r["size"]
            if r.get("excess") is not None:
                out[f"#{r['rank']} excess"] = r["excess"]
        return out

"""One slice's metrics with intervals: the slice, the rest of the scope and all rows."""

from __future__ import annotations

from analysis.reports.kinds.base import BlockKind, pinned_scope, records, scope_of
from analysis.slices import Slice


class SliceBlock(BlockKind):
    name = "slice"
    title = "Slice"

    def pin(self, con, project, view: dict) -> dict:
        view = dict(view)
        slice_ = view["slice"]
        slice_ = slice_ if isinstance(slice_, Slice) else Slice.from_dict(slice_)
        return {
            **pinned_scope(con, project, view),
            "slice": slice_.to_dict(),
            "where": slice_.readable(),
            "name": view.get("name") or "",
        }

    def default_title(self, params: dict) -> str:
        return params.get("name") or params["where"] or "All rows"

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        from analysis.slices.metrics import slice_metrics  # engine: see kinds/__init__

        result = slice_metrics(con, project, Slice.from_dict(params["slice"]), scope_of(params))
        keep = ["part", "n_rows", "n_labeled", "share", "share_low", "share_high"]
        for m in result.metrics:
            keep += [m, f"{m}_low", f"{m}_high"]
        keep += [c for c in result.table.columns if c.endswith("_mean") and not c.startswith(("log_loss", "brier"))]
        return {
            "where": params["where"],
            "name": params.get("name", ""),
            "metrics": result.metrics,
            "parts": records(result.table, list(dict.fromkeys(keep))),
            "comparison": records(result.comparison),
            "scope": {k: params[k] for k in ("versions", "stages", "start", "end")},
        }

    def numbers(self, snapshot: dict) -> dict[str, object]:
        out: dict[str, object] = {}
        for part in snapshot["parts"]:
            for key in ("n_rows", "n_labeled", *snapshot["metrics"]):
                out[f"{part['part']}: {key}"] = part.get(key)
        return out

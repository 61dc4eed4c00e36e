"""Validation sets: every model version scored on each committed set, against the set's
pass criteria."""

from __future__ import annotations

import pandas as pd

from analysis.errors import ConfigError
from analysis.reports.kinds.base import BlockKind, records

# The figure a set is judged by, per task (as the Validation sets page shows it).
SET_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "mae"}


class ValidationSets(BlockKind):
    name = "valsets"
    title = "Validation sets"

    def pin(self, con, project, view: dict) -> dict:
        from analysis.valsets import list_sets  # engine: see kinds/__init__

        sets = list_sets(con, project)
        committed = sets[sets["latest_version"] > 0]
        wanted = dict(view).get("sets") or {
            name: int(v) for name, v in zip(committed["name"], committed["latest_version"])
        }
        if isinstance(wanted, (list, tuple)):
            latest = dict(zip(sets["name"], sets["latest_version"]))
            unknown = [n for n in wanted if n not in latest]
            if unknown:
                raise ConfigError(f"No validation set named {', '.join(map(repr, unknown))} in {project.name}.")
            wanted = {n: int(latest[n]) for n in wanted}
        return {"sets": {str(k): int(v) for k, v in wanted.items()}}

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        from analysis.valsets import evaluate  # engine: see kinds/__init__

        frames = [evaluate(con, project, [name], version=version) for name, version in params["sets"].items()]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        metric = SET_METRIC[project.task]
        columns = [
            "set",
            "set_version",
            "model_version",
            "stage",
            "members",
            "scored",
            "labeled",
            "coverage",
            metric,
            f"{metric}_low",
            f"{metric}_high",
            "verdict",
            "failed",
        ]
        return {"metric": metric, "rows": records(frame, columns) if len(frame) else [], "sets": params["sets"]}

    def numbers(self, snapshot: dict) -> dict[str, object]:
        out: dict[str, object] = {}
        for r in snapshot["rows"]:
            name = f"{r['set']} v{r['set_version']}, {r['model_version']} ({r['stage']})"
            out[f"{name}: {snapshot['metric']}"] = r.get(snapshot["metric"])
            out[f"{name}: verdict"] = r["verdict"]
        return out

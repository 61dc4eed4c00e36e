"""Validation sets: every model version scored on each committed set, against the set's
pass criteria."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.errors import ConfigError
from analysis.numbers import metric_name
from analysis.palette import VERDICT_LEVEL, verdict_scale
from analysis.reports.kinds.base import BlockKind, Rows, Snapshot, records
from analysis.reports.tables import Table, count, interval, text, value, verdict

# The figure a set is judged by, per task (as the Validation sets page shows it).
SET_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "mae"}


class ValidationSetsSnapshot(Snapshot):
    metric: str | None = None
    rows: Rows
    sets: Any = None


class ValidationSets(BlockKind):
    name = "valsets"
    title = "Validation sets"
    snapshot_model = ValidationSetsSnapshot

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

    def lines(self, s: dict) -> list:
        lines = []
        for version in sorted({(r["model_version"], r["stage"]) for r in s["rows"]}):
            rows = [r for r in s["rows"] if (r["model_version"], r["stage"]) == version]
            judged = [r for r in rows if r["verdict"] in ("pass", "fail")]
            passed = sum(r["verdict"] == "pass" for r in judged)
            if judged:
                lines.append(f"{version[0]} ({version[1]}) passes {passed} of {len(judged)} validation sets.")
        return lines or ["No validation set has been scored with pass criteria."]

    def tables(self, s: dict) -> list:
        m = s["metric"]
        rows = []
        for r in s["rows"]:
            rows.append(
                [
                    text(r["set"]),
                    count(r["set_version"]),
                    text(r["model_version"]),
                    text(r["stage"]),
                    count(r["members"]),
                    count(r.get("scored")),
                    count(r["labeled"]),
                    value(m, r.get(m)),
                    interval(m, r.get(f"{m}_low"), r.get(f"{m}_high")),
                    verdict(r["verdict"]),
                    text(r.get("failed") or ""),
                ]
            )
        return [
            Table(
                [
                    "set",
                    "version",
                    "model version",
                    "stage",
                    "members",
                    "scored",
                    "labeled",
                    metric_name(m),
                    "95% interval",
                    "verdict",
                    "failed criteria",
                ],
                rows,
            )
        ]

    def figures(self, s: dict) -> list:
        import plotly.graph_objects as go  # plotly: loaded when a chart is drawn

        from analysis.reports.charts import layout, valset_cell  # plotly too

        """Sets × model versions, each cell coloured by its verdict (blue pass, vermillion
        fail, grey not judged) and labelled with the metric's value, the verdict in words and
        how many members were scored."""
        rows = s["rows"]
        if not rows:
            return []
        sets = list(dict.fromkeys(f"{r['set']} v{r['set_version']}" for r in rows))
        versions = list(dict.fromkeys(f"{r['model_version']} ({r['stage']})" for r in rows))
        cell = {(f"{r['set']} v{r['set_version']}", f"{r['model_version']} ({r['stage']})"): r for r in rows}
        metric = s["metric"]
        z, text = [], []
        for a in sets:
            z.append([VERDICT_LEVEL.get((cell.get((a, b)) or {}).get("verdict"), 0) for b in versions])
            text.append([valset_cell(cell.get((a, b)), metric) for b in versions])
        fig = go.Figure(
            go.Heatmap(
                z=z,
                x=versions,
                y=sets,
                text=text,
                texttemplate="%{text}",
                hoverinfo="text",
                colorscale=verdict_scale(),
                zmin=0,
                zmax=max(VERDICT_LEVEL.values()),
                showscale=False,
                xgap=2,
                ygap=2,
            )
        )
        fig.update_yaxes(autorange="reversed")
        return [layout(fig, f"Validation sets × versions: verdict, and {metric_name(metric)}", 120 + 70 * len(sets))]

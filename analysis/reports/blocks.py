"""The kinds of block a report holds, each as three steps:

* ``pin(con, project, view)``: the view a user was looking at, made explicit, so the
  block shows the same thing later: versions and stages, the time window as dates
  (an open window becomes the data's first and last day then), slice definitions
  (not names), validation set versions, product metric definitions and gate criteria;
* ``compute(con, project, params)``: the numbers, through the same engine functions
  as the pages, as a JSON-able *snapshot* of aggregates (never rows);
* ``numbers(snapshot)``: the figures a re-run compares, by a readable name.

Words and charts for a snapshot are in :mod:`.words` and :mod:`.charts`.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.metrics.product import ProductMetric, list_metrics, product_metrics
from analysis.metrics.registry import metrics_for
from analysis.metrics.sql import ALL_ROWS, compute_metrics
from analysis.slices import Slice
from analysis.store.project import Project
from analysis.store.scope import Scope

KINDS = ("headline", "comparison", "gate", "slice", "discovery", "valsets", "series", "note")
TITLES = {
    "headline": "Headline numbers",
    "comparison": "Comparison",
    "gate": "Deployment gate",
    "slice": "Slice",
    "discovery": "Discovered slices",
    "valsets": "Validation sets",
    "series": "Over time",
    "note": "Note",
}
TOP_SLICES = 12  # per comparison: the regressions and improvements first


def plain(value):
    """JSON-able: NaN and infinities become None, numpy scalars and timestamps plain values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(frame: pd.DataFrame, columns: list[str] | None = None) -> list[dict]:
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    return plain(frame.to_dict(orient="records"))


# -- pinning -------------------------------------------------------------------------------------


def _window(con, project: Project, start, end) -> tuple[str, str]:
    """Explicit first and last day (an open end: the data's first or last day now)."""
    from analysis.store.sql import quote_ident

    first, last = con.execute(
        f'SELECT min("timestamp"), max("timestamp") FROM {quote_ident(project.log_table)}'
    ).fetchall()[0]
    if first is None:
        raise ConfigError(f"{project.name} has no predictions to report on.")
    as_day = lambda v, fallback: (pd.Timestamp(v).date() if v not in (None, "") else fallback.date()).isoformat()  # noqa: E731
    return as_day(start, first), as_day(end, last)


def _side(side) -> dict:
    """A version × stage as plain values (from a :class:`~analysis.compare.comparison.Side` or a dict)."""
    if isinstance(side, dict):
        return {"version": str(side["version"]), "stage": side.get("stage") or None}
    return {"version": side.version, "stage": side.stage}


def side_of(d: dict):
    from analysis.compare.comparison import Side

    return Side(d["version"], d.get("stage"))


def side_label(d: dict) -> str:
    return d["version"] + (f" ({d['stage']})" if d.get("stage") else "")


def _scope(params: dict, sides: list[dict] | None = None) -> Scope:
    return Scope.of(
        versions=[s["version"] for s in sides] if sides else params.get("versions") or None,
        stages=params.get("stages") or None,
        start=params.get("start"),
        end=params.get("end"),
    )


def _metric_defs(con, project: Project) -> list[dict]:
    return [m.to_dict() for m in list_metrics(con, project)]


def _metrics_of(params: dict) -> list[ProductMetric]:
    return [ProductMetric(**d) for d in params.get("metrics", [])]


def pin(con: duckdb.DuckDBPyConnection, project: Project, kind: str, view: dict) -> dict:
    """The explicit parameters of a block of ``kind`` showing ``view``."""
    if kind not in KINDS:
        raise ConfigError(f"A report block is one of {', '.join(KINDS)}, not {kind!r}.")
    view = dict(view)
    if kind == "note":
        text = str(view.get("text", ""))
        if len(text) > 20_000:
            raise ConfigError("A note holds at most 20,000 characters.")
        return {"text": text}
    if kind == "valsets":
        from analysis.valsets.sets import list_sets

        sets = list_sets(con, project)
        committed = sets[sets["latest_version"] > 0]
        wanted = view.get("sets") or {name: int(v) for name, v in zip(committed["name"], committed["latest_version"])}
        if isinstance(wanted, (list, tuple)):
            latest = dict(zip(sets["name"], sets["latest_version"]))
            unknown = [n for n in wanted if n not in latest]
            if unknown:
                raise ConfigError(f"No validation set named {', '.join(map(repr, unknown))} in {project.name}.")
            wanted = {n: int(latest[n]) for n in wanted}
        return {"sets": {str(k): int(v) for k, v in wanted.items()}}
    start, end = _window(con, project, view.get("start"), view.get("end"))
    if kind in ("comparison", "gate", "series"):
        from analysis.slices.saved import list_slices

        params = {
            "baseline": _side(view["baseline"]),
            "candidate": _side(view["candidate"]),
            "start": start,
            "end": end,
            "metrics": _metric_defs(con, project),
            "overlap": bool(view.get("overlap", True)),
        }
        if kind != "series":
            params["saved"] = list(view.get("saved") or list_slices(con, project)["where"])
            params["discovered"] = int(view.get("discovered", 5))
        if kind == "gate":
            from analysis.compare.gate import get_criteria

            criteria = view.get("criteria") or get_criteria(con, project)
            params["criteria"] = plain(asdict(criteria) if not isinstance(criteria, dict) else criteria)
            params["discovered"] = int(params["criteria"].get("discovered_slices", 5))
        return params
    scope = view.get("scope")
    scope = scope.to_dict() if isinstance(scope, Scope) else dict(scope or {})
    if view.get("start") is None and scope.get("start"):
        start = scope["start"][:10]
    if view.get("end") is None and scope.get("end"):
        # A scope's end is an exclusive midnight; the report's end day is included.
        end = (pd.Timestamp(scope["end"]) - pd.Timedelta(days=1)).date().isoformat()
    base = {
        "versions": list(scope.get("versions") or []),
        "stages": list(scope.get("stages") or []),
        "start": start,
        "end": end,
    }
    if kind == "headline":
        sides = view.get("sides")
        if not sides:
            from analysis.store.sql import quote_ident

            sides = [
                {"version": v, "stage": None}
                for (v,) in con.execute(
                    f"SELECT DISTINCT model_version FROM {quote_ident(project.log_table)} ORDER BY 1"
                ).fetchall()
            ]
        return {
            "sides": [_side(s) for s in sides],
            "start": base["start"],
            "end": base["end"],
            "metrics": _metric_defs(con, project),
        }
    if kind == "slice":
        slice_ = view["slice"]
        slice_ = slice_ if isinstance(slice_, Slice) else Slice.from_dict(slice_)
        return {**base, "slice": slice_.to_dict(), "where": slice_.readable(), "name": view.get("name") or ""}
    if kind == "discovery":
        return {
            **base,
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
    raise AssertionError(kind)


# -- computing -----------------------------------------------------------------------------------


def compute(con: duckdb.DuckDBPyConnection, project: Project, kind: str, params: dict, *, comparison=None) -> dict:
    """The block's snapshot: the numbers it shows, as plain values. A comparison or gate
    block can take an already computed ``comparison`` of the same parameters."""
    if kind in ("comparison", "gate"):
        return plain(_COMPUTE[kind](con, project, params, comparison))
    return plain(_COMPUTE[kind](con, project, params))


def comparison_for(con: duckdb.DuckDBPyConnection, project: Project, params: dict):
    """The comparison a comparison or gate block with ``params`` shows."""
    return _comparison_of(con, project, params, params.get("discovered", 5))


def _headline(con, project: Project, params: dict) -> dict:
    from analysis.slices.metrics import add_counts, with_intervals

    metrics = _metrics_of(params)
    rows = []
    for side in params["sides"]:
        scope = Scope.of(versions=side["version"], stages=side.get("stage"), start=params["start"], end=params["end"])
        frame = compute_metrics(con, project, group_by=[ALL_ROWS], where=scope.to_sql(), include_outcomes=False)
        add_counts(frame, project)
        frame = with_intervals(frame, project)
        row = {"side": side_label(side), **records(frame)[0]}
        if metrics:
            values = product_metrics(con, project, scope, group_by=(), metrics=metrics)
            row.update(records(values)[0] if len(values) else {})
        rows.append(row)
    names = [m for m in ("accuracy", "error_rate", *metrics_for(project.task)) if any(m in r for r in rows)]
    return {
        "task": project.task,
        "metrics": list(dict.fromkeys(names)),
        "rows": rows,
        "product_metrics": params.get("metrics", []),
    }


def _comparison_of(con, project: Project, params: dict, discovered: int):
    from analysis.compare.comparison import compare

    return compare(
        con,
        project,
        side_of(params["baseline"]),
        side_of(params["candidate"]),
        start=params["start"],
        end=params["end"],
        discovered=discovered,
        saved=params.get("saved", []),
        metrics=_metrics_of(params),
        overlap=params.get("overlap", True),
    )


def _comparison_snapshot(comp, params: dict) -> dict:
    slices = comp.slices
    columns = [
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
        *[f"{m['name']}_delta" for m in params.get("metrics", [])],
    ]
    counts = slices["verdict"].value_counts().to_dict() if len(slices) else {}
    return {
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


def _comparison(con, project: Project, params: dict, comp=None) -> dict:
    return _comparison_snapshot(comp or _comparison_of(con, project, params, params.get("discovered", 5)), params)


def _gate(con, project: Project, params: dict, comp=None) -> dict:
    from analysis.compare.gate import GateCriteria, run_gate

    data = dict(params["criteria"])
    if isinstance(data.get("required_sets"), list):
        data["required_sets"] = tuple(data["required_sets"])
    criteria = GateCriteria(**data)
    comp = comp or _comparison_of(con, project, params, criteria.discovered_slices)
    verdict = run_gate(con, project, comp.baseline, comp.candidate, criteria=criteria, comparison=comp)
    return {
        "passed": verdict.passed,
        "lines": verdict.lines(),
        "method": comp.method,
        "window_sentence": comp.window.sentence() if comp.window else "",
        "baseline": side_label(params["baseline"]),
        "candidate": side_label(params["candidate"]),
        "results": [asdict(r) for r in verdict.results],
        "criteria": params["criteria"],
    }


def _slice(con, project: Project, params: dict) -> dict:
    from analysis.slices.metrics import slice_metrics

    result = slice_metrics(con, project, Slice.from_dict(params["slice"]), _scope(params))
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


def _discovery(con, project: Project, params: dict) -> dict:
    from analysis.discovery.run import discover

    found = discover(
        con,
        project,
        _scope(params),
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
    columns = [
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
    slices = records(found.slices, columns)
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


def _valsets(con, project: Project, params: dict) -> dict:
    from analysis.valsets.sets import evaluate

    frames = [evaluate(con, project, [name], version=version) for name, version in params["sets"].items()]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    metric = {"binary": "accuracy", "multiclass": "accuracy", "regression": "mae"}[project.task]
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


def _series(con, project: Project, params: dict) -> dict:
    from analysis.compare.comparison import daily

    frame = daily(
        con,
        project,
        side_of(params["baseline"]),
        side_of(params["candidate"]),
        start=params["start"],
        end=params["end"],
    )
    frame = frame.assign(day=pd.to_datetime(frame["day"]).dt.date.astype(str))
    names = [m["name"] for m in params.get("metrics", [])]
    return {
        "headline": frame.attrs.get("headline", "accuracy"),
        "rows": records(frame, ["day", "side", "version", "n_rows", frame.attrs.get("headline", "accuracy"), *names]),
        "product_metrics": params.get("metrics", []),
        "baseline": side_label(params["baseline"]),
        "candidate": side_label(params["candidate"]),
    }


def _note(con, project: Project, params: dict) -> dict:
    return {"text": params["text"]}


_COMPUTE = {
    "headline": _headline,
    "comparison": _comparison,
    "gate": _gate,
    "slice": _slice,
    "discovery": _discovery,
    "valsets": _valsets,
    "series": _series,
    "note": _note,
}


# -- what a re-run compares ----------------------------------------------------------------------


def numbers(kind: str, snapshot: dict) -> dict[str, object]:
    """The figures of a snapshot by readable name (numbers and verdicts)."""
    out: dict[str, object] = {}
    if kind == "headline":
        for r in snapshot["rows"]:
            for key in ("n_rows", "n_labeled", *snapshot["metrics"], *(m["name"] for m in snapshot["product_metrics"])):
                out[f"{r['side']}: {key}"] = r.get(key)
    elif kind == "comparison":
        out["pairs"] = snapshot["n_pairs"]
        for r in snapshot["overall"]:
            for key in ("baseline", "candidate", "delta"):
                out[f"{r['metric']} {key}"] = r[key]
        for r in snapshot["slices"]:
            out[f"slice {r['where']}: delta"] = r["delta"]
            out[f"slice {r['where']}: verdict"] = r["verdict"] or "no significant change"
    elif kind == "gate":
        out["verdict"] = "pass" if snapshot["passed"] else "fail"
        for r in snapshot["results"]:
            out[r["criterion"]] = ("pass" if r["passed"] else "FAIL") + ": " + r["detail"]
    elif kind == "slice":
        for part in snapshot["parts"]:
            for key in ("n_rows", "n_labeled", *snapshot["metrics"]):
                out[f"{part['part']}: {key}"] = part.get(key)
    elif kind == "discovery":
        out["ranked by"] = snapshot.get("ranking_words", "plain error")
        for r in snapshot["slices"]:
            out[f"#{r['rank']}"] = r["where"]
            out[f"#{r['rank']} error rate"] = r["error_rate"]
            out[f"#{r['rank']} size"] = r["size"]
            if r.get("excess") is not None:
                out[f"#{r['rank']} excess"] = r["excess"]
    elif kind == "valsets":
        for r in snapshot["rows"]:
            name = f"{r['set']} v{r['set_version']}, {r['model_version']} ({r['stage']})"
            out[f"{name}: {snapshot['metric']}"] = r.get(snapshot["metric"])
            out[f"{name}: verdict"] = r["verdict"]
    elif kind == "series":
        for r in snapshot["rows"]:
            out[f"{r['day']} {r['version']}: {snapshot['headline']}"] = r.get(snapshot["headline"])
    elif kind == "note":
        out["text"] = snapshot["text"]
    return out


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return bool(np.isclose(a, b, rtol=1e-9, atol=1e-12))
    return a == b


def differences(kind: str, old: dict, new: dict) -> list[tuple[str, object, object]]:
    """``(name, before, after)`` of every figure that changed (None: not shown then / now)."""
    before, after = numbers(kind, old), numbers(kind, new)
    out = []
    for name in list(dict.fromkeys([*before, *after])):
        a, b = before.get(name), after.get(name)
        if not _same(a, b):
            out.append((name, a, b))
    return out

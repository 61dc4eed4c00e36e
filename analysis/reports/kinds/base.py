"""What every kind of report block is, and the helpers the kinds share.

A kind (one module in this folder each) has three steps:

* ``pin(con, project, view)``: the view a user was looking at, made explicit, so the
  block shows the same thing later: versions and stages, the time window as dates
  (an open window becomes the data's first and last day then), slice definitions
  (not names), validation set versions, product metric definitions and gate criteria;
* ``compute(con, project, params, comparison=None)``: the numbers, through the same
  engine functions as the pages, as a JSON-able *snapshot* of aggregates (never rows);
* ``numbers(snapshot)``: the figures a re-run compares, by a readable name;

and tells the app and the export how to show itself: its ``title`` and a block's
default title, whether it is ``text`` (a note, drawn as Markdown), its ``cards`` (the
presentation's big numbers), its ``lines`` (plain-language sentences), ``tables``
(every figure formatted once) and ``figures`` (plotly charts, built from the snapshot's
aggregates). A new kind is one module: the shared pieces it draws with are in
:mod:`..words`, :mod:`..tables` and :mod:`..charts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from analysis.errors import ConfigError
from analysis.metrics.product import ProductMetric, list_metrics
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident


class Snapshot(BaseModel):
    """The declared fields of a kind's stored numbers, checked when a block is computed and
    when it is shown. A field that an earlier version did not store has a default; fields
    beyond these are allowed (a snapshot written by a later version still reads)."""

    model_config = ConfigDict(extra="allow")


Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Card:
    """One big number of the presentation view: ``tone`` is ``better``, ``worse``,
    ``neutral`` (a change that is neither) or ``plain`` (a figure, not a change)."""

    label: str
    value: str
    delta: str | None = None
    tone: str = "plain"


class BlockKind:
    """A kind of report block (see the module docstring); subclasses fill in the steps."""

    name: str = ""
    title: str = ""
    text: bool = False  # drawn as Markdown, with no tables
    uses_comparison: bool = False  # can take a comparison computed once for several blocks
    summary_first: bool = True  # its first line sums up the rest (the presentation's heading)
    snapshot_model: type[Snapshot] = Snapshot  # what its stored numbers hold

    def pin(self, con: duckdb.DuckDBPyConnection, project: Project, view: dict) -> dict:
        raise NotImplementedError

    def compute(self, con: duckdb.DuckDBPyConnection, project: Project, params: dict, comparison=None) -> dict:
        raise NotImplementedError

    def numbers(self, snapshot: dict) -> dict[str, object]:
        raise NotImplementedError

    def check(self, snapshot) -> None:
        """Refuse stored numbers that do not fit :attr:`snapshot_model`, naming the field."""
        try:
            self.snapshot_model.model_validate(snapshot)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "the snapshot"
            raise ConfigError(
                f"The stored numbers of this {self.title.lower()} block cannot be read: {where}: {err['msg']}."
            ) from None

    def default_title(self, params: dict) -> str:
        return self.title

    def cards(self, snapshot: dict) -> list[Card]:
        return []

    def lines(self, snapshot: dict) -> list[str]:
        """Sentences a stakeholder reads first (the presentation and the export)."""
        return []

    def tables(self, snapshot: dict) -> list:
        """:class:`analysis.reports.tables.Table` s, every figure formatted once."""
        return []

    def figures(self, snapshot: dict) -> list:
        """Plotly figures (plotly is imported when a chart is drawn, not by every page)."""
        return []


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


def window(con, project: Project, start, end) -> tuple[str, str]:
    """Explicit first and last day (an open end: the data's first or last day now)."""
    first, last = con.execute(
        f'SELECT min("timestamp"), max("timestamp") FROM {quote_ident(project.log_table)}'
    ).fetchall()[0]
    if first is None:
        raise ConfigError(f"{project.name} has no predictions to report on.")
    as_day = lambda v, fallback: (pd.Timestamp(v).date() if v not in (None, "") else fallback.date()).isoformat()  # noqa: E731
    return as_day(start, first), as_day(end, last)


def plain_side(value) -> dict:
    """A version × stage as plain values (from a :class:`~analysis.compare.comparison.Side` or a dict)."""
    if isinstance(value, dict):
        return {"version": str(value["version"]), "stage": value.get("stage") or None}
    return {"version": value.version, "stage": value.stage}


def side_of(d: dict):
    from analysis.compare.comparison import Side  # the comparison engine: loaded when a block is computed

    return Side(d["version"], d.get("stage"))


def side_label(d: dict) -> str:
    return d["version"] + (f" ({d['stage']})" if d.get("stage") else "")


def scope_of(params: dict, sides: list[dict] | None = None) -> Scope:
    return Scope.of(
        versions=[s["version"] for s in sides] if sides else params.get("versions") or None,
        stages=params.get("stages") or None,
        start=params.get("start"),
        end=params.get("end"),
    )


def metric_defs(con, project: Project) -> list[dict]:
    return [m.to_dict() for m in list_metrics(con, project)]


def metrics_of(params: dict) -> list[ProductMetric]:
    return [ProductMetric(**d) for d in params.get("metrics", [])]


def pinned_scope(con, project: Project, view: dict) -> dict:
    """A view's versions, stages and days, explicit (a scope's exclusive end midnight
    becomes the last day it includes)."""
    start, end = window(con, project, view.get("start"), view.get("end"))
    scope = view.get("scope")
    scope = scope.to_dict() if isinstance(scope, Scope) else dict(scope or {})
    if view.get("start") is None and scope.get("start"):
        start = scope["start"][:10]
    if view.get("end") is None and scope.get("end"):
        end = (pd.Timestamp(scope["end"]) - pd.Timedelta(days=1)).date().isoformat()
    return {
        "versions": list(scope.get("versions") or []),
        "stages": list(scope.get("stages") or []),
        "start": start,
        "end": end,
    }


def pinned_sides(con, project: Project, view: dict) -> dict:
    """Two versions compared: their sides, days, product metrics and overlap choice."""
    start, end = window(con, project, view.get("start"), view.get("end"))
    return {
        "baseline": plain_side(view["baseline"]),
        "candidate": plain_side(view["candidate"]),
        "start": start,
        "end": end,
        "metrics": metric_defs(con, project),
        "overlap": bool(view.get("overlap", True)),
    }


def compared_title(kind: BlockKind, params: dict) -> str:
    return f"{kind.title}: {side_label(params['candidate'])} vs {side_label(params['baseline'])}"

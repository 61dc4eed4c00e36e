"""A report block's steps, asked of its kind (:mod:`analysis.reports.kinds`, one module
per kind): ``pin`` the view, ``compute`` its snapshot, the ``numbers`` and
``differences`` a re-run compares, and how it is shown: ``lines``, ``tables``,
``figures``."""

from __future__ import annotations

import duckdb
import numpy as np

from analysis.reports.kinds import REGISTRY, kind_of
from analysis.reports.kinds.base import plain, records, side_label, side_of  # noqa: F401 (the blocks' helpers)
from analysis.reports.kinds.comparison import comparison_of
from analysis.store.project import Project

KINDS = tuple(REGISTRY)
TITLES = {name: k.title for name, k in REGISTRY.items()}


def pin(con: duckdb.DuckDBPyConnection, project: Project, kind: str, view: dict) -> dict:
    """The explicit parameters of a block of ``kind`` showing ``view``."""
    return kind_of(kind).pin(con, project, dict(view))


def compute(con: duckdb.DuckDBPyConnection, project: Project, kind: str, params: dict, *, comparison=None) -> dict:
    """The block's snapshot: the numbers it shows, as plain values. A comparison or gate
    block can take an already computed ``comparison`` of the same parameters."""
    k = kind_of(kind)
    snapshot = plain(k.compute(con, project, params, comparison if k.uses_comparison else None))
    k.check(snapshot)  # what is stored is what the kind declares
    return snapshot


def comparison_for(con: duckdb.DuckDBPyConnection, project: Project, params: dict):
    """The comparison a comparison or gate block with ``params`` shows."""
    return comparison_of(con, project, params, params.get("discovered", 5))


def numbers(kind: str, snapshot: dict) -> dict[str, object]:
    """The figures of a snapshot by readable name (numbers and verdicts)."""
    return kind_of(kind).numbers(snapshot)


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


def shown(kind: str, snapshot: dict):
    """The kind of a block whose stored ``snapshot`` it can show (a readable
    :class:`ConfigError` naming the field that does not fit)."""
    k = kind_of(kind)
    k.check(snapshot)
    return k


def lines(kind: str, snapshot: dict) -> list[str]:
    """The block's sentences, in plain language."""
    return shown(kind, snapshot).lines(snapshot)


def tables(kind: str, snapshot: dict) -> list:
    """The block's tables, every figure formatted."""
    return shown(kind, snapshot).tables(snapshot)


def figures(kind: str, snapshot: dict) -> list:
    """The block's charts."""
    return shown(kind, snapshot).figures(snapshot)

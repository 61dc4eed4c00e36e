"""What monitor runs keep: each monitor's version, stage and frozen reference (the first
run's), and every day's observation, so the next run carries on from the last day (and a
run on the same data finds nothing new to write)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from analysis.estimation.reference import ReferenceChoice, ReferenceWindow


@dataclass(frozen=True)
class State:
    version: str
    stage: str
    window: ReferenceWindow
    reference: dict
    first_period: date


@dataclass(frozen=True)
class Observation:
    period: date
    x: float
    n: float
    rows: int


def load_states(con: duckdb.DuckDBPyConnection, project) -> dict[str, State]:
    """Every monitor's state, by monitor."""
    rows = con.execute(
        "SELECT monitor, version, stage, reference, first_period FROM sb_monitor_state WHERE project_id = ?",
        [project.project_id],
    ).fetchall()
    return {monitor: _state(*rest) for monitor, *rest in rows}


def _state(version: str, stage: str, stored: str, first: date) -> State:
    stored = json.loads(stored)
    w = stored["window"]
    start, end = date.fromisoformat(w["start"]), date.fromisoformat(w["end"])
    window = ReferenceWindow(version, stage, start, end, w["rows"], w["labeled"], ReferenceChoice(start, end))
    return State(version, stage, window, stored["numbers"], first)


def save_states(con: duckdb.DuckDBPyConnection, project, states: dict[str, State]) -> None:
    """Store monitors' (new) references (by monitor name), in one delete and one insert; their
    observations under an older reference are dropped."""
    if not states:
        return
    forget(con, project, list(states))
    rows = pd.DataFrame(
        {
            "project_id": [project.project_id] * len(states),
            "monitor": list(states),
            "version": [s.version for s in states.values()],
            "stage": [s.stage for s in states.values()],
            "stored": [json.dumps(_stored_state(s)) for s in states.values()],
            "first_period": [s.first_period for s in states.values()],
        }
    )
    con.register("sb_new_states", rows)
    try:
        con.execute(
            "INSERT INTO sb_monitor_state SELECT project_id, monitor, version, stage, stored, "
            "CAST(first_period AS DATE) FROM sb_new_states"
        )
    finally:
        con.unregister("sb_new_states")


def _stored_state(state: State) -> dict:
    w = state.window
    return {
        "window": {"start": w.start.isoformat(), "end": w.end.isoformat(), "rows": w.rows, "labeled": w.labeled},
        "numbers": state.reference,
    }


def forget(con: duckdb.DuckDBPyConnection, project, monitors: list[str]) -> None:
    """Drop monitors' references and observations."""
    for table in ("sb_monitor_state", "sb_monitor_observations"):
        con.execute(
            f"DELETE FROM {table} WHERE project_id = ? AND list_contains(?, monitor)", [project.project_id, monitors]
        )


def observations(con: duckdb.DuckDBPyConnection, project) -> dict[str, list[Observation]]:
    """Every monitor's days, in order, by monitor."""
    rows = con.execute(
        "SELECT monitor, period, x, n, rows FROM sb_monitor_observations WHERE project_id = ? ORDER BY monitor, period",
        [project.project_id],
    ).fetchall()
    found: dict[str, list[Observation]] = {}
    for monitor, p, x, n, r in rows:
        found.setdefault(monitor, []).append(Observation(p, _num(x), _num(n), int(r)))
    return found


def add_observations(con: duckdb.DuckDBPyConnection, project, new: dict[str, list[Observation]]) -> None:
    """Store new days (by monitor), in one insert."""
    flat = [(m, o) for m, days in new.items() for o in days]
    rows = pd.DataFrame(
        {
            "project_id": [project.project_id] * len(flat),
            "monitor": [m for m, _ in flat],
            "period": pd.to_datetime([o.period for _, o in flat]).date if flat else [],
            "x": pd.array([_stored(o.x) for _, o in flat], dtype="Float64"),  # NaN stored as NULL
            "n": pd.array([_stored(o.n) for _, o in flat], dtype="Float64"),
            "rows": [o.rows for _, o in flat],
        }
    )
    if len(rows):
        con.register("sb_new_observations", rows)
        try:
            con.execute(
                "INSERT INTO sb_monitor_observations SELECT project_id, monitor, CAST(period AS DATE), x, n, rows "
                "FROM sb_new_observations"
            )
        finally:
            con.unregister("sb_new_observations")


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def _stored(x: float):
    return None if x != x else float(x)  # NaN stored as NULL

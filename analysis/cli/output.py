"""What every command shares: the database it opens, the engine that answers, the scope
options, and its output (a table for people, JSON for scripts)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from contextlib import contextmanager
from datetime import date, datetime

import pandas as pd

from analysis.cli.errors import database_problem
from analysis.errors import ConfigError
from analysis.numbers import format_count, format_number
from analysis.store.connection import Store, default_db_path

EXIT_OK = 0


def jsonable(value):
    """``value`` as JSON can hold it: NaN and infinities as null, dates as ISO text, numpy
    scalars as numbers, pandas' missing values as null."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (datetime, date, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def frame_records(frame: pd.DataFrame) -> list[dict]:
    return [jsonable(r) for r in frame.to_dict(orient="records")]


def emit(args, payload: dict, table_text: str) -> None:
    """The command's answer: ``payload`` as JSON (``--format json``) or ``table_text``; and
    which engine answered, on stderr."""
    answer = getattr(args, "answered", None)
    if answer is not None:  # which engine answered, and how long it took
        print(f"answered by {answer.engine} in {answer.seconds:.2f} s", file=sys.stderr)
        if isinstance(payload, dict):
            payload = {**payload, "engine": {"name": answer.engine, "seconds": round(answer.seconds, 3)}}
    if args.format == "json":
        print(json.dumps(jsonable(payload), indent=2, sort_keys=False))
    else:
        print(table_text)


def kv_table(d: dict) -> str:
    """``d`` as aligned ``key  value`` lines, numbers formatted for people."""
    width = max((len(k) for k in d), default=0)
    lines = []
    for k, v in d.items():
        if isinstance(v, list):
            v = ", ".join(str(x) for x in v) if v else "-"
        elif isinstance(v, bool):
            v = "yes" if v else "no"
        elif isinstance(v, float) and k.endswith("seconds"):
            v = f"{v:.2f} s"
        elif isinstance(v, (int, float)):
            v = format_number(v) if isinstance(v, float) else format_count(v)
        lines.append(f"{k.ljust(width)}  {v}")
    return "\n".join(lines)


def open_store(args) -> Store:
    """The database ``--db`` names (default: $SLICEBOARD_DB or data/), checked first."""
    problem = database_problem(args.db if args.db is not None else default_db_path())
    if problem:
        raise ConfigError(problem)
    return Store(args.db, busy_timeout=args.wait)


def engine_args(p: argparse.ArgumentParser) -> None:
    """--engine and --spark-remote: who answers this command (default: the project's setting)."""
    p.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        help="who answers: embedded DuckDB or Spark (default: the project's setting)",
    )
    p.add_argument(
        "--spark-remote",
        help="Spark Connect URL sc://host:port (Databricks: sc://host:443/;token=...) "
        "or a local master such as local[2]; implies --engine spark",
    )


@contextmanager
def on_engine(args, con, project):
    """The connection the analyses take, on the engine chosen for this command; records
    which engine answered and how long it took (printed by ``emit``)."""
    from analysis.engines.settings import EngineSettings, answered, engine_connection, get_settings

    settings = get_settings(con, project)
    choice = getattr(args, "engine", None) or ("spark" if getattr(args, "spark_remote", None) else None)
    if choice == "duckdb":
        settings = EngineSettings()
    elif choice == "spark":
        settings = EngineSettings("spark", getattr(args, "spark_remote", None) or settings.spark_remote)
    with answered(settings) as answer:
        with engine_connection(con, project, settings) as engine_con:
            yield engine_con
    args.answered = answer


def slice_scope(args, project):
    from analysis.slices import Slice, parse_slice, validate_slice
    from analysis.store.scope import Scope

    slice_ = Slice.from_json(args.slice_json) if args.slice_json else parse_slice(*(args.where or []))
    return validate_slice(slice_, project), Scope.of(args.version, args.stage, args.start, args.end)


def slice_scope_args(p: argparse.ArgumentParser, where_help: str) -> None:
    """--where / --slice-json and the scope options (version, stage, start, end)."""
    p.add_argument("--where", action="append", help=where_help)
    p.add_argument("--slice-json", help="the slice as JSON instead of --where")
    p.add_argument("--version", action="append", help="repeatable; default all")
    p.add_argument("--stage", action="append", help="repeatable; default all")
    p.add_argument("--start", help="first day, YYYY-MM-DD")
    p.add_argument("--end", help="last day (included), YYYY-MM-DD")

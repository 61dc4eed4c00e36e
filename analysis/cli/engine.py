"""The engine command: who answers a project's analyses (DuckDB or Spark)."""

from __future__ import annotations

import argparse

from analysis.cli.output import (
    EXIT_OK,
    emit,
    kv_table,
    open_store,
)


def cmd_engine(args) -> int:
    from analysis.engines.settings import EngineSettings, get_settings, masked_remote, set_settings
    from analysis.errors import ConfigError
    from analysis.store.project import get_project

    store = open_store(args)
    with store.write(create=False) if args.action == "set" else store.read() as con:
        project = get_project(con, args.project)
        if args.action == "set":
            if not (args.engine or args.spark_remote):
                raise ConfigError("engine set needs --engine duckdb|spark (and --spark-remote for Spark Connect).")
            engine = args.engine or "spark"
            settings = set_settings(
                con, project, EngineSettings(engine, args.spark_remote if engine == "spark" else None)
            )
        else:
            settings = get_settings(con, project)
    # The token stays in the database: shown masked (sc://host:443/;token=****) in every format.
    d = {
        "project": project.name,
        "engine": settings.engine,
        "spark_remote": masked_remote(settings.spark_remote),
        "answers": settings.label,
    }
    emit(args, d, kv_table(d))
    return EXIT_OK


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "engine",
        parents=[common],
        help="who answers a project's analyses: show, or set duckdb / spark (--spark-remote)",
    )
    p.add_argument("action", choices=("show", "set"))
    p.add_argument("--project", required=True)
    p.add_argument("--engine", choices=("duckdb", "spark"))
    p.add_argument("--spark-remote", help="Spark Connect URL sc://host:port or a local master such as local[2]")
    p.set_defaults(func=cmd_engine)

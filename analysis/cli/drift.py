"""The drift command: each feature of a slice, per period after the reference window,
against the window's rows of the same slice (distance, test, q-value, data quality)."""

from __future__ import annotations

import argparse

from analysis.cli.output import EXIT_OK, emit, engine_args, on_engine, open_store
from analysis.cli.timeline_args import add_timeline_args, timeline_inputs


def cmd_drift(args) -> int:
    from analysis.drift import drift_table
    from analysis.drift.shown import drift_text
    from analysis.store.project import get_project

    with open_store(args).read() as con:
        project = get_project(con, args.project)
        with on_engine(args, con, project) as econ:
            slice_, reference = timeline_inputs(args, econ, project, need_labels=False)  # features only
            result = drift_table(econ, project, reference, slice_, args.by)
    emit(args, result.to_dict(), drift_text(result))
    return EXIT_OK


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "drift",
        parents=[common],
        help="input drift and data quality of a slice's features, per period, against the reference window",
    )
    add_timeline_args(p)
    engine_args(p)
    p.set_defaults(func=cmd_drift)

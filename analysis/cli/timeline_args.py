"""What ``estimate`` and ``drift`` share: one version and stage, a slice, periods, and the
reference window they are measured against."""

from __future__ import annotations

import argparse


def add_timeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", required=True)
    p.add_argument("--version", required=True, help="the model version")
    p.add_argument("--stage", help="its stage (default: its only stage, else production)")
    p.add_argument(
        "--where", action="append", help="the slice, e.g. \"region = 'east'\" (repeatable: AND); default every row"
    )
    p.add_argument("--slice-json", help="the slice as JSON instead of --where")
    p.add_argument("--by", choices=("day", "week", "month"), default="day", help="period length (default day)")
    p.add_argument("--reference-start", help="first day of the reference window, YYYY-MM-DD (inclusive)")
    p.add_argument("--reference-end", help="last day of the reference window, YYYY-MM-DD (inclusive)")
    p.add_argument(
        "--reference-days",
        type=int,
        help="the reference is the most recent N fully labeled days (default: the project's stored choice, else 14)",
    )


def timeline_inputs(args, con, project, need_labels: bool = True):
    """``(slice, reference window)`` for the command's version and stage: the window given
    on the command line, else the one stored with the project."""
    from analysis.estimation.reference import ReferenceChoice, resolve_reference, version_stage
    from analysis.slices import Slice, parse_slice, validate_slice

    slice_ = Slice.from_json(args.slice_json) if args.slice_json else parse_slice(*(args.where or []))
    slice_ = validate_slice(slice_, project)
    stage = version_stage(con, project, args.version, args.stage)
    given = args.reference_start or args.reference_end or args.reference_days is not None
    choice = ReferenceChoice.of(args.reference_start, args.reference_end, args.reference_days) if given else None
    return slice_, resolve_reference(con, project, args.version, stage, choice, need_labels)

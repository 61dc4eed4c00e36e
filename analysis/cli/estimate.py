"""Label-free estimates: ``estimate`` (a slice's estimate timeline) and ``reference`` (the
project's reference window)."""

from __future__ import annotations

import argparse

from analysis.cli.output import EXIT_OK, emit, engine_args, kv_table, on_engine, open_store
from analysis.cli.timeline_args import add_timeline_args, timeline_inputs


def cmd_estimate(args) -> int:
    from analysis.estimation.fit import fit_slice
    from analysis.estimation.timeline import estimate_timeline
    from analysis.store.project import get_project

    with open_store(args).read() as con:
        project = get_project(con, args.project)
        with on_engine(args, con, project) as econ:
            slice_, reference = timeline_inputs(args, econ, project)
            fit = fit_slice(econ, project, reference, slice_, args.calibration)
            timeline = estimate_timeline(econ, project, fit, args.by, args.metric)
    emit(args, timeline.to_dict(), estimate_text(timeline))
    return EXIT_OK


def estimate_text(timeline) -> str:
    from analysis.numbers import format_count, format_percent, format_value, metric_title

    fit = timeline.fit
    lines = [
        f"slice: {fit.slice_.readable() or 'every row'}",
        f"reference: {fit.reference.describe()}, {format_count(fit.rows)} labeled rows in the slice; {fit.describe()}",
        *[f"note: {n}" for n in fit.notes],
    ]
    for name in timeline.metrics:
        lines += ["", f"{metric_title(name)}: realized (labeled rows) · estimate [95%] · combined [95%]"]
        for p in timeline.periods:
            m = p.metrics[name]

            def shown(x, name=name):
                return format_value(name, x)

            share = format_percent(p.labeled / p.rows, 0) if p.rows else "–"
            lines.append(
                f"  {p.period.label:<11} {format_count(p.rows):>9} rows, {share:>4} labeled  "
                f"{shown(m.realized):>7} · {shown(m.estimated)} [{shown(m.low)}, {shown(m.high)}] · "
                f"{shown(m.combined)} [{shown(m.combined_low)}, {shown(m.combined_high)}]"
                + ("  (labels disagree)" if m.labels_disagree else "")
            )
    notes = [f"{p.period.label}: {n}" for p in timeline.periods for n in p.notes]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def cmd_reference(args) -> int:
    from analysis.estimation.reference import ReferenceChoice, get_reference_choice, set_reference_choice
    from analysis.store.project import get_project
    from analysis.store.sql import in_transaction

    given = args.start or args.end or args.recent_days is not None
    store = open_store(args)
    if given:
        choice = ReferenceChoice.of(args.start, args.end, args.recent_days)
        with store.write(create=False) as con:
            choice = in_transaction(con, lambda: set_reference_choice(con, get_project(con, args.project), choice))
    else:
        with store.read() as con:
            choice = get_reference_choice(con, get_project(con, args.project))
    payload = {
        "project": args.project,
        "start": choice.start,
        "end": choice.end,
        "recent_days": None if choice.by_dates else choice.days,
        "chosen_as": choice.describe(),
    }
    emit(args, payload, kv_table({"reference": choice.describe()}))
    return EXIT_OK


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "estimate",
        parents=[common],
        help="estimate recent performance per period without labels, with intervals, combined with labels as they come",
    )
    add_timeline_args(p)
    p.add_argument("--metric", action="append", help="repeatable; default every metric of the task")
    p.add_argument(
        "--calibration",
        choices=("isotonic", "none"),
        help="force the calibration (default: whichever does better on held-out folds of the reference)",
    )
    engine_args(p)
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("reference", parents=[common], help="show or set the project's reference window")
    p.add_argument("--project", required=True)
    p.add_argument("--start", help="first day, YYYY-MM-DD (inclusive)")
    p.add_argument("--end", help="last day, YYYY-MM-DD (inclusive)")
    p.add_argument("--recent-days", type=int, help="the most recent N fully labeled days instead of dates")
    p.set_defaults(func=cmd_reference)

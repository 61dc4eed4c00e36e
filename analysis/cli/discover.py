"""The discover command: the slices where the model errs most, with significance."""

from __future__ import annotations

import argparse

import pandas as pd

from analysis.cli.errors import support
from analysis.cli.output import (
    EXIT_OK,
    emit,
    engine_args,
    on_engine,
    open_store,
    slice_scope,
    slice_scope_args,
)


def cmd_discover(args) -> int:
    from analysis.discovery.run import discover
    from analysis.store.project import get_project

    min_support = args.min_support
    with open_store(args).read() as con:
        project = get_project(con, args.project)
        slice_, scope = slice_scope(args, project)
        with on_engine(args, con, project) as econ:
            result = discover(
                econ,
                project,
                scope,
                error=args.error,
                columns=args.column,
                bins=args.bins,
                alpha=args.alpha,
                min_support=min_support,
                max_level=args.max_level,
                top_k=args.top,
                rank_by=args.rank_by,
                q_threshold=args.q,
                slice_=slice_,
                keep_id_like=args.keep_id_like,
                ranking=args.ranking,
                other_version=args.against,
            )
    payload = result.to_dict()
    payload["where"] = slice_.readable()
    from analysis.discovery.shown import discovery_table, summary_line

    lines = [*(f"note: {note}" for note in result.notes), summary_line(result), ""]
    with pd.option_context("display.width", 250, "display.max_columns", 50, "display.max_colwidth", 80):
        lines.append(
            discovery_table(result).to_string(index=False)
            if len(result.slices)
            else "no slice is worse than it should be"
            if result.ranking != "error"
            else "no slice scores above zero"
        )
    emit(args, payload, "\n".join(lines))
    return EXIT_OK


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "discover", parents=[common], help="find the slices where the model errs most (SliceLine), with significance"
    )
    p.add_argument("--project", required=True)
    p.add_argument(
        "--error",
        default="misclassification",
        help="misclassification, logloss, brier, abs_residual, sq_residual, an outcome column, or a per-row "
        "cost such as 'CASE WHEN NOT prediction AND label THEN loss ELSE 0 END'",
    )
    p.add_argument("--max-level", type=int, default=3, help="at most this many conditions per slice")
    p.add_argument("--top", type=int, default=10, help="how many slices to report")
    p.add_argument(
        "--min-support", type=support, help="minimum rows per slice: a count, or a fraction such as 0.01 (default)"
    )
    p.add_argument("--alpha", type=float, default=0.95, help="weight of error against size in the score")
    p.add_argument(
        "--ranking",
        choices=("expected", "version", "error"),
        default="expected",
        help="what a slice's errors are held against: 'expected' (default) what the model's own scores "
        "predict for those rows, 'version' another version's errors on the same slice (--against), "
        "'error' nothing (plain error, SliceLine)",
    )
    p.add_argument("--against", help="the other version, for --ranking version")
    p.add_argument(
        "--rank-by",
        choices=("score", "impact"),
        default="score",
        help="order of the plain-error ranking (--ranking error)",
    )
    p.add_argument("--q", type=float, default=0.05, help="q-value below which a slice is significant")
    p.add_argument("--column", action="append", help="features to search (repeatable; default all)")
    p.add_argument(
        "--bins", type=int, help="quantile bins for numbers and timestamps (default 30; 5 for --ranking error)"
    )
    p.add_argument(
        "--keep-id-like",
        action="store_true",
        help="search id-like features too (nearly every value unique; left out by default)",
    )
    slice_scope_args(p, "search within a slice (repeatable; ANDed)")
    engine_args(p)
    p.set_defaults(func=cmd_discover)

"""Command line for comparing versions: ``compare``, ``gate`` (exit 0 pass, 1 fail,
2 usage or data error: any error, never 1) and ``product-metrics list|define|delete``.
A product metric that fails on the compared rows is reported (a warning line on
stderr, its ``error`` in the JSON); the gate counts it as a failed check."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from analysis.cli import output as base
from analysis.errors import ConfigError
from analysis.metrics.failures import failure_lines

EXIT_FAIL = 1


def _sides(args):
    from analysis.compare.comparison import Side

    return Side(args.baseline, args.baseline_stage), Side(args.candidate, args.candidate_stage)


def cmd_compare(args) -> int:
    from analysis.compare.comparison import compare
    from analysis.store.project import get_project

    baseline, candidate = _sides(args)
    with base.open_store(args).read() as con:
        project = get_project(con, args.project)
        with base.on_engine(args, con, project) as econ:
            comp = compare(
                econ,
                project,
                baseline,
                candidate,
                start=args.start,
                end=args.end,
                discovered=args.discovered,
                overlap=not args.whole_window,
            )
    for line in [*failure_lines(comp.overall), *comp.notes]:
        print(f"warning: {line}", file=sys.stderr)
    text = "\n".join(
        [
            f"{candidate} vs {baseline}: {comp.method}",
            comp.window.sentence(),
            "",
            _overall_text(comp),
            "",
            _slices_text(comp, args.limit),
        ]
    )
    base.emit(args, comp.to_dict(), text)
    return base.EXIT_OK


def _overall_text(comp) -> str:
    """The overall table as people read it (analysis.numbers): units, points, p-values."""
    from analysis.compare.gate import compared_name
    from analysis.numbers import format_delta, format_p, format_value, metric_name

    products = [m.to_dict() for m in comp.product_metrics]
    rows = []
    for r in comp.overall.to_dict(orient="records"):
        m = r["metric"]
        rows.append(
            {
                "metric": compared_name(metric_name(m, products), r.get("normalisation")),
                "better": r["direction"],
                "baseline": format_value(m, r["baseline"], products),
                "candidate": format_value(m, r["candidate"], products),
                "change": format_delta(m, r["delta"], products),
                "95% interval": f"{format_delta(m, r['ci_low'], products)} to "
                f"{format_delta(m, r['ci_high'], products)}",
                "p-value": format_p(r["p_value"]),
                "test": r["test"],
            }
        )
    return pd.DataFrame(rows).to_string(index=False)


def _slices_text(comp, limit: int) -> str:
    from analysis.numbers import format_count, format_delta, format_p, format_value

    if comp.slices.empty:
        return "no slices"
    rows = [
        {
            "verdict": r["verdict"],
            "slice": r["where"],
            "found by": r["source"],
            "rows (b / c)": f"{format_count(r['n_rows_b'])} / {format_count(r['n_rows_c'])}",
            "error (b → c)": f"{format_value('error_rate', r['error_rate_b'])} → "
            f"{format_value('error_rate', r['error_rate_c'])}",
            "change [95%]": f"{format_delta('error_rate', r['delta'])} [{format_delta('error_rate', r['ci_low'])}, "
            f"{format_delta('error_rate', r['ci_high'])}]",
            "q": format_p(r["q_value"]),
        }
        for r in comp.slices.head(limit).to_dict(orient="records")
    ]
    return pd.DataFrame(rows).to_string(index=False)


def cmd_gate(args) -> int:
    from analysis.compare.gate import run_gate
    from analysis.store.project import get_project

    baseline, candidate = _sides(args)
    with base.open_store(args).read() as con:
        project = get_project(con, args.project)
        with base.on_engine(args, con, project) as econ:
            verdict = run_gate(
                econ, project, baseline, candidate, start=args.start, end=args.end, overlap=not args.whole_window
            )
    for line in failure_lines(verdict.comparison.overall):
        print(f"warning: {line}", file=sys.stderr)
    base.emit(args, verdict.to_dict(), "\n".join(verdict.lines()))
    return base.EXIT_OK if verdict.passed else EXIT_FAIL


def cmd_product_metrics(args) -> int:
    from analysis.metrics.product import ProductMetric, define_metric, delete_metric, list_metrics
    from analysis.store.project import get_project

    if args.action in ("define", "delete") and not args.name:
        raise ConfigError(f"product-metrics {args.action} needs --name")
    if args.action == "define" and not args.expression:
        raise ConfigError("product-metrics define needs --expression, such as 'sum(revenue)'")
    store = base.open_store(args)
    with store.write(create=False) if args.action != "list" else store.read() as con:
        project = get_project(con, args.project)
        if args.action == "define":
            define_metric(
                con,
                project,
                ProductMetric(args.name, args.expression, args.direction, args.unit or "", args.number_format),
            )
        elif args.action == "delete":
            delete_metric(con, project, args.name)
        metrics = [m.to_dict() for m in list_metrics(con, project)]
    text = (
        "\n".join(
            f"{m['name']} = {m['expression']}  ({m['direction']} is better"
            + (f", {m['unit']}" if m["unit"] else "")
            + ")"
            for m in metrics
        )
        or "no product metrics"
    )
    base.emit(args, {"project": args.project, "product_metrics": metrics}, text)
    return base.EXIT_OK


def cmd_gate_criteria(args) -> int:
    from dataclasses import asdict, replace

    from analysis.compare.gate import get_criteria, set_criteria
    from analysis.store.project import get_project

    store = base.open_store(args)
    with store.write(create=False) if args.action == "set" else store.read() as con:
        project = get_project(con, args.project)
        criteria = get_criteria(con, project)
        if args.action == "set":
            changes = {
                k: v
                for k, v in (
                    ("product_max_worse", args.product_max_worse),
                    ("slice_min_rows", args.slice_min_rows),
                    ("slice_max_worse", args.slice_max_worse),
                    ("overall_max_worse", args.overall_max_worse),
                    ("discovered_slices", args.discovered_slices),
                )
                if v is not None
            }
            if args.all_sets:
                changes["required_sets"] = "all"
            elif args.required_set is not None:
                changes["required_sets"] = tuple(args.required_set)
            criteria = set_criteria(con, project, replace(criteria, **changes))
    payload = {"project": args.project, **asdict(criteria)}
    base.emit(args, payload, base.kv_table(payload))
    return base.EXIT_OK


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    for name, help_text, func in (
        ("compare", "a candidate vs a baseline: overall and per slice, ML and product metrics", cmd_compare),
        ("gate", "the deployment gate: exit 0 pass, 1 fail, 2 usage or data error", cmd_gate),
    ):
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.add_argument("--project", required=True)
        p.add_argument("--baseline", required=True, help="the baseline model version")
        p.add_argument("--candidate", required=True, help="the candidate model version")
        p.add_argument("--baseline-stage", help="default: all stages of the baseline")
        p.add_argument("--candidate-stage", help="default: all stages of the candidate")
        p.add_argument("--start", help="first day, YYYY-MM-DD")
        p.add_argument("--end", help="last day (included), YYYY-MM-DD")
        p.add_argument(
            "--whole-window",
            action="store_true",
            help="unpaired: compare each version's rows over the whole window, not only the days both "
            "served (the default keeps their overlap and says what it left out)",
        )
        if name == "compare":
            p.add_argument("--discovered", type=int, default=5, help="top discovered slices of each version")
            p.add_argument("--limit", type=int, default=20, help="slices to print (table output)")
        base.engine_args(p)
        p.set_defaults(func=func)
    p = sub.add_parser("gate-criteria", parents=[common], help="the project's gate criteria: show or set")
    p.add_argument("action", choices=("show", "set"))
    p.add_argument("--project", required=True)
    p.add_argument("--product-max-worse", type=float, help="share of the baseline a product metric may lose")
    p.add_argument("--slice-min-rows", type=int, help="slices checked from this many rows in both versions")
    p.add_argument("--slice-max-worse", type=float, help="error-rate points a slice may lose")
    p.add_argument(
        "--overall-max-worse",
        type=float,
        help="error-rate points (a regression: the label's unit) the whole comparison may lose",
    )
    p.add_argument("--required-set", action="append", help="a validation set that must pass (repeatable)")
    p.add_argument("--all-sets", action="store_true", help="every committed set with pass criteria must pass")
    p.add_argument(
        "--discovered-slices",
        type=int,
        help="discovered slices of each direction the slice criterion covers (0: no discovery, faster)",
    )
    p.set_defaults(func=cmd_gate_criteria)

    p = sub.add_parser("product-metrics", parents=[common], help="a project's product metrics: list, define, delete")
    p.add_argument("action", choices=("list", "define", "delete"))
    p.add_argument("--project", required=True)
    p.add_argument("--name")
    p.add_argument("--expression", help="an aggregate over the log's columns, such as 'sum(revenue)'")
    p.add_argument("--direction", choices=("higher", "lower"), default="higher", help="which way is better")
    p.add_argument("--unit", help="such as $")
    p.add_argument("--number-format", default=",.2f", help="Python format spec, such as ',.0f' or '.1%%'")
    p.set_defaults(func=cmd_product_metrics)

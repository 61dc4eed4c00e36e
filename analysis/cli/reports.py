"""Command line for reports: ``report`` (export one HTML file, optionally a PDF) and
``reports list|show|add|rerun|refresh|delete``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.cli import output as base
from analysis.errors import ConfigError


def _progress(fraction: float, text: str) -> None:
    print(f"[{fraction:4.0%}] {text}", file=sys.stderr)


def cmd_report(args) -> int:
    from analysis.reports import default_report, get_report, write_html, write_pdf
    from analysis.store.paths import check_target, database_files, safe_file_name
    from analysis.store.project import get_project

    store = base.open_store(args)
    protect = database_files(store.path)
    # A name made from the project's name stays in the current folder, whatever the name holds.
    out = Path(args.out) if args.out else Path(safe_file_name(f"{args.project}-report.html", fallback="report.html"))
    check_target(out, force=args.force, protect=protect)  # refused before any work
    if args.pdf:
        check_target(args.pdf, force=args.force, protect=protect)
        if Path(args.pdf).expanduser().absolute() == out.expanduser().absolute():
            raise ConfigError("--out and --pdf name the same file; name two files.")
    with store.read() as con:
        project = get_project(con, args.project)
        report = get_report(con, project, args.report) if args.report else default_report(con, project, _progress)
    if args.title:
        report.title = args.title
    write_html(report, out, force=args.force, protect=protect)
    payload = {
        "project": args.project,
        "report": report.name,
        "out": str(out),
        "bytes": out.stat().st_size,
        "blocks": [b.title for b in report.blocks],
    }
    if args.pdf:
        payload["pdf"] = str(write_pdf(report, args.pdf, force=args.force, protect=protect))
    base.emit(
        args,
        payload,
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(report.blocks)} blocks)"
        + (f" and {args.pdf}" if args.pdf else ""),
    )
    return base.EXIT_OK


def _view(args) -> dict:
    from analysis.compare.comparison import Side
    from analysis.slices import parse_slice

    view: dict = {}
    if args.kind in ("comparison", "gate", "series"):
        if not (args.baseline and args.candidate):
            raise ConfigError(f"A {args.kind} block needs --baseline and --candidate.")
        view.update(
            baseline=Side(args.baseline, args.baseline_stage), candidate=Side(args.candidate, args.candidate_stage)
        )
    if args.kind == "slice":
        view["slice"] = parse_slice(" AND ".join(args.where or []))
    if args.kind == "discovery":
        view["top_k"] = args.top
    if args.kind == "note":
        view["text"] = args.text or ""
    if args.kind == "estimate":
        if not args.version:
            raise ConfigError("An estimate block needs --version.")
        view.update(
            version=args.version[0],
            stage=args.stage,
            slice=parse_slice(" AND ".join(args.where or [])),
            by=args.by,
            metric=args.metric,
        )
        return view
    if args.kind in ("headline", "slice", "discovery") and args.version:
        view["scope"] = {"versions": args.version}
    view.update(start=args.start, end=args.end)
    return view


def cmd_reports(args) -> int:
    from analysis.reports import add_block, delete_report, get_report, list_reports, position_after, refresh, rerun
    from analysis.reports.blocks import lines
    from analysis.reports.tables import figure_text
    from analysis.store.project import get_project

    store = base.open_store(args)
    writes = args.action in ("add", "refresh", "delete")
    if args.action != "list" and not args.name:
        raise ConfigError(f"reports {args.action} needs --name.")
    with store.write(create=False) if writes else store.read() as con:
        project = get_project(con, args.project)
        if args.action == "list":
            frame = list_reports(con, project)
            base.emit(
                args,
                {"project": args.project, "reports": base.frame_records(frame)},
                frame.to_string(index=False) if len(frame) else "no reports",
            )
            return base.EXIT_OK
        if args.action == "delete":
            delete_report(con, project, args.name)
            base.emit(args, {"deleted": args.name}, f"deleted report {args.name!r}")
            return base.EXIT_OK
        if args.action == "add":
            if not args.kind:
                raise ConfigError("reports add needs --kind.")
            position = args.position
            if args.after is not None:
                position = position_after(get_report(con, project, args.name), args.after)
            block = add_block(con, project, args.name, args.kind, _view(args), title=args.title, position=position)
            base.emit(
                args,
                {
                    "report": args.name,
                    "block": block.block_id,
                    "title": block.title,
                    "lines": lines(block.kind, block.snapshot),
                },
                "\n".join([f"added block {block.block_id}: {block.title}", *lines(block.kind, block.snapshot)]),
            )
            return base.EXIT_OK
        if args.action == "refresh":
            report = refresh(con, project, args.name)
            base.emit(
                args,
                {"report": args.name, "refreshed": len(report.blocks)},
                f"kept the current numbers of {len(report.blocks)} blocks",
            )
            return base.EXIT_OK
        report = get_report(con, project, args.name)
        if args.action == "show":
            payload = {
                "report": report.name,
                "title": report.title,
                "blocks": [
                    {
                        "block": b.block_id,
                        "kind": b.kind,
                        "title": b.title,
                        "params": b.params,
                        "lines": lines(b.kind, b.snapshot),
                        "computed_at": b.computed_at,
                    }
                    for b in report.blocks
                ],
            }
            text = [report.title]
            for b in report.blocks:
                text += ["", f"[{b.block_id}] {b.title}", *(f"  {x}" for x in lines(b.kind, b.snapshot))]
            base.emit(args, payload, "\n".join(text))
            return base.EXIT_OK
        results = rerun(con, project, report)
    payload = {
        "report": report.name,
        "same": all(r.same for r in results),
        "blocks": [
            {
                "block": r.block.block_id,
                "title": r.block.title,
                "same": r.same,
                "changes": [{"figure": n, "then": a, "now": b} for n, a, b in r.changes],
                "data_changes": r.data_changes,
            }
            for r in results
        ],
    }
    text = []
    for r in results:
        text.append(
            f"[{r.block.block_id}] {r.block.title}: "
            + ("same numbers" if r.same else f"{len(r.changes)} figure(s) changed")
        )
        text += [f"  {n}: {figure_text(a)} -> {figure_text(b)}" for n, a, b in r.changes[:20]]
        if not r.same and r.data_changes:
            text += [f"  data: {x}" for x in r.data_changes]
    base.emit(args, payload, "\n".join(text))
    return base.EXIT_OK


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    from analysis.reports import KINDS

    p = sub.add_parser("report", parents=[common], help="export a report as one self-contained HTML file")
    p.add_argument("--project", required=True)
    p.add_argument("--report", help="a saved report (default: the project's default report)")
    p.add_argument("--out", help="the HTML file to write (default: PROJECT-report.html in the current folder)")
    p.add_argument("--pdf", help="also print it to this PDF file (needs Chromium)")
    p.add_argument("--title", help="the report's title in the file")
    p.add_argument("--force", action="store_true", help="replace --out (and --pdf) if it exists (never a database)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("reports", parents=[common], help="saved reports: list, show, add, rerun, refresh, delete")
    p.add_argument("action", choices=("list", "show", "add", "rerun", "refresh", "delete"))
    p.add_argument("--project", required=True)
    p.add_argument("--name", help="the report")
    p.add_argument("--kind", choices=KINDS, help="add: the kind of block")
    p.add_argument("--title", help="add: the block's title")
    place = p.add_mutually_exclusive_group()
    place.add_argument("--position", type=int, help="add: the block's place, 1 = first (default: at the end)")
    place.add_argument(
        "--after", type=int, metavar="BLOCK", help="add: just after this block (its number in `reports show`)"
    )
    p.add_argument("--baseline")
    p.add_argument("--candidate")
    p.add_argument("--baseline-stage")
    p.add_argument("--candidate-stage")
    p.add_argument("--version", action="append", help="add: versions of a headline, slice or discovery block")
    p.add_argument("--where", action="append", help="add: the slice (repeatable; ANDed)")
    p.add_argument("--top", type=int, default=10, help="add: discovered slices to show")
    p.add_argument("--text", help="add: a note's Markdown text")
    p.add_argument(
        "--stage", help="add: an estimate block's stage (default: the version's only stage, else production)"
    )
    p.add_argument("--by", choices=("day", "week", "month"), default="day", help="add: an estimate block's periods")
    p.add_argument("--metric", help="add: an estimate block's metric (default: the task's headline)")
    p.add_argument("--start", help="first day, YYYY-MM-DD (default: the data's first day now)")
    p.add_argument("--end", help="last day, YYYY-MM-DD (default: the data's last day now)")
    p.set_defaults(func=cmd_reports)

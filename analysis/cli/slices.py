"""Commands that measure: metrics per version, a slice, a breakdown or leaderboard, saved slices."""

from __future__ import annotations

import argparse

import pandas as pd

from analysis.cli.output import (
    EXIT_OK,
    emit,
    engine_args,
    frame_records,
    kv_table,
    on_engine,
    open_store,
    slice_scope,
    slice_scope_args,
)


def cmd_metrics(args) -> int:
    from analysis.metrics.registry import metrics_for
    from analysis.overview import daily_series, overview_table
    from analysis.store.project import get_project
    from analysis.store.scope import Scope

    scope = Scope.of(args.version, args.stage, args.start, args.end)
    with open_store(args).read() as con:
        project = get_project(con, args.project)
        with on_engine(args, con, project) as econ:
            frame = daily_series(econ, project, scope) if args.daily else overview_table(econ, project, scope)
    payload = {
        "project": project.name,
        "task": project.task,
        "metrics": list(metrics_for(project.task)),
        "scope": {"versions": list(scope.versions), "stages": list(scope.stages), "start": args.start, "end": args.end},
        "rows": frame_records(frame),
    }
    keys = (["day"] if args.daily else []) + ["model_version", "stage", "n_rows", "n_labeled", "labeled_share"]
    cols = keys + list(metrics_for(project.task))
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        text = frame[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}") if len(frame) else "no rows"
    emit(args, payload, text)
    return EXIT_OK


def cmd_slice(args) -> int:
    from analysis.slices import Slice, parse_slice, validate_slice
    from analysis.slices.metrics import slice_metrics
    from analysis.store.project import get_project
    from analysis.store.scope import Scope

    slice_ = Slice.from_json(args.slice_json) if args.slice_json else parse_slice(*(args.where or []))
    scope = Scope.of(args.version, args.stage, args.start, args.end)
    with open_store(args).read() as con:
        project = get_project(con, args.project)
        slice_ = validate_slice(slice_, project)
        with on_engine(args, con, project) as econ:
            result = slice_metrics(econ, project, slice_, scope)
    payload = result.to_dict()
    payload["scope"] = {
        "versions": list(scope.versions),
        "stages": list(scope.stages),
        "start": args.start,
        "end": args.end,
    }
    table = result.table.set_index("part")
    lines = [f"slice: {slice_.readable()}", ""]
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        shown = pd.DataFrame(
            {
                part: {name: with_interval(table.loc[part], name) for name in ["n_rows", *result.metrics]}
                for part in table.index
            }
        )
        lines.append(shown.to_string())
        lines += ["", result.comparison.to_string(index=False, float_format=lambda v: f"{v:.4g}")]
    emit(args, payload, "\n".join(lines))
    return EXIT_OK


def cmd_breakdown(args) -> int:
    from analysis.slices.breakdown import breakdown, leaderboard
    from analysis.store.project import get_project

    with open_store(args).read() as con:
        project = get_project(con, args.project)
        slice_, scope = slice_scope(args, project)
        with on_engine(args, con, project) as econ:
            if args.command == "breakdown":
                frame = breakdown(
                    econ,
                    project,
                    args.by,
                    scope,
                    slice_,
                    bins=args.bins,
                    min_labeled=args.min_labeled,
                    limit=args.limit,
                )
            else:
                frame = leaderboard(
                    econ,
                    project,
                    scope,
                    slice_,
                    columns=args.column,
                    bins=args.bins,
                    sort_by=args.sort,
                    min_labeled=args.min_labeled,
                    limit=args.limit,
                    keep_id_like=args.keep_id_like,
                )
    payload = {
        "project": project.name,
        "where": slice_.readable(),
        "slice": slice_.to_dict(),
        "overall_error_rate": frame.attrs.get("overall_error_rate"),
        "rows": frame_records(frame),
        "notes": frame.attrs.get("notes", []),
        "other": frame.attrs.get("other"),
    }
    keys = [
        "column",
        "value",
        "n_rows",
        "n_labeled",
        "error_rate",
        "error_rate_low",
        "error_rate_high",
        "lift",
        "impact",
        "unreliable",
    ]
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
        text = frame[[k for k in keys if k in frame]].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    emit(args, payload, "\n".join([*(f"note: {n}" for n in payload["notes"]), text]))
    return EXIT_OK


def saved_text(d: dict) -> dict:
    """A saved slice's fields for the text table: versions and stages say "all" when empty."""
    return {k: (v or "all") if k in ("versions", "stages") else v for k, v in d.items() if k != "slice"}


def cmd_slices(args) -> int:
    from analysis.slices import Slice, parse_slice
    from analysis.slices.saved import delete_slice, get_slice, list_slices, save_slice, slice_history
    from analysis.store.project import get_project
    from analysis.store.scope import Scope

    if args.action in ("save", "show", "delete") and not args.name:
        raise_usage = f"slices {args.action} needs --name"
        from analysis.errors import ConfigError

        raise ConfigError(raise_usage)
    if args.action in ("save", "delete"):
        with open_store(args).write(create=False) as con:
            project = get_project(con, args.project)
            if args.action == "save":
                slice_ = Slice.from_json(args.slice_json) if args.slice_json else parse_slice(*(args.where or []))
                scope = Scope.of(versions=args.version, stages=args.stage)
                payload = save_slice(con, project, args.name, slice_, args.description, scope=scope).to_dict()
            else:
                delete_slice(con, project, args.name)
                payload = {"name": args.name, "deleted": True}
        emit(args, payload, kv_table(saved_text(payload)))
        return EXIT_OK
    with open_store(args).read() as con:
        project = get_project(con, args.project)
        if args.action == "list":
            frame = list_slices(con, project)
            payload = {"project": project.name, "slices": frame_records(frame)}
            shown = frame.assign(**{k: frame[k].map(lambda v: ", ".join(v) or "all") for k in ("versions", "stages")})
            text = shown.to_string(index=False) if len(frame) else "no saved slices"
        else:
            saved = get_slice(con, project, args.name, args.revision)
            history = slice_history(con, project, args.name)
            payload = {**saved.to_dict(), "history": frame_records(history)}
            shown = history.assign(
                **{k: history[k].map(lambda v: ", ".join(v) or "all") for k in ("versions", "stages")}
            )
            text = kv_table(saved_text(saved.to_dict())) + "\n\n" + shown.to_string(index=False)
    emit(args, payload, text)
    return EXIT_OK


def with_interval(row: pd.Series, name: str) -> str:
    value = row[name]
    if name == "n_rows":
        return f"{int(value):,}"
    if value != value:
        return "-"
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    if low is None or low != low:
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("metrics", parents=[common], help="metrics per model version and stage")
    p.add_argument("--project", required=True)
    p.add_argument("--version", action="append", help="repeatable; default all")
    p.add_argument("--stage", action="append", help="repeatable; default all")
    p.add_argument("--start", help="first day, YYYY-MM-DD")
    p.add_argument("--end", help="last day (included), YYYY-MM-DD")
    p.add_argument("--daily", action="store_true", help="one row per day as well")
    engine_args(p)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("slice", parents=[common], help="a slice's metrics with 95%% intervals, vs the rest and overall")
    p.add_argument("--project", required=True)
    p.add_argument(
        "--where", action="append", help='a condition such as "country = NG" or "18 <= age < 25" (repeatable; ANDed)'
    )
    p.add_argument("--slice-json", help="the slice as JSON (as saved or in a link) instead of --where")
    p.add_argument("--version", action="append", help="repeatable; default all")
    p.add_argument("--stage", action="append", help="repeatable; default all")
    p.add_argument("--start", help="first day, YYYY-MM-DD")
    p.add_argument("--end", help="last day (included), YYYY-MM-DD")
    engine_args(p)
    p.set_defaults(func=cmd_slice)

    p = sub.add_parser("slices", parents=[common], help="saved slices: list, save, show, delete")
    p.add_argument("action", choices=("list", "save", "show", "delete"))
    p.add_argument("--project", required=True)
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--where", action="append", help="the slice to save (repeatable; ANDed)")
    p.add_argument("--slice-json")
    p.add_argument("--revision", type=int, help="show an earlier revision")
    p.add_argument("--version", action="append", help="save: the model version it is for (repeatable; default all)")
    p.add_argument("--stage", action="append", help="save: the stage it is for (repeatable; default all)")
    p.set_defaults(func=cmd_slices)

    for name, help_text in (
        ("breakdown", "metrics by every value of one column"),
        ("leaderboard", "every feature's values, most harmful first"),
    ):
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.add_argument("--project", required=True)
        if name == "breakdown":
            p.add_argument("--by", required=True, help="the column to break down by")
        else:
            p.add_argument("--column", action="append", help="repeatable; default every feature")
            p.add_argument("--sort", choices=("impact", "error_rate", "lift", "size"), default="impact")
            p.add_argument(
                "--keep-id-like",
                action="store_true",
                help="include id-like features (nearly every value unique; left out by default)",
            )
        p.add_argument(
            "--limit",
            type=int,
            default=50,
            help="show at most N groups (default 50; 0: all); a breakdown summarizes the rest in one row",
        )
        p.add_argument(
            "--bins",
            type=int,
            default=10 if name == "breakdown" else 5,
            help="quantile bins for numbers and timestamps",
        )
        p.add_argument(
            "--min-labeled", type=int, default=30, help="groups with fewer labeled rows are flagged unreliable"
        )
        slice_scope_args(p, "restrict to a slice (repeatable; ANDed)")
        engine_args(p)
        p.set_defaults(func=cmd_breakdown)

"""Command line: ``python -m analysis <command>``.

Exit codes: 0 success; 1 the gate failed; 2 bad usage or rejected input (nothing
was written); 75 the database stayed locked by another process (try again later).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import pandas as pd

from analysis.cli.compare import add_parsers as add_compare_parsers
from analysis.cli.errors import EXIT_BROKEN_PIPE, EXIT_BUSY, EXIT_ERROR, OneLineParser, guarded, seconds, support
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
from analysis.cli.reports import add_parsers as add_report_parsers
from analysis.cli.valsets import add_parsers as add_valset_parsers
from analysis.store.connection import default_db_path

__all__ = ["EXIT_BUSY", "EXIT_ERROR", "EXIT_OK", "main", "build_parser"]


# --- commands -----------------------------------------------------------------


def cmd_demo(args) -> int:
    from analysis.demo import build_demo

    def progress(fraction: float, text: str) -> None:
        if args.format != "json":
            print(f"[{fraction:4.0%}] {text}", file=sys.stderr)

    result = build_demo(open_store(args), seed=args.seed, replace=args.replace, progress=progress)
    result["db"] = str(open_store(args).path)
    emit(args, result, kv_table(result))
    return EXIT_OK


def cmd_ingest(args) -> int:
    from analysis.ingest.mapping import load_mapping
    from analysis.ingest.staging import ingest_staged

    mapping = load_mapping(args.config) if args.config else None
    report = ingest_staged(
        open_store(args),
        args.file,
        project=args.project,
        mapping=mapping,
        on_duplicate=args.on_duplicate,
        version=args.version,
        stage=args.stage,
    )
    d = report.to_dict()
    d["db"] = str(open_store(args).path)
    emit(args, d, kv_table(d))
    return EXIT_OK


def cmd_attach(args) -> int:
    from analysis.errors import ConfigError
    from analysis.ingest.external import attach_parquet, attach_warnings, refresh, stored_rows
    from analysis.ingest.mapping import load_mapping
    from analysis.store.project import get_project

    with open_store(args).write() as con:
        if args.refresh:
            rows = refresh(con, get_project(con, args.project))
            d = {"project": args.project, "refreshed": True, "rows": rows}
        else:
            if not args.dataset:
                raise ConfigError("attach needs the Parquet dataset (a file, a folder or a glob).")
            mapping = load_mapping(args.config) if args.config else None
            project = attach_parquet(
                con, args.dataset, project=args.project, mapping=mapping, version=args.version, stage=args.stage
            )
            d = {
                "project": project.name,
                "dataset": project.external,
                "rows": stored_rows(con, project),
                "warnings": attach_warnings(con, project),
            }
    emit(args, d, kv_table(d))
    return EXIT_OK


def cmd_labels(args) -> int:
    from analysis.ingest.staging import labels_staged

    report = labels_staged(
        open_store(args),
        args.file,
        project=args.project,
        key=args.key,
        id_column=args.id_column,
        label_column=args.label_column,
        label_timestamp_column=args.label_timestamp_column,
        outcomes=args.outcome,
        overwrite=args.overwrite,
        positive_label=args.positive_label,
        negative_label=args.negative_label,
    )
    d = report.to_dict()
    d["db"] = str(open_store(args).path)
    text = kv_table({k: v for k, v in d.items() if k != "conflict_examples"})
    if report.conflict_examples:
        text += "\nconflicts (first ones):\n" + pd.DataFrame(report.conflict_examples).to_string(index=False)
    emit(args, d, text)
    return EXIT_OK


def cmd_info(args) -> int:
    from analysis.overview import project_summary
    from analysis.store.project import get_project, list_projects

    store = open_store(args)
    with store.read() as con:
        if args.project:
            summary = project_summary(con, get_project(con, args.project)).to_dict()
            emit(
                args,
                summary,
                kv_table({k: v for k, v in summary.items() if k != "features"})
                + "\nfeatures  "
                + ", ".join(f"{k} ({v})" for k, v in summary["features"].items()),
            )
            return EXIT_OK
        projects = [project_summary(con, p).to_dict() for p in list_projects(con)]
    payload = {"db": str(store.path), "projects": projects}
    if projects:
        frame = pd.DataFrame(projects)[["name", "task", "n_rows", "n_labeled", "pending_labels", "versions"]]
        text = f"database: {store.path}\n" + frame.to_string(index=False)
    else:
        text = f"database: {store.path}\nno projects yet"
    emit(args, payload, text)
    return EXIT_OK


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
                part: {name: _with_interval(table.loc[part], name) for name in ["n_rows", *result.metrics]}
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


def _saved_text(d: dict) -> dict:
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
        emit(args, payload, kv_table(_saved_text(payload)))
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
            text = kv_table(_saved_text(saved.to_dict())) + "\n\n" + shown.to_string(index=False)
    emit(args, payload, text)
    return EXIT_OK


def _with_interval(row: pd.Series, name: str) -> str:
    value = row[name]
    if name == "n_rows":
        return f"{int(value):,}"
    if value != value:
        return "-"
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    if low is None or low != low:
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


# --- parser -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", default=argparse.SUPPRESS, help=f"database file (default: $SLICEBOARD_DB or {default_db_path()})"
    )
    common.add_argument(
        "--format", choices=("table", "json"), default=argparse.SUPPRESS, help="output format (default: table)"
    )
    common.add_argument(
        "--wait",
        type=seconds,
        default=argparse.SUPPRESS,
        help="seconds to wait for a database locked by another process (default 30)",
    )

    # Installed, the command is `sliceboard`; from the folder, `python -m analysis`.
    command = "sliceboard" if sys.argv and sys.argv[0].endswith("sliceboard") else "python -m analysis"
    parser = OneLineParser(
        prog=command,
        parents=[common],
        description="Sliceboard: model evaluation and slice debugging on logged predictions.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", parents=[common], help="build the demo project")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--replace", action="store_true", help="rebuild it if it exists")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ingest", parents=[common], help="ingest predictions from CSV or Parquet")
    p.add_argument("file", help="CSV or Parquet file, folder of them, or glob")
    p.add_argument("--project", required=True)
    p.add_argument(
        "--config",
        help="column mapping TOML (default: the project's stored mapping, "
        "or guessed from column names for a new project)",
    )
    p.add_argument(
        "--on-duplicate",
        choices=("error", "skip", "replace"),
        default="error",
        help="prediction ids already stored: reject the file (default), skip those rows, or replace the stored rows",
    )
    p.add_argument("--version", help="model version for every row (overrides the mapped column)")
    p.add_argument("--stage", help="stage for every row: offline, shadow, canary or production")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "attach", parents=[common], help="a new project over an external Parquet dataset, read in place (no copy)"
    )
    p.add_argument("dataset", nargs="?", help="Parquet file, folder (hive partitions included) or glob")
    p.add_argument("--project", required=True)
    p.add_argument("--config", help="column mapping TOML (default: guessed from column names)")
    p.add_argument("--version", help="model version for every row (overrides the mapped column)")
    p.add_argument("--stage", help="stage for every row: offline, shadow, canary or production")
    p.add_argument("--refresh", action="store_true", help="re-read the project's dataset (new files)")
    p.set_defaults(func=cmd_attach)

    p = sub.add_parser("labels", parents=[common], help="attach late labels and outcomes")
    p.add_argument("file")
    p.add_argument("--project", required=True)
    p.add_argument(
        "--key",
        choices=("prediction", "example"),
        default="prediction",
        help="rows name a prediction id (default) or an example id",
    )
    p.add_argument("--id-column", help="column holding the id (default: from the mapping)")
    p.add_argument("--label-column")
    p.add_argument("--label-timestamp-column")
    p.add_argument(
        "--outcome",
        action="append",
        help="outcome column to attach (repeatable; default: the project's outcome columns present in the file)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace stored labels/outcomes that differ (default: keep and report)"
    )
    p.add_argument("--positive-label", help="a binary project's positive class, if it is not known yet")
    p.add_argument("--negative-label", help="its negative class (default: the labels' other value)")
    p.set_defaults(func=cmd_labels)

    p = sub.add_parser("info", parents=[common], help="projects in the database")
    p.add_argument("--project")
    p.set_defaults(func=cmd_info)

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

    add_valset_parsers(sub, common)

    add_compare_parsers(sub, common)

    add_report_parsers(sub, common)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("db", None), ("format", "table"), ("wait", 30.0)):
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        return guarded(args.func, args)  # every error: one line, exit 2 (75: locked), see analysis.cli.errors
    except BrokenPipeError:
        # The reader stopped early (`sliceboard info | head`): no traceback, and the exit
        # status of a Unix tool stopped by SIGPIPE (128 + 13). Python would complain again
        # when it flushes stdout at exit, so stdout goes nowhere from here.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE

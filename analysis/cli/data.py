"""Commands that bring data in and say what is there: demo, ingest, attach, labels, info."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from analysis.cli.output import (
    EXIT_OK,
    emit,
    kv_table,
    open_store,
)

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


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
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

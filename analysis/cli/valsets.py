"""Command line for validation sets: ``valsets list|create|show|commit|diff|export|
evaluate|remove|ingest-scores`` and ``promote``."""

from __future__ import annotations

import argparse

from analysis.cli import output as base
from analysis.errors import ConfigError


def cmd_valsets(args) -> int:
    from analysis import valsets as vs
    from analysis.store.paths import database_files
    from analysis.store.project import get_project

    needs_set = args.action != "list" and args.action != "evaluate"
    if needs_set and not args.set:
        raise ConfigError(f"valsets {args.action} needs --set")
    writes = args.action in ("create", "commit", "remove", "ingest-scores")
    with base.open_store(args).write(create=False) if writes else base.open_store(args).read() as con:
        project = get_project(con, args.project)
        if args.action == "list":
            frame = vs.list_sets(con, project)
            payload = {"project": project.name, "sets": base.frame_records(frame)}
            text = frame.to_string(index=False) if len(frame) else "no validation sets"
        elif args.action == "create":
            created = vs.create_set(
                con,
                project,
                args.set,
                description=args.description or "",
                owner=args.owner,
                tags=args.tag or (),
                criteria=args.criterion or (),
            )
            payload = created.to_dict()
            text = base.kv_table(payload)
        elif args.action == "show":
            info = vs.get_set(con, project, args.set)
            version = args.set_version or "draft"
            frame = vs.members(con, project, args.set, version)
            history = vs.history(con, project, args.set)
            payload = {
                **info.to_dict(),
                "version": version,
                "members": len(frame),
                "history": base.frame_records(history),
            }
            if args.members:
                payload["rows"] = base.frame_records(frame)
            text = (
                base.kv_table({**info.to_dict(), "version": version, "members": len(frame)})
                + "\n\n"
                + (history.to_string(index=False) if len(history) else "no committed version yet")
            )
        elif args.action == "commit":
            done = vs.commit(con, project, args.set, args.message or "")
            payload = {
                "set": done.set_name,
                "version": done.version,
                "message": done.message,
                "content_hash": done.content_hash,
                "members": done.n_members,
                "committed_at": done.committed_at,
            }
            text = base.kv_table(payload)
        elif args.action == "remove":
            removed = vs.remove_members(con, project, args.set, args.example or [])
            payload = {"set": args.set, "removed_from_draft": removed}
            text = base.kv_table(payload)
        elif args.action == "diff":
            frame = vs.diff(con, project, args.set, args.old or "latest", args.new or "draft")
            payload = {
                "set": args.set,
                "old": args.old or "latest",
                "new": args.new or "draft",
                "added": int((frame["change"] == "added").sum()),
                "removed": int((frame["change"] == "removed").sum()),
                "changes": base.frame_records(frame),
            }
            text = f"{payload['added']} added, {payload['removed']} removed\n" + (
                frame.to_string(index=False) if len(frame) else ""
            )
        elif args.action == "export":
            if not args.out:
                raise ConfigError("valsets export needs --out FILE.parquet or FILE.csv")
            done = vs.export_set(
                con,
                project,
                args.set,
                args.out,
                args.set_version or "latest",
                force=args.force,
                protect=database_files(base.open_store(args).path),
            )
            payload = {"set": args.set, "path": done.path, "rows": done.rows, "columns": list(done.columns)}
            text = base.kv_table(payload)
        elif args.action == "ingest-scores":
            if not args.file or not args.model_version:
                raise ConfigError("valsets ingest-scores needs --file and --model-version")
            report = vs.ingest_scores(
                con,
                project,
                args.set,
                args.file,
                model_version=args.model_version,
                version=args.set_version or "latest",
                on_duplicate=args.on_duplicate,
            )
            payload = {
                "set": args.set,
                "model_version": args.model_version,
                "stage": "offline",
                "inserted": report.inserted,
                "replaced": report.replaced,
                "skipped_duplicates": report.skipped_duplicates,
            }
            text = base.kv_table(payload)
        else:  # evaluate
            with base.on_engine(args, con, project) as econ:
                frame = vs.evaluate(
                    econ, project, [args.set] if args.set else None, version=args.set_version or "latest"
                )
            payload = {"project": project.name, "results": base.frame_records(frame)}
            shown = [
                "set",
                "set_version",
                "model_version",
                "stage",
                "members",
                "scored",
                "labeled",
                "verdict",
                "failed",
            ]
            metrics = [c for c in ("accuracy", "recall", "precision", "roc_auc", "mae", "rmse") if c in frame]
            text = (
                frame[shown[:7] + metrics + shown[7:]].to_string(index=False)
                if len(frame)
                else "no committed validation sets"
            )
    base.emit(args, payload, text)
    return base.EXIT_OK


def cmd_promote(args) -> int:
    from analysis.store.project import get_project
    from analysis.valsets import Selection, preview_promotion, promote

    with base.open_store(args).write(create=False) as con:
        project = get_project(con, args.project)
        slice_, scope = base.slice_scope(args, project)
        selection = Selection(
            scope=scope,
            slice_=slice_,
            only_errors=args.only_errors,
            bucket=args.bucket,
            sample=args.sample,
            seed=args.seed,
        )
        if args.dry_run:
            done = preview_promotion(con, project, args.set, selection)
        else:
            done = promote(con, project, args.set, selection, reason=args.reason or "")
    payload = {
        "set": done.set_name,
        "selected": done.selected,
        "already_in_draft": done.already,
        "added": done.added,
        "dry_run": bool(args.dry_run),
    }
    base.emit(args, payload, base.kv_table(payload))
    return base.EXIT_OK


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "valsets",
        parents=[common],
        help="validation sets: list, create, show, commit, diff, export, evaluate, remove, ingest-scores",
    )
    p.add_argument(
        "action", choices=("list", "create", "show", "commit", "diff", "export", "evaluate", "remove", "ingest-scores")
    )
    p.add_argument("--project", required=True)
    p.add_argument("--set", help="the validation set's name")
    p.add_argument("--description")
    p.add_argument("--owner")
    p.add_argument("--tag", action="append", help="repeatable")
    p.add_argument("--criterion", action="append", help="pass criterion such as 'accuracy >= 0.9' (repeatable)")
    p.add_argument("--message", help="what a commit changes")
    p.add_argument("--set-version", help="a committed version number, 'latest' or 'draft'")
    p.add_argument("--members", action="store_true", help="show: list the members too")
    p.add_argument("--old", help="diff: the older version (default: latest)")
    p.add_argument("--new", help="diff: the newer version (default: draft)")
    p.add_argument("--out", help="export: a .parquet or .csv file")
    p.add_argument("--force", action="store_true", help="export: replace --out if it exists")
    p.add_argument("--file", help="ingest-scores: the scored export")
    p.add_argument("--model-version", help="ingest-scores: the model version that scored it")
    p.add_argument("--on-duplicate", choices=("error", "skip", "replace"), default="error")
    p.add_argument("--example", action="append", help="remove: an example id (repeatable)")
    base.engine_args(p)  # evaluate
    p.set_defaults(func=cmd_valsets)

    p = sub.add_parser("promote", parents=[common], help="add a slice's examples to a validation set's draft")
    p.add_argument("--project", required=True)
    p.add_argument("--set", required=True)
    p.add_argument("--only-errors", action="store_true", help="only the rows the model got wrong")
    p.add_argument("--bucket", help="only one error bucket, such as 'FN confident'")
    p.add_argument("--sample", type=int, help="at most N examples, drawn at random")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed")
    p.add_argument("--reason", help="why these examples matter")
    p.add_argument("--dry-run", action="store_true", help="only count what would be added")
    base.slice_scope_args(p, "the slice to promote (repeatable; ANDed)")
    p.set_defaults(func=cmd_promote)

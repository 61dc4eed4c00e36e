"""Command line: ``python -m analysis <command>``.

Exit codes: 0 success; 1 the gate failed; 2 bad usage or rejected input (nothing
was written); 75 the database stayed locked by another process (try again later).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from analysis.cli.alerts import add_parsers as add_alert_parsers
from analysis.cli.compare import add_parsers as add_compare_parsers
from analysis.cli.data import add_parsers as add_data_parsers
from analysis.cli.discover import add_parsers as add_discover_parsers
from analysis.cli.drift import add_parsers as add_drift_parsers
from analysis.cli.engine import add_parsers as add_engine_parsers
from analysis.cli.errors import EXIT_BROKEN_PIPE, EXIT_BUSY, EXIT_ERROR, OneLineParser, guarded, seconds
from analysis.cli.estimate import add_parsers as add_estimate_parsers
from analysis.cli.monitor import add_parsers as add_monitor_parsers
from analysis.cli.output import (
    EXIT_OK,
)
from analysis.cli.reports import add_parsers as add_report_parsers
from analysis.cli.slices import add_parsers as add_slice_parsers
from analysis.cli.valsets import add_parsers as add_valset_parsers
from analysis.store.connection import default_db_path

__all__ = ["EXIT_BUSY", "EXIT_ERROR", "EXIT_OK", "main", "build_parser"]


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
    # One module per group of commands, each adding its own (in the order of --help).
    for add_parsers in (
        add_data_parsers,
        add_slice_parsers,
        add_discover_parsers,
        add_valset_parsers,
        add_compare_parsers,
        add_drift_parsers,
        add_estimate_parsers,
        add_monitor_parsers,
        add_alert_parsers,
        add_report_parsers,
        add_engine_parsers,
    ):
        add_parsers(sub, common)
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

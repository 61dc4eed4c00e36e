"""How the command line reports errors: one readable line on stderr and exit code 2
(75 for a database another process keeps locked), never a traceback.

* :class:`OneLineParser`: argparse's usage errors (a missing or malformed option)
  as one line naming the option, exit 2;
* option types (:func:`support`, :func:`seconds`) whose refusals are argparse errors;
* :func:`guarded`: runs a command and turns what it raises into that line. Errors
  Sliceboard raises (:mod:`analysis.errors`) carry their own message; a database
  file DuckDB cannot open is named with DuckDB's reason; anything else unexpected
  is one line too, with the internal detail (the traceback) only when the
  environment variable ``SLICEBOARD_DEBUG`` is set to 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

import duckdb

from analysis.errors import DatabaseBusyError, SliceboardError
from analysis.store.connection import default_db_path

EXIT_ERROR = 2
EXIT_BUSY = 75
EXIT_BROKEN_PIPE = 141  # the reader of the output went away (as a Unix tool stopped by SIGPIPE)
DEBUG_ENV = "SLICEBOARD_DEBUG"


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and ``--help`` still
    prints the full usage)."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(EXIT_ERROR, f"error: {self.prog}: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):  # noqa: D102 - argparse's entry point
        # A command's positionals may follow its options (`monitor budget --project P 2`):
        # argparse reads them so only when asked, and never for the parser of commands.
        if self._subparsers is not None or self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False

    _intermixing = False


def support(text: str) -> int | float:
    """``--min-support``: a whole number of rows, or a fraction of them below 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf") or (value >= 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError(
            f"a count of rows such as 50, or a fraction below 1 such as 0.01; not {text!r}"
        )
    return int(value) if value.is_integer() and "." not in text else value


def seconds(text: str) -> float:
    """A number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"a number of seconds such as 30, not {text!r}")
    return value


def database_problem(path) -> str | None:
    """Why ``path`` cannot be a database file before DuckDB tries to open it, or None."""
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.is_dir():
        return f"The database path {path} is a folder; give the path of a database file (--db)."
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"The database path {path} lies under {parent}, which is a file, not a folder."
            break
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _say(args, kind: str, message: str) -> None:
    if getattr(args, "format", "table") == "json":
        print(json.dumps({"error": {"type": kind, "message": message}}, indent=2))
    print(f"error: {message}", file=sys.stderr)


def guarded(func, args) -> int:
    """``func(args)``, with whatever it raises reported as one line (see the module)."""
    db = getattr(args, "db", None)
    try:
        return func(args)
    except BrokenPipeError:  # the reader went away: no one to tell (analysis.cli.main ends quietly)
        raise
    except DatabaseBusyError as exc:
        _say(args, type(exc).__name__, str(exc))
        return EXIT_BUSY
    except SliceboardError as exc:
        _say(args, type(exc).__name__, str(exc))
        return EXIT_ERROR
    except RecursionError:
        _say(args, "RecursionError", "The input nests too deeply to be read (a slice, expression or file).")
        return EXIT_ERROR
    except (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException) as exc:
        path = str(Path(db).expanduser() if db is not None else default_db_path())
        if path in str(exc) or "database file" in str(exc):
            _say(
                args,
                "DatabaseError",
                f"DuckDB could not use the database {path}: {_first_line(exc)} "
                "(is it a Sliceboard database, whole and not damaged?)",
            )
        else:
            _say(args, "DatabaseError", f"DuckDB could not read or write a file: {_first_line(exc)}")
        return EXIT_ERROR
    except OSError as exc:
        name = f" {exc.filename}" if exc.filename else ""
        _say(args, type(exc).__name__, f"{exc.strerror or _first_line(exc)}:{name}".rstrip(":"))
        return EXIT_ERROR
    except Exception as exc:  # the last resort: one line, the detail only on request
        if os.environ.get(DEBUG_ENV) == "1":
            traceback.print_exc()
        _say(
            args,
            type(exc).__name__,
            f"unexpected {type(exc).__name__}: {_first_line(exc)} (set {DEBUG_ENV}=1 for the details)",
        )
        return EXIT_ERROR

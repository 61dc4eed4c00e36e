"""The command line shared by the benchmarks that read the labeled ten-million-row
database ``bench_scale.py`` leaves behind."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = ROOT / "benchmarks" / "output" / "work" / "labels-0.duckdb"


def arguments(doc: str, runs: int) -> argparse.Namespace:
    """``--runs`` and ``--db``; stops with a message when the database is missing."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--db", default=str(DB))
    args = parser.parse_args()
    if not Path(args.db).exists():
        raise SystemExit(f"{args.db} is missing: run benchmarks/bench_scale.py first")
    return args

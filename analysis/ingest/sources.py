"""Reading input into DuckDB: CSV, Parquet (file, folder or glob), DataFrame.

A source becomes a temporary view that later SQL reads from. CSV is read with
every column as text, so that a value that does not convert is reported by our
own checks (with its line) instead of failing the whole read; the types DuckDB
detects are kept as the suggested storage types.
"""

from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from analysis.errors import IngestError
from analysis.ingest.headers import repeated_column
from analysis.store.sql import quote_ident, sql_literal

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
FILE_COLUMN = "__sb_file"


@dataclass
class Source:
    """An input opened as a view named ``view`` in one connection."""

    name: str
    kind: str  # "csv" | "parquet" | "dataframe"
    view: str
    columns: list[str]
    types: dict[str, str]  # detected type per column (CSV: what DuckDB's sniffer saw)
    raw_varchar: bool  # True when the view yields text to be converted (CSV)
    multi_file: bool

    @property
    def row_word(self) -> str:
        """How offending rows are counted in messages."""
        return {"csv": "line", "parquet": "row", "dataframe": "position"}[self.kind]


def _kind_for(path: str) -> str | None:
    lower = path.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def resolve_path(path: str) -> tuple[str, str, bool]:
    """Return (pattern, kind, multi_file) for a file, folder or glob (local, or an object
    store URL such as s3://bucket/lake/, which DuckDB reads through its httpfs extension)."""
    scheme = path.split("://", 1)[0].lower() if "://" in path else ""
    if scheme and scheme != "file":
        if path.endswith("/"):  # a folder in a bucket: every Parquet file below it
            return path + "**/*.parquet", "parquet", True
        kind = _kind_for(path) or "parquet"
        return path, kind, any(ch in path for ch in "*?[")
    p = Path(path.split("://", 1)[1] if scheme == "file" else path).expanduser()

    def check_files(files: list[str], kind: str) -> None:
        # DuckDB reads a 0-byte CSV as one column "column0", a repeated name as "score_1".
        empty = sorted(f for f in files if Path(f).is_file() and Path(f).stat().st_size == 0)
        if empty:
            raise IngestError("the file is empty (0 bytes)", source=empty[0])
        if repeat := repeated_column(sorted(files), kind):
            raise IngestError(
                f"columns {repeat[1]!r} and {repeat[2]!r} differ only in case (or repeat); DuckDB "
                "treats them as the same name. Rename one of them.",
                source=repeat[0],
                column=repeat[2],
            )

    if p.is_dir():
        for kind, suffixes in (("parquet", PARQUET_SUFFIXES), ("csv", CSV_SUFFIXES)):
            for suffix in suffixes:
                pattern = str(p / "**" / f"*{suffix}")
                if matches := globlib.glob(pattern, recursive=True):
                    check_files(matches, kind)
                    return pattern, kind, True
        raise IngestError("the folder holds no .parquet or .csv files", source=path)
    if any(ch in path for ch in "*?["):
        matches = globlib.glob(str(p), recursive=True)
        if not matches:
            raise IngestError("no files match this pattern", source=path)
        kind = _kind_for(path) or _kind_for(matches[0])
        if kind is None:
            raise IngestError("cannot tell the file type; use .csv or .parquet files", source=path)
        check_files(matches, kind)
        return str(p), kind, len(matches) > 1
    if not p.exists():
        raise IngestError("file not found", source=path)
    kind = _kind_for(str(p))
    if kind is None:
        kind = _sniff_kind(p)
    check_files([str(p)], kind)
    return str(p), kind, False


def parquet_scan(path_sql: str, *, dataset: bool, filename: bool = False) -> str:
    """``read_parquet`` of ``path_sql`` (a placeholder or a literal) as Sliceboard reads
    Parquet. ``can_have_nan``: the Parquet spec leaves NaN out of a float column's
    min/max statistics (pyarrow, polars and Spark write such statistics), and DuckDB
    would otherwise trust them and fold ``isnan(x)`` to false for a NaN; with it every
    NaN is seen, and stored (or read) as missing. A ``dataset`` (folder or glob): hive
    partitions (model_version=.../day=...) become columns and files whose columns differ
    are read by name; ``filename`` adds each row's file as a column."""
    options = []
    if filename:
        options.append(f"filename = '{FILE_COLUMN}'")
    if dataset:
        options += ["hive_partitioning = true", "union_by_name = true"]
    options.append("can_have_nan = true")
    return f"read_parquet({path_sql}, {', '.join(options)})"


def _sniff_kind(p: Path) -> str:
    with p.open("rb") as fh:
        head = fh.read(4)
    return "parquet" if head == b"PAR1" else "csv"


def open_source(
    con: duckdb.DuckDBPyConnection,
    source,
    *,
    name: str | None = None,
    view: str = "sb_src",
) -> Source:
    """Open ``source`` (a path or a pandas DataFrame) as a temporary view."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        label = name or "DataFrame"
        frame = source.reset_index(drop=True)
        if any(not isinstance(c, str) for c in frame.columns):
            frame.columns = [str(c) for c in frame.columns]
        seen: dict[str, str] = {}
        for c in frame.columns:
            if c.lower() in seen:
                raise IngestError(
                    f"columns {seen[c.lower()]!r} and {c!r} differ only in case (or repeat); "
                    "DuckDB treats them as the same name. Rename one of them.",
                    source=label,
                    column=c,
                )
            seen[c.lower()] = c
        con.register(f"{view}_df", frame)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(view)} AS SELECT * FROM {quote_ident(view + '_df')}")
        cols, types = _describe(con, view)
        return Source(label, "dataframe", view, cols, types, False, False)

    path = str(source)
    label = name or path
    pattern, kind, multi = resolve_path(path)
    # The input is a temporary view: it never reaches the database file, so a process
    # killed halfway through an ingest leaves nothing behind. (A relation's own
    # create_view is persistent, and loses the name of the file column.)
    try:
        if kind == "parquet":
            # Folders and globs: hive partitions (model_version=.../day=...) become columns,
            # and files whose columns differ are read by name.
            _temp_view(con, view, parquet_scan(sql_literal(pattern), dataset=multi, filename=multi))
            cols, types = _describe(con, view)
            return Source(label, kind, view, cols, types, False, multi)
        sniffed = con.read_csv(pattern)
        detected = {c: str(t) for c, t in zip(sniffed.columns, sniffed.types)}
        file_option = f", filename = {sql_literal(FILE_COLUMN)}" if multi else ""
        _temp_view(con, view, f"read_csv({sql_literal(pattern)}, all_varchar = true{file_option})")
        cols, _ = _describe(con, view)
        types = {c: detected.get(c, "VARCHAR") for c in cols}
        return Source(label, kind, view, cols, types, True, multi)
    except duckdb.Error as exc:
        what = "Parquet" if kind == "parquet" else "CSV"
        raise IngestError(f"cannot be read as {what}: {_first_line(exc)}", source=label) from None


def _temp_view(con: duckdb.DuckDBPyConnection, view: str, table_function: str) -> None:
    con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(view)} AS SELECT * FROM {table_function}")


def _describe(con: duckdb.DuckDBPyConnection, view: str) -> tuple[list[str], dict[str, str]]:
    rows = con.execute(f"DESCRIBE {quote_ident(view)}").fetchall()
    cols = [r[0] for r in rows if r[0] != FILE_COLUMN]
    return cols, {r[0]: str(r[1]) for r in rows if r[0] != FILE_COLUMN}


def close_source(con: duckdb.DuckDBPyConnection, src: Source) -> None:
    con.execute(f"DROP VIEW IF EXISTS {quote_ident(src.view)}")
    if src.kind == "dataframe":
        try:
            con.unregister(f"{src.view}_df")
        except duckdb.Error:
            pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    lines = text.splitlines()
    if "CSV Error on Line" in lines[0]:  # the reason follows the (possibly huge) original line
        reason = next((x.strip() for x in lines[1:] if x.strip() and not x.startswith("Original Line")), "")
        return f"{lines[0]}: {reason}" if reason else lines[0]
    return lines[0]


def count_rows(con: duckdb.DuckDBPyConnection, src: Source) -> int:
    try:
        return con.execute(f"SELECT count(*) FROM {quote_ident(src.view)}").fetchall()[0][0]
    except duckdb.Error as exc:
        raise IngestError(f"cannot be read: {_first_line(exc)}", source=src.name) from None


@dataclass
class SourcePreview:
    """What a file looks like before it is ingested."""

    name: str
    kind: str
    columns: list[str]
    types: dict[str, str]
    n_rows: int
    head: "object"  # pandas DataFrame of the first rows


def preview_source(source, *, name: str | None = None, limit: int = 20) -> SourcePreview:
    """Columns, detected types, row count and first rows, without touching any database."""
    con = duckdb.connect()
    try:
        src = open_source(con, source, name=name, view="sb_preview")
        n = count_rows(con, src)
        cols = ", ".join(quote_ident(c) for c in src.columns)
        head = con.execute(f"SELECT {cols} FROM {quote_ident(src.view)} LIMIT {int(limit)}").df()
        return SourcePreview(src.name, src.kind, src.columns, src.types, n, head)
    finally:
        con.close()

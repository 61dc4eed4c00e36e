"""Offline re-scoring: a set's version exported as a file, and the scores a model gave
it read back as that model's predictions for the members."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from analysis.errors import ConfigError, IngestError
from analysis.ingest.mapping import Mapping
from analysis.ingest.predictions import ingest_predictions
from analysis.ingest.sources import close_source, open_source
from analysis.store.clock import utc_now
from analysis.store.paths import check_target, write_file
from analysis.store.project import Project
from analysis.store.sql import quote_ident
from analysis.valsets.sets import get_set, members, version_number
from analysis.wording import count

# -- the re-scoring loop ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    path: str
    rows: int
    columns: tuple[str, ...]


def _with_class_names(frame: pd.DataFrame, project: Project) -> pd.DataFrame:
    """Binary labels as the project's class names, as the log's source files had them."""
    if project.task == "binary":
        names = project.class_names()
        frame["label"] = frame["label"].map(lambda v: None if pd.isna(v) else names[bool(v)])
    return frame


def export_bytes(
    con: duckdb.DuckDBPyConnection, project: Project, name: str, version: int | str = "latest", fmt: str = "parquet"
) -> tuple[bytes, Export]:
    """A committed version's examples (ids, features as promoted, labels as now known) as
    the bytes of a Parquet or CSV file (``fmt``), for scoring offline; nothing is written."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"Export to a .parquet or .csv file, not {fmt!r}.")
    vs = get_set(con, project, name)
    number = version_number(con, project, vs, version)
    if number == 0:
        raise ConfigError("Export a committed version: commit the draft first, so the scores can be traced to it.")
    m, log = quote_ident(project.members_table), quote_ident(project.log_table)
    feats = "".join(f", m.{quote_ident(f.name)}" for f in project.features)
    frame = con.execute(
        f"""SELECT m.example_id{feats}, coalesce(known.label, m.label) AS label, ? AS validation_set,
                   m.set_version AS set_version
            FROM {m} AS m LEFT JOIN (SELECT example_id, arg_max(label, coalesce(label_timestamp, "timestamp")) AS label
                                     FROM {log} WHERE label IS NOT NULL AND example_id IN
                                       (SELECT example_id FROM {m} WHERE set_id = ? AND set_version = ?)
                                     GROUP BY example_id) AS known ON known.example_id = m.example_id
            WHERE m.set_id = ? AND m.set_version = ? ORDER BY m.example_id""",
        [vs.name, vs.set_id, number, vs.set_id, number],
    ).df()
    frame = _with_class_names(frame, project)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    if fmt == "parquet":
        pq.write_table(table, sink)
    else:
        pacsv.write_csv(table, sink)
    return sink.getvalue().to_pybytes(), Export("", len(frame), tuple(frame.columns))


def export_set(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    name: str,
    path: str,
    version: int | str = "latest",
    *,
    force: bool = True,
    protect=(),
) -> Export:
    """Write a committed version's examples to Parquet or CSV (by the file's suffix), for
    scoring offline: through :func:`analysis.store.paths.write_file` (no links followed, never a
    database, replaced only with ``force``, never half a file)."""

    suffix = str(path).lower().rsplit(".", 1)[-1]
    if suffix not in ("parquet", "csv"):
        raise ConfigError(f"Export to a .parquet or .csv file, not {path!r}.")
    check_target(path, force=force, protect=protect)  # before the query: a refusal costs nothing
    data, done = export_bytes(con, project, name, version, suffix)
    write_file(path, data, force=force, protect=protect)
    return Export(str(path), done.rows, done.columns)


def ingest_scores(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    name: str,
    source,
    *,
    model_version: str,
    version: int | str = "latest",
    prediction: str = "prediction",
    score: str | None = "score",
    on_duplicate: str = "error",
    source_name: str | None = None,
):
    """Ingest a scored export (``example_id`` and ``prediction``, optionally ``score``) as
    predictions of ``model_version`` at stage ``offline``, so that the set's evaluation
    fills in. Each member becomes one prediction with id
    ``<set>@<version>/<model_version>/<example_id>``, the member's features and its
    label; rows for examples that are not members are refused."""

    if not model_version or not str(model_version).strip():
        raise ConfigError("Name the model version that scored the file (--model-version).")
    vs = get_set(con, project, name)
    number = version_number(con, project, vs, version)
    if number == 0:
        raise ConfigError("Scores belong to a committed version of the set.")
    label = source_name or (str(source) if not isinstance(source, pd.DataFrame) else "scored rows")
    src = open_source(con, source, name=label, view="sb_scored")
    try:
        missing = [c for c in ("example_id", prediction) if c not in src.columns]
        if missing:
            raise IngestError(
                f"has no column {', '.join(repr(c) for c in missing)}; a scored export needs "
                f"example_id and {prediction!r}",
                source=label,
            )
        use_score = bool(score) and score in src.columns
        scored = con.execute(
            f"SELECT CAST(example_id AS VARCHAR) AS example_id, {quote_ident(prediction)} AS prediction"
            + (f", {quote_ident(score)} AS score" if use_score else "")
            + " FROM sb_scored"
        ).df()
    finally:
        close_source(con, src)
    if scored["example_id"].isna().any():
        raise IngestError(f"{int(scored['example_id'].isna().sum())} row(s) have no example_id", source=label)
    repeated = scored["example_id"][scored["example_id"].duplicated()].unique().tolist()
    if repeated:
        raise IngestError(f"{len(repeated)} example id(s) appear more than once, such as {repeated[:3]}", source=label)
    mem = members(con, project, name, number)
    unknown = sorted(set(scored["example_id"]) - set(mem["example_id"]))
    if unknown:
        member = "is not a member" if len(unknown) == 1 else "are not members"
        raise IngestError(
            f"{count(len(unknown), 'example id')} {member} of {vs.name!r} version {number}, such as "
            f"{', '.join(repr(u) for u in unknown[:3])}",
            source=label,
        )
    frame = scored.merge(mem.drop(columns=["prediction", "score"], errors="ignore"), on="example_id", how="left")
    frame = _with_class_names(frame, project)
    frame["prediction_id"] = [f"{vs.name}@{number}/{model_version}/{e}" for e in frame["example_id"]]
    frame["timestamp"] = pd.Timestamp(utc_now())
    mapping = Mapping(
        task=project.task,
        positive_label=project.positive_label,
        threshold=project.threshold,
        id="prediction_id",
        example="example_id",
        timestamp="timestamp",
        prediction="prediction",
        score="score" if use_score else None,
        label="label",
        features=[f.name for f in project.features],
        outcomes=[],
        kinds={f.name: f.kind for f in project.features},
    )
    keep = [
        "prediction_id",
        "example_id",
        "timestamp",
        "prediction",
        *(["score"] if use_score else []),
        "label",
        *(f.name for f in project.features),
    ]
    return ingest_predictions(
        con,
        frame[keep],
        project=project.name,
        mapping=mapping,
        version=str(model_version),
        stage="offline",
        on_duplicate=on_duplicate,
        source_name=label,
    )

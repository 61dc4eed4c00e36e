"""Sliceboard's engine: storage, ingest, labels, metrics and the demo project.

Plain Python on DuckDB; it never imports streamlit. Functions take a DuckDB
connection (from :class:`Store`) and plain values, and return DataFrames or
small dataclasses.
"""

from analysis.errors import (
    ConfigError,
    DatabaseBusyError,
    DatabaseNotFoundError,
    IngestError,
    ProjectNotFoundError,
    SliceboardError,
)
from analysis.ingest.labels import LabelReport, attach_labels
from analysis.ingest.mapping import Mapping, guess_mapping, load_mapping, mapping_to_toml, parse_mapping
from analysis.ingest.predictions import IngestReport, ingest_predictions
from analysis.moved import install as install_moved_modules
from analysis.store.connection import Store, default_db_path
from analysis.store.project import Project, get_project, list_projects

__all__ = [
    "ConfigError",
    "DatabaseBusyError",
    "DatabaseNotFoundError",
    "IngestError",
    "IngestReport",
    "LabelReport",
    "Mapping",
    "Project",
    "ProjectNotFoundError",
    "SliceboardError",
    "Store",
    "attach_labels",
    "default_db_path",
    "get_project",
    "guess_mapping",
    "ingest_predictions",
    "list_projects",
    "load_mapping",
    "mapping_to_toml",
    "parse_mapping",
]

install_moved_modules()

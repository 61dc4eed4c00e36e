"""Column mapping: which column of a log file plays which part.

A project is described by a small TOML file::

    [project]
    name = "loans"
    task = "binary"            # binary | multiclass | regression
    positive_label = "default"
    negative_label = "repaid"  # optional: inferred when the data has one other value
    threshold = 0.5            # prediction = score >= threshold when no prediction column

    [columns]
    id = "request_id"
    example = "application_id"
    timestamp = "scored_at"
    version = "model"
    stage = "stage"
    prediction = "decision"
    score = "p_default"
    label = "outcome"
    label_timestamp = "outcome_at"
    features = ["age", "income"]    # default: every column not otherwise mapped
    outcomes = ["revenue", "loss"]

    [kinds]                         # optional: override how a feature is treated
    zip_code = "categorical"        # categorical | numeric | boolean | text | timestamp

    [engine]                        # optional: who answers the analyses (analysis.engines.settings)
    name = "spark"                  # duckdb (default) | spark
    spark_remote = "sc://spark.internal:15002"   # or local[2]
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

import tomli_w

from analysis.engines.settings import settings_from_mapping
from analysis.errors import ConfigError
from analysis.ingest.mapping_file import ROLE_KEYS, read_sections
from analysis.store.schema import FEATURE_KINDS, TASKS

# ROLE_KEYS: roles a single source column can be mapped to, in TOML key order.

# Roles whose values may arrive later, so a predictions file may lack them
# even when the project's stored mapping names them.
LATE_ROLES = ("label", "label_timestamp")


@dataclass
class Mapping:
    """Which source column is which; ``None`` means not present."""

    name: str | None = None
    task: str | None = None
    positive_label: str | None = None
    negative_label: str | None = None
    threshold: float = 0.5
    id: str | None = None
    example: str | None = None
    timestamp: str | None = None
    version: str | None = None
    stage: str | None = None
    prediction: str | None = None
    score: str | None = None
    label: str | None = None
    label_timestamp: str | None = None
    features: list[str] | None = None
    outcomes: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)  # [metrics.NAME]: product metrics
    engine: dict[str, str] = field(default_factory=dict)  # [engine]: name, spark_remote

    def role_columns(self) -> dict[str, str]:
        """{role: source column} for the single-column roles that are mapped."""
        return {k: getattr(self, k) for k in ROLE_KEYS if getattr(self, k)}

    def with_(self, **changes) -> "Mapping":
        return replace(self, **changes)

    def validate(self) -> "Mapping":
        if self.task is not None and self.task not in TASKS:
            raise ConfigError(f"[project] task = {self.task!r} is not one of {', '.join(TASKS)}.")
        if not (isinstance(self.threshold, (int, float)) and 0.0 <= self.threshold <= 1.0):
            raise ConfigError(f"[project] threshold must be a number in [0, 1], got {self.threshold!r}.")
        if self.threshold != self.threshold:  # NaN
            raise ConfigError("[project] threshold must be a number in [0, 1], got NaN.")
        for key in ("positive_label", "negative_label"):
            if getattr(self, key) == "":
                raise ConfigError(f"[project] {key} is empty; name the class as it appears in the data.")
        if self.positive_label is not None and self.positive_label == self.negative_label:
            raise ConfigError(
                f"[project] positive_label and negative_label name the same class "
                f"({self.positive_label!r}); a binary task has two different classes."
            )
        for kind_col, kind in self.kinds.items():
            if kind not in FEATURE_KINDS:
                raise ConfigError(f"[kinds] {kind_col} = {kind!r} is not one of {', '.join(FEATURE_KINDS)}.")
        used: dict[str, str] = {}
        for role, col in self.role_columns().items():
            if col in used and not (role == "example" and used[col] == "id"):
                raise ConfigError(f"Column {col!r} is mapped twice: as {used[col]} and as {role}.")
            used.setdefault(col, role)
        for col in (self.features or []) + list(self.outcomes):
            if col in used:
                raise ConfigError(f"Column {col!r} is mapped as {used[col]} and also listed as a feature or outcome.")
        overlap = set(self.features or []) & set(self.outcomes)
        if overlap:
            raise ConfigError(f"Columns listed both as features and outcomes: {', '.join(sorted(overlap))}.")
        return self


def normalize_class_value(value) -> str | None:
    """The string form a class label is compared in (``True`` -> ``"true"``, 1.0 -> ``"1"``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        # Decimal, not float: integer text beyond 2**53 keeps every digit.
        number = Decimal(text)
    except InvalidOperation:
        return text
    if not number.is_finite():
        return text
    if number == number.to_integral_value():
        return str(int(number))
    return repr(float(number))  # "0.50" and 0.5 compare equal


def mapping_from_dict(data: dict, *, origin: str = "mapping") -> Mapping:
    """Build a :class:`Mapping` from parsed TOML: its shape checked against the declared
    sections (:mod:`analysis.ingest.mapping_file`), then its meaning; a refusal names
    the wrong section or key."""
    sections = read_sections(data, origin)
    settings_from_mapping(sections.engine, origin=origin)  # checked now, stored with the project
    project, columns = sections.project, sections.columns
    mapping = Mapping(
        name=project.name,
        task=project.task,
        positive_label=normalize_class_value(project.positive_label),
        negative_label=normalize_class_value(project.negative_label),
        threshold=float(project.threshold),
        features=list(columns.features) if columns.features is not None else None,
        outcomes=list(columns.outcomes),
        kinds=dict(sections.kinds),
        metrics={name: spec.model_dump(exclude_none=True) for name, spec in sections.metrics.items()},
        engine=dict(sections.engine),
        **{k: getattr(columns, k) for k in ROLE_KEYS},
    )
    return mapping.validate()


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping TOML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read mapping file {p}: {exc.strerror or exc}") from None
    return parse_mapping(text, origin=str(p))


def parse_mapping(text: str, *, origin: str = "mapping") -> Mapping:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from None
    return mapping_from_dict(data, origin=origin)


def mapping_to_toml(mapping: Mapping) -> str:
    """The TOML text of a mapping (round-trips through :func:`parse_mapping`)."""
    project = {
        k: v
        for k, v in (
            ("name", mapping.name),
            ("task", mapping.task),
            ("positive_label", mapping.positive_label),
            ("negative_label", mapping.negative_label),
            ("threshold", mapping.threshold),
        )
        if v is not None
    }
    columns: dict = {k: getattr(mapping, k) for k in ROLE_KEYS if getattr(mapping, k)}
    if mapping.features is not None:
        columns["features"] = list(mapping.features)
    columns["outcomes"] = list(mapping.outcomes)
    data: dict = {"project": project, "columns": columns}
    if mapping.kinds:
        data["kinds"] = dict(mapping.kinds)
    if mapping.metrics:
        data["metrics"] = {name: dict(spec) for name, spec in mapping.metrics.items()}
    if mapping.engine:
        data["engine"] = dict(mapping.engine)
    return tomli_w.dumps(data)


# Name guesses, most specific first. Matching ignores case, spaces, dashes.
_GUESSES: dict[str, tuple[str, ...]] = {
    "id": ("prediction_id", "pred_id", "id", "event_id", "uuid", "request_id"),
    "example": ("example_id", "request_id", "input_id", "sample_id", "application_id"),
    "timestamp": (
        "timestamp",
        "ts",
        "scored_at",
        "predicted_at",
        "prediction_time",
        "event_time",
        "created_at",
        "time",
        "datetime",
        "date",
    ),
    "version": ("model_version", "version", "model", "model_id", "model_name"),
    "stage": ("stage", "deployment_stage", "deployment", "env", "environment"),
    "prediction": ("prediction", "predicted_label", "predicted", "pred", "y_pred", "decision"),
    "score": ("score", "probability", "proba", "prob", "y_score", "y_prob", "confidence"),
    "label": ("label", "y_true", "target", "ground_truth", "truth", "actual", "y"),
    "label_timestamp": ("label_timestamp", "label_ts", "labeled_at", "label_time", "label_at"),
}
_OUTCOME_NAMES = ("revenue", "profit", "loss", "cost", "clicks", "conversions", "converted")


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def guess_mapping(columns: list[str], *, base: Mapping | None = None) -> Mapping:
    """Guess a mapping from column names; keeps whatever ``base`` already sets."""
    mapping = replace(base) if base is not None else Mapping()
    taken = set(mapping.role_columns().values())
    by_norm = {_norm(c): c for c in columns}
    for role in ROLE_KEYS:
        if getattr(mapping, role):
            continue
        for candidate in _GUESSES[role]:
            col = by_norm.get(candidate)
            if col is not None and col not in taken:
                setattr(mapping, role, col)
                taken.add(col)
                break
    if not mapping.outcomes:
        mapping.outcomes = [c for c in columns if _norm(c) in _OUTCOME_NAMES and c not in taken]
    return mapping

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

from analysis.errors import ConfigError
from analysis.store.schema import FEATURE_KINDS, TASKS

# Roles a single source column can be mapped to, in TOML key order.
ROLE_KEYS = (
    "id",
    "example",
    "timestamp",
    "version",
    "stage",
    "prediction",
    "score",
    "label",
    "label_timestamp",
)

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


_PROJECT_KEYS = {"name", "task", "positive_label", "negative_label", "threshold"}
_COLUMN_KEYS = set(ROLE_KEYS) | {"features", "outcomes"}


def mapping_from_dict(data: dict, *, origin: str = "mapping") -> Mapping:
    """Build a :class:`Mapping` from parsed TOML, naming any wrong key."""
    unknown = set(data) - {"project", "columns", "kinds", "metrics", "engine"}
    if unknown:
        raise ConfigError(
            f"{origin}: unknown section(s) {', '.join(sorted(unknown))}; "
            "expected [project], [columns], [kinds], [metrics.NAME], [engine]."
        )
    engine = data.get("engine", {})
    if not isinstance(engine, dict):
        raise ConfigError(f"{origin}: [engine] must be a table (name, spark_remote).")
    from analysis.engines.settings import settings_from_mapping

    settings_from_mapping(engine, origin=origin)  # checked now, stored with the project
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise ConfigError(f'{origin}: product metrics are tables [metrics.NAME] with expression = "...".')
    for name, spec in metrics.items():
        bad = set(spec) - {"expression", "direction", "unit", "format"}
        if bad or not isinstance(spec.get("expression"), str):
            raise ConfigError(
                f'{origin}: [metrics.{name}] needs expression = "..." and may have direction, '
                "unit and format" + (f"; unknown key(s) {', '.join(sorted(bad))}" if bad else "") + "."
            )
        if not all(isinstance(spec.get(k, ""), str) for k in ("direction", "unit", "format")):
            raise ConfigError(f"{origin}: [metrics.{name}] direction, unit and format are strings.")
    project = data.get("project", {})
    columns = data.get("columns", {})
    kinds = data.get("kinds", {})
    for section, allowed, values in (
        ("project", _PROJECT_KEYS, project),
        ("columns", _COLUMN_KEYS, columns),
    ):
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table.")
        bad = set(values) - allowed
        if bad:
            raise ConfigError(
                f"{origin}: unknown key(s) in [{section}]: {', '.join(sorted(bad))}. "
                f"Allowed: {', '.join(sorted(allowed))}."
            )
    if not isinstance(kinds, dict) or not all(isinstance(v, str) for v in kinds.values()):
        raise ConfigError(f"{origin}: [kinds] must map column names to kind names.")
    for key in ROLE_KEYS:
        if key in columns and not isinstance(columns[key], str):
            raise ConfigError(f"{origin}: [columns] {key} must be a column name (a string).")
    for key in ("features", "outcomes"):
        if key in columns and not (isinstance(columns[key], list) and all(isinstance(c, str) for c in columns[key])):
            raise ConfigError(f"{origin}: [columns] {key} must be a list of column names.")
    for key in ("name", "task"):
        if key in project and not isinstance(project[key], str):
            raise ConfigError(f"{origin}: [project] {key} must be a string.")
    for key in ("positive_label", "negative_label"):
        if key in project and not isinstance(project[key], (str, int, float)):
            raise ConfigError(f"{origin}: [project] {key} must be a class value (text, a number or true/false).")
    threshold = project.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ConfigError(f"{origin}: [project] threshold must be a number.")
    mapping = Mapping(
        name=project.get("name"),
        task=project.get("task"),
        positive_label=normalize_class_value(project.get("positive_label")),
        negative_label=normalize_class_value(project.get("negative_label")),
        threshold=float(threshold),
        features=list(columns["features"]) if "features" in columns else None,
        outcomes=list(columns.get("outcomes", [])),
        kinds=dict(kinds),
        metrics={name: dict(spec) for name, spec in metrics.items()},
        engine=dict(engine),
        **{k: columns.get(k) for k in ROLE_KEYS},
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

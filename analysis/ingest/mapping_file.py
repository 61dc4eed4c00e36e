"""The declared shape of a mapping file's sections (see :mod:`analysis.ingest.mapping`):
which sections and keys exist and what type each value has. A file that does not fit is
refused with one readable message naming the section and key; what the values mean
(a known task, a threshold in [0, 1], columns mapped once) is checked by
:meth:`analysis.ingest.mapping.Mapping.validate`."""

from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from analysis.errors import ConfigError

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
SECTIONS = ("project", "columns", "kinds", "metrics", "engine")

Column = StrictStr
ClassValue = Union[StrictStr, StrictBool, StrictInt, StrictFloat]


class _Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ProjectSection(_Section):
    name: StrictStr | None = None
    task: StrictStr | None = None
    positive_label: ClassValue | None = None
    negative_label: ClassValue | None = None
    threshold: float = 0.5  # strict: an int is a number, true and "0.5" are not


class ColumnsSection(_Section):
    id: Column | None = None
    example: Column | None = None
    timestamp: Column | None = None
    version: Column | None = None
    stage: Column | None = None
    prediction: Column | None = None
    score: Column | None = None
    label: Column | None = None
    label_timestamp: Column | None = None
    features: list[Column] | None = None
    outcomes: list[Column] = []


class MetricSection(_Section):
    expression: StrictStr
    direction: StrictStr | None = None
    unit: StrictStr | None = None
    format: StrictStr | None = None


class MappingFile(_Section):
    project: ProjectSection = ProjectSection()
    columns: ColumnsSection = ColumnsSection()
    kinds: dict[StrictStr, StrictStr] = {}
    metrics: dict[StrictStr, MetricSection] = {}
    engine: dict[StrictStr, Any] = {}  # its keys are the engine settings' (analysis.engines.settings)


def _allowed(section: str) -> str:
    model = {"project": ProjectSection, "columns": ColumnsSection}[section]
    return ", ".join(sorted(model.model_fields))


# What a value must be, by (section, key); the first match of an error's place wins.
_MUST_BE = {
    ("project", None): "[project] must be a table.",
    ("columns", None): "[columns] must be a table.",
    ("project", "name"): "[project] name must be a string.",
    ("project", "task"): "[project] task must be a string.",
    ("project", "positive_label"): "[project] positive_label must be a class value (text, a number or true/false).",
    ("project", "negative_label"): "[project] negative_label must be a class value (text, a number or true/false).",
    ("project", "threshold"): "[project] threshold must be a number.",
    ("columns", "features"): "[columns] features must be a list of column names.",
    ("columns", "outcomes"): "[columns] outcomes must be a list of column names.",
    **{("columns", role): f"[columns] {role} must be a column name (a string)." for role in ROLE_KEYS},
    ("kinds", None): "[kinds] must map column names to kind names.",
    ("engine", None): "[engine] must be a table (name, spark_remote).",
}


def _metrics_message(errors: list[dict]) -> str:
    if any(len(e["loc"]) < 3 for e in errors):  # [metrics] or [metrics.NAME] is not a table
        return 'product metrics are tables [metrics.NAME] with expression = "...".'
    name = errors[0]["loc"][1]
    unknown = sorted(str(e["loc"][2]) for e in errors if e["type"] == "extra_forbidden")
    if unknown or any(e["loc"][2] == "expression" for e in errors):
        return (
            f'[metrics.{name}] needs expression = "..." and may have direction, unit and format'
            + (f"; unknown key(s) {', '.join(unknown)}" if unknown else "")
            + "."
        )
    return f"[metrics.{name}] direction, unit and format are strings."


def _message(errors: list[dict]) -> str:
    """One readable sentence for what pydantic found, unknown names first."""
    unknown_sections = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1)
    if unknown_sections:
        return (
            f"unknown section(s) {', '.join(unknown_sections)}; "
            "expected [project], [columns], [kinds], [metrics.NAME], [engine]."
        )
    for section in ("project", "columns"):
        unknown = sorted(
            str(e["loc"][1])
            for e in errors
            if e["type"] == "extra_forbidden" and len(e["loc"]) == 2 and e["loc"][0] == section
        )
        if unknown:
            return f"unknown key(s) in [{section}]: {', '.join(unknown)}. Allowed: {_allowed(section)}."
    metric_errors = [e for e in errors if e["loc"][0] == "metrics"]
    if metric_errors:
        return _metrics_message(metric_errors)
    loc = errors[0]["loc"]
    key = str(loc[1]) if len(loc) > 1 and errors[0]["type"] not in ("model_type", "dict_type") else None
    return _MUST_BE.get((loc[0], key)) or _MUST_BE.get((loc[0], None)) or f"[{loc[0]}] is not valid."


def read_sections(data: dict, origin: str = "mapping") -> MappingFile:
    """The parsed TOML checked against :class:`MappingFile`, or a :class:`ConfigError`
    starting with ``origin`` that names the section and key."""
    try:
        return MappingFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_message(exc.errors())}") from None

"""A source's values as typed SQL expressions, each with the check that names the rows it
cannot convert: numbers, timestamps, text without control characters, class values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analysis.errors import IngestError
from analysis.ingest import convert as cv
from analysis.ingest.class_labels import (
    MAX_MAPPED_VALUES,
    distinct_raw_values,
    mapped_case,
    normalized,
    resolve_binary_classes,
)
from analysis.ingest.sources import Source

MAX_BINARY_VALUES = 50


@dataclass
class SourceValue:
    """A stored column's value from the source: ``sql`` yields NULL where the value
    is bad, ``fail`` (if any) is true exactly there."""

    sql: str
    params: list = field(default_factory=list)
    fail: str | None = None
    fail_params: list = field(default_factory=list)

    def strict(self) -> tuple[str, list]:
        """The value, raising inside DuckDB where it is bad (checked again slowly on failure)."""
        if self.fail is None:
            return self.sql, list(self.params)
        return (
            f"CASE WHEN {self.fail} THEN error('sliceboard: invalid value') ELSE {self.sql} END",
            list(self.fail_params) + list(self.params),
        )


def suggest_column(src: Source, name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, src.columns, n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def require_columns(src: Source, required) -> None:
    """``required``: {role: column} or [(role, column)]; every column must be in the input."""
    pairs = list(required.items()) if isinstance(required, dict) else list(required)
    missing = [(role, col) for role, col in pairs if col not in src.columns]
    if missing:
        problems = [
            f"column {col!r} (mapped as {role}) is not in the input{suggest_column(src, col)}" for role, col in missing
        ]
        raise IngestError(
            "rejected, nothing was written.\n- "
            + "\n- ".join(problems)
            + f"\nColumns in the input: {', '.join(src.columns)}",
            source=src.name,
            column=missing[0][1],
        )


# --- classes --------------------------------------------------------------------------


class ClassColumns:
    """Distinct raw values of the class columns of one input, read once."""

    def __init__(self, con, src: Source, columns: list[str], task: str) -> None:
        self.src = src
        self.task = task
        limit = MAX_BINARY_VALUES if task == "binary" else MAX_MAPPED_VALUES
        self.raw = {c: distinct_raw_values(con, src, c, limit) for c in columns}
        if task == "binary":
            for c, values in self.raw.items():
                if values is None:
                    raise IngestError(
                        f"column {c!r} holds more than {limit} distinct values; a binary task has two "
                        "classes. Is this the right column, or the right task?",
                        source=src.name,
                        column=c,
                    )

    def values(self) -> list[str]:
        out = {normalized(r) for vals in self.raw.values() for r in (vals or [])}
        return sorted(v for v in out if v is not None)

    def resolve(self, positive: str | None, negative: str | None) -> tuple[str | None, str | None]:
        """The binary task's (positive, negative) classes, given what is known and this input."""
        return resolve_binary_classes(self.values(), positive, negative, source=self.src.name, columns=list(self.raw))

    def expr(self, column: str, positive: str | None, negative: str | None) -> SourceValue:
        """Stored prediction/label for ``column``; unknown classes make ``fail`` true."""
        raw, fam = cv.col(column), cv.source_family(self.src, column)
        present = cv.present(raw, fam, number=self.task == "regression")
        values = self.raw[column]
        if self.task == "regression":
            sql = cv.to_double(raw, fam)
            return SourceValue(sql, [], f"{present} AND ({sql}) IS NULL{not_infinite(raw, fam)}")
        if self.task == "multiclass":
            if values is None:
                sql, params = cv.to_class_value(raw, fam), []
            else:
                sql, params = mapped_case(column, {r: normalized(r) for r in values}, "VARCHAR")
            return SourceValue(sql, params)
        classes = {positive: True}
        if negative is not None:
            classes[negative] = False
        mapping = {r: classes.get(normalized(r)) for r in values}
        sql, params = mapped_case(column, mapping, "BOOLEAN")
        bad = [r for r in values if normalized(r) is not None and normalized(r) not in classes]
        if not bad:
            return SourceValue(sql, params)
        return SourceValue(sql, params, f"{raw} IN ({', '.join('?' for _ in bad)})", bad)

    def problem(self, positive: str | None, negative: str | None) -> str:
        if self.task != "binary":
            return "are not numbers" if self.task == "regression" else "are not valid class labels"
        if positive is None or negative is None:
            known, role, other = (
                (positive, "positive", "negative") if negative is None else (negative, "negative", "positive")
            )
            return f"are not a class of this binary task ({role}: {known!r}; name the {other} class with {other}_label)"
        return f"are not one of the two classes {positive!r} (positive) and {negative!r} (negative)"


def class_check(column: str, e: SourceValue, problem: str) -> cv.Check | None:
    if e.fail is None:
        return None
    return cv.Check(column, problem, e.fail, list(e.fail_params), value_sql=f"CAST({cv.col(column)} AS VARCHAR)")


def value_expr(src: Source, column: str, dtype: str) -> SourceValue:
    """Convert a feature or outcome column to its storage type."""
    raw, fam = cv.col(column), cv.source_family(src, column)
    passthrough = {
        ("integer", "BIGINT"): f"CAST({raw} AS BIGINT)",
        ("float", "DOUBLE"): cv.to_double(raw, "float"),
        ("integer", "DOUBLE"): f"CAST({raw} AS DOUBLE)",
        ("boolean", "BOOLEAN"): raw,
        ("boolean", "DOUBLE"): f"CAST({raw} AS DOUBLE)",
        ("string", "VARCHAR"): f"CAST({raw} AS VARCHAR)",
        ("timestamp", "TIMESTAMP"): f"CAST({raw} AS TIMESTAMP)",
        ("timestamptz", "TIMESTAMP"): f"CAST({raw} AS TIMESTAMP)",
        ("date", "DATE"): raw,
        ("date", "TIMESTAMP"): f"CAST({raw} AS TIMESTAMP)",
    }.get((fam, dtype))
    if passthrough is not None:
        return SourceValue(passthrough)
    sql = cv.to_storage(raw, fam, dtype)
    inf = not_infinite(raw, fam) if dtype == "DOUBLE" else ""
    return SourceValue(sql, [], f"{cv.present(raw, fam, number=dtype == 'DOUBLE')} AND ({sql}) IS NULL{inf}")


def not_infinite(raw: str, family: str) -> str:
    """`` AND NOT <infinite>``: an infinity is not a conversion failure (it has rules of its own)."""
    inf = cv.infinite(raw, family)
    return f" AND NOT coalesce({inf}, FALSE)" if inf else ""


def must_be_finite(src: Source, column: str, e: SourceValue) -> tuple[SourceValue, cv.Check | None]:
    """A score, label or prediction must be finite: +-inf fails ``e`` and is named by the check."""
    check = cv.finite_check(src, column)
    if check is None:
        return e, None
    fail = f"({e.fail}) OR {check.condition}" if e.fail else check.condition
    return SourceValue(e.sql, e.params, fail, list(e.fail_params)), check


def numeric_class(task: str, src: Source, column: str) -> bool:
    """Labels and predictions that are numbers (regression, or numeric classes) must be finite."""
    return task == "regression" or (task == "multiclass" and cv.source_family(src, column) == "float")


def conversion_check(column: str, e: SourceValue, problem: str) -> cv.Check | None:
    if e.fail is None:
        return None
    return cv.Check(column, problem, e.fail, list(e.fail_params), value_sql=f"CAST({cv.col(column)} AS VARCHAR)")


# C0 and C1 control characters (NUL, tab, line breaks, escape...), as RE2 escapes: the SQL
# text itself holds none. An id or version with one cannot be typed on a command line.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f]"


def has_control_character(text: str) -> bool:
    return re.search(CONTROL_CHARACTERS, text) is not None


def clean_text(column: str, e: SourceValue, what: str) -> tuple[SourceValue, cv.Check]:
    """``e`` (text) refusing control characters, and the check that names the rows."""
    bad = f"regexp_matches(coalesce(({e.sql}), ''), '{CONTROL_CHARACTERS}')"
    check = cv.Check(
        column,
        f"have a control character in their {what} (such as NUL, a tab or a line break)",
        bad,
        list(e.params),
        value_sql=f"CAST({cv.col(column)} AS VARCHAR)",
    )
    fail = f"({e.fail}) OR {bad}" if e.fail else bad
    return SourceValue(e.sql, e.params, fail, list(e.fail_params) + list(e.params)), check


def required_check(src: Source, column: str, problem: str, *, number: bool = False) -> cv.Check:
    raw = cv.col(column)
    return cv.Check(column, problem, f"NOT ({cv.present(raw, cv.source_family(src, column), number=number)})")

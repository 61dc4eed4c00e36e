"""Slices as data: a predicate tree over the columns of a project's log.

A :class:`Slice` is an AND of terms; a term is a :class:`Condition` on one column, or
an :class:`Or`, :class:`And` or :class:`Not` of terms. It serializes to JSON
(:meth:`Slice.to_json`), has a readable form that :func:`analysis.slices.parse.parse_slice`
reads back (``country = NG AND (age < 25 OR income < 1000)``), and compiles to SQL in
one place, :mod:`analysis.slices.compile`.

Condition operators:

* ``in`` / ``not_in``: the value is (not) one of a set. ``not_in`` keeps rows
  where the column is null ("everything but NG" includes unknown countries).
* ``between``: a numeric or timestamp range; either bound may be open
  (``None``), each bound inclusive or not. Null values are outside any range.
* ``is_true`` / ``is_false``: a boolean column.
* ``is_null`` / ``not_null``.
* ``contains``: a text or categorical value contains a substring (case-sensitive).

``NOT`` is the complement within the rows: ``NOT country = NG`` keeps the rows whose
country is unknown, as ``country != NG`` does.

Readable form, conditions joined by ``AND`` and ``OR`` (``AND`` binds tighter), ``NOT``
and parentheses::

    country = NG                     country != NG
    country in (NG, "South Africa")  country not in (NG, KE)
    age < 25      income >= 1000     18 <= age < 25
    has_cosigner is true             credit_history_years is null
    applicant_note contains "refund"
    `odd column` = "a \\"quoted\\" value"
    region = east AND (age < 25 OR NOT has_cosigner is true)

Strings are written bare when they are plain words or numbers, otherwise in
double quotes with JSON escapes; column names with other characters go in
backticks (a backtick inside is doubled).

JSON: ``{"conditions": [term, ...]}``, a term being a condition's fields
(``{"column": ..., "op": ...}``), ``{"any": [term, ...]}``, ``{"all": [term, ...]}``
or ``{"not": term}``. Slices saved before compound terms existed are lists of
conditions, and load as they are.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Union

from analysis.errors import ConfigError
from analysis.slices.json_types import FIELDS, condition_fields
from analysis.slices.json_types import load as load_json

OPS = ("in", "not_in", "between", "is_true", "is_false", "is_null", "not_null", "contains")
KINDS_FOR_OP = {
    "in": {"categorical", "text", "numeric", "boolean", "timestamp", "code"},
    "not_in": {"categorical", "text", "numeric", "boolean", "timestamp", "code"},
    "between": {"numeric", "timestamp", "code"},
    "is_true": {"boolean"},
    "is_false": {"boolean"},
    "is_null": {"categorical", "text", "numeric", "boolean", "timestamp", "code"},
    "not_null": {"categorical", "text", "numeric", "boolean", "timestamp", "code"},
    "contains": {"categorical", "text"},
}
MAX_VALUES = 10_000
MAX_TEXT = 10_000


MAX_DEPTH = 32  # nesting of AND / OR / NOT a slice may have


@dataclass(frozen=True)
class Condition:
    """One condition on one column (see the module docstring for ``op``)."""

    column: str
    op: str
    values: tuple = ()
    low: float | str | None = None
    high: float | str | None = None
    low_inclusive: bool = True
    high_inclusive: bool = False
    text: str | None = None

    def to_dict(self) -> dict:
        d: dict = {"column": self.column, "op": self.op}
        if self.op in ("in", "not_in"):
            d["values"] = list(self.values)
        elif self.op == "between":
            d.update(
                low=_json_number(self.low),
                high=_json_number(self.high),
                low_inclusive=self.low_inclusive,
                high_inclusive=self.high_inclusive,
            )
        elif self.op == "contains":
            d["text"] = self.text
        return d

    @classmethod
    def from_dict(cls, d: dict, where: int | str | None = None) -> "Condition":
        if not isinstance(d, dict) or "column" not in d or "op" not in d:
            shown = repr(d) if len(repr(d)) <= 80 else repr(d)[:77] + "..."
            raise ConfigError(
                f"A slice condition needs 'column' and 'op' (or a term 'any', 'all' or 'not' of them): {shown}"
            )
        unknown = set(d) - set(FIELDS)
        if unknown:
            raise ConfigError(f"Unknown key(s) in a slice condition: {', '.join(sorted(map(str, unknown)))}")
        f = condition_fields(d, where)  # declared types, strictly (analysis.slices.json_types)
        cond = cls(
            column=f["column"],
            op=f["op"],
            values=tuple(f["values"] or ()),
            low=f["low"],
            high=f["high"],
            low_inclusive=f["low_inclusive"],
            high_inclusive=f["high_inclusive"],
            text=f["text"],
        )
        cond.check_shape()
        return cond

    def check_shape(self) -> None:
        """Structural checks that need no schema."""
        if not isinstance(self.column, str) or not self.column:
            raise ConfigError(f"A slice condition names no column: {self.column!r}")
        if self.op not in OPS:
            raise ConfigError(f"Unknown slice operator {self.op!r}; operators are {', '.join(OPS)}.")
        if self.op in ("in", "not_in"):
            if not self.values:
                raise ConfigError(f"{self.column} {self.op}: give at least one value.")
            if len(self.values) > MAX_VALUES:
                raise ConfigError(f"{self.column} {self.op}: at most {MAX_VALUES:,} values.")
        if self.op == "between" and self.low is None and self.high is None:
            raise ConfigError(f"{self.column}: a range needs a lower or an upper bound.")
        if self.op == "contains" and (not isinstance(self.text, str) or self.text == ""):
            raise ConfigError(f"{self.column} contains: give the text to look for.")
        if self.op == "contains" and len(self.text) > MAX_TEXT:
            raise ConfigError(f"{self.column} contains: the text is longer than {MAX_TEXT:,} characters.")

    def columns(self) -> list[str]:
        return [self.column]

    def readable(self) -> str:
        col = show_column(self.column)
        if self.op in ("in", "not_in"):
            if len(self.values) == 1:
                return f"{col} {'=' if self.op == 'in' else '!='} {show_value(self.values[0])}"
            shown = ", ".join(show_value(v) for v in self.values)
            return f"{col} {'in' if self.op == 'in' else 'not in'} ({shown})"
        if self.op == "between":
            low_op = "<=" if self.low_inclusive else "<"
            high_op = "<=" if self.high_inclusive else "<"
            if self.low is not None and self.high is not None:
                return f"{show_value(self.low)} {low_op} {col} {high_op} {show_value(self.high)}"
            if self.low is not None:
                return f"{col} {'>=' if self.low_inclusive else '>'} {show_value(self.low)}"
            return f"{col} {high_op} {show_value(self.high)}"
        if self.op == "contains":
            return f"{col} contains {show_value(self.text)}"
        return f"{col} is {self.op.replace('is_', '').replace('not_null', 'not null')}"


def _json_number(value):
    """JSON has no infinities: they travel as the text "inf" / "-inf"."""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


@dataclass(frozen=True)
class And:
    """Every one of its terms (inside an OR or a NOT; a slice's own terms are an AND)."""

    terms: tuple["Term", ...]

    def columns(self) -> list[str]:
        return [c for t in self.terms for c in t.columns()]

    def to_dict(self) -> dict:
        return {"all": [t.to_dict() for t in self.terms]}

    def readable(self) -> str:
        return " AND ".join(_grouped(t, Or) for t in self.terms)


@dataclass(frozen=True)
class Or:
    """At least one of its terms."""

    terms: tuple["Term", ...]

    def columns(self) -> list[str]:
        return [c for t in self.terms for c in t.columns()]

    def to_dict(self) -> dict:
        return {"any": [t.to_dict() for t in self.terms]}

    def readable(self) -> str:
        return " OR ".join(_grouped(t, And, Or) for t in self.terms)


@dataclass(frozen=True)
class Not:
    """The rows its term leaves out (rows where the term's column is null included)."""

    term: "Term"

    def columns(self) -> list[str]:
        return self.term.columns()

    def to_dict(self) -> dict:
        return {"not": self.term.to_dict()}

    def readable(self) -> str:
        return "NOT " + _grouped(self.term, And, Or)


Term = Union[Condition, And, Or, Not]
COMPOUND = {"all": And, "any": Or}


def _grouped(term: Term, *kinds: type) -> str:
    """A term's readable form, in parentheses where its neighbours would otherwise bind
    it differently (an OR inside an AND) or a reader would have to think about it."""
    text = term.readable()
    return f"({text})" if isinstance(term, kinds) else text


def term_from_dict(d, where: str, depth: int = 0) -> Term:
    """A term from its JSON form (see the module docstring), every refusal naming where."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"The slice nests AND, OR and NOT more than {MAX_DEPTH} deep.")
    if isinstance(d, dict) and len(d) == 1 and next(iter(d)) in ("all", "any", "not"):
        ((key, inner),) = d.items()
        if key == "not":
            return Not(term_from_dict(inner, f"{where}.not", depth + 1))
        if not isinstance(inner, list) or len(inner) < 2:
            raise ConfigError(f"In the slice, {where}.{key} must be a list of at least two terms.")
        return COMPOUND[key](tuple(term_from_dict(t, f"{where}.{key}[{i}]", depth + 1) for i, t in enumerate(inner)))
    return Condition.from_dict(d, where)


@dataclass(frozen=True)
class Slice:
    """An AND of terms; no terms means every row. ``conditions`` are the AND's terms
    (each a :class:`Condition`, or an OR, AND or NOT of them)."""

    conditions: tuple[Term, ...] = field(default=())

    @classmethod
    def of(cls, *conditions: Term) -> "Slice":
        return cls(tuple(conditions))

    def and_(self, condition: Term) -> "Slice":
        return Slice(self.conditions + (condition,))

    def columns(self) -> list[str]:
        return [c for t in self.conditions for c in t.columns()]

    def to_dict(self) -> dict:
        return {"conditions": [c.to_dict() for c in self.conditions]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Slice":
        if not isinstance(d, dict) or not isinstance(d.get("conditions", []), list):
            raise ConfigError("A slice is an object with a list of 'conditions'.")
        unknown = set(d) - {"conditions"}
        if unknown:
            raise ConfigError(f"Unknown key(s) in a slice: {', '.join(sorted(map(str, unknown)))}")
        return cls(tuple(term_from_dict(c, f"conditions[{i}]") for i, c in enumerate(d.get("conditions", []))))

    @classmethod
    def from_json(cls, text: str) -> "Slice":
        """A slice from JSON whose fields have their declared types (:mod:`analysis.slices.json_types`)."""
        return cls.from_dict(load_json(text))

    def readable(self) -> str:
        if len(self.conditions) == 1:
            return self.conditions[0].readable()
        return " AND ".join(_grouped(c, Or) for c in self.conditions) or "all rows"

    def __str__(self) -> str:
        return self.readable()


# --- values and names as written -------------------------------------------------------------

_BARE = re.compile(r"^[A-Za-z0-9_.:+\-]+$")
_BARE_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words of the readable form: a column or value spelled like one is quoted.
WORDS = {"and", "or", "in", "not", "is", "null", "true", "false", "contains"}


def show_column(name: str) -> str:
    if _BARE_COLUMN.match(name) and name.lower() not in WORDS:
        return name
    return "`" + name.replace("`", "``") + "`"


def show_value(value) -> str:
    if isinstance(value, bool):
        return json.dumps(str(value).lower())
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return json.dumps(repr(value))
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value)
    if _BARE.match(text) and text.lower() not in WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)

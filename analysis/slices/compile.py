"""A slice compiled to SQL, in this one place: ``(sql, params)`` where every value is a
bound parameter (``?``, in the order of its mark) and every column name comes from the
schema the slice is compiled against (a project's log, or discovery's encoded rows; see
:class:`SliceColumns`), quoted by :func:`analysis.store.sql.quote_ident`. Values are
checked against their column's kind here, and :func:`validate_slice` gives them their type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from analysis.errors import ConfigError
from analysis.slices.model import KINDS_FOR_OP, And, Condition, Not, Or, Slice, Term
from analysis.store.project import Project
from analysis.store.sql import Sql, quote_ident

# --- columns a slice may use ---------------------------------------------------------


def slice_columns(project: Project) -> dict[str, str]:
    """Column name -> kind, for every column a slice may condition on."""
    outcome = {"binary": "boolean", "multiclass": "categorical", "regression": "numeric"}[project.task]
    cols = {c.name: c.kind for c in project.features}
    cols.update({c.name: "numeric" for c in project.outcomes})
    cols.update(
        {
            "model_version": "categorical",
            "stage": "categorical",
            "timestamp": "timestamp",
            "score": "numeric",
            "prediction": outcome,
            "label": outcome,
            "label_timestamp": "timestamp",
        }
    )
    return cols


@dataclass(frozen=True)
class SliceColumns:
    """The columns a slice is compiled against: each one's kind, and the words a
    boolean column's values may be written in (a binary project's class names)."""

    kinds: Mapping[str, str]
    owner: str
    flag_words: Mapping[str, Mapping[bool, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, project: Project) -> "SliceColumns":
        """The columns of ``project``'s log."""
        words: dict = {}
        if project.task == "binary":
            names = {k: (v or str(k)).lower() for k, v in project.class_names().items()}
            words = {"label": names, "prediction": names}
        return cls(slice_columns(project), project.name, words)

    @classmethod
    def codes(cls, columns) -> "SliceColumns":
        """Integer-coded columns (discovery's encoded rows), one code per value or bin."""
        return cls(dict.fromkeys(columns, "code"), "the encoded rows")

    def kind(self, column: str) -> str:
        if column not in self.kinds:
            known = ", ".join(sorted(self.kinds))
            raise ConfigError(f"Unknown column {column!r} in the slice. Columns of {self.owner}: {known}.")
        return self.kinds[column]


def _columns(where: "Project | SliceColumns") -> SliceColumns:
    return where if isinstance(where, SliceColumns) else SliceColumns.of(where)


# --- values ---------------------------------------------------------------------------------


def _coerce(value, kind: str, column: str, columns: SliceColumns):
    """A condition value as the Python type DuckDB binds for the column."""
    if value is None:
        raise ConfigError(f"{column}: null is not a value; use 'is null'.")
    if kind in ("categorical", "text"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)
    if kind == "numeric":
        if isinstance(value, bool):
            return float(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{column}: {value!r} is not a number.") from None
        if math.isnan(number):
            raise ConfigError(f"{column}: NaN is not a number to compare with.")
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        names = columns.flag_words.get(column, {True: "true", False: "false"})
        for flag in (True, False):
            if text in (names[flag], str(flag).lower(), str(int(flag))):
                return flag
        raise ConfigError(f"{column}: {value!r} is not true or false.")
    if kind == "code":
        if isinstance(value, bool) or not float(value).is_integer():
            raise ConfigError(f"{column}: {value!r} is not a code.")
        return int(value)
    if kind == "timestamp":  # stored as UTC instants: a bound with an offset is converted to UTC
        if not isinstance(value, (datetime, date)):
            try:
                value = datetime.fromisoformat(str(value).strip())
            except ValueError:
                raise ConfigError(f"{column}: {value!r} is not a date or timestamp (use YYYY-MM-DD).") from None
        if not isinstance(value, datetime):
            return datetime.combine(value, datetime.min.time())
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None)
    raise ConfigError(f"{column}: unsupported column kind {kind!r}.")


def _bound(value, kind: str, column: str, columns: SliceColumns, side: str = "low"):
    """A range bound; -inf as a lower or +inf as an upper bound means open (an
    infinity on the other side stays: nothing is below -inf)."""
    if value is None:
        return None
    coerced = _coerce(value, kind, column, columns)
    if kind == "numeric" and math.isinf(coerced) and (coerced < 0) == (side == "low"):
        return None
    return coerced


# --- the one compiler --------------------------------------------------------------------


def compile_condition(cond: Condition, where: "Project | SliceColumns") -> tuple[str, list]:
    cond.check_shape()
    columns = _columns(where)
    kind = columns.kind(cond.column)
    if kind not in KINDS_FOR_OP[cond.op]:
        raise ConfigError(
            f"{cond.column} is a {kind} column; '{cond.op}' applies to "
            f"{', '.join(sorted(KINDS_FOR_OP[cond.op]))} columns."
        )
    col = quote_ident(cond.column)
    if cond.op in ("in", "not_in"):
        values = list(dict.fromkeys(_coerce(v, kind, cond.column, columns) for v in cond.values))
        marks = ", ".join("?" for _ in values)
        if cond.op == "in":
            return f"{col} IN ({marks})", values
        return f"({col} IS NULL OR {col} NOT IN ({marks}))", values
    if cond.op == "between":
        low = _bound(cond.low, kind, cond.column, columns, "low")
        high = _bound(cond.high, kind, cond.column, columns, "high")
        parts, params = [f"{col} IS NOT NULL"], []
        if low is not None:
            parts.append(f"{col} {'>=' if cond.low_inclusive else '>'} ?")
            params.append(low)
        if high is not None:
            parts.append(f"{col} {'<=' if cond.high_inclusive else '<'} ?")
            params.append(high)
        return "(" + " AND ".join(parts) + ")", params
    if cond.op == "is_true":
        return f"{col} = TRUE", []
    if cond.op == "is_false":
        return f"{col} = FALSE", []
    if cond.op == "is_null":
        return f"{col} IS NULL", []
    if cond.op == "not_null":
        return f"{col} IS NOT NULL", []
    # contains: position() is standard SQL (DuckDB and Spark); no pattern characters.
    return f"position(? IN {col}) > 0", [cond.text]


def compile_term(term: Term, where: "Project | SliceColumns") -> Sql:
    """One term as a fragment, its parameters in the order of their marks."""
    columns = _columns(where)
    if isinstance(term, Condition):
        return Sql.of(compile_condition(term, columns))
    if isinstance(term, Not):
        # A condition on a null value is unknown; NOT keeps those rows (the complement).
        return Sql.compose("NOT coalesce(({term}), FALSE)", term=compile_term(term.term, columns))
    joiner = " AND " if isinstance(term, And) else " OR "
    return Sql.compose("({terms})", terms=Sql.join(joiner, [compile_term(t, columns) for t in term.terms]))


def compile_slice(slice_: Slice, where: "Project | SliceColumns") -> Sql:
    """The fragment selecting the slice's rows of a project's log (or of the rows
    ``where`` describes); ``TRUE`` for all rows."""
    if not slice_.conditions:
        return Sql("TRUE")
    columns = _columns(where)
    return Sql.join(" AND ", [compile_term(t, columns) for t in slice_.conditions])


def validate_slice(slice_: Slice, project: Project) -> Slice:
    """The slice with its values in their column's type (numbers as numbers,
    timestamps as ISO text), or a readable :class:`ConfigError` if it does not
    fit the project. Saved slices and links keep this form."""
    columns = SliceColumns.of(project)
    compile_slice(slice_, columns)

    def typed(value, column):
        v = _coerce(value, columns.kind(column), column, columns)
        return v.isoformat() if isinstance(v, datetime) else v

    def typed_term(c: Term) -> Term:
        if isinstance(c, Not):
            return Not(typed_term(c.term))
        if isinstance(c, (And, Or)):
            return type(c)(tuple(typed_term(t) for t in c.terms))
        if c.op in ("in", "not_in"):
            return Condition(c.column, c.op, values=tuple(dict.fromkeys(typed(v, c.column) for v in c.values)))
        if c.op == "between":
            kind = columns.kind(c.column)
            low = _bound(c.low, kind, c.column, columns, "low")
            high = _bound(c.high, kind, c.column, columns, "high")
            if low is None and high is None:  # both bounds infinite: every non-null value
                return Condition(c.column, "not_null")
            return Condition(
                c.column,
                c.op,
                low=low.isoformat() if isinstance(low, datetime) else low,
                high=high.isoformat() if isinstance(high, datetime) else high,
                low_inclusive=c.low_inclusive,
                high_inclusive=c.high_inclusive,
            )
        return c

    return Slice(tuple(typed_term(c) for c in slice_.conditions))

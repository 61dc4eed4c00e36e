"""Slices as data: an AND of conditions, each on one column of a project's log.

A :class:`Slice` serializes to JSON (:meth:`Slice.to_json`), has a readable
form that :func:`parse_slice` reads back (``country = NG AND age < 25``), and
compiles to ``(sql_fragment, params)`` in exactly one place,
:func:`compile_slice`: values are always bound parameters, column names come
only from the project's schema and are quoted by :func:`analysis.store.sql.quote_ident`.

Condition operators:

* ``in`` / ``not_in``: the value is (not) one of a set. ``not_in`` keeps rows
  where the column is null ("everything but NG" includes unknown countries).
* ``between``: a numeric or timestamp range; either bound may be open
  (``None``), each bound inclusive or not. Null values are outside any range.
* ``is_true`` / ``is_false``: a boolean column.
* ``is_null`` / ``not_null``.
* ``contains``: a text or categorical value contains a substring (case-sensitive).

Readable form, one condition per ``AND`` term::

    country = NG                     country != NG
    country in (NG, "South Africa")  country not in (NG, KE)
    age < 25      income >= 1000     18 <= age < 25
    has_cosigner is true             credit_history_years is null
    applicant_note contains "refund"
    `odd column` = "a \\"quoted\\" value"

Strings are written bare when they are plain words or numbers, otherwise in
double quotes with JSON escapes; column names with other characters go in
backticks (a backtick inside is doubled).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from analysis.errors import ConfigError
from analysis.slices.json_types import FIELDS, condition_fields
from analysis.slices.json_types import load as load_json
from analysis.store.project import Project
from analysis.store.sql import quote_ident

OPS = ("in", "not_in", "between", "is_true", "is_false", "is_null", "not_null", "contains")
KINDS_FOR_OP = {
    "in": {"categorical", "text", "numeric", "boolean", "timestamp"},
    "not_in": {"categorical", "text", "numeric", "boolean", "timestamp"},
    "between": {"numeric", "timestamp"},
    "is_true": {"boolean"},
    "is_false": {"boolean"},
    "is_null": {"categorical", "text", "numeric", "boolean", "timestamp"},
    "not_null": {"categorical", "text", "numeric", "boolean", "timestamp"},
    "contains": {"categorical", "text"},
}
MAX_VALUES = 10_000
MAX_TEXT = 10_000


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
    def from_dict(cls, d: dict, index: int | None = None) -> "Condition":
        if not isinstance(d, dict) or "column" not in d or "op" not in d:
            shown = repr(d) if len(repr(d)) <= 80 else repr(d)[:77] + "..."
            raise ConfigError(f"A slice condition needs 'column' and 'op': {shown}")
        unknown = set(d) - set(FIELDS)
        if unknown:
            raise ConfigError(f"Unknown key(s) in a slice condition: {', '.join(sorted(map(str, unknown)))}")
        f = condition_fields(d, index)  # declared types, strictly (analysis.slices.json_types)
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

    def readable(self) -> str:
        col = _show_column(self.column)
        if self.op in ("in", "not_in"):
            if len(self.values) == 1:
                return f"{col} {'=' if self.op == 'in' else '!='} {_show_value(self.values[0])}"
            shown = ", ".join(_show_value(v) for v in self.values)
            return f"{col} {'in' if self.op == 'in' else 'not in'} ({shown})"
        if self.op == "between":
            low_op = "<=" if self.low_inclusive else "<"
            high_op = "<=" if self.high_inclusive else "<"
            if self.low is not None and self.high is not None:
                return f"{_show_value(self.low)} {low_op} {col} {high_op} {_show_value(self.high)}"
            if self.low is not None:
                return f"{col} {'>=' if self.low_inclusive else '>'} {_show_value(self.low)}"
            return f"{col} {high_op} {_show_value(self.high)}"
        if self.op == "contains":
            return f"{col} contains {_show_value(self.text)}"
        return f"{col} is {self.op.replace('is_', '').replace('not_null', 'not null')}"


def _json_number(value):
    """JSON has no infinities: they travel as the text "inf" / "-inf"."""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


@dataclass(frozen=True)
class Slice:
    """An AND of conditions; no conditions means every row."""

    conditions: tuple[Condition, ...] = field(default=())

    @classmethod
    def of(cls, *conditions: Condition) -> "Slice":
        return cls(tuple(conditions))

    def and_(self, condition: Condition) -> "Slice":
        return Slice(self.conditions + (condition,))

    def columns(self) -> list[str]:
        return [c.column for c in self.conditions]

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
        return cls(tuple(Condition.from_dict(c, i) for i, c in enumerate(d.get("conditions", []))))

    @classmethod
    def from_json(cls, text: str) -> "Slice":
        """A slice from JSON whose fields have their declared types (:mod:`analysis.slices.json_types`)."""
        return cls.from_dict(load_json(text))

    def readable(self) -> str:
        return " AND ".join(c.readable() for c in self.conditions) or "all rows"

    def __str__(self) -> str:
        return self.readable()


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


def _kind(project: Project, column: str) -> str:
    cols = slice_columns(project)
    if column not in cols:
        known = ", ".join(sorted(cols))
        raise ConfigError(f"Unknown column {column!r} in the slice. Columns of {project.name}: {known}.")
    return cols[column]


# --- values ---------------------------------------------------------------------------------


def _coerce(value, kind: str, column: str, project: Project):
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
        names = {True: "true", False: "false"}
        if project.task == "binary" and column in ("label", "prediction"):
            names = {k: (v or names[k]).lower() for k, v in project.class_names().items()}
        for flag in (True, False):
            if text in (names[flag], str(flag).lower(), str(int(flag))):
                return flag
        raise ConfigError(f"{column}: {value!r} is not true or false.")
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


def _bound(value, kind: str, column: str, project: Project, side: str = "low"):
    """A range bound; -inf as a lower or +inf as an upper bound means open (an
    infinity on the other side stays: nothing is below -inf)."""
    if value is None:
        return None
    coerced = _coerce(value, kind, column, project)
    if kind == "numeric" and math.isinf(coerced) and (coerced < 0) == (side == "low"):
        return None
    return coerced


# --- the one compiler --------------------------------------------------------------------


def compile_condition(cond: Condition, project: Project) -> tuple[str, list]:
    cond.check_shape()
    kind = _kind(project, cond.column)
    if kind not in KINDS_FOR_OP[cond.op]:
        raise ConfigError(
            f"{cond.column} is a {kind} column; '{cond.op}' applies to "
            f"{', '.join(sorted(KINDS_FOR_OP[cond.op]))} columns."
        )
    col = quote_ident(cond.column)
    if cond.op in ("in", "not_in"):
        values = list(dict.fromkeys(_coerce(v, kind, cond.column, project) for v in cond.values))
        marks = ", ".join("?" for _ in values)
        if cond.op == "in":
            return f"{col} IN ({marks})", values
        return f"({col} IS NULL OR {col} NOT IN ({marks}))", values
    if cond.op == "between":
        low = _bound(cond.low, kind, cond.column, project, "low")
        high = _bound(cond.high, kind, cond.column, project, "high")
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


def compile_slice(slice_: Slice, project: Project) -> tuple[str, list]:
    """``(sql, params)`` selecting the slice's rows of ``project``'s log; ``TRUE`` for all rows."""
    parts, params = [], []
    for cond in slice_.conditions:
        sql, p = compile_condition(cond, project)
        parts.append(sql)
        params.extend(p)
    return (" AND ".join(parts) if parts else "TRUE"), params


def validate_slice(slice_: Slice, project: Project) -> Slice:
    """The slice with its values in their column's type (numbers as numbers,
    timestamps as ISO text), or a readable :class:`ConfigError` if it does not
    fit the project. Saved slices and links keep this form."""
    compile_slice(slice_, project)

    def typed(value, column):
        v = _coerce(value, _kind(project, column), column, project)
        return v.isoformat() if isinstance(v, datetime) else v

    out = []
    for c in slice_.conditions:
        if c.op in ("in", "not_in"):
            c = Condition(c.column, c.op, values=tuple(dict.fromkeys(typed(v, c.column) for v in c.values)))
        elif c.op == "between":
            kind = _kind(project, c.column)
            low = _bound(c.low, kind, c.column, project, "low")
            high = _bound(c.high, kind, c.column, project, "high")
            if low is None and high is None:  # both bounds infinite: every non-null value
                c = Condition(c.column, "not_null")
            else:
                c = Condition(
                    c.column,
                    c.op,
                    low=low.isoformat() if isinstance(low, datetime) else low,
                    high=high.isoformat() if isinstance(high, datetime) else high,
                    low_inclusive=c.low_inclusive,
                    high_inclusive=c.high_inclusive,
                )
        out.append(c)
    return Slice(tuple(out))


# --- readable form ---------------------------------------------------------------------------

_BARE = re.compile(r"^[A-Za-z0-9_.:+\-]+$")
_BARE_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WORDS = {"and", "in", "not", "is", "null", "true", "false", "contains"}
_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<backtick>`(?:[^`]|``)*`)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[^\s`"(),<>=!]+)
    )""",
    re.VERBOSE | re.DOTALL,
)


def _show_column(name: str) -> str:
    if _BARE_COLUMN.match(name) and name.lower() not in _WORDS:
        return name
    return "`" + name.replace("`", "``") + "`"


def _show_value(value) -> str:
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
    if _BARE.match(text) and text.lower() not in _WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConfigError(f"Cannot read the slice at {text[pos : pos + 20]!r}.")
        kind = m.lastgroup
        raw = m.group(kind)
        if kind == "backtick":
            out.append(("column", raw[1:-1].replace("``", "`")))
        elif kind == "string":
            try:
                out.append(("string", json.loads(raw)))
            except json.JSONDecodeError:
                raise ConfigError(f"Bad quoted text in the slice: {raw[:40]}") from None
        else:
            out.append((kind, raw))
        pos = m.end()
    return out


def _split_and(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    terms, current, depth = [], [], 0
    for tok in tokens:
        if tok == ("punct", "("):
            depth += 1
        elif tok == ("punct", ")"):
            depth -= 1
        if depth == 0 and tok[0] == "word" and tok[1].lower() == "and":
            terms.append(current)
            current = []
        else:
            current.append(tok)
    terms.append(current)
    if any(not t for t in terms):
        raise ConfigError("An AND in the slice has nothing on one side.")
    return terms


def _value(tok: tuple[str, str]) -> str:
    """A value token as text; the column's kind converts it when the slice compiles."""
    kind, raw = tok
    if kind not in ("string", "word"):
        raise ConfigError(f"Expected a value, found {raw!r}.")
    return raw


def _is_word(tok, word: str) -> bool:
    return tok[0] == "word" and tok[1].lower() == word


def _column(tok) -> str:
    kind, raw = tok
    if kind in ("column", "word"):
        return raw
    raise ConfigError(f"Expected a column name, found {raw!r}.")


def _parse_term(toks: list[tuple[str, str]]) -> Condition:
    shown = " ".join(t[1] for t in toks)
    n = len(toks)
    # a <op> col <op> b
    if n == 5 and toks[1][0] == "op" and toks[3][0] == "op" and toks[1][1] in ("<", "<=") and toks[3][1] in ("<", "<="):
        return Condition(
            _column(toks[2]),
            "between",
            low=_value(toks[0]),
            high=_value(toks[4]),
            low_inclusive=toks[1][1] == "<=",
            high_inclusive=toks[3][1] == "<=",
        )
    if n >= 3 and toks[1][0] == "op":
        col, op, rest = _column(toks[0]), toks[1][1], toks[2:]
        if len(rest) != 1:
            raise ConfigError(f"Cannot read the condition {shown!r}.")
        value = _value(rest[0])
        if op == "=":
            return Condition(col, "in", values=(value,))
        if op in ("!=", "<>"):
            return Condition(col, "not_in", values=(value,))
        if op in (">", ">="):
            return Condition(col, "between", low=value, low_inclusive=op == ">=")
        return Condition(col, "between", high=value, high_inclusive=op == "<=")
    if n >= 3 and _is_word(toks[1], "is"):
        col, rest = _column(toks[0]), [t[1].lower() for t in toks[2:] if t[0] == "word"]
        if len(rest) != len(toks) - 2:
            raise ConfigError(f"Cannot read the condition {shown!r}.")
        op = {("null",): "is_null", ("not", "null"): "not_null", ("true",): "is_true", ("false",): "is_false"}.get(
            tuple(rest)
        )
        if op is None:
            raise ConfigError(f"Cannot read the condition {shown!r}: after 'is' comes null, not null, true or false.")
        return Condition(col, op)
    if n == 3 and _is_word(toks[1], "contains"):
        text = toks[2][1] if toks[2][0] in ("string", "word") else None
        if text is None:
            raise ConfigError(f"Cannot read the condition {shown!r}.")
        return Condition(_column(toks[0]), "contains", text=str(text))
    negate = n >= 4 and _is_word(toks[1], "not") and _is_word(toks[2], "in")
    if negate or (n >= 3 and _is_word(toks[1], "in")):
        rest = toks[3:] if negate else toks[2:]
        if len(rest) < 3 or rest[0] != ("punct", "(") or rest[-1] != ("punct", ")"):
            raise ConfigError(f"Cannot read the condition {shown!r}: a list goes in parentheses.")
        inner = rest[1:-1]
        values = [_value(t) for i, t in enumerate(inner) if i % 2 == 0]
        if any(t != ("punct", ",") for i, t in enumerate(inner) if i % 2 == 1):
            raise ConfigError(f"Cannot read the list in {shown!r}: separate values with commas.")
        return Condition(_column(toks[0]), "not_in" if negate else "in", values=tuple(values))
    raise ConfigError(
        f"Cannot read the condition {shown!r}. Write e.g. `country = NG`, `age < 25`, "
        '`18 <= age < 25`, `region in (east, west)`, `score is null`, `note contains "refund"`.'
    )


def parse_slice(*texts: str) -> Slice:
    """Read one or more readable slices (each possibly with ANDs) into one slice."""
    conditions = []
    for text in texts:
        if text is None or not str(text).strip():
            continue
        for term in _split_and(_tokens(str(text))):
            cond = _parse_term(term)
            cond.check_shape()
            conditions.append(cond)
    return Slice(tuple(conditions))

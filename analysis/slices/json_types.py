"""The declared types of a slice's JSON (as saved, linked or given to ``--slice-json``),
checked by pydantic in strict mode before a :class:`analysis.slices.model.Condition` is built.

Strict means no guessing: ``"values": "NG"`` is refused (a list is expected; it is
not read as the letters N and G), ``"low_inclusive": "false"`` is refused (a JSON
``true`` or ``false`` is expected; the text is not counted as true), and every
refusal names the field, such as ``conditions[0].values``. Values and bounds are
JSON scalars (text, numbers, true/false); the column's kind converts them when the
slice is compiled. JSON nested deeper than the parser allows is refused with a
message, not a ``RecursionError``. Every slice Sliceboard has saved has this form
(what :meth:`Condition.to_dict` writes), so stored slices load as before.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Union

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from analysis.errors import ConfigError

_Scalar = Union[StrictStr, StrictBool, StrictInt, StrictFloat, None]
_Bound = Union[StrictStr, StrictInt, StrictFloat, datetime, date, None]
FIELDS = ("column", "op", "values", "low", "high", "low_inclusive", "high_inclusive", "text")


class ConditionJSON(BaseModel):
    """One condition's fields and their types (the operator is checked by name later)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    column: StrictStr
    op: StrictStr
    values: Union[list[_Scalar], tuple[_Scalar, ...], None] = None
    low: _Bound = None
    high: _Bound = None
    low_inclusive: StrictBool = True
    high_inclusive: StrictBool = False
    text: Union[StrictStr, None] = None


def _where(loc: tuple, prefix: str) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in FIELDS or part == "conditions":
            out += ("." if out else "") + part
        # other parts name the member of a union pydantic tried (str, int, ...): left out
    return out or "the slice"


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refusal(exc: ValidationError, prefix: str) -> ConfigError:
    err = exc.errors()[0]
    expected = {
        "list_type": "a list of values",
        "bool_type": "true or false",
        "string_type": "a text",
        "missing": "present",
    }.get(err["type"], err["msg"].removeprefix("Input should be ").rstrip("."))
    where = _where(tuple(err["loc"]), prefix)
    field = next((part for part in err["loc"] if part in FIELDS), None)
    if field in ("low", "high"):
        expected = "a number, or a date or time as text"
    elif field == "values" and any(isinstance(part, int) for part in err["loc"]):
        expected = "a text, a number or true/false"
    if err["type"] == "missing":
        return ConfigError(f"A slice condition needs {where}.")
    if err["type"] == "recursion_loop":
        return ConfigError("The slice nests too deeply to be read.")
    return ConfigError(f"In the slice, {where} must be {expected}, not {_shown(err.get('input'))}.")


def _plain(value):
    """A numpy scalar (a value from a DataFrame) as the Python scalar it holds."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def condition_fields(d: dict, where: int | str | None = None) -> dict:
    """The fields of one condition dict, type-checked (see the module docstring); ``where``
    is its place in the slice (an index of ``conditions``, or a path such as
    ``conditions[0].any[1]``)."""
    prefix = f"conditions[{where}]" if isinstance(where, int) else (where or "condition")
    try:
        return ConditionJSON.model_validate({k: _plain(v) for k, v in d.items()}).model_dump()
    except ValidationError as exc:
        raise _refusal(exc, prefix) from None
    except RecursionError:
        raise ConfigError("The slice nests too deeply to be read.") from None


def load(text: str):
    """JSON text as Python data; a readable :class:`ConfigError` if it is not JSON or
    nests too deeply to be read."""
    if not isinstance(text, str):
        raise ConfigError("The slice is JSON text.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"The slice is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    except RecursionError:
        raise ConfigError(
            "The slice nests too deeply to be read (JSON arrays or objects inside each other "
            "beyond what the reader allows)."
        ) from None

"""The readable form of a slice, read back into its predicate tree.

``AND`` binds tighter than ``OR``; ``NOT`` applies to the condition or parenthesized
group after it; parentheses group (see :mod:`analysis.slices.model` for the
conditions). What cannot be read is refused with a message naming where.
"""

from __future__ import annotations

import json
import re

from analysis.errors import ConfigError
from analysis.slices.model import MAX_DEPTH, And, Condition, Not, Or, Slice, Term

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<backtick>`(?:[^`]|``)*`)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<sqlstring>'(?:[^']|'')*')
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[^\s`"(),<>=!]+)
    )""",
    re.VERBOSE | re.DOTALL,
)


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
        elif kind == "sqlstring":  # 'text' as SQL writes it, a quote doubled inside
            out.append(("string", raw[1:-1].replace("''", "'")))
        elif kind == "string":
            try:
                out.append(("string", json.loads(raw)))
            except json.JSONDecodeError:
                raise ConfigError(f"Bad quoted text in the slice: {raw[:40]}") from None
        else:
            out.append((kind, raw))
        pos = m.end()
    return out


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


class _Reader:
    """Recursive descent over the tokens: ``expression := conjunction (OR conjunction)*``,
    ``conjunction := unary (AND unary)*``, ``unary := NOT unary | ( expression ) | condition``."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def at_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and _is_word(tok, word)

    def expression(self) -> Term:
        terms = [self.conjunction()]
        while self.at_word("or"):
            self.pos += 1
            terms.append(self.conjunction())
        flat = tuple(t for term in terms for t in (term.terms if isinstance(term, Or) else (term,)))
        return flat[0] if len(flat) == 1 else Or(flat)

    def conjunction(self) -> Term:
        terms = [self.unary()]
        while self.at_word("and"):
            self.pos += 1
            terms.append(self.unary())
        flat = tuple(t for term in terms for t in (term.terms if isinstance(term, And) else (term,)))
        return flat[0] if len(flat) == 1 else And(flat)

    def unary(self) -> Term:
        tok = self.peek()
        if tok is None or tok == ("punct", ")") or self.at_word("and") or self.at_word("or"):
            before = self.tokens[self.pos - 1][1].upper() if self.pos else ""
            if before in ("AND", "OR"):
                raise ConfigError(f"An {before} in the slice has nothing on one side.")
            if before == "NOT":
                raise ConfigError("A NOT in the slice has nothing after it.")
            raise ConfigError("The slice has an empty condition or group." if tok else "The slice is empty.")
        if self.at_word("not"):
            self.pos += 1
            return self.nested(lambda: Not(self.unary()))
        if tok == ("punct", "("):
            self.pos += 1
            term = self.nested(self.expression)
            if self.peek() != ("punct", ")"):
                raise ConfigError("A parenthesis in the slice is not closed.")
            self.pos += 1
            return term
        return self.condition()

    def nested(self, read):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConfigError(f"The slice nests AND, OR and NOT more than {MAX_DEPTH} deep.")
        try:
            return read()
        finally:
            self.depth -= 1

    def condition(self) -> Condition:
        """The tokens up to the next AND or OR (or a group's closing parenthesis), outside
        the parentheses of a list of values."""
        start, depth = self.pos, 0
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            if tok == ("punct", "("):
                depth += 1
            elif tok == ("punct", ")"):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and (_is_word(tok, "and") or _is_word(tok, "or")):
                break
            self.pos += 1
        cond = _parse_term(self.tokens[start : self.pos])
        cond.check_shape()
        return cond


def parse_slice(*texts: str) -> Slice:
    """Read one or more readable slices into one slice: the AND of them all."""
    terms: list[Term] = []
    for text in texts:
        if text is None or not str(text).strip():
            continue
        reader = _Reader(_tokens(str(text)))
        term = reader.expression()
        if reader.peek() is not None:
            raise ConfigError("A closing parenthesis in the slice has no opening one.")
        terms.extend(term.terms if isinstance(term, And) else (term,))
    return Slice(tuple(terms))

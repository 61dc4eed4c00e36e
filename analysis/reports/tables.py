"""The cells of a block's tables, every figure formatted once (:mod:`analysis.numbers`;
each kind builds its own tables of them), shared by the Reports and Present pages and
the exported HTML file, so all three show the same text for the same number. Each cell
keeps its raw value beside its text (the HTML file writes it in ``data-value``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.discovery.encode import BINARY_ERROR
from analysis.numbers import (
    MISSING,
    format_count,
    format_delta,
    format_number,
    format_p,
    format_value,
    missing,
)
from analysis.palette import VERDICT_WORDS


@dataclass(frozen=True)
class Cell:
    text: str
    value: object = None  # the raw number, None for text
    tone: str = ""  # "pass" / "fail": a verdict, coloured so


@dataclass
class Table:
    headings: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    name: str = ""  # a CSS class in the HTML file
    note: str = ""  # a sentence under the table


def text(x) -> Cell:
    if missing(x):
        return Cell(MISSING)
    return Cell("yes" if x is True else "no" if x is False else str(x))


def value(name: str, x, products=()) -> Cell:
    return Cell(format_value(name, x, products), None if missing(x) else x)


def count(x) -> Cell:
    return Cell(format_count(x), None if missing(x) else x)


def delta(name: str, x, products=()) -> Cell:
    return Cell(format_delta(name, x, products), None if missing(x) else x)


def p_value(x) -> Cell:
    return Cell(format_p(x), None if missing(x) else x)


def number(x) -> Cell:
    return Cell(format_number(x), None if missing(x) else x)


def interval(name: str, low, high, products=(), *, change: bool = False) -> Cell:
    """``[81.2%, 84.0%]``; a change's interval in its unit: ``[+1.2 points, +4.0 points]``."""
    if missing(low) or missing(high):
        return Cell(MISSING)
    show = format_delta if change else format_value
    return Cell(f"[{show(name, low, products)}, {show(name, high, products)}]")


def verdict(v) -> Cell:
    return Cell(VERDICT_WORDS.get(v, MISSING if missing(v) else str(v)), tone=v if v in ("pass", "fail") else "")


def figure_text(x) -> str:
    """A figure a re-run compares (a number, a verdict or a name) as text: counts with
    separators, other numbers by :func:`analysis.numbers.format_number`, ``–`` for none."""
    if missing(x):
        return MISSING
    if isinstance(x, (bool, str)):
        return str(x)
    return format_count(x) if isinstance(x, int) else format_number(x)


def error_measure(error: str) -> str:
    """The name a discovery block's error values format as: a 0/1 error is a rate
    (percent); a log loss or a residual is a plain number."""

    return "error_rate" if error in BINARY_ERROR else error

"""A block's tables with every figure formatted once (:mod:`analysis.numbers`), shared by
the Reports and Present pages and the exported HTML file, so all three show the same
text for the same number. Each cell keeps its raw value beside its text (the HTML
file writes it in ``data-value``)."""

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
    metric_name,
    missing,
)
from analysis.palette import VERDICT_WORDS
from analysis.reports.words import slice_measure


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


def headline(s: dict) -> list[Table]:
    products = s.get("product_metrics", [])
    heads = ["version", "predictions", "labeled"]
    for m in s["metrics"]:
        heads += [metric_name(m), f"{metric_name(m)}, 95% interval"]
    heads += [metric_name(d["name"], products) for d in products]
    rows = []
    for r in s["rows"]:
        row = [text(r["side"]), count(r.get("n_rows")), count(r.get("n_labeled"))]
        for m in s["metrics"]:
            row += [value(m, r.get(m)), interval(m, r.get(f"{m}_low"), r.get(f"{m}_high"))]
        row += [value(d["name"], r.get(d["name"]), products) for d in products]
        rows.append(row)
    return [Table(heads, rows)]


def comparison(s: dict) -> list[Table]:
    products = s.get("product_metrics", [])
    overall = Table(
        ["metric", s["baseline"], s["candidate"], "change", "95% interval of the change", "p-value", "test"],
        name="overall",
    )
    for r in s["overall"]:
        m = r["metric"]
        overall.rows.append(
            [
                text(metric_name(m, products)),
                value(m, r["baseline"], products),
                value(m, r["candidate"], products),
                delta(m, r["delta"], products),
                interval(m, r["ci_low"], r["ci_high"], products, change=True),
                p_value(r["p_value"]),
                text(r.get("test")),
            ]
        )
    rate = slice_measure(s)
    slices = Table(
        [
            "slice",
            "found as",
            "rows, baseline",
            "rows, candidate",
            f"{metric_name(rate)}, baseline",
            f"{metric_name(rate)}, candidate",
            "change",
            "95% interval of the change",
            "q-value",
            "verdict",
        ],
        name="slices",
        note=f"{s['n_slices']:,} slices checked: {s['n_regressions']:,} worse, "
        f"{s['n_improvements']:,} better (q < 0.05); the table lists the first "
        f"{len(s['slices'])}.",
    )
    for r in s["slices"]:
        slices.rows.append(
            [
                text(r["where"]),
                text(r["source"]),
                count(r["n_rows_b"]),
                count(r["n_rows_c"]),
                value(rate, r["error_rate_b"]),
                value(rate, r["error_rate_c"]),
                delta(rate, r["delta"]),
                interval(rate, r["ci_low"], r["ci_high"], change=True),
                p_value(r["q_value"]),
                text(r["verdict"] or "no significant change"),
            ]
        )
    return [overall, slices] if s["slices"] else [overall]


def gate(s: dict) -> list[Table]:
    return [
        Table(
            ["criterion", "result", "numbers"],
            [
                [text(r["criterion"]), verdict("pass" if r["passed"] else "fail"), text(r["detail"])]
                for r in s["results"]
            ],
        )
    ]


def slice_(s: dict) -> list[Table]:
    metrics = [m for m in s["metrics"] if m != "share"]
    heads = ["part", "predictions", "share"]
    for m in metrics:
        heads += [metric_name(m), f"{metric_name(m)}, 95% interval"]
    parts = Table(heads)
    for p in s["parts"]:
        row = [text(p["part"]), count(p.get("n_rows")), value("share", p.get("share"))]
        for m in metrics:
            row += [value(m, p.get(m)), interval(m, p.get(f"{m}_low"), p.get(f"{m}_high"))]
        parts.rows.append(row)
    tests = Table(["metric", "slice", "rest", "difference", "p-value", "test"])
    for c in s["comparison"]:
        m = c["metric"]
        tests.rows.append(
            [
                text(metric_name(m)),
                value(m, c.get("slice")),
                value(m, c.get("rest")),
                delta(m, c.get("difference")),
                p_value(c.get("p_value")),
                text(c.get("test")),
            ]
        )
    return [parts, tests]


def error_measure(error: str) -> str:
    """The name a discovery block's error values format as: a 0/1 error is a rate
    (percent); a log loss or a residual is a plain number."""

    return "error_rate" if error in BINARY_ERROR else error


def discovery(s: dict) -> list[Table]:
    rows = []
    e = error_measure(s["error"])
    for r in s["slices"]:
        rows.append(
            [
                count(r["rank"]),
                text(r["where"]),
                count(r["size"]),
                value(e, r["error_rate"]),
                interval(e, r["ci_low"], r["ci_high"]),
                number(r["impact"]),
                p_value(r["q_value"]),
                text(r["folded_under"]),
            ]
        )
    return [
        Table(["#", "slice", "rows", "error", "95% interval", "excess errors", "q-value", "near-duplicate of"], rows)
    ]


def valsets(s: dict) -> list[Table]:
    m = s["metric"]
    rows = []
    for r in s["rows"]:
        rows.append(
            [
                text(r["set"]),
                count(r["set_version"]),
                text(r["model_version"]),
                text(r["stage"]),
                count(r["members"]),
                count(r.get("scored")),
                count(r["labeled"]),
                value(m, r.get(m)),
                interval(m, r.get(f"{m}_low"), r.get(f"{m}_high")),
                verdict(r["verdict"]),
                text(r.get("failed") or ""),
            ]
        )
    return [
        Table(
            [
                "set",
                "version",
                "model version",
                "stage",
                "members",
                "scored",
                "labeled",
                metric_name(m),
                "95% interval",
                "verdict",
                "failed criteria",
            ],
            rows,
        )
    ]


def series(s: dict) -> list[Table]:
    return []


TABLES = {
    "headline": headline,
    "comparison": comparison,
    "gate": gate,
    "slice": slice_,
    "discovery": discovery,
    "valsets": valsets,
    "series": series,
    "note": lambda s: [],
}


def tables(kind: str, snapshot: dict) -> list[Table]:
    """The block's tables, every figure formatted."""
    return TABLES[kind](snapshot)

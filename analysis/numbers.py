"""Numbers as people read them: the one formatting of every figure the app, the CLI's
text, the HTML export and the presentation show.

A figure is formatted by what it means, known from its name: a proportion (accuracy,
error rate, a share) in percent, a product metric in its own unit and format (money
with its currency sign), a count with thousands separators, a p-value as ``< 1e-16``
below what a double can tell apart from zero. Names read as words ("ROC AUC", not
"Roc auc"). ``MISSING`` stands where there is no value, never "None" or "nan".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from analysis.metrics.product import ProductMetric
from analysis.metrics.registry import METRICS, metric

MISSING = "–"
MINUS = "−"
SMALLEST_P = 1e-16

# Figures other than metrics that are shares of rows: shown in percent, changes in points.
SHARES = frozenset({"labeled_share", "share", "coverage"})
PROPORTIONS = frozenset({name for name, m in METRICS.items() if m.proportion} | SHARES)
LOWER_IS_BETTER = frozenset(name for name, m in METRICS.items() if not m.higher_is_better)
# Columns that are not metrics, in words.
NAMES = {
    "n_rows": "rows",
    "n_labeled": "labeled rows",
    "n_scored": "scored rows",
    "labeled_share": "labeled share",
    "share": "share",
    "p_value": "p-value",
    "q_value": "q-value",
    "excess_errors": "excess errors",
    "expected_errors": "expected errors",
}
# Names that stay as written at the start of a sentence or a column header.
_KEEP_CASE = ("ROC", "PR ", "RMSE", "R²", "F1", "MAE")


def missing(x) -> bool:
    """No value: None, NaN, pandas' NA or NaT."""
    if x is None:
        return True
    try:
        return bool(x != x)  # NaN and NaT are not equal to themselves
    except TypeError:  # pandas' NA refuses to be a bool
        return True


def _product(name: str, products: Iterable) -> Mapping | None:
    for d in products or ():
        spec = d if isinstance(d, Mapping) else d.to_dict()
        if spec["name"] == name:
            return spec
    return None


def metric_name(name: str, products: Iterable = ()) -> str:
    """A metric or column name in words, for a sentence: ``roc_auc`` → ``ROC AUC``."""
    if _product(name, products):
        return name.replace("_", " ")
    registered = metric(name)
    if registered is not None:
        return registered.words
    return NAMES.get(name, name.replace("_", " "))


def metric_title(name: str, products: Iterable = ()) -> str:
    """The same, for a header or a card: ``error_rate`` → ``Error rate``, ``roc_auc`` → ``ROC AUC``."""
    words = metric_name(name, products)
    return words if words.startswith(_KEEP_CASE) else words[:1].upper() + words[1:]


def is_share(name: str, products: Iterable = ()) -> bool:
    spec = _product(name, products)
    if spec:
        return str(spec.get("format", "")).endswith("%")
    return name in PROPORTIONS


def higher_is_better(name: str, products: Iterable = ()) -> bool:
    spec = _product(name, products)
    if spec:
        return spec.get("direction", "higher") == "higher"
    return name not in LOWER_IS_BETTER


def _signed(text: str, negative: bool) -> str:
    if not any(ch in "123456789" for ch in text.split("e")[0]):  # rounds to zero: no sign
        return text
    return (MINUS if negative else "+") + text


def format_count(n) -> str:
    """``12,345``."""
    return MISSING if missing(n) else f"{int(n):,}"


def format_number(x, digits: int = 3) -> str:
    """A plain figure with thousands separators: ``18,523,881.4``, ``0.123``, ``1.07``."""
    if missing(x):
        return MISSING
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else MINUS + "∞"
    if x != 0 and abs(x) < 10**-digits:
        return f"{x:.{max(1, digits - 1)}e}".replace("-", MINUS)
    if abs(x) >= 1000:
        return f"{x:,.{1 if abs(x) < 1e5 and not x.is_integer() else 0}f}".replace("-", MINUS)
    return f"{x:,.{digits}f}".replace("-", MINUS)


def format_percent(x, digits: int = 1) -> str:
    """A share: ``41.9%``."""
    return MISSING if missing(x) else f"{100 * float(x):.{digits}f}%".replace("-", MINUS)


def format_value(name: str, value, products: Iterable = ()) -> str:
    """A metric's value: proportions in percent, product metrics in their unit and format,
    counts with separators, the rest to three decimals."""
    if missing(value):
        return MISSING
    spec = _product(name, products)
    if spec:
        shown = ProductMetric(**spec).show(abs(float(value)))
        return MINUS + shown if float(value) < 0 else shown
    if name in PROPORTIONS:
        return format_percent(value)
    if name.startswith("n_") or isinstance(value, int):
        return format_count(value)
    registered = metric(name)
    if registered is not None and registered.label_units:
        return format_significant(value, registered.digits)
    if registered is not None and abs(float(value)) < 1000:
        return f"{float(value):.{registered.digits}f}".replace("-", MINUS)
    return format_number(value)


def format_significant(x, digits: int = 4) -> str:
    """A figure in the label's units to ``digits`` significant digits, never in scientific
    notation: ``9.444``, ``11.91``, ``1,235``, ``0.1234``."""
    if missing(x):
        return MISSING
    x = float(x)
    if x == 0 or math.isinf(x):
        return format_number(x, 0 if x == 0 else 3)
    decimals = max(0, min(digits, digits - 1 - math.floor(math.log10(abs(x)))))
    return f"{x:,.{decimals}f}".replace("-", MINUS)


def format_delta(name: str, delta, products: Iterable = ()) -> str:
    """A change: ``+3.1 points`` for a share, ``−$1,204.50`` for money, ``+0.042`` otherwise."""
    if missing(delta):
        return MISSING
    delta = float(delta)
    if is_share(name, products):
        return _signed(f"{100 * abs(delta):.1f} points", delta < 0)
    spec = _product(name, products)
    if spec:
        return _signed(format_value(name, abs(delta), products), delta < 0)
    if abs(delta) < 1:  # a change in a score's units: fixed decimals, never scientific notation
        return _signed(f"{abs(delta):.3f}", delta < 0)
    return _signed(format_number(abs(delta)), delta < 0)


def format_p(p) -> str:
    """A p- or q-value: ``0.032``, ``0.0041``, ``3.2e−7``, ``< 1e-16`` (a double cannot
    tell smaller values from zero), ``1`` at one."""
    if missing(p):
        return MISSING
    p = float(p)
    if p < SMALLEST_P:
        return "< 1e-16"
    if p >= 0.9995:
        return "1"
    if p >= 0.01:
        return f"{p:.3f}".rstrip("0").rstrip(".")
    if p >= 0.001:
        return f"{p:.4f}".rstrip("0")
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa}e{MINUS}{int(exponent[1:])}"


def p_words(p) -> str:
    """``p < 0.001``, ``p = 0.032``; empty when there is no test."""
    if missing(p):
        return ""
    return "p < 0.001" if p < 0.001 else f"p = {float(p):.3f}"

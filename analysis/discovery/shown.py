"""A discovery as people read it: the error measure by its name, every figure through
:mod:`analysis.numbers`, the ranking in words. The CLI's text, the Discover page and the
report's discovery block use these, so they say the same thing the same way."""

from __future__ import annotations

import pandas as pd

from analysis.numbers import MISSING, format_count, format_number, format_p, format_percent, missing

ERROR_WORDS = {
    "misclassification": "error rate",
    "logloss": "log loss",
    "brier": "Brier score",
    "abs_residual": "absolute error",
    "sq_residual": "squared error",
}


def error_words(error: str) -> str:
    """The error measure by its name: "error rate", "log loss", an outcome column such as
    "loss" (money lost) as itself, a cost expression as "cost"."""
    if error in ERROR_WORDS:
        return ERROR_WORDS[error]
    return error if str(error).isidentifier() else "cost"


def is_share(error: str) -> bool:
    """Whether the mean of this error is a share of rows (shown in percent)."""
    return error == "misclassification"


def format_error(error: str, value) -> str:
    """A mean error: a share in percent, anything else (a loss, money) with separators."""
    if missing(value):
        return MISSING
    return format_percent(value) if is_share(error) else format_number(value)


def summary_line(result) -> str:
    """One sentence: the ranking, the rows, the mean error, the search and the test."""
    what = error_words(result.error)
    mean = format_error(result.error, result.mean_error)
    return (
        f"Ranked by: {result.ranking_words}. {format_count(result.n_rows)} rows, {what} {mean}; "
        f"{format_count(result.n_evaluated)} slices evaluated in {format_number(result.seconds, 2)} s; "
        f"significant: q < {format_p(result.q_threshold)} (Benjamini–Hochberg over all evaluated)."
    )


def ranking_caption(result) -> str:
    """What the figures of a ranking mean, in one sentence."""
    if result.ranking == "expected":
        return (
            "Expected: the errors the model's own scores predict for these rows (the mean error of rows "
            "with about the same score). Excess: errors beyond that. z: excess in standard errors."
        )
    if result.ranking == "version":
        return (
            f"Expected: {result.other_version}'s {error_words(result.error)} on the same slice, applied to "
            "this version's rows. Excess: errors beyond that. z: excess in standard errors."
        )
    return "Score: SliceLine's (error far above average, big enough to matter). Impact: errors beyond the average."


def discovery_table(result) -> pd.DataFrame:
    """The entries as formatted text, one column per figure of the ranking."""
    t = result.slices
    err = result.error
    what = error_words(err)
    rows = {
        "rank": t["rank"].map(lambda r: f"#{int(r)}"),
        "slice": t["where"],
        "rows": t["size"].map(format_count),
        what: t["error_rate"].map(lambda v: format_error(err, v)),
    }
    if result.ranking == "error":
        rows["95% interval"] = [
            f"{format_error(err, lo)} – {format_error(err, hi)}" for lo, hi in zip(t["ci_low"], t["ci_high"])
        ]
        rows["score"] = t["score"].map(lambda v: format_number(v, 3))
        rows["impact"] = t["impact"].map(lambda v: format_number(v, 1))
    else:
        label = "expected" if result.ranking == "expected" else f"{result.other_version}"
        rows[label] = t["expected_rate"].map(lambda v: format_error(err, v))
        rows["excess"] = t["excess"].map(lambda v: format_number(v, 1))
        rows["z"] = t["z"].map(lambda v: format_number(v, 2))
    rows["q-value"] = t["q_value"].map(format_p)
    rows["significant"] = t["significant"].map(lambda s: "yes" if s else "no")
    rows["variants"] = t["variants"].map(lambda v: format_count(len(v)) if len(v) else "")
    return pd.DataFrame(rows)

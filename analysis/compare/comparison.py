"""Compare a candidate model version with a baseline: overall and per slice, on ML
metrics and product metrics, paired where both scored the same examples.

**Pairing.** When both versions scored the same example ids in the window (shadow
mode), the comparison uses those pairs only: each example's latest prediction of
each version, one shared label. Otherwise each version is measured on its own rows,
by default on the days both served (:mod:`analysis.compare.traffic`; :attr:`Comparison.window`
says what was left out). :attr:`Comparison.method` says which, and on how many pairs.

**Intervals and tests** (95%; the delta is candidate − baseline):

* accuracy and error rate: paired, McNemar's test (statsmodels; exact binomial
  below 25 discordant pairs) and a bootstrap interval; unpaired, the two-proportion
  z-test and Newcombe's interval (statsmodels);
* ROC AUC: Hanley–McNeil standard errors, z-test (conservative when paired);
* every other metric and every product metric: a bootstrap of 1,000 resamples.
  Rows are spread over 1,000 buckets by their example key (analysis.store.example_key,
  the same on every engine); the engine sums each bucket once, and numpy resamples the buckets
  (a multinomial draw per resample, the same draw for both versions when
  paired). The interval is the percentile interval, the p-value the normal one
  from the bootstrap standard error. A product metric is decomposed into its
  aggregates (``avg`` into ``sum / count``), which add up over buckets; one with
  ``min``, ``max`` or ``count(DISTINCT …)`` gets no interval. Unpaired, a total (a sum
  or a count) is compared per prediction (:mod:`analysis.metrics.decompose`).

**Slices**: every saved slice, every value of every groupable feature (numbers in
quantile bins) and the top slices of the search of the difference, where the
candidate's error exceeds the baseline's (:mod:`analysis.compare.slices`, with the
q-values of its own family); paired, also SliceLine's slices where the candidate errs
and the baseline does not (and the other way round). For
each: rows and error rates (regression: mean absolute errors) of both versions, the
delta with a 95% interval (paired: Wald for paired proportions and McNemar, or the
paired t-test; unpaired: Wald and the pooled z-test, or Welch's t-test),
Benjamini–Hochberg q-values over all of them, and each product metric's delta.
A slice is a *regression* (candidate worse) or an *improvement* when q < 0.05.

The parts: the sides and shared constants (:mod:`.sides`), what is summed per bucket
(:mod:`.sums`), the rows compared (:mod:`.pairs`), the overall figures (:mod:`.overall`)
and the slices' tests (:mod:`.slice_tests`); this module puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Callable

import duckdb
import pandas as pd

from analysis.compare.overall import overall_rows
from analysis.compare.pairs import own_sources, rows_compared
from analysis.compare.sides import Progress, Side, silent
from analysis.compare.slice_tests import slice_rows
from analysis.compare.traffic import Window, window
from analysis.errors import ConfigError
from analysis.metrics.decompose import decompose
from analysis.metrics.failures import split as split_failing
from analysis.metrics.failures import with_failures
from analysis.metrics.product import ProductMetric, list_metrics, product_metrics
from analysis.metrics.registry import headline_metrics, metrics_for
from analysis.metrics.sql import DAY, compute_metrics
from analysis.slices.grouping import CUT_SAMPLE, CutSample
from analysis.store.project import Project
from analysis.store.scope import Scope
from analysis.store.sql import quote_ident


@dataclass
class Comparison:
    project: str
    baseline: Side
    candidate: Side
    start: datetime | None
    end: datetime | None
    paired: bool
    n_pairs: int
    rows: tuple[int, int]  # rows measured: baseline, candidate
    overall: pd.DataFrame  # one row per metric
    slices: pd.DataFrame  # one row per slice, regressions and improvements first
    product_metrics: list[ProductMetric] = field(default_factory=list)
    window: Window | None = None  # the days compared, and what was left out of each side
    notes: list[str] = field(default_factory=list)  # what the comparison could not do, and why

    @property
    def method(self) -> str:
        if self.paired:
            return f"paired: both versions scored the same {self.n_pairs:,} examples"
        return f"unpaired: {self.rows[0]:,} and {self.rows[1]:,} rows" + (
            f" (only {self.n_pairs:,} examples scored by both)" if self.n_pairs else ""
        )

    def to_dict(self) -> dict:
        slices = self.slices.drop(columns=["slice"], errors="ignore")
        return {
            "project": self.project,
            "baseline": str(self.baseline),
            "candidate": str(self.candidate),
            "start": self.start,
            "end": self.end,
            "method": self.method,
            "paired": self.paired,
            "pairs": self.n_pairs,
            "overall": self.overall.to_dict(orient="records"),
            "window": self.window.to_dict() if self.window else None,
            "notes": list(self.notes),
            "normalisation": {
                r["metric"]: r.get("normalisation")
                for r in self.overall.to_dict(orient="records")
                if r.get("kind") == "product"
            },
            "slices": slices.to_dict(orient="records"),
        }


# Told a comparison's overall figures as soon as they are in, before its slices.
Figures = Callable[[Comparison], None]


# -- entry point -----------------------------------------------------------------------------------


def compare(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    baseline: Side,
    candidate: Side,
    *,
    start=None,
    end=None,
    pair: bool = True,
    bins: int = 5,
    discovered: int = 5,
    slices: bool = True,
    saved: list[str] | None = None,
    metrics: list[ProductMetric] | None = None,
    overlap: bool = True,
    progress: Progress | None = None,
    figures: Figures | None = None,
    sample: CutSample = CUT_SAMPLE,
) -> Comparison:
    """The comparison described in the module docstring. ``saved`` (slice definitions)
    and ``metrics`` replace the project's saved slices and product metrics (a report
    re-runs a comparison with what it showed). Unpaired, ``overlap`` keeps only the
    days both sides served (:mod:`analysis.compare.traffic`). ``progress(fraction, text)`` is
    told each step as it starts (a page shows it while the comparison runs);
    ``figures(comparison)`` the overall figures as soon as they are in (the comparison
    without its slices: a page shows them while the slices are searched). ``sample``
    says from how many rows the slices' cut points come from a sample, and how many."""
    say = progress or silent
    if (baseline.version, baseline.stage) == (candidate.version, candidate.stage):
        raise ConfigError("Pick two different versions (or stages) to compare.")
    for side in (baseline, candidate):
        where, params = side.scope(start, end).to_sql()
        n = con.execute(f"SELECT count(*) FROM {quote_ident(project.log_table)} WHERE {where}", params).fetchall()[0][0]
        if not n:
            raise ConfigError(f"{side} has no predictions in this window.")
    metrics = list(metrics) if metrics is not None else list_metrics(con, project)
    usable, failed = split_failing(con, project, metrics, [baseline.scope(start, end), candidate.scope(start, end)])
    decomposed = [decompose(m, project, i) for i, m in enumerate(usable)]
    scope_start, scope_end = Scope.of(start=start, end=end).start, Scope.of(start=start, end=end).end
    say(0.0, "reading both versions' rows")
    with rows_compared(con, project, baseline, candidate, start, end, pair, decomposed, saved) as src:
        say(0.15, "the overall figures")
        days = window(con, project, baseline, candidate, start, end, overlap=overlap, paired=src.paired)
        if days.restricted:  # unpaired: each side's rows on the days both served
            start, end = days.start, days.end
            src = own_sources(project, baseline, candidate, start, end, src.n_pairs)
        overall, rows = overall_rows(con, project, src, decomposed)
        first = Comparison(
            project.name,
            baseline,
            candidate,
            scope_start,
            scope_end,
            src.paired,
            src.n_pairs,
            rows,
            with_failures(overall, metrics, failed),
            pd.DataFrame(),
            metrics,
            days,
        )
        if not slices:
            return first
        if figures is not None:
            figures(first)
        notes: list[str] = []
        per_slice = slice_rows(
            con, project, src, baseline, candidate, start, end, decomposed, bins, discovered, saved, say, notes, sample
        )
    return replace(first, slices=per_slice, notes=notes)


def daily(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    baseline: Side,
    candidate: Side,
    *,
    start=None,
    end=None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Per day and side: rows, one ML metric (``metric``, by default the task's headline)
    and every product metric (on each side's own rows), for the side-by-side series and
    the ML-vs-product plot."""

    headline = metric or headline_metrics(project.task)[0]
    if headline not in metrics_for(project.task):
        raise ConfigError(
            f"{headline!r} is not a metric of a {project.task} project: {', '.join(metrics_for(project.task))}."
        )
    frames = []
    for label, side in (("baseline", baseline), ("candidate", candidate)):
        scope = side.scope(start, end)
        ml = compute_metrics(con, project, group_by=[DAY], where=scope.to_sql(), include_outcomes=False)
        ml = ml[["day", "n_rows", headline]]
        pm = product_metrics(con, project, scope, group_by=(DAY,))
        frame = ml.merge(pm, on="day", how="left") if not pm.empty else ml
        frames.append(frame.assign(side=label, version=str(side)))
    out = pd.concat(frames, ignore_index=True).sort_values(["day", "side"]).reset_index(drop=True)
    out.attrs["headline"] = headline
    return out

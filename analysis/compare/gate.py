"""The deployment gate: a project's criteria, checked against a comparison of a
candidate with a baseline. The CLI (``python -m analysis gate``) and the Compare
page show the same verdict from :func:`run_gate`.

Criteria (defaults in brackets):

* ``product_max_worse`` [0.0]: no product metric may be significantly worse (its
  95% interval entirely on the worse side) by more than this share of the
  baseline's value; a total (``sum(revenue)``) of versions that served different
  traffic is judged per prediction (:mod:`analysis.metrics.decompose`), and an
  unpaired comparison looks at the days both versions served
  (:mod:`analysis.compare.traffic`); a product metric that cannot be computed on the
  compared rows (it fails on data that arrived after it was defined) fails this check,
  with the engine's reason, so the gate's verdict is FAIL (exit 1) and names it;
* ``slice_min_rows`` [500] and ``slice_max_worse`` [0.02]: no slice with at least
  that many rows in both versions may have a significantly higher error rate
  (q < 0.05), by more than that many points; the slices include those the search of
  the difference finds (:mod:`analysis.compare.slices`), such as ``age < 25``;
* ``overall_max_worse`` [0.02]: the overall error (error rate of a classifier, mean
  absolute error of a regression, in the label's unit) may not be significantly worse
  (its 95% interval entirely on the worse side) by more than this: a candidate that is
  worse everywhere, by a little in each slice, fails here;
* ``required_sets`` ["all"]: these validation sets (``"all"``: every set with pass
  criteria) must pass for the candidate;
* ``discovered_slices`` [5]: besides saved slices and every feature value, the slice
  criterion covers this many slices found by the search of the difference (where the
  candidate's error exceeds the baseline's), and, paired, this many discovered slices
  of each direction (where the candidate errs and the baseline does not, and the
  reverse). 0 skips the searches: the gate then runs in about half the time.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Annotated, Literal, Union

import duckdb
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from analysis.compare.comparison import Comparison, Figures, Progress, Side, compare
from analysis.errors import ConfigError
from analysis.metrics.decompose import PER_PREDICTION
from analysis.numbers import format_count, format_delta, format_p, format_percent, format_value, metric_name
from analysis.store.clock import utc_now
from analysis.store.project import Project
from analysis.valsets import evaluate, list_sets


@dataclass(frozen=True)
class GateCriteria:
    product_max_worse: float = 0.0
    slice_min_rows: int = 500
    slice_max_worse: float = 0.02
    required_sets: tuple[str, ...] | str = "all"
    discovered_slices: int = 5
    overall_max_worse: float = 0.02

    def check(self) -> "GateCriteria":
        """The criteria as the declared model accepts them, or a :class:`ConfigError`
        naming the first one that is out of its range."""
        return criteria_from_dict(asdict(self))


# What each criterion is, said when a value is refused.
CRITERIA_WORDS = {
    "product_max_worse": "a share of the baseline's value, from 0 (for example 0.01 = 1%)",
    "slice_min_rows": "a whole number of rows, at least 1",
    "slice_max_worse": "a difference of error rates, between 0 and 1",
    "overall_max_worse": "how much worse the overall error may be, from 0 (error-rate points for a classifier, "
    "the label's unit for a regression)",
    "discovered_slices": "a whole number from 0 (no discovery) to 50",
    "required_sets": "'all' or a list of validation set names",
}
Share = Annotated[float, Field(ge=0, lt=10, allow_inf_nan=False)]


class CriteriaModel(BaseModel):
    """The declared types and ranges of gate criteria, as set and as stored (JSON)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    product_max_worse: Share = 0.0
    slice_min_rows: Annotated[int, Field(ge=1)] = 500
    slice_max_worse: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.02
    required_sets: Union[Literal["all"], tuple[StrictStr, ...], list[StrictStr]] = "all"
    discovered_slices: Annotated[int, Field(ge=0, le=50)] = 5
    overall_max_worse: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.02


def criteria_from_dict(data: dict, origin: str = "gate criteria") -> GateCriteria:
    """Gate criteria from plain values (set by a person, or stored as JSON), checked
    against :class:`CriteriaModel`; a refusal names the criterion and what it must be."""
    try:
        model = CriteriaModel.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "extra_forbidden":
            raise ConfigError(
                f"{origin}: unknown criterion {name!r}; the criteria are {', '.join(CRITERIA_WORDS)}."
            ) from None
        raise ConfigError(f"{name} is {CRITERIA_WORDS.get(name, 'not valid')}.") from None
    values = model.model_dump()
    if not isinstance(values["required_sets"], str):
        values["required_sets"] = tuple(values["required_sets"])
    return GateCriteria(**values)


@dataclass
class CriterionResult:
    criterion: str
    passed: bool
    detail: str


@dataclass
class GateVerdict:
    passed: bool
    results: list[CriterionResult]
    comparison: Comparison
    criteria: GateCriteria = field(default_factory=GateCriteria)

    def lines(self) -> list[str]:
        head = (
            f"{'PASS' if self.passed else 'FAIL'}: {self.comparison.candidate} vs {self.comparison.baseline} "
            f"({self.comparison.method})"
        )
        window = [f"  {self.comparison.window.sentence()}"] if self.comparison.window else []
        return [head, *window] + [
            f"  [{'pass' if r.passed else 'FAIL'}] {r.criterion}: {r.detail}" for r in self.results
        ]

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "baseline": str(self.comparison.baseline),
            "candidate": str(self.comparison.candidate),
            "method": self.comparison.method,
            "criteria": asdict(self.criteria),
            "window": self.comparison.window.to_dict() if self.comparison.window else None,
            "normalisation": {
                r["metric"]: r.get("normalisation")
                for r in self.comparison.overall.to_dict(orient="records")
                if r["kind"] == "product"
            },
            "results": [asdict(r) for r in self.results],
        }


def get_criteria(con: duckdb.DuckDBPyConnection, project: Project) -> GateCriteria:
    rows = con.execute("SELECT criteria FROM sb_gates WHERE project_id = ?", [project.project_id]).fetchall()
    if not rows:
        return GateCriteria()
    return criteria_from_dict(json.loads(rows[0][0]), origin=f"the stored gate criteria of {project.name}")


def set_criteria(con: duckdb.DuckDBPyConnection, project: Project, criteria: GateCriteria) -> GateCriteria:
    criteria = criteria.check()
    data = asdict(criteria)
    if not isinstance(data["required_sets"], str):
        data["required_sets"] = list(data["required_sets"])
    con.execute(
        "INSERT OR REPLACE INTO sb_gates VALUES (?, ?, ?)",
        [project.project_id, json.dumps(data), utc_now()],
    )
    return criteria


def _products(comp: Comparison) -> list[dict]:
    return [m.to_dict() for m in comp.product_metrics]


def _value(comp: Comparison, name: str, x) -> str:
    return format_value(name, x, _products(comp))


def _change(comp: Comparison, name: str, x) -> str:
    return format_delta(name, x, _products(comp))


def compared_name(metric: str, normalisation) -> str:
    """``revenue per prediction`` where a total was compared per prediction."""
    return f"{metric} {PER_PREDICTION}" if normalisation == PER_PREDICTION else metric


def _product_results(comp: Comparison, limit: float) -> list[CriterionResult]:
    rows = comp.overall[comp.overall["kind"] == "product"]
    if rows.empty:
        return [CriterionResult("product metrics", True, "no product metric is defined for this project")]
    out = []
    for r in rows.to_dict(orient="records"):
        name = compared_name(metric_name(r["metric"], _products(comp)), r.get("normalisation"))
        error = r.get("error")
        if isinstance(error, str):  # fails on the compared rows: a failed check with the reason, not a crash
            out.append(
                CriterionResult(
                    f"product metric {name} ({r['direction']} is better)",
                    False,
                    f"could not be computed on the compared rows: {error}",
                )
            )
            continue
        sign = -1 if r["direction"] == "higher" else 1  # > 0 means worse
        worse = sign * r["delta"]
        significant = (r["ci_high"] < 0) if r["direction"] == "higher" else (r["ci_low"] > 0)
        share = worse / abs(r["baseline"]) if r["baseline"] else math.inf if worse > 0 else 0.0
        failed = bool(significant) and worse > 0 and share > limit
        m = r["metric"]
        out.append(
            CriterionResult(
                f"product metric {name} ({'higher' if r['direction'] == 'higher' else 'lower'} is better)",
                not failed,
                f"baseline {_value(comp, m, r['baseline'])}, candidate {_value(comp, m, r['candidate'])}, "
                f"change {_change(comp, m, r['delta'])} "
                f"[{_change(comp, m, r['ci_low'])}, {_change(comp, m, r['ci_high'])}]"
                + (
                    f"; significantly worse by {format_percent(share, 2)} of the baseline "
                    f"(limit {format_percent(limit, 2)})"
                    if failed
                    else ("; worse, but not significantly or within the limit" if worse > 0 else "")
                ),
            )
        )
    return out


def _overall_result(comp: Comparison, max_worse: float) -> CriterionResult:
    """The overall error: a classifier's error rate (1 − accuracy), a regression's MAE."""
    rows = comp.overall.set_index("metric")
    regression = "mae" in rows.index
    rate = "mae" if regression else "error_rate"
    name = f"overall {metric_name(rate)} not significantly worse by more than {format_delta(rate, max_worse)[1:]}"
    if ("mae" if regression else "accuracy") not in rows.index:
        return CriterionResult(name, True, "no labeled rows to compare")
    r = rows.loc["mae" if regression else "accuracy"]
    if regression:
        b, c, worse, worse_low, worse_high = r["baseline"], r["candidate"], r["delta"], r["ci_low"], r["ci_high"]
    else:  # the error rate moves opposite to the accuracy
        b, c, worse, worse_low, worse_high = (
            1 - r["baseline"],
            1 - r["candidate"],
            -r["delta"],
            -r["ci_high"],
            -r["ci_low"],
        )
    if any(not math.isfinite(float(x)) for x in (b, c, worse)):
        return CriterionResult(name, True, "no labeled rows to compare")
    significant = math.isfinite(float(worse_low)) and worse_low > 0
    failed = significant and worse > max_worse
    detail = (
        f"{format_value(rate, b)} → {format_value(rate, c)} ({format_delta(rate, worse)}, 95% interval "
        f"{format_delta(rate, worse_low)} to {format_delta(rate, worse_high)}; p {format_p(r['p_value'])})"
    )
    if failed:
        detail += f"; significantly worse by more than {format_delta(rate, max_worse)[1:]}"
    elif worse > 0:
        detail += "; worse, but not significantly or within the limit"
    return CriterionResult(name, not failed, detail)


def _slice_result(comp: Comparison, min_rows: int, max_worse: float) -> CriterionResult:
    rate = "mae" if "mae" in set(comp.overall["metric"]) else "error_rate"  # regression: mean absolute error
    name = (
        f"no slice of at least {format_count(min_rows)} rows significantly worse by more than "
        f"{format_delta(rate, max_worse)[1:]}" + (f" ({metric_name(rate)})" if rate != "error_rate" else "")
    )
    if comp.slices.empty:
        return CriterionResult(name, True, "no slices to check")
    s = comp.slices
    enough = (s["n_rows_b"] >= min_rows) & (s["n_rows_c"] >= min_rows)
    big = s[enough]
    bad = big[(big["verdict"] == "regression") & (big["delta"] > max_worse)]

    def said(r) -> str:
        return (
            f"{r['where']}: {metric_name(rate)} {format_value(rate, r['error_rate_b'])} → "
            f"{format_value(rate, r['error_rate_c'])} ({format_delta(rate, r['delta'])}, 95% interval "
            f"{format_delta(rate, r['ci_low'])} to {format_delta(rate, r['ci_high'])}; "
            f"{format_count(r['n_rows_b'])} and {format_count(r['n_rows_c'])} rows; q {format_p(r['q_value'])})"
        )

    # Slices too small to judge that are significantly worse: not a failure, but said, so a
    # small canary's pass is not read as "nothing is worse".
    small = s[~enough & (s["verdict"] == "regression")].sort_values("n_rows_c", ascending=False)
    aside = (
        ""
        if small.empty
        else f"; {format_count(len(small))} smaller slice(s) are significantly worse but below "
        f"{format_count(min_rows)} rows in a version, not judged: "
        + "; ".join(said(r) for r in small.head(2).to_dict(orient="records"))
        + (" …" if len(small) > 2 else "")
    )
    checked = f"{format_count(len(big))} of {format_count(len(s))} slices had enough rows in both versions"
    if bad.empty:
        return CriterionResult(name, True, f"{checked}; none fails{aside}")
    shown = "; ".join(said(r) for r in bad.head(5).to_dict(orient="records"))
    return CriterionResult(
        name,
        False,
        f"{format_count(len(bad))} slice(s) fail: {shown}" + (" …" if len(bad) > 5 else "") + f" ({checked}){aside}",
    )


def _set_results(con, project: Project, candidate: Side, required) -> list[CriterionResult]:

    sets = list_sets(con, project)
    if required == "all":
        names = list(sets.loc[(sets["criteria"] != "") & (sets["latest_version"] > 0), "name"])
        if not names:
            return [CriterionResult("validation sets", True, "no committed set has pass criteria")]
    else:
        names = list(required)
        missing = sorted(set(names) - set(sets["name"]))
        if missing:
            raise ConfigError(f"The gate requires validation set(s) {', '.join(missing)}, which do not exist.")
    results = evaluate(con, project, names)
    out = []
    for name in names:
        rows = results[(results["set"] == name) & (results["model_version"] == candidate.version)]
        if candidate.stage:
            rows = rows[rows["stage"] == candidate.stage]
        scored = rows[rows["labeled"] > 0]
        if scored.empty:
            out.append(
                CriterionResult(f"validation set {name}", False, f"{candidate} has not scored any labeled member of it")
            )
            continue
        r = scored.sort_values("labeled", ascending=False).iloc[0]
        passed = r["verdict"] in ("pass", "no criteria")
        out.append(
            CriterionResult(
                f"validation set {name} v{int(r['set_version'])}",
                passed,
                f"{r['verdict']} on {int(r['labeled']):,} labeled of {int(r['members']):,} members (stage {r['stage']})"
                + (f"; failed: {r['failed']}" if r["failed"] else ""),
            )
        )
    return out


def run_gate(
    con: duckdb.DuckDBPyConnection,
    project: Project,
    baseline: Side,
    candidate: Side,
    *,
    start=None,
    end=None,
    criteria: GateCriteria | None = None,
    comparison: Comparison | None = None,
    overlap: bool = True,
    progress: Progress | None = None,
    figures: Figures | None = None,
) -> GateVerdict:
    """Compare (unless ``comparison`` is given) and check every criterion; ``progress`` and
    ``figures`` as for :func:`analysis.compare.comparison.compare`."""
    criteria = (criteria or get_criteria(con, project)).check()
    comp = comparison or compare(
        con,
        project,
        baseline,
        candidate,
        start=start,
        end=end,
        discovered=criteria.discovered_slices,
        overlap=overlap,
        progress=progress,
        figures=figures,
    )
    if progress is not None:
        progress(0.95, "the validation sets")
    results = [_overall_result(comp, criteria.overall_max_worse), *_product_results(comp, criteria.product_max_worse)]
    results.append(_slice_result(comp, criteria.slice_min_rows, criteria.slice_max_worse))
    results += _set_results(con, project, candidate, criteria.required_sets)
    return GateVerdict(all(r.passed for r in results), results, comp, criteria)

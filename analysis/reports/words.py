"""Plain-language lines for a block's snapshot: what a stakeholder reads first in
the presentation view and the exported report, for example "credit-v3 (shadow):
approval_rate 62.0% vs 65.1% for credit-v1 (production), 3.1 points lower (worse)"."""

from __future__ import annotations

from analysis.discovery.shown import error_words, format_error

# One formatting of numbers for the whole product: re-exported here for the report's modules.
from analysis.metrics.registry import is_headline
from analysis.numbers import format_delta as show_delta
from analysis.numbers import format_p, is_share, metric_name, metric_title, missing, p_words  # noqa: F401
from analysis.numbers import format_value as show


def _judged(row: dict) -> str:
    """'better' / 'worse' for the candidate, and whether the change is significant."""
    delta, direction = row.get("delta"), row.get("direction", "higher")
    if missing(delta) or delta == 0:
        return "no change"
    better = (delta > 0) == (direction == "higher")
    low, high = row.get("ci_low"), row.get("ci_high")
    significant = not missing(low) and not missing(high) and (low > 0 or high < 0)
    return ("better" if better else "worse") + ("" if significant else ", not significant")


def slice_measure(s: dict) -> str:
    """What a comparison's slices differ in: a regression's mean absolute error, else the
    error rate (the snapshot's ``error_rate_b``/``error_rate_c`` hold one or the other)."""
    return "mae" if any(r.get("metric") == "mae" for r in s.get("overall", [])) else "error_rate"


def comparison_lines(s: dict) -> list[str]:
    products = s.get("product_metrics", [])
    head = f"{s['candidate']} against {s['baseline']}, {s['method']}."
    lines = [head] + ([s["window_sentence"]] if s.get("window_sentence") else [])
    for row in s["overall"]:
        if row["kind"] == "ml" and not is_headline(row["metric"]):  # the rest are in the table
            continue
        name = row["metric"]
        if row.get("error"):  # a product metric that fails on the compared rows
            lines.append(f"{metric_title(name, products)}: could not be computed ({row['error']}).")
            continue
        base, cand = row["baseline"], row["candidate"]
        relative = ""  # a share of the baseline: for amounts, not for rates
        if (
            row["kind"] == "product"
            and not is_share(name, products)
            and not missing(base)
            and base
            and not missing(cand)
        ):
            relative = f", {100 * (cand - base) / abs(base):+.1f}%".replace("-", "−")
        per = " per prediction" if row.get("normalisation") == "per prediction" else ""
        lines.append(
            f"{metric_title(name, products)}{per}: {show(name, cand, products)} vs {show(name, base, products)} "
            f"({show_delta(name, row['delta'], products)}{relative}; {_judged(row)})."
        )
    rate = slice_measure(s)
    worse = [r for r in s["slices"] if r["verdict"] == "regression"][:3]
    better = [r for r in s["slices"] if r["verdict"] == "improvement"][:3]
    for word, group in (("Worse", worse), ("Better", better)):
        for r in group:
            interval = (
                ""
                if missing(r.get("ci_low"))
                else f", {show_delta(rate, r['ci_low'])} to {show_delta(rate, r['ci_high'])}"
            )
            lines.append(
                f"{word} for {r['where']}: {metric_name(rate)} {show(rate, r['error_rate_b'])} → "
                f"{show(rate, r['error_rate_c'])} ({show_delta(rate, r['delta'])}{interval}; "
                f"{int(r['n_rows_b'] or 0):,} and {int(r['n_rows_c'] or 0):,} rows, "
                f"q {format_p(r['q_value'])})."
            )
    if not worse and not better:
        lines.append(f"No slice of the {s['n_slices']:,} checked changed significantly.")
    return lines


def headline_lines(s: dict) -> list[str]:
    products = s.get("product_metrics", [])
    lines = []
    first = next((m for m in s["metrics"] if m not in ("error_rate",)), None)
    for r in s["rows"]:
        parts = [f"{int(r.get('n_rows') or 0):,} predictions, {int(r.get('n_labeled') or 0):,} labeled"]
        if first:
            interval = ""
            if not missing(r.get(f"{first}_low")):
                interval = f" [{show(first, r[f'{first}_low'])}, {show(first, r[f'{first}_high'])}]"
            parts.append(f"{metric_name(first)} {show(first, r.get(first))}{interval}")
        parts += [f"{metric_name(d['name'])} {show(d['name'], r.get(d['name']), products)}" for d in products]
        lines.append(f"{r['side']}: " + "; ".join(parts) + ".")
    return lines


def gate_lines(s: dict) -> list[str]:
    failed = [r for r in s["results"] if not r["passed"]]
    head = (
        f"{s['candidate']} passes the deployment gate against {s['baseline']}."
        if s["passed"]
        else f"{s['candidate']} fails the deployment gate against {s['baseline']}: "
        f"{len(failed)} of {len(s['results'])} criteria fail."
    )
    window = [s["window_sentence"]] if s.get("window_sentence") else []
    return [head, *window] + [f"Fails: {r['criterion']} ({r['detail']})." for r in failed]


def slice_lines(s: dict) -> list[str]:
    parts = {p["part"]: p for p in s["parts"]}
    sl, rest = parts.get("slice", {}), parts.get("rest", {})
    metric = "error_rate" if "error_rate" in s["metrics"] else s["metrics"][2] if len(s["metrics"]) > 2 else None
    lines = [
        f"{s['name'] + ': ' if s['name'] else ''}{s['where']}: {int(sl.get('n_rows') or 0):,} predictions "
        f"({show('share', sl.get('share'))} of the scope)."
    ]
    if metric:
        test = next((c for c in s["comparison"] if c["metric"] == metric), {})
        lines.append(
            f"{metric_title(metric)} {show(metric, sl.get(metric))} against {show(metric, rest.get(metric))} "
            f"for the rest" + (f" ({p_words(test.get('p_value'))})" if test.get("p_value") is not None else "") + "."
        )
    return lines


def discovery_lines(s: dict) -> list[str]:
    kept = [r for r in s["slices"] if r["folded_under"] is None]
    ranking = s.get("ranking", "error")  # a snapshot from before the rankings: plain error
    words = s.get("ranking_words", "plain error")
    if not kept:
        return [f"Ranked by: {words}. No slice stands out."]
    what, error = error_words(s["error"]), s["error"]
    if ranking == "error":
        head = f"{len(kept)} slices with the most {what}"
    else:
        head = f"{len(kept)} slices {words}"
    lines = [
        f"Ranked by: {words}. {head} (average {what} {format_error(error, s['mean_error'])} over {s['n_rows']:,} rows):"
    ]
    baseline = "its scores predict" if ranking == "expected" else f"{s.get('other_version')} has"
    for r in kept[:3]:
        versus = (
            f" where {baseline} {format_error(error, r['expected_rate'])}"
            if ranking != "error" and not missing(r.get("expected_rate"))
            else ""
        )
        folded = f"; {len(r['variants'])} near-duplicates folded in" if r.get("variants") else ""
        lines.append(
            f"{r['where']}: {what} {format_error(error, r['error_rate'])}{versus} on {r['size']:,} rows"
            + (f" (q {format_p(r['q_value'])}{folded})" if not missing(r["q_value"]) else "")
            + "."
        )
    return lines


def valsets_lines(s: dict) -> list[str]:
    lines = []
    for version in sorted({(r["model_version"], r["stage"]) for r in s["rows"]}):
        rows = [r for r in s["rows"] if (r["model_version"], r["stage"]) == version]
        judged = [r for r in rows if r["verdict"] in ("pass", "fail")]
        passed = sum(r["verdict"] == "pass" for r in judged)
        if judged:
            lines.append(f"{version[0]} ({version[1]}) passes {passed} of {len(judged)} validation sets.")
    return lines or ["No validation set has been scored with pass criteria."]


def series_lines(s: dict) -> list[str]:
    days = sorted({r["day"] for r in s["rows"]})
    if not days:
        return ["No predictions in the window."]
    return [
        f"Daily {metric_name(s['headline'])} and product metrics of {s['candidate']} and {s['baseline']}, "
        f"{days[0]} to {days[-1]}."
    ]


LINES = {
    "comparison": comparison_lines,
    "headline": headline_lines,
    "gate": gate_lines,
    "slice": slice_lines,
    "discovery": discovery_lines,
    "valsets": valsets_lines,
    "series": series_lines,
    "note": lambda s: [],
}


def lines(kind: str, snapshot: dict) -> list[str]:
    return LINES[kind](snapshot)

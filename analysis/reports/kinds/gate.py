"""The deployment gate: the project's criteria checked against a comparison, PASS or FAIL
with one line per criterion."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from analysis.reports.kinds.base import BlockKind, Card, Rows, Snapshot, compared_title, plain, side_label
from analysis.reports.kinds.comparison import comparison_of, pinned_comparison
from analysis.reports.tables import Table, text, verdict


class GateSnapshot(Snapshot):
    passed: bool
    lines: list[str] = []
    method: str = ""
    window_sentence: str = ""
    baseline: str = ""
    candidate: str = ""
    results: Rows
    criteria: dict[str, Any] = {}


class Gate(BlockKind):
    name = "gate"
    title = "Deployment gate"
    snapshot_model = GateSnapshot
    uses_comparison = True

    def pin(self, con, project, view: dict) -> dict:
        from analysis.compare.gate import get_criteria  # engine: see kinds/__init__

        view = dict(view)
        params = pinned_comparison(con, project, view)
        criteria = view.get("criteria") or get_criteria(con, project)
        params["criteria"] = plain(asdict(criteria) if not isinstance(criteria, dict) else criteria)
        params["discovered"] = int(params["criteria"].get("discovered_slices", 5))
        return params

    def default_title(self, params: dict) -> str:
        return compared_title(self, params)

    def compute(self, con, project, params: dict, comparison=None) -> dict:
        from analysis.compare.gate import criteria_from_dict, run_gate  # engine: see kinds/__init__

        criteria = criteria_from_dict(dict(params["criteria"]), origin="the block's gate criteria")
        comp = comparison or comparison_of(con, project, params, criteria.discovered_slices)
        verdict = run_gate(con, project, comp.baseline, comp.candidate, criteria=criteria, comparison=comp)
        return {
            "passed": verdict.passed,
            "lines": verdict.lines(),
            "method": comp.method,
            "window_sentence": comp.window.sentence() if comp.window else "",
            "baseline": side_label(params["baseline"]),
            "candidate": side_label(params["candidate"]),
            "results": [asdict(r) for r in verdict.results],
            "criteria": params["criteria"],
        }

    def numbers(self, snapshot: dict) -> dict[str, object]:
        out: dict[str, object] = {"verdict": "pass" if snapshot["passed"] else "fail"}
        for r in snapshot["results"]:
            out[r["criterion"]] = ("pass" if r["passed"] else "FAIL") + ": " + r["detail"]
        return out

    def cards(self, snapshot: dict) -> list[Card]:
        failed = sum(not r["passed"] for r in snapshot["results"])
        return [
            Card(
                "Deployment gate",
                "✓ PASS" if snapshot["passed"] else "✗ FAIL",
                f"{failed} of {len(snapshot['results'])} criteria fail" if failed else "every criterion holds",
                "worse" if failed else "better",
            )
        ]

    def lines(self, s: dict) -> list:
        failed = [r for r in s["results"] if not r["passed"]]
        head = (
            f"{s['candidate']} passes the deployment gate against {s['baseline']}."
            if s["passed"]
            else f"{s['candidate']} fails the deployment gate against {s['baseline']}: "
            f"{len(failed)} of {len(s['results'])} criteria fail."
        )
        window = [s["window_sentence"]] if s.get("window_sentence") else []
        return [head, *window] + [f"Fails: {r['criterion']} ({r['detail']})." for r in failed]

    def tables(self, s: dict) -> list:
        return [
            Table(
                ["criterion", "result", "numbers"],
                [
                    [text(r["criterion"]), verdict("pass" if r["passed"] else "fail"), text(r["detail"])]
                    for r in s["results"]
                ],
            )
        ]

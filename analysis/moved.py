"""The engine's modules before they were grouped into packages, still importable under
their old names: ``from analysis.scope import Scope`` is ``from analysis.store.scope
import Scope``. Scripts written against the flat layout keep working; the code itself
uses the new homes only (tests/test_import_contracts.py).

Seven old modules gave their name to a package (``store``, ``ingest``, ``metrics``,
``slices``, ``compare``, ``valsets``, ``cli``): the package answers to that name, and
re-exports what the README imported from it (``from analysis.compare import Side,
compare``); their other names live in the package's modules.

An old name is the new module itself, not a copy: monkeypatching or ``isinstance`` see
one module whichever name imported it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

MOVED = {
    "schema": "store.schema",
    "project": "store.project",
    "scope": "store.scope",
    "sql": "store.sql",
    "changes": "store.changes",
    "access": "store.access",
    "paths": "store.paths",
    "rollup": "metrics.rollup",
    "example_key": "store.example_key",
    "time_bound": "store.time_bound",
    "sources": "ingest.sources",
    "convert": "ingest.convert",
    "class_labels": "ingest.class_labels",
    "mapping": "ingest.mapping",
    "guess_columns": "ingest.guess_columns",
    "headers": "ingest.headers",
    "labels": "ingest.labels",
    "staging": "ingest.staging",
    "external": "ingest.external",
    "key_repeats": "ingest.key_repeats",
    "engine": "engines.settings",
    "spark": "engines.spark",
    "portable": "engines.portable",
    "expressions": "metrics.expressions",
    "product_metrics": "metrics.product",
    "compare_metrics": "metrics.decompose",
    "metric_failures": "metrics.failures",
    "slice_json": "slices.json_types",
    "saved_slices": "slices.saved",
    "slice_metrics": "slices.metrics",
    "breakdown": "slices.breakdown",
    "buckets": "slices.buckets",
    "column_profile": "slices.column_profile",
    "compare_slices": "compare.slices",
    "gate": "compare.gate",
    "traffic": "compare.traffic",
    "cli_compare": "cli.compare",
    "cli_reports": "cli.reports",
    "cli_valsets": "cli.valsets",
    "cli_errors": "cli.errors",
    "cli_output": "cli.output",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``analysis.<old name>`` and answers with the module at its new home."""

    def find_spec(self, fullname: str, path=None, target=None):
        package, _, old = fullname.partition(".")
        if package != "analysis" or old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        return None  # a placeholder; exec_module puts the real module in its place

    def exec_module(self, module) -> None:
        # The import system returns what sys.modules holds under the name once the
        # loader is done, so the old name becomes the new module itself.
        sys.modules[module.__name__] = importlib.import_module(f"analysis.{MOVED[module.__name__.partition('.')[2]]}")


def install() -> None:
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())

"""The first page a fresh server shows pays for every module it imports (scipy.stats
and the report export's charts cost about a second on the test machine). The app's
frame and the Overview import neither; once the first page is drawn, a thread imports
the heavy libraries for the pages that come next (pages/parts/_warm_up.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy.stats", "statsmodels", "analysis.reports.html", "analysis.reports.charts")


def imported_modules(*scripts: str) -> list[str]:
    names = []
    for script in scripts:
        for node in ast.walk(ast.parse((ROOT / script).read_text())):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names += [
                    f"{node.module}.{a.name}" if node.module == "pages.parts" else node.module for a in node.names
                ]
    return sorted(set(names))


def test_the_frame_and_the_overview_load_without_the_heavy_modules():
    modules = imported_modules("app.py", "pages/overview.py")
    assert "pages.parts._report_ui" in modules  # the Overview offers "Add to report"
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_after_the_first_page_the_heavy_libraries_load_on_a_thread_once():
    code = (
        "import sys\nfrom pages.parts import _warm_up\n"
        "first = _warm_up.warm_up()\nassert _warm_up.warm_up() is first\nfirst.join()\n"
        f"print([m for m in {HEAVY[:2]!r} if m not in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

"""Scripts written against the flat layout (``from analysis.scope import Scope``, as the
README showed before the engine was grouped into packages) keep working: each old
module name is the module at its new home, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from analysis.moved import MOVED

ROOT = Path(__file__).resolve().parent.parent


def test_every_old_name_is_the_module_at_its_new_home():
    code = (
        "import importlib, sys\n"
        "import analysis\n"
        f"moved = {MOVED!r}\n"
        "wrong = []\n"
        "for old, new in moved.items():\n"
        "    a = importlib.import_module(f'analysis.{old}')\n"
        "    b = importlib.import_module(f'analysis.{new}')\n"
        "    if a is not b or b.__name__ != f'analysis.{new}' or b.__spec__.name != f'analysis.{new}':\n"
        "        wrong.append(old)\n"
        "print(wrong)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_readmes_former_imports_still_work():
    code = (
        "from analysis.scope import Scope\n"
        "from analysis.slices import parse_slice\n"
        "from analysis.slice_metrics import slice_metrics\n"
        "from analysis.valsets import Selection, create_set, promote, commit, evaluate\n"
        "from analysis.compare import Side, compare\n"
        "from analysis.gate import run_gate\n"
        "import analysis.store.scope, analysis.compare.gate\n"
        "assert Scope is analysis.store.scope.Scope and run_gate is analysis.compare.gate.run_gate\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_name_that_never_existed_is_still_an_import_error():
    code = "import analysis.no_such_module\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1 and "ModuleNotFoundError" in out.stderr

"""ruff's pycodestyle, pyflakes and import-order rules hold over the whole tree, and
``ruff format`` finds nothing to change (the rules and their
few exceptions are in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_finds_nothing():
    out = subprocess.run([str(RUFF), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_tree_is_formatted():
    out = subprocess.run([str(RUFF), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr

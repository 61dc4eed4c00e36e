"""The files Sliceboard finds beside its code: the default database is the repository's
``data/sliceboard.duckdb`` (as the README says, and git-ignored there), and the demo's
mapping is ``data/demo_mapping.toml``, wherever the modules that name them live."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from analysis.demo import DEMO_MAPPING_PATH

ROOT = Path(__file__).resolve().parent.parent


def test_the_default_database_is_the_repositorys_data_folder():
    code = "from analysis import default_db_path; print(default_db_path())"
    env = {k: v for k, v in __import__("os").environ.items() if k != "SLICEBOARD_DB"}
    out = subprocess.run([sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == ROOT / "data" / "sliceboard.duckdb"
    ignored = subprocess.run(["git", "check-ignore", "-q", "data/sliceboard.duckdb"], cwd=ROOT, capture_output=True)
    assert ignored.returncode == 0  # git-ignored: a database never lands in a commit


def test_the_demo_mapping_is_found():
    assert DEMO_MAPPING_PATH == ROOT / "data" / "demo_mapping.toml" and DEMO_MAPPING_PATH.is_file()

"""Sliceboard installs as a package (pyproject.toml, `pip install -e .`): the `sliceboard`
command answers as `python -m analysis` does, from any folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_sliceboard_command_equals_python_m_analysis(demo_db, tmp_path):
    command = Path(sys.executable).parent / "sliceboard"
    assert command.exists(), "pip install -e . installs the sliceboard command"
    args = ["--db", str(demo_db), "--format", "json", "info", "--project", "lending-demo"]
    installed = run([str(command), *args], tmp_path)  # another folder: the package, not the checkout
    module = run([sys.executable, "-m", "analysis", *args], tmp_path)
    assert installed.returncode == module.returncode == 0, installed.stderr + module.stderr
    assert json.loads(installed.stdout) == json.loads(module.stdout)
    assert json.loads(installed.stdout)["name"] == "lending-demo"
    usage = run([str(command), "--help"], tmp_path)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: sliceboard ")


def test_a_reader_that_stops_early_gets_no_traceback(demo_db, tmp_path):
    """`sliceboard metrics --daily | head`: the command ends as a Unix tool stopped by
    SIGPIPE (exit 141), without a traceback."""
    command = Path(sys.executable).parent / "sliceboard"
    proc = subprocess.Popen(
        [str(command), "--db", str(demo_db), "--format", "json", "metrics", "--project", "lending-demo", "--daily"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.read(10)  # the reader takes ten bytes and goes away
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr

"""The README says what the code does: its Python API block runs as written on the demo's
database, and its command table lists exactly the CLI's commands."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from analysis import Store, get_project
from analysis.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_the_python_api_block_runs_on_the_demo(demo_db, tmp_path, monkeypatch):
    block = re.search(r"```python\n(.*?)```", section("Python API"), re.S).group(1)
    (tmp_path / "data").mkdir()
    shutil.copy(demo_db, tmp_path / "data" / "sliceboard.duckdb")
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(block, "README.md (Python API)", "exec"), names)
    # What it computed is what the engine says on the same rows.
    assert not names["verdict"].passed  # the planted credit-v2 slice fails the gate
    assert names["changes"] == [[], []]
    assert (tmp_path / "launch.html").stat().st_size > 10_000
    assert names["young"].row("slice")["n_rows"] > 0 and len(names["worst"]) > 0
    with Store(tmp_path / "data" / "sliceboard.duckdb").read() as con:
        loans = get_project(con, "loans")
        got = con.execute(f'SELECT count(*), count(label) FROM "{loans.log_table}"').fetchall()[0]
    assert got == (3, 2)


def commands() -> dict:
    """The CLI's commands and their parsers, as argparse holds them."""
    return next(a for a in build_parser()._subparsers._group_actions if a.dest == "command").choices


def test_the_command_table_lists_the_clis_commands():
    listed = set(re.findall(r"^\| `([a-z-]+)[ `]", section("Command line"), re.M))
    assert listed == set(commands()), (sorted(listed - set(commands())), sorted(set(commands()) - listed))


@pytest.mark.parametrize("command", sorted(commands()))
def test_the_table_shows_each_commands_options_as_the_parser_knows_them(command):
    row = next(line for line in section("Command line").splitlines() if line.startswith(f"| `{command}"))
    options = set(re.findall(r"(--[a-z][a-z-]*)", row.split("|")[1]))
    sub = commands()[command]
    known = {o for a in sub._actions for o in a.option_strings}
    for nested in (a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"):
        known |= {o for p in nested.choices.values() for a in p._actions for o in a.option_strings}
    assert options <= known, sorted(options - known)

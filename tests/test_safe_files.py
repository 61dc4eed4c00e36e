"""Files the command line writes (``report``, ``valsets export``): never over an existing
file without ``--force``, never over the database, never through a planted link, never
outside the chosen folder, never half a file; bad targets get one line and exit 2. And
the rules under them (``analysis.store.paths``): safe file names, the folders the app may read."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, db_digest
from test_reports import MAPPING, dataset

from analysis import ConfigError, Store, get_project, ingest_predictions
from analysis.reports import add_block, get_report, render_html
from analysis.store.paths import check_readable, read_folders, safe_file_name, uploads_root, write_file

HOSTILE_PROJECTS = ["../../x/trav", "a/b", "two\nlines", "tab\there", "..", ".hidden", "con"]


def run(cwd, *args):
    """The CLI in a subprocess from ``cwd``: (exit code, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(
        [sys.executable, "-m", "analysis", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A database with project ``p`` (a committed set ``berlin``) and projects named to
    escape a folder, each with a saved report ``r`` of one note."""
    from analysis.slices import parse_slice
    from analysis.store.scope import Scope
    from analysis.valsets import Selection, commit, create_set, promote

    folder = tmp_path_factory.mktemp("db")
    store = Store(folder / "sb.duckdb")
    frame = dataset(600)
    frame["label"] = frame["label"].fillna(0).astype(int)  # every member labeled (exports of unlabeled: item 15)
    with store.write() as con:
        for name in ["p", *HOSTILE_PROJECTS]:
            ingest_predictions(con, frame, project=name, mapping=MAPPING)
            add_block(con, get_project(con, name), "r", "note", {"text": "hello"})
        project = get_project(con, "p")
        create_set(con, project, "berlin")
        promote(con, project, "berlin", Selection(slice_=parse_slice("city = ber"), scope=Scope.of(versions="v1")))
        commit(con, project, "berlin", "first")
    return store.path


@pytest.fixture()
def db(built, tmp_path):
    """A private copy of the built database (a test may try to destroy it)."""
    target = tmp_path / "db" / "sb.duckdb"
    target.parent.mkdir()
    target.write_bytes(Path(built).read_bytes())
    return target


def expected_html(db, project="p", report="r") -> str:
    with Store(db).read() as con:
        return render_html(get_report(con, get_project(con, project), report))


def assert_refused(code, out, err, *words):
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)


# -- report ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["db", "wal"])
def test_report_never_overwrites_the_database_even_with_force(db, tmp_path, target):
    path = db if target == "db" else db.with_name(db.name + ".wal")
    if target == "wal":
        path.write_bytes(b"not yet a log")
    before, raw = db_digest(db), path.read_bytes()
    for extra in ([], ["--force"]):
        code, out, err = run(tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--out", path, *extra)
        assert_refused(code, out, err, str(path))
        assert path.read_bytes() == raw and db_digest(db) == before


def test_report_never_overwrites_another_duckdb_database(db, tmp_path):
    other = tmp_path / "other.duckdb"
    Store(other).initialize()
    raw = other.read_bytes()
    code, out, err = run(tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--out", other, "--force")
    assert_refused(code, out, err, "DuckDB database")
    assert other.read_bytes() == raw


def test_report_replaces_an_existing_file_only_with_force(db, tmp_path):
    out_file = tmp_path / "launch.html"
    out_file.write_text("keep me")
    code, out, err = run(tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--out", out_file)
    assert_refused(code, out, err, "already exists", "--force")
    assert out_file.read_text() == "keep me"
    code, out, err = run(
        tmp_path,
        "--db",
        db,
        "report",
        "--project",
        "p",
        "--report",
        "r",
        "--out",
        out_file,
        "--force",
        "--format",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["out"] == str(out_file)
    written = out_file.read_text(encoding="utf-8")
    assert written.startswith("<!doctype html>") and "hello" in written
    # Same page as rendering the report in-process (the export time aside).
    strip = lambda s: s.split("exported", 1)[0]  # noqa: E731
    assert strip(written) == strip(expected_html(db))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".launch.html")], "a temporary file was left"


def test_report_into_a_folder_or_a_missing_folder_is_one_line_and_exit_2(db, tmp_path):
    code, out, err = run(tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--out", tmp_path)
    assert_refused(code, out, err, "is a folder")
    code, out, err = run(
        tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--out", tmp_path / "missing" / "x.html"
    )
    assert_refused(code, out, err, "does not exist", str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, out, err = run(tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--out", afile / "x.html")
    assert_refused(code, out, err, "is not a folder")


def test_report_does_not_follow_a_planted_link(db, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "launch.html"
    link.symlink_to(victim)
    for extra in ([], ["--force"]):
        code, out, err = run(tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--out", link, *extra)
        assert_refused(code, out, err, "symbolic link")
        assert victim.read_text() == "precious" and link.is_symlink()
    # A link planted at the default name is not followed either.
    default = tmp_path / "p-report.html"
    default.symlink_to(victim)
    code, out, err = run(tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--force")
    assert_refused(code, out, err, "symbolic link")
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("name", HOSTILE_PROJECTS)
def test_a_project_name_makes_a_safe_file_name_inside_the_folder(built, tmp_path, name):
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    code, out, err = run(work, "--db", built, "report", "--project", name, "--report", "r", "--format", "json")
    assert code == 0, err
    written = list(work.iterdir())
    assert len(written) == 1, written
    assert written[0].name == safe_file_name(f"{name}-report.html")
    assert written[0].name.endswith("-report.html") and not written[0].name.startswith(".")
    assert "/" not in written[0].name and "\n" not in written[0].name and "\t" not in written[0].name
    assert json.loads(out)["out"] == written[0].name
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [written[0].name]


def test_new_files_keep_the_umask_but_are_never_world_writable(db, tmp_path):
    out_file = tmp_path / "r.html"
    env_umask = os.umask(0)  # the child inherits the umask
    try:
        code, out, err = run(tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--out", out_file)
    finally:
        os.umask(env_umask)
    assert code == 0, err
    mode = stat.S_IMODE(out_file.stat().st_mode)
    assert mode == 0o664  # 0666 less the umask (0) less write for others
    out_file.unlink()
    os.umask(0o077)
    try:
        code, out, err = run(tmp_path, "--db", db, "report", "--project", "p", "--report", "r", "--out", out_file)
    finally:
        os.umask(env_umask)
    assert code == 0, err
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600


# -- valsets export --------------------------------------------------------------------------------


def test_valsets_export_follows_the_same_rules(db, tmp_path):
    before = db_digest(db)
    raw = db.read_bytes()
    export = ["--db", db, "valsets", "export", "--project", "p", "--set", "berlin"]
    code, out, err = run(tmp_path, *export, "--out", db, "--force")
    assert_refused(code, out, err, ".parquet or .csv")
    db.with_name("sb.csv").symlink_to(db)  # the database under an export's name
    code, out, err = run(tmp_path, *export, "--out", db.with_name("sb.csv"), "--force")
    assert_refused(code, out, err, "symbolic link")
    elsewhere = tmp_path / "elsewhere.csv"
    code, out, err = run(tmp_path, *export, "--out", tmp_path / "missing" / "x.parquet")
    assert_refused(code, out, err, "does not exist")
    code, out, err = run(tmp_path, *export, "--out", tmp_path / "x.parquet")
    assert code == 0, err
    from analysis.valsets import export_bytes

    with Store(db).read() as con:
        data, done = export_bytes(con, get_project(con, "p"), "berlin", "latest", "parquet")
    assert (tmp_path / "x.parquet").read_bytes() == data
    assert len(pd.read_parquet(tmp_path / "x.parquet")) == done.rows > 0
    code, out, err = run(tmp_path, *export, "--out", tmp_path / "x.parquet")
    assert_refused(code, out, err, "already exists")
    link = tmp_path / "l.csv"
    link.symlink_to(elsewhere)
    code, out, err = run(tmp_path, *export, "--out", link, "--force")
    assert_refused(code, out, err, "symbolic link")
    assert not elsewhere.exists()
    code, out, err = run(tmp_path, *export, "--out", tmp_path / "x.parquet", "--force")
    assert code == 0, err
    assert db.read_bytes() == raw and db_digest(db) == before


# -- the rules themselves --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, want",
    [
        ("../../x/trav", "_.._x_trav"),
        ("a/b\\c", "a_b_c"),
        ("\x00nul", "_nul"),
        ("two\nlines", "two_lines"),
        ("..", "file"),
        (".hidden", "hidden"),
        ("", "file"),
        ("right\u202eto left", "right_to left"),
        ("con.html", "_con.html"),
        ("résumé 📈", "résumé 📈"),
        ("a:b*c?.html", "a_b_c_.html"),
    ],
)
def test_safe_file_name(text, want):
    assert safe_file_name(text) == want


def test_safe_file_name_keeps_the_suffix_of_a_long_name():
    name = safe_file_name("é" * 300 + ".html")
    assert name.endswith(".html") and len(name.encode()) <= 200


def test_write_file_leaves_no_half_file(tmp_path):
    from analysis.store.paths import writing

    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with writing(target, force=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]
    write_file(target, "new", force=True)
    assert target.read_text() == "new"


def test_check_readable(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "lake").mkdir(parents=True)
    (data / "lake" / "a.parquet").write_bytes(b"PAR1")
    (tmp_path / "secret.csv").write_text("key\nsk-123\n")
    monkeypatch.delenv("SLICEBOARD_READ_FOLDERS", raising=False)
    folders = read_folders(data / "sb.duckdb")
    assert folders == [data.resolve()]
    assert stat.S_IMODE(uploads_root().stat().st_mode) == 0o700
    upload = uploads_root() / "u.csv"
    upload.write_text("a\n1\n")
    with pytest.raises(ConfigError, match="does not read"):  # an upload is not read by its path
        check_readable(str(upload), [*folders, uploads_root().parent])
    upload.unlink()
    assert check_readable(str(data / "lake" / "a.parquet"), folders) == str(data / "lake" / "a.parquet")
    assert check_readable(str(data / "lake"), folders)
    assert check_readable(str(data / "*" / "*.parquet"), folders)
    for bad in [
        "/etc/passwd",
        str(tmp_path / "secret.csv"),
        str(data / ".." / "secret.csv"),
        str(data / ".."),
        str(data / "*" / ".." / ".." / "*.csv"),
        "/*",
        "s3://bucket/x/",
        "http://169.254.169.254/",
        "~/.ssh/id_rsa",
        "secret.csv",
    ]:
        with pytest.raises(ConfigError, match="does not read"):
            check_readable(bad, folders)
    # A link inside an allowed folder that points out of it is refused, alone or in a folder.
    (data / "lake" / "out.csv").symlink_to(tmp_path / "secret.csv")
    for bad in [str(data / "lake" / "out.csv"), str(data / "lake"), str(data / "lake" / "*.csv")]:
        with pytest.raises(ConfigError, match="does not read"):
            check_readable(bad, folders)
    # The setting replaces the data folder; a home folder is never the default.
    monkeypatch.setenv("SLICEBOARD_READ_FOLDERS", os.pathsep.join([str(tmp_path), ""]))
    assert read_folders(data / "sb.duckdb") == [tmp_path.resolve()]
    monkeypatch.delenv("SLICEBOARD_READ_FOLDERS")
    assert read_folders(Path.home() / "sb.duckdb") == []
    assert read_folders("/sb.duckdb") == []

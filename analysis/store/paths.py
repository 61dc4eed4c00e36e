"""Files Sliceboard writes and reads on someone's behalf.

Writing (the CLI's ``report``, ``valsets export``, the Python API's writers):
:func:`write_file` never follows a symbolic link at the target, never replaces a
DuckDB database (nor the database's ``.wal``), replaces an existing file only when
asked (``force``), and writes through a temporary file in the same folder that is
moved into place, so a crash never leaves half a file. New files get the user's
umask, but never write permission for everyone. :func:`safe_file_name` turns a
project's or report's name into one plain file name.

Reading (the app's Import page): :func:`check_readable` refuses a server path outside
the folders the app may read (:func:`read_folders`), after resolving ``..`` and
symbolic links. The app's uploads live in a private folder (mode 0700) of the server
process (:class:`Uploads`). The command line, run by people in their own shell, is
not restricted.
"""

from __future__ import annotations

import atexit
import glob as globlib
import os
import re
import shutil
import tempfile
import threading
import unicodedata
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from analysis.errors import ConfigError

READ_FOLDERS_ENV = "SLICEBOARD_READ_FOLDERS"
DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file
_UNSAFE = re.compile(r'[/\\<>:"|?*]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
MAX_NAME_BYTES = 200


# -- names -----------------------------------------------------------------------------------------


def safe_file_name(text: str, *, fallback: str = "file") -> str:
    """``text`` as one file name: no path separators, no characters that shells or other
    systems treat specially, no control or invisible formatting characters (NUL, new
    lines, right-to-left marks), no leading dots (a hidden file, ``..``) and at most
    200 bytes (the suffix kept). ``fallback`` when nothing is left."""
    text = unicodedata.normalize("NFC", str(text))
    chars = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or _UNSAFE.match(ch):
            chars.append("_")
        elif ch.isspace():
            chars.append(" ")
        else:
            chars.append(ch)
    name = "".join(chars).strip(" ")
    name = name.lstrip(".").strip(" ").rstrip(". ")
    if not name or set(name) <= {"_"}:
        name = fallback
    if name.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        name = "_" + name
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, suffix = name.rpartition(".")
        suffix = dot + suffix if dot and len(suffix) <= 12 else ""
        stem = name[: len(name) - len(suffix)]
        while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
            stem = stem[:-1]
        name = stem.rstrip(". ") + suffix
    return name


# -- writing ---------------------------------------------------------------------------------------


def _umask() -> int:
    try:  # Linux: read it without changing it (other threads may be creating files)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _is_duckdb_file(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(12)[8:12] == DUCKDB_MAGIC
    except OSError:
        return False


def _same(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def database_files(db_path: str | os.PathLike) -> list[Path]:
    """The files of one database: the file and its write-ahead log."""
    p = Path(db_path).expanduser()
    return [p, p.with_name(p.name + ".wal")]


def check_target(path: str | os.PathLike, *, force: bool = False, protect=()) -> Path:
    """The file ``path`` may be written: its folder exists, it is not a folder, not a
    symbolic link, not a DuckDB database nor one of ``protect`` (even with ``force``),
    and, unless ``force``, not an existing file. Raises :class:`ConfigError` otherwise."""
    if not str(path).strip() or "\x00" in str(path):
        raise ConfigError(f"Not a usable file name: {str(path)!r}.")
    p = Path(path).expanduser()
    parent = p.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise ConfigError(f"Cannot write {p}: the folder {parent} {what}.")
    if p.is_symlink():
        raise ConfigError(f"Cannot write {p}: it is a symbolic link, and Sliceboard does not write through links.")
    if p.is_dir():
        raise ConfigError(f"Cannot write {p}: it is a folder; name a file inside it.")
    for protected in protect:
        if _same(p, Path(protected)):
            raise ConfigError(f"Cannot write {p}: it is the database's own file; name another file.")
    if p.exists():
        if _is_duckdb_file(p):
            raise ConfigError(f"Cannot write {p}: it is a DuckDB database; name another file.")
        if not p.is_file():
            raise ConfigError(f"Cannot write {p}: it is not a regular file.")
        if not force:
            raise ConfigError(f"{p} already exists; pass --force to replace it.")
    return p


@contextmanager
def writing(path: str | os.PathLike, *, force: bool = False, protect=()) -> Iterator[Path]:
    """Yield a temporary file in the target's folder to write; when the block ends
    without an error, move it to ``path`` (see :func:`check_target`). On an error the
    temporary file is removed and ``path`` is untouched."""
    target = check_target(path, force=force, protect=protect)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise ConfigError(f"Cannot write {target}: {exc.strerror or exc}.") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask() & ~0o002)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # Checked again just before the move: the target may have appeared meanwhile.
        check_target(target, force=force, protect=protect)
        if force:
            os.replace(tmp, target)  # replaces a link itself, never what it points to
        else:
            try:
                os.link(tmp, target)  # fails if the name exists: never replaces a file
            except FileExistsError:
                raise ConfigError(f"{target} already exists; pass --force to replace it.") from None
            except OSError:  # a file system without hard links
                os.replace(tmp, target)
    except OSError as exc:
        raise ConfigError(f"Cannot write {target}: {exc.strerror or exc}.") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_file(path: str | os.PathLike, data: bytes | str, *, force: bool = False, protect=()) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` under the rules of :func:`writing`."""
    with writing(path, force=force, protect=protect) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path).expanduser()


# -- reading (the app) -----------------------------------------------------------------------------

_uploads_lock = threading.Lock()
_uploads_root: Path | None = None


def uploads_root() -> Path:
    """This process's private folder for uploaded files (mode 0700, made on first use,
    removed when the process ends)."""
    global _uploads_root
    with _uploads_lock:
        if _uploads_root is None or not _uploads_root.is_dir():
            _uploads_root = Path(tempfile.mkdtemp(prefix="sliceboard-uploads-"))
            atexit.register(shutil.rmtree, _uploads_root, True)
        return _uploads_root


def _made_uploads_root() -> list[Path]:
    """The uploads folder if this process made one (asking does not make it)."""
    with _uploads_lock:
        return [_uploads_root] if _uploads_root is not None and _uploads_root.is_dir() else []


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def read_folders(db_path: str | os.PathLike) -> list[Path]:
    """The folders the app may read besides its uploads: those in
    ``$SLICEBOARD_READ_FOLDERS`` (separated by ``os.pathsep``), else the database's folder
    (unless that is a home folder or a file system's root). Resolved."""
    env = os.environ.get(READ_FOLDERS_ENV)
    if env is not None:
        folders = [Path(x.strip()).expanduser() for x in env.split(os.pathsep) if x.strip()]
    else:
        folder = Path(db_path).expanduser().resolve().parent
        folders = [] if folder in (Path.home().resolve(), Path(folder.anchor)) else [folder]
    return [f.resolve() for f in folders]


def is_upload(path: str | os.PathLike) -> bool:
    """Whether ``path`` is one of the app's uploaded files."""
    return any(_inside(Path(path).resolve(), root) for root in _made_uploads_root())


def _matches(path: str):
    p = Path(path)
    if p.is_dir():
        return globlib.iglob(str(p / "**" / "*"), recursive=True, include_hidden=True)
    if any(ch in path for ch in "*?["):
        return globlib.iglob(path, recursive=True, include_hidden=True)
    return iter([path])


def check_readable(path: str, folders: list[Path]) -> str:
    """``path`` (a file, folder or glob on the server) expanded, if it and everything it
    names lies inside ``folders`` once ``..`` and symbolic links are resolved; else a
    :class:`ConfigError` naming the folders. URLs (object storage, http) are refused, and
    so are other sessions' uploads (an upload is used by its own session, not by path)."""
    text = str(path).strip()
    refusal = (
        f"The app does not read {text!r}: it reads only files inside the folders it is allowed "
        f"({', '.join(str(f) for f in folders) or 'none'}; set {READ_FOLDERS_ENV} to change them), "
        "or upload the file."
    )
    if "\x00" in text:
        raise ConfigError(refusal)
    if "://" in text:
        if not text.lower().startswith("file://"):
            raise ConfigError(
                f"The app does not read URLs ({text!r}); attach object storage with the command "
                "line (python -m analysis attach URL)."
            )
        text = text[len("file://") :]
    text = os.path.expanduser(text)
    parts = Path(text).parts
    literal = next((i for i, part in enumerate(parts) if any(ch in part for ch in "*?[")), len(parts))
    if ".." in parts[literal:]:
        raise ConfigError(refusal)
    uploads = _made_uploads_root()

    def allowed(candidate) -> bool:
        resolved = Path(os.path.realpath(candidate))
        return any(_inside(resolved, folder) for folder in folders) and not any(
            _inside(resolved, root) for root in uploads
        )

    # The fixed part first: a pattern under / is refused before anything is listed.
    if not allowed(Path(*parts[:literal]) if literal else Path(".")):
        raise ConfigError(refusal)
    if not all(allowed(m) for m in _matches(text)):
        raise ConfigError(refusal)
    return text


# -- the app's uploads -----------------------------------------------------------------------------


class Uploads:
    """One app session's uploaded file, kept in a private folder (mode 0700) under
    :func:`uploads_root`: at most one file at a time, removed when it is replaced,
    discarded or ingested."""

    def __init__(self) -> None:
        self.tag: str | None = None
        self.folder: Path | None = None  # made with the first upload

    def _new_folder(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="session-", dir=uploads_root()))
        # A session that ends takes its folder with it.
        weakref.finalize(self, shutil.rmtree, str(self.folder), True)

    def keep(self, tag: str, name: str, data) -> Path:
        """Save ``data`` (bytes or a buffer) as ``name`` (made safe); ``tag`` tells one
        upload from another (an upload already kept is not written again)."""
        name = safe_file_name(name, fallback="upload")
        if tag == self.tag and self.folder is not None and (self.folder / name).is_file():
            return self.folder / name
        self.discard()
        if self.folder is None or not self.folder.is_dir():
            self._new_folder()
        target = self.folder / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        self.tag = tag
        return target

    def discard(self) -> None:
        """Remove the kept file."""
        if self.folder is not None and self.folder.is_dir():
            for child in self.folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        self.tag = None

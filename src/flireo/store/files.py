"""Owner-only files for what the server keeps on disk (issue 14 item 10): the data
directory 0700, the SQLite database and its ``-wal``/``-shm``/``-journal`` files
0600, like ``secret.key``.

SQLite creates its side files with the mode of the main database file, so the
database is created empty with 0600 before SQLite opens it; files left more open
by an older version are tightened at start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _tighten(path: Path) -> None:
    """Take group and other access away (the owner's bits stay)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & 0o077:
        path.chmod(current & ~0o077)


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) owner-only, or take group/other access away."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _tighten(path)


def private_sqlite_file(database: str | os.PathLike[str]) -> None:
    """The SQLite file at ``database`` exists with mode 0600, its side files too."""
    path = Path(database)
    if not path.parent.exists():
        private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # an empty file is an empty database to SQLite
    for candidate in (path, *(Path(f"{path}{side}") for side in SQLITE_SIDE_FILES)):
        _tighten(candidate)

"""The database, its WAL files and the data directory are owner-only (issue 14
item 10), whatever the process umask, like ``secret.key``."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from flireo.security.secrets import key_file, load_keyring
from flireo.store.db import Database
from flireo.store.files import private_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(db: Path) -> dict[str, int]:
    """Mode of the database and each side file that exists now."""
    paths = [db, *(db.with_name(db.name + side) for side in ("-wal", "-shm"))]
    return {p.name: mode(p) for p in paths if p.exists()}


def old_files(root: Path) -> None:
    for name in ("flireo.db", "flireo.db-wal", "flireo.db-shm"):
        (root / name).touch()
        (root / name).chmod(0o644)


PRIVATE = {"flireo.db": 0o600, "flireo.db-wal": 0o600, "flireo.db-shm": 0o600}


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: new files 0644, directories 0755
    try:
        yield
    finally:
        os.umask(old)


async def test_sqlite_database_and_wal_files_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "flireo.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.transaction() as s:
            await s.execute(text("CREATE TABLE t (x TEXT)"))
            await s.execute(text("INSERT INTO t VALUES ('a')"))
        async with db.read() as s:
            assert (await s.execute(text("SELECT x FROM t"))).scalar_one() == "a"
            assert modes(path) == PRIVATE  # the WAL files exist while connections are open
    finally:
        await db.dispose()
    assert mode(path.parent) == 0o700


async def test_files_left_open_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "flireo.db"
    old_files(tmp_path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        assert modes(path) == PRIVATE  # before SQLite touched them
        async with db.transaction() as s:
            await s.execute(text("CREATE TABLE t (x TEXT)"))
        assert modes(path) == PRIVATE
    finally:
        await db.dispose()


def test_data_dir_and_key_file(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    load_keyring(None, data, create=True)
    assert (mode(data), mode(key_file(data))) == (0o700, 0o600)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    private_dir(shared)
    assert mode(shared) == 0o700

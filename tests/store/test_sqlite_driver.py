"""The embedded SQLite driver: statements run on the event loop's own thread (no
driver thread), it behaves as SQLAlchemy's SQLite dialects do (rows, row counts,
last row ids, executemany, errors), another process's write lock is waited out
without blocking the loop, and checkpoints run on a worker thread."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flireo.store import db as store_db
from flireo.store import sqlite_driver
from flireo.store.db import Database


class _Base(DeclarativeBase):
    pass


class Row(_Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)


async def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(_Base.metadata.create_all)
    return db


async def test_statements_run_on_the_loop_thread_with_no_driver_thread(tmp_path: Path) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    db = await _db(tmp_path)
    assert isinstance(db.engine.dialect, sqlite_driver.SQLiteDialectOnLoop)
    assert db.dialect == "sqlite"
    ran_on: list[int] = []

    async with db.read() as s:
        raw = await s.connection()
        driver = (await raw.get_raw_connection()).driver_connection
        assert isinstance(driver, sqlite3.Connection)  # the plain driver, no thread

        def where(x: int) -> int:
            ran_on.append(threading.get_ident())
            return x

        driver.create_function("where_am_i", 1, where)
        assert (await s.execute(text("SELECT where_am_i(7)"))).scalar_one() == 7
        pragmas = {
            name: (await s.execute(text(f"PRAGMA {name}"))).scalar_one()
            for name in ("journal_mode", "wal_autocheckpoint", "busy_timeout", "foreign_keys")
        }
    await db.dispose()
    assert ran_on == [threading.get_ident()]
    assert {t.ident for t in threading.enumerate()} <= threads_before  # nothing new is running
    assert pragmas == {
        "journal_mode": "wal",
        "wal_autocheckpoint": 0,  # checkpoints are the Checkpointer's, off the loop
        "busy_timeout": sqlite_driver.LOOP_BUSY_TIMEOUT_MS,
        "foreign_keys": 1,
    }


async def test_rows_counts_ids_and_executemany(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    async with db.transaction() as s:
        first = await s.execute(insert(Row).values(name="a"))
        assert first.inserted_primary_key == (1,)
        await s.execute(insert(Row), [{"name": "b"}, {"name": "c"}, {"name": "d"}])
        changed = await s.execute(update(Row).where(Row.id > 1).values(name=Row.name + "!"))
        assert changed.rowcount == 3
    async with db.read() as s:
        names = (await s.execute(select(Row.name).order_by(Row.id))).scalars().all()
        assert names == ["a", "b!", "c!", "d!"]
        many = await s.execute(
            text("SELECT id, name FROM rows WHERE id >= :i ORDER BY id"), {"i": 3}
        )
        assert list(many.keys()) == ["id", "name"]
        assert [tuple(r) for r in many] == [(3, "c!"), (4, "d!")]
    await db.dispose()


async def test_driver_errors_are_sqlalchemys(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    async with db.transaction() as s:
        s.add(Row(name="a"))

    async def duplicate() -> None:
        async with db.transaction() as s:
            await s.execute(insert(Row).values(name="a"))

    async def broken_sql() -> None:
        async with db.read() as s:
            await s.execute(text("SELECT nope FROM rows"))

    with pytest.raises(IntegrityError):
        await duplicate()
    with pytest.raises(OperationalError):
        await broken_sql()
    async with db.read() as s:  # the connection is still good
        assert (await s.execute(select(Row.name))).scalars().all() == ["a"]
    await db.dispose()


async def _loop_lag_while(work: asyncio.Future[object]) -> float:
    """The longest a 5 ms sleeper was woken late while ``work`` ran."""
    worst = 0.0
    while not work.done():
        due = time.perf_counter() + 0.005
        await asyncio.sleep(0.005)
        worst = max(worst, time.perf_counter() - due)
    return worst


def _other_writer(path: Path, hold_s: float, holding: threading.Event) -> None:
    """Another program (the CLI, say) on its own thread: takes the write lock, writes,
    holds it ``hold_s``, commits (its own fsync, off our loop)."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO rows (name) VALUES ('theirs')")
        holding.set()
        time.sleep(hold_s)
        other.execute("COMMIT")
    finally:
        other.close()


async def test_another_process_writer_is_waited_for_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    db = await _db(tmp_path)
    holding = threading.Event()
    theirs = asyncio.ensure_future(
        asyncio.to_thread(_other_writer, tmp_path / "x.db", 0.4, holding)
    )
    await asyncio.to_thread(holding.wait, 10)

    async def ours() -> None:
        async with db.transaction() as s:
            s.add(Row(name="ours"))

    # the collector is held off while the loop is timed: in the whole suite this
    # process's heap (models, every test's leftovers) makes a full pass take ~0.5 s,
    # which is the test runner's stall, not the driver's (the server freezes its heap)
    gc.collect()
    gc.disable()
    try:
        write = asyncio.ensure_future(ours())
        lag = await _loop_lag_while(write)
        await write
    finally:
        gc.enable()
    await theirs
    async with db.read() as s:
        names = (await s.execute(select(Row.name).order_by(Row.id))).scalars().all()
    await db.dispose()
    assert names == ["theirs", "ours"]  # it waited for the other writer, then committed
    # while it waited the loop kept running: at worst one busy-timeout step late
    assert lag < 0.1, f"the loop stalled {lag * 1000:.0f} ms"


async def test_a_lock_held_past_the_deadline_fails_as_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_S", 0.3)
    db = await _db(tmp_path)
    other = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    began = time.perf_counter()
    with pytest.raises(OperationalError, match="locked"):
        async with db.transaction() as s:
            s.add(Row(name="never"))
    waited = time.perf_counter() - began
    other.execute("ROLLBACK")
    other.close()
    async with db.read() as s:
        assert (await s.execute(select(Row.name))).scalars().all() == []
    await db.dispose()
    assert 0.2 < waited < 2.0


async def test_checkpoints_copy_the_wal_into_the_database_file_off_the_loop(
    tmp_path: Path,
) -> None:
    db = await _db(tmp_path)
    checkpointer = db.checkpointer
    assert checkpointer is not None
    checkpointer.every_commits = 10
    ran_on: list[int] = []
    original = checkpointer.checkpoint

    def observed() -> None:
        ran_on.append(threading.get_ident())
        original()

    checkpointer.checkpoint = observed  # type: ignore[method-assign]
    for i in range(25):
        async with db.transaction() as s:
            s.add(Row(name=f"r{i}"))
    await db.dispose()  # waits for a checkpoint still running
    assert checkpointer.checkpoints >= 1
    assert ran_on
    assert threading.get_ident() not in ran_on
    # the database file alone (the WAL ignored) has the rows of the checkpointed commits
    alone = sqlite3.connect(f"file:{tmp_path / 'x.db'}?immutable=1", uri=True)
    try:
        count = alone.execute("SELECT count(*) FROM rows").fetchone()[0]
    finally:
        alone.close()
    assert count >= 10

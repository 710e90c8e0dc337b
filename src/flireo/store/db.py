"""The async engine and sessions.

SQLite runs in WAL mode, on the event loop's thread
(:mod:`flireo.store.sqlite_driver` says why and how the loop is kept clear).
Its write transactions start with ``BEGIN IMMEDIATE`` so that a writer holds
the write lock from its first statement instead of failing with "database is
locked" when a read lock would have to be upgraded; read-only sessions keep a
deferred ``BEGIN`` so readers never block.

SQLite has one writer at a time. Inside the process, writers queue on an
asyncio lock (FIFO) before they take a connection and ``BEGIN IMMEDIATE``.
Another process's writer (the CLI, a second server) is waited for with
``asyncio.sleep`` between attempts, up to :data:`SQLITE_BUSY_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from flireo.store import sqlite_driver
from flireo.store.files import private_sqlite_file

_write_txn: ContextVar[bool] = ContextVar("flireo_sqlite_write_txn", default=False)

#: how long a writer waits for SQLite's write lock (in-process queue, then other processes)
SQLITE_BUSY_TIMEOUT_S = 15.0
#: first and longest pause between attempts to take a lock another process holds
_RETRY_FIRST_S, _RETRY_MAX_S = 0.002, 0.05


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # take transaction control from the driver so we can choose BEGIN IMMEDIATE
    dbapi_conn.isolation_level = None
    sqlite_driver.configure_loop_connection(dbapi_conn)


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if _write_txn.get() else "BEGIN")


def _uri(database: str) -> bool:
    """``file:...`` URI names (shared-cache memory databases in tests) are not paths."""
    return database.startswith("file:")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not _uri(parsed.database):
            private_sqlite_file(parsed.database)  # 0600, and so its -wal and -shm files
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 15)
        if parsed.get_driver_name() in ("aiosqlite", "pysqlite"):  # on the loop's thread
            parsed = parsed.set(drivername=f"sqlite+{sqlite_driver.DRIVER}")
        engine = create_async_engine(parsed, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


class _WriterQueue:
    """FIFO of this process's SQLite writers, one lock per event loop.

    A task that already holds the lock and asks again gets an error at once
    (SQLite would make it wait for itself until the busy timeout).
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (tests, CLI): locks do not cross loops
            self._loop, self._lock, self._holder = loop, asyncio.Lock(), None
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            raise RuntimeError("nested write transaction on SQLite (it would wait for itself)")
        try:
            async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_S):
                await self._lock.acquire()
        except TimeoutError:
            raise TimeoutError(
                f"database is locked: no write slot within {SQLITE_BUSY_TIMEOUT_S:.0f} s"
            ) from None
        self._holder = task
        try:
            yield
        finally:
            self._holder = None
            self._lock.release()


class Database:
    """Owns the engine; hands out read sessions and write transactions."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        sqlite = self.engine.dialect.name == "sqlite"
        self._writers = _WriterQueue() if sqlite else None
        path = self.engine.url.database
        self.checkpointer = (
            sqlite_driver.Checkpointer(path)
            if sqlite and path and path != ":memory:" and not path.startswith("file:")
            else None
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (its implicit transaction is rolled back at the end)."""
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed on success, rolled back on error."""
        queue = self._writers.hold() if self._writers is not None else nullcontext()
        async with queue:
            session = await self._begin_write()
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            finally:
                await session.close()
            if self.checkpointer is not None:
                self.checkpointer.committed()

    async def _begin_write(self) -> AsyncSession:
        """A session whose transaction has begun (``BEGIN IMMEDIATE`` on SQLite: the
        write lock is ours); waits out another process's writer without blocking."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_BUSY_TIMEOUT_S
        pause = _RETRY_FIRST_S
        while True:
            session = self.sessions()
            token = _write_txn.set(True)
            try:
                await session.begin()
                await session.connection()  # BEGIN (IMMEDIATE on SQLite) happens here
                return session
            except OperationalError as exc:
                await session.close()
                if not sqlite_driver.is_locked(exc) or loop.time() + pause > deadline:
                    raise
            except BaseException:
                await session.close()
                raise
            finally:
                _write_txn.reset(token)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _RETRY_MAX_S)

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.aclose()
        await self.engine.dispose()

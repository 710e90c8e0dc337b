"""The async engine and sessions.

SQLite runs in WAL mode. Its write transactions start with ``BEGIN IMMEDIATE``
so that concurrent writers queue on the busy timeout instead of failing with
"database is locked" when a read lock would have to be upgraded; read-only
sessions keep a deferred ``BEGIN`` so readers never block.

SQLite has one writer at a time. Inside the process, writers also queue on an
asyncio lock before they take a connection and ``BEGIN IMMEDIATE``: otherwise
each waiting writer sits in SQLite's busy handler on a driver thread, holding
a pooled connection and waking on its back-off steps (up to 100 ms late), which
under load turns a 1 ms write into hundreds of milliseconds of queueing. The
busy timeout still covers other processes (the CLI, a second server).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from flireo.store import sqlite_driver

_write_txn: ContextVar[bool] = ContextVar("flireo_sqlite_write_txn", default=False)

#: how long a writer waits for SQLite's write lock (in-process queue, then busy timeout)
SQLITE_BUSY_TIMEOUT_S = 15.0


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # take transaction control from the driver so we can choose BEGIN IMMEDIATE
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if _write_txn.get() else "BEGIN")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 15)
        if parsed.get_driver_name() == "aiosqlite":  # one driver-thread trip per statement
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
        self._writers = _WriterQueue() if self.engine.dialect.name == "sqlite" else None

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
        async with queue, self.sessions() as session, session.begin():
            token = _write_txn.set(True)
            try:
                await session.connection()  # BEGIN (IMMEDIATE on SQLite) happens here
            finally:
                _write_txn.reset(token)
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()

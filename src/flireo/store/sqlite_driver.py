"""SQLite for SQLAlchemy's asyncio engine, run on the event loop's own thread.

A statement on a local SQLite file in WAL mode takes microseconds of CPU
(``synchronous=NORMAL``: a commit appends to the WAL and does not fsync). What
made it expensive for the loop was the hand-off to a driver thread: with
aiosqlite every call is a queue put, a GIL hand-over and a wake-up of the loop
through its self-pipe, 50-100 µs of the loop's time each and about 35 of them
per call set-up and end. Here the plain :mod:`sqlite3` connection is called
directly: SQLAlchemy's asyncio layer runs it in its greenlet without ever
switching, so a statement costs what SQLite and SQLAlchemy's own code cost.

What could block the loop longer, and how it is kept off:

- **Locks held by another process** (the CLI, a second server): the busy
  timeout of these connections is short (:data:`LOOP_BUSY_TIMEOUT_MS`); a
  writer that cannot get the write lock in that time gets "database is
  locked" and :class:`~flireo.store.db.Database` retries it after an
  ``asyncio.sleep`` (in-process writers already queue on an asyncio lock).
  WAL readers do not wait for writers.
- **Checkpoints** (copying the WAL back into the database file, with an
  fsync): automatic checkpoints are off on these connections
  (``wal_autocheckpoint=0``); :class:`Checkpointer` runs them on a worker
  thread with its own connection, after enough commits.

The URL ``sqlite+aiosqlite:///...`` (the documented default) is mapped to this
dialect by :func:`flireo.store.db.create_engine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from typing import Any, Final

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.url import URL

log = logging.getLogger(__name__)

DRIVER: Final = "flireo_sqlite"
#: how long a statement on the loop may wait for another process's lock before
#: "database is locked" (then the write is retried after an asyncio sleep)
LOOP_BUSY_TIMEOUT_MS: Final = 10


class LoopCursor(sqlite3.Cursor):
    """A plain sqlite3 cursor, plus the hook SQLAlchemy's asyncio results call after
    a statement (async drivers close their server cursor there; rows of a sqlite3
    cursor are read from the connection whenever the result is consumed)."""

    async def _async_soft_close(self) -> None:
        return None


class LoopConnection(sqlite3.Connection):
    def cursor(self, factory: Any = LoopCursor) -> Any:
        return super().cursor(factory)


class SQLiteDialectOnLoop(SQLiteDialect_pysqlite):
    """pysqlite, declared async: SQLAlchemy's asyncio engine accepts it and calls the
    connection synchronously inside its greenlet (no ``await`` ever happens)."""

    driver = DRIVER
    supports_statement_cache = True
    is_async = True
    has_terminate = False
    supports_server_side_cursors = False

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        # pooled connections move between tasks (and test event loops), all on the
        # loop's thread; the checkpointer has connections of its own
        kwargs["check_same_thread"] = False
        kwargs["factory"] = LoopConnection
        return args, kwargs


def configure_loop_connection(conn: sqlite3.Connection) -> None:
    """PRAGMAs of a connection used on the event loop."""
    cur = conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={LOOP_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer does it off the loop
    finally:
        cur.close()


def is_locked(error: BaseException) -> bool:
    """SQLite's "database is locked" / "database table is locked" (SQLITE_BUSY)."""
    text = str(getattr(error, "orig", error)).lower()
    return "database is locked" in text or "database table is locked" in text


class Checkpointer:
    """Copies the WAL back into the database file on a worker thread.

    :meth:`committed` is called after every write transaction; once
    ``every_commits`` commits or ``every_s`` seconds have passed since the last
    checkpoint, a PASSIVE checkpoint (it waits for nobody) runs in the default
    executor on the checkpointer's own connection, one at a time.
    """

    def __init__(self, path: str, *, every_commits: int = 500, every_s: float = 10.0) -> None:
        self.path = path
        self.every_commits = every_commits
        self.every_s = every_s
        self._commits = 0
        self._last = time.monotonic()
        self._running: asyncio.Future[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self.checkpoints = 0  # for tests and benchmarks

    def committed(self) -> None:
        self._commits += 1
        if self._running is not None and not self._running.done():
            return
        if self._commits < self.every_commits and time.monotonic() - self._last < self.every_s:
            return
        self._commits = 0
        self._last = time.monotonic()
        self._running = asyncio.get_running_loop().run_in_executor(None, self.checkpoint)

    def checkpoint(self) -> None:
        """On a worker thread: one PASSIVE checkpoint (errors are logged, not raised)."""
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self.path, check_same_thread=False)
                self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error:
            log.warning("SQLite checkpoint failed", exc_info=True)

    async def aclose(self) -> None:
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running
        if self._conn is not None:
            self._conn.close()
            self._conn = None


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialectOnLoop")

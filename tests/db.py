"""Databases for tests: a fresh SQLite file, or a private schema on the
PostgreSQL server from ``FLIREO_TEST_POSTGRES_URL`` (truncated between tests)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import text

from flireo.store.db import Database
from flireo.store.tables import Base
from tests.conftest import skip_or_fail

PG_URL_ENV = "FLIREO_TEST_POSTGRES_URL"
_pg_schema: str | None = None


def postgres_url() -> str | None:
    return os.environ.get(PG_URL_ENV)


async def sqlite_database(tmp: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp / 'flireo.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return db


async def postgres_database() -> Database:
    """A Database on this test process's own schema, emptied for the test."""
    global _pg_schema
    url = postgres_url()
    if not url:
        skip_or_fail(f"{PG_URL_ENV} is not set")
        raise AssertionError("unreachable")
    first = _pg_schema is None
    if first:
        _pg_schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    schema = _pg_schema
    assert schema is not None
    db = Database(
        url,
        connect_args={"server_settings": {"search_path": schema}},
        pool_size=5,
        max_overflow=10,
    )
    try:
        async with db.engine.begin() as conn:
            if first:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                await conn.run_sync(Base.metadata.create_all)
            else:
                tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    except OSError as exc:
        await db.dispose()
        skip_or_fail(f"PostgreSQL not reachable: {exc}")
    return db


def drop_postgres_schema_sync() -> None:
    """Called at session end: drop this process's schema."""
    url = postgres_url()
    if not url or _pg_schema is None:
        return
    import asyncio

    async def drop() -> None:
        db = Database(url)
        async with db.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{_pg_schema}" CASCADE'))
        await db.dispose()

    asyncio.run(drop())

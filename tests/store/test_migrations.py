"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from flireo.store.db import Database
from flireo.store.migrate import upgrade
from flireo.store.tables import Base
from tests.conftest import skip_or_fail
from tests.db import postgres_url


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _check(db: Database) -> None:
    await upgrade(db)
    await upgrade(db)  # idempotent
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
        tables = await conn.run_sync(_tables)
    assert {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"} == tables


async def test_migrations_match_models_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await _check(db)
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_migrations_match_models_on_postgres() -> None:
    url = postgres_url()
    if not url:
        skip_or_fail("FLIREO_TEST_POSTGRES_URL is not set")
        return
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    admin = Database(url)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await _check(db)
    finally:
        await db.dispose()
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()

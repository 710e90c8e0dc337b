"""Campaign dialer tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flireo.store.db import Database
from tests.api.conftest import _drop_pg_schema  # noqa: F401 - session fixture
from tests.db import postgres_database, sqlite_database


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    database = await (sqlite_database(tmp_path) if backend == "sqlite" else postgres_database())
    try:
        yield database
    finally:
        await database.dispose()

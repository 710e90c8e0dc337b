from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.db import postgres_url
from tests.live.server import LiveServer, PostgresDatabase


@pytest.fixture(params=["sqlite", "postgres"])
def live_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """``flireo serve`` on a free port, on SQLite or on a fresh PostgreSQL database."""
    env: dict[str, str] = {}
    pg: PostgresDatabase | None = None
    if request.param == "postgres":
        url = postgres_url()
        if not url:
            skip_or_fail("FLIREO_TEST_POSTGRES_URL is not set")
            return
        pg = PostgresDatabase(url)
        pg.create()
        env["FLIREO_DATABASE_URL"] = pg.url
    server = LiveServer(tmp_path, env=env)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if pg is not None:
            pg.drop()

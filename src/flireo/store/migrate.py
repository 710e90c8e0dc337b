"""Apply Alembic migrations (``flireo db upgrade``, and on server start)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from flireo.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the database to ``revision`` over the Database's own engine."""
    cfg = alembic_config(db.url)

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


def upgrade_sync(url: str, revision: str = "head") -> None:
    async def go() -> None:
        db = Database(url)
        try:
            await upgrade(db, revision)
        finally:
            await db.dispose()

    asyncio.run(go())

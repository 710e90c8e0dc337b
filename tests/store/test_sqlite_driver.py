"""The SQLite adapter: each statement is one trip to aiosqlite's thread, and it
behaves as SQLAlchemy's own aiosqlite adapter (rows, row counts, last row ids,
executemany, errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Integer, String, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flireo.store import sqlite_driver
from flireo.store.db import Database


class _Base(DeclarativeBase):
    pass


class Row(_Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every function sent to an aiosqlite thread (observed, then run as usual)."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def observed(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", observed)
    return seen


async def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(_Base.metadata.create_all)
    return db


async def test_the_embedded_url_uses_the_one_trip_adapter(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    assert isinstance(db.engine.dialect, sqlite_driver.SQLiteDialectOneTrip)
    assert db.dialect == "sqlite"
    await db.dispose()


async def test_one_trip_per_statement(tmp_path: Path, trips: list[str]) -> None:
    db = await _db(tmp_path)
    async with db.transaction() as s:
        s.add(Row(name="warm-up"))  # the pool opens its connection here
    async with db.transaction() as s:
        trips.clear()
        await s.execute(insert(Row).values(name="a"))
        await s.execute(select(Row).where(Row.name == "a"))
        await s.execute(update(Row).where(Row.name == "a").values(name="b"))
        statements = list(trips)
    await db.dispose()
    assert statements == ["_execute", "_execute", "_execute"]


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
        stream = await s.stream(select(Row.id).order_by(Row.id))  # server-side cursor
        assert [i async for i in stream.scalars()] == [1, 2, 3, 4]
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

"""SQLite's one writer: this process's write transactions queue on the event loop
(no busy-handler sleeps on driver threads), and a nested one fails at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from flireo.store.tables import Organization
from tests.db import sqlite_database


async def test_concurrent_writers_all_commit_first_come_first_served(
    tmp_path: Path,
) -> None:
    db = await sqlite_database(tmp_path)
    order: list[int] = []

    async def write(i: int) -> None:
        async with db.transaction() as s:
            order.append(i)
            s.add(Organization(id=f"org-{i:03d}", name=f"Org {i}"))
            await asyncio.sleep(0.002)  # other writers pile up meanwhile

    await asyncio.gather(*(write(i) for i in range(60)))
    async with db.read() as s:
        names = (await s.execute(select(Organization.id))).scalars().all()
    await db.dispose()

    assert sorted(names) == [f"org-{i:03d}" for i in range(60)]
    # first come, first served (SQLite's busy handler wakes waiters in no order)
    assert order == list(range(60))


async def test_a_nested_write_transaction_fails_at_once(tmp_path: Path) -> None:
    db = await sqlite_database(tmp_path)

    async def nested() -> None:
        async with db.transaction() as s:
            s.add(Organization(id="outer", name="Outer"))
            async with db.transaction():
                pass

    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="nested write transaction"):
        await nested()
    assert time.perf_counter() - t0 < 5.0  # not SQLite's 15 s busy timeout
    async with db.read() as s:  # the outer one was rolled back, the lock released
        assert (await s.execute(select(Organization.id))).scalars().all() == []
    async with db.transaction() as s:
        s.add(Organization(id="after", name="After"))
    await db.dispose()


async def test_a_failed_writer_releases_the_lock(tmp_path: Path) -> None:
    db = await sqlite_database(tmp_path)

    async def failing() -> None:
        async with db.transaction() as s:
            s.add(Organization(id="x", name="X"))
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await failing()
    async with asyncio.timeout(2):
        async with db.transaction() as s:
            s.add(Organization(id="y", name="Y"))
    async with db.read() as s:
        assert (await s.execute(select(Organization.id))).scalars().all() == ["y"]
    await db.dispose()

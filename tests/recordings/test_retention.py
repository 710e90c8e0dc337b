"""The retention sweeper (injected clock), on SQLite and PostgreSQL: recordings older
than their organization's retention go, newer ones and ``0 = forever`` stay, and
several sweepers at once delete each recording once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from flireo.clock import ManualClock
from flireo.recordings.retention import RetentionSweeper
from flireo.services.container import Services
from flireo.store.tables import Call, Organization
from tests.api.conftest import (
    MakeOrg,
    _drop_pg_schema,
    backend,
    keyring,
    make_org,
    services,
    settings,
)
from tests.recordings.api_helpers import call_with_recording

__all__ = ["_drop_pg_schema", "backend", "keyring", "make_org", "services", "settings"]

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


async def status_of(services: Services, call_id: str) -> tuple[str | None, str | None]:
    async with services.db.read() as s:
        call = await s.get(Call, call_id)
        assert call is not None
        return call.recording_status, call.recording_key


async def set_retention(services: Services, org_id: str, days: int) -> None:
    async with services.db.transaction() as s:
        await s.execute(
            update(Organization)
            .where(Organization.id == org_id)
            .values(recording_retention_days=days)
        )


def files(tmp: Path) -> set[str]:
    return {p.name for p in (tmp / "recordings").rglob("*.wav")}


async def test_old_recordings_go_new_ones_and_forever_stay(
    services: Services, make_org: MakeOrg, tmp_path: Path
) -> None:
    monthly, forever = await make_org("Monthly"), await make_org("Forever")
    await set_retention(services, forever.id, 0)
    old = await call_with_recording(
        services, monthly.id, tmp_path, recorded_at=NOW - timedelta(days=31)
    )
    young = await call_with_recording(
        services, monthly.id, tmp_path, recorded_at=NOW - timedelta(days=29)
    )
    ancient = await call_with_recording(
        services, forever.id, tmp_path, recorded_at=NOW - timedelta(days=3000)
    )
    clock = ManualClock(NOW)
    sweeper = RetentionSweeper(services.db, services.recordings.storage, clock, batch=1)

    assert await sweeper.run_once() == 1
    assert await status_of(services, old.call_id) == ("deleted", None)
    assert (await status_of(services, young.call_id))[0] == "stored"
    assert (await status_of(services, ancient.call_id))[0] == "stored"
    assert f"{old.call_id}.wav" not in files(tmp_path)
    assert f"{young.call_id}.wav" in files(tmp_path)
    assert await sweeper.run_once() == 0

    await clock.advance(2 * 86400)  # the young one is 31 days old now
    assert await sweeper.run_once() == 1
    assert await status_of(services, young.call_id) == ("deleted", None)
    assert files(tmp_path) == {f"{ancient.call_id}.wav", f"{ancient.call_id}.mono.wav"}

    await set_retention(services, forever.id, 365)  # an organization shortens its retention
    assert await sweeper.run_once() == 1
    assert files(tmp_path) == set()


async def test_concurrent_sweepers_delete_each_recording_once(
    services: Services, make_org: MakeOrg, tmp_path: Path
) -> None:
    org = await make_org()
    stored = [
        await call_with_recording(
            services, org.id, tmp_path, recorded_at=NOW - timedelta(days=40 + i)
        )
        for i in range(6)
    ]
    clock = ManualClock(NOW)
    sweepers = [
        RetentionSweeper(services.db, services.recordings.storage, clock, batch=2) for _ in range(3)
    ]
    counts = await asyncio.gather(*(s.run_once() for s in sweepers))
    assert sum(counts) == len(stored)
    for rec in stored:
        assert await status_of(services, rec.call_id) == ("deleted", None)
    assert files(tmp_path) == set()

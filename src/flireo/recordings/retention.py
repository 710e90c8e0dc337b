"""Deleting recordings older than their organization's retention.

Every node runs a :class:`RetentionSweeper` (``flireo serve`` starts it). One
round, per organization with ``recording_retention_days`` > 0: claim a batch
of calls whose stored recording was made before ``now - retention`` by moving
them to ``recording_status = "deleting"`` in one short transaction
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent sweepers take
different rows; SQLite has one writer), delete the objects, then clear the
keys (``deleted``). A sweeper that died mid-way leaves ``deleting`` rows; they
are claimed again once their lease (``updated_at`` + :data:`LEASE`) is over.
Deleting an object twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import structlog
from sqlalchemy import and_, or_, select

from flireo.clock import Clock
from flireo.recordings.storage import RecordingStorage, StorageError
from flireo.store.db import Database
from flireo.store.tables import Call, Organization

log = structlog.get_logger(__name__)

LEASE = timedelta(minutes=10)


class RetentionSweeper:
    def __init__(
        self,
        db: Database,
        storage: RecordingStorage,
        clock: Clock,
        *,
        interval_seconds: float = 3600.0,
        batch: int = 100,
    ) -> None:
        self.db, self.storage, self.clock = db, storage, clock
        self.interval_seconds, self.batch = interval_seconds, batch
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="recording-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("recording retention sweep failed")
            await self.clock.sleep(self.interval_seconds)

    async def run_once(self) -> int:
        """One sweep over every organization; returns how many recordings were deleted."""
        now = self.clock.now()
        async with self.db.read() as s:
            orgs = (
                await s.execute(
                    select(Organization.id, Organization.recording_retention_days).where(
                        Organization.recording_retention_days > 0
                    )
                )
            ).all()
        deleted = 0
        for org_id, days in orgs:
            cutoff = now - timedelta(days=int(days))
            while True:
                claimed = await self._claim(org_id, cutoff, now)
                if not claimed:
                    break
                deleted += await self._delete(claimed)
                if len(claimed) < self.batch:
                    break
        return deleted

    async def _claim(
        self, org_id: str, cutoff: datetime, now: datetime
    ) -> list[tuple[str, str | None, str | None]]:
        stmt = (
            select(Call)
            .where(
                Call.org_id == org_id,
                Call.recorded_at < cutoff,
                or_(
                    Call.recording_status == "stored",
                    and_(Call.recording_status == "deleting", Call.updated_at < now - LEASE),
                ),
            )
            .order_by(Call.recorded_at)
            .limit(self.batch)
        )
        if self.db.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        async with self.db.transaction() as s:
            rows = (await s.execute(stmt)).scalars().all()
            for call in rows:
                call.recording_status = "deleting"
                call.updated_at = now
            return [(c.id, c.recording_key, c.recording_mono_key) for c in rows]

    async def _delete(self, claimed: list[tuple[str, str | None, str | None]]) -> int:
        done: list[str] = []
        for call_id, stereo, mono in claimed:
            try:
                for key in (stereo, mono):
                    if key:
                        await self.storage.delete(key)
            except StorageError as exc:
                log.warning("retention: recording not deleted", call_id=call_id, error=str(exc))
                continue  # stays "deleting": claimed again once the lease is over
            done.append(call_id)
        if done:
            async with self.db.transaction() as s:
                for call in (
                    await s.execute(select(Call).where(Call.id.in_(done)).with_for_update())
                ).scalars():
                    if call.recording_status == "deleting":
                        call.recording_status = "deleted"
                        call.recording_key = call.recording_mono_key = None
                        call.recording_error = None
        log.info("retention: recordings deleted", count=len(done))
        return len(done)

"""Retrying recordings that could not be stored when their call ended.

A :class:`~flireo.store.tables.RecordingUpload` row names the spooled files of
one call on the node that took it (only that node has them, so only that node
claims the row). Rows are claimed with a lease like the webhook outbox
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer), so a crash
mid-upload is picked up again once the lease expires. Retries never give up
(the files are the only copy): 5 s, 30 s, 2 min, 10 min, 30 min, then hourly,
±10 % jitter, multiplied by ``FLIREO_RECORDING_RETRY_SCALE``. On success the
call row gets its keys (``recording_status`` ``stored``) and the spool is emptied;
a row whose recording was deleted meanwhile (``cancelled``) only removes the files.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import select

from flireo.clock import Clock
from flireo.recordings.capture import RecordedAudio
from flireo.recordings.encode import CONTENT_TYPES, RecordingFormat
from flireo.recordings.service import Recordings, describe, next_delay
from flireo.recordings.storage import StorageError, recording_keys, run_io
from flireo.store.db import Database
from flireo.store.tables import Call, RecordingUpload

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Claimed:
    call_id: str
    org_id: str
    cancelled: bool
    audio: RecordedAudio
    recorded_at: datetime
    attempts: int


class RecordingUploader:
    def __init__(
        self,
        db: Database,
        recordings: Recordings,
        clock: Clock,
        *,
        node_id: str,
        batch: int = 8,
        poll_seconds: float = 5.0,
        lease_seconds: float = 300.0,
    ) -> None:
        self.db, self.recordings, self.clock, self.node_id = db, recordings, clock, node_id
        self.batch, self.poll_seconds, self.lease_seconds = batch, poll_seconds, lease_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="recording-uploader")

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
            except Exception:  # survive a database hiccup
                log.exception("recording upload round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def run_once(self) -> int:
        """Claim this node's due uploads and try each once; returns how many were tried."""
        claimed = await self._claim()
        for c in claimed:
            await self._attempt(c)
        return len(claimed)

    async def _claim(self) -> list[_Claimed]:
        now = self.clock.now()
        stmt = (
            select(RecordingUpload)
            .where(
                RecordingUpload.node_id == self.node_id,
                RecordingUpload.status.in_(("pending", "cancelled")),
                RecordingUpload.next_attempt_at <= now,
                (RecordingUpload.lease_expires_at.is_(None))
                | (RecordingUpload.lease_expires_at < now),
            )
            .order_by(RecordingUpload.next_attempt_at)
            .limit(self.batch)
        )
        if self.db.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        claimed: list[_Claimed] = []
        async with self.db.transaction() as s:
            for row in (await s.execute(stmt)).scalars().all():
                row.lease_owner = self.node_id
                row.lease_expires_at = now + timedelta(seconds=self.lease_seconds)
                fmt: RecordingFormat = "ogg" if row.format == "ogg" else "wav"
                audio = RecordedAudio(
                    stereo_path=Path(row.stereo_path),
                    mono_path=Path(row.mono_path),
                    format=fmt,
                    content_type=CONTENT_TYPES[fmt],
                    duration_s=row.duration_seconds,
                )
                claimed.append(
                    _Claimed(
                        row.call_id,
                        row.org_id,
                        row.status == "cancelled",
                        audio,
                        row.recorded_at,
                        row.attempts,
                    )
                )
        return claimed

    async def _attempt(self, c: _Claimed) -> None:
        recordings = self.recordings
        if c.cancelled:
            await run_io(_drop_files, c.audio)
            async with self.db.transaction() as s:
                row = await s.get(RecordingUpload, c.call_id)
                if row is not None:
                    await s.delete(row)
            return
        error: str | None = None
        try:
            await recordings.store(c.org_id, c.call_id, c.audio, c.recorded_at)
        except (StorageError, TimeoutError, OSError) as exc:
            error = "storage timed out" if isinstance(exc, TimeoutError) else describe(exc)
        now = self.clock.now()
        stereo_key, mono_key = recording_keys(c.org_id, c.call_id, c.recorded_at, c.audio.format)
        orphaned = False
        async with self.db.transaction() as s:
            row = await s.get(RecordingUpload, c.call_id, with_for_update=True)
            call = await s.get(Call, c.call_id, with_for_update=True)
            if error is not None:
                if row is not None:
                    row.attempts += 1
                    row.error = error
                    row.lease_owner = row.lease_expires_at = None
                    row.next_attempt_at = now + timedelta(
                        seconds=next_delay(
                            row.attempts, scale=recordings.settings.recording_retry_scale
                        )
                    )
                if call is not None and call.recording_status == "pending":
                    call.recording_error = error
                log.warning("recording upload failed again", call_id=c.call_id, error=error)
                return
            if row is not None:
                await s.delete(row)
            if (
                call is not None
                and call.recording_status == "pending"
                and (row is None or row.status == "pending")
            ):
                call.recording_status = "stored"
                call.recording_key, call.recording_mono_key = stereo_key, mono_key
                call.recording_error = None
                log.info("recording stored after retry", call_id=c.call_id)
            else:
                orphaned = True  # deleted meanwhile, or the call is gone
        if orphaned:
            for key in (stereo_key, mono_key):
                with contextlib.suppress(StorageError):
                    await recordings.storage.delete(key)


def _drop_files(audio: RecordedAudio) -> None:
    audio.cleanup()
    with contextlib.suppress(OSError):
        audio.stereo_path.parent.rmdir()

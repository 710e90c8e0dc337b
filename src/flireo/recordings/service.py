"""A call's recording from the end of the call to the API: store the finished
files, note them on the call row, hand out and check signed links, delete.

The files are made in this node's spool (``data_dir/recordings-spool/<call id>/``).
When the call ends they are stored (:meth:`Recordings.keep`) before the
end-of-call report is written; when that fails (disk full, S3 down) the call
ends as usual, the report carries ``recordingError``, and a
:class:`~flireo.store.tables.RecordingUpload` row (written in the same
transaction as the call's end) has :mod:`flireo.recordings.uploads` try again
until it succeeds; the spooled files stay until then.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.clock import Clock
from flireo.domain.agents import RecordingFormat
from flireo.recordings.capture import CallRecorder, RecordedAudio, RecordingError
from flireo.recordings.links import Channel, RecordingLinks, links_for
from flireo.recordings.storage import RecordingStorage, StorageError, recording_keys, run_io
from flireo.settings import Settings
from flireo.store.tables import Agent, Call, RecordingUpload

log = structlog.get_logger(__name__)

#: longest a call's end waits for its recording to be stored (then: retried later)
STORE_DEADLINE_S = 60.0
#: longest a call's end waits for its recording: a bridged transfer's media (the
#: recorder waits up to 4 h for the bridge to close), then storing it
RECORDING_FINISH_BOUND_S = 4 * 3600 + STORE_DEADLINE_S + 60
#: seconds before upload retry n+1 (never given up: the spooled files are the only copy)
RETRY_SCHEDULE: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600)


def next_delay(
    attempts_made: int, *, scale: float = 1.0, rng: random.Random | None = None
) -> float:
    """Seconds until the next upload attempt after ``attempts_made`` (±10 % jitter)."""
    base = RETRY_SCHEDULE[min(max(attempts_made - 1, 0), len(RETRY_SCHEDULE) - 1)] * scale
    return max(0.0, base + (rng or random).uniform(-0.1, 0.1) * base)


def recording_format_for(call: Call, agent: Agent | None) -> RecordingFormat | None:
    """The format this call is recorded in, or None when it is not recorded.

    A per-call ``recordingEnabled`` (assistant-request reply, campaign, outbound
    request) wins over the agent's ``recording_enabled``."""
    if agent is None:
        return None
    override = (call.overrides or {}).get("recordingEnabled")
    enabled = override if isinstance(override, bool) else agent.recording_enabled
    if not enabled:
        return None
    return "ogg" if agent.recording_format == "ogg" else "wav"


@dataclass(frozen=True, slots=True)
class KeptRecording:
    """What :meth:`Recordings.keep` did with a finished recording."""

    #: stored: in storage now; pending: retried from the queue; failed: nothing to keep
    status: Literal["stored", "pending", "failed"]
    format: RecordingFormat
    stereo_key: str | None
    mono_key: str | None
    duration_s: float | None
    recorded_at: datetime
    error: str | None = None
    audio: RecordedAudio | None = None


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:500]


class Recordings:
    def __init__(
        self, storage: RecordingStorage, settings: Settings, clock: Clock, *, node_id: str
    ) -> None:
        self.storage, self.settings, self.clock, self.node_id = storage, settings, clock, node_id

    @property
    def links(self) -> RecordingLinks:
        return links_for(self.settings)

    @property
    def spool_dir(self) -> Path:
        return self.settings.data_dir / "recordings-spool"

    def recorder(self, call_id: str, fmt: RecordingFormat) -> CallRecorder:
        return CallRecorder(format=fmt, work_dir=self.spool_dir / _safe(call_id), name="call")

    async def store(self, org_id: str, call_id: str, audio: RecordedAudio, when: datetime) -> None:
        """Both files into storage (raises :class:`StorageError`); the spool copy is
        removed once both are in."""
        stereo_key, mono_key = recording_keys(org_id, call_id, when, audio.format)
        async with asyncio.timeout(STORE_DEADLINE_S):
            await self.storage.put(stereo_key, audio.stereo_path, audio.content_type)
            await self.storage.put(mono_key, audio.mono_path, audio.content_type)
        await run_io(_remove_spool, audio)

    async def keep(
        self, org_id: str, call_id: str, recorder: CallRecorder, recorded_at: datetime
    ) -> KeptRecording | None:
        """Finish the recorder and store its files; None when nothing was recorded."""
        fmt = recorder.format
        try:
            audio = await recorder.finish()
        except RecordingError as exc:
            log.warning("recording lost", call_id=call_id, error=describe(exc))
            return KeptRecording("failed", fmt, None, None, None, recorded_at, describe(exc))
        if audio is None:
            return None
        stereo_key, mono_key = recording_keys(org_id, call_id, recorded_at, audio.format)
        try:
            await self.store(org_id, call_id, audio, recorded_at)
        except (StorageError, TimeoutError, OSError) as exc:
            error = "storage timed out" if isinstance(exc, TimeoutError) else describe(exc)
            log.warning("recording not stored yet: will retry", call_id=call_id, error=error)
            return KeptRecording(
                "pending", fmt, stereo_key, mono_key, audio.duration_s, recorded_at, error, audio
            )
        return KeptRecording("stored", fmt, stereo_key, mono_key, audio.duration_s, recorded_at)

    async def forget(self, kept: KeptRecording) -> None:
        """The call had already ended (nothing refers to this recording): drop it."""
        if kept.status == "stored":
            for key in (kept.stereo_key, kept.mono_key):
                if key:
                    await self.storage.delete(key)
        if kept.audio is not None:
            await run_io(_remove_spool, kept.audio)

    async def delete_objects(self, call: Call) -> None:
        """Remove the stored files of ``call`` (raises :class:`StorageError`)."""
        for key in (call.recording_key, call.recording_mono_key):
            if key:
                await self.storage.delete(key)

    async def clear(self, session: AsyncSession, call: Call) -> None:
        """After :meth:`delete_objects`: no recording any more (row locked by the caller)."""
        upload = await session.get(RecordingUpload, call.id, with_for_update=True)
        if upload is not None:
            # the files wait in the spool of the node that took the call: it removes them
            upload.status = "cancelled"
            upload.next_attempt_at = self.clock.now()
        call.recording_key = call.recording_mono_key = None
        if call.recording_status is not None:
            call.recording_status = "deleted"
        call.recording_error = None


def note_recording(
    session: AsyncSession,
    call: Call,
    kept: KeptRecording,
    *,
    node_id: str,
    now: datetime,
    retry_scale: float = 1.0,
) -> None:
    """Write ``kept`` on the call row (and queue the retry), in the caller's transaction."""
    call.recording_format = kept.format
    call.recording_duration_seconds = (
        round(kept.duration_s, 3) if kept.duration_s is not None else None
    )
    call.recorded_at = kept.recorded_at
    call.recording_error = kept.error
    call.recording_status = kept.status
    stored = kept.status == "stored"
    call.recording_key = kept.stereo_key if stored else None
    call.recording_mono_key = kept.mono_key if stored else None
    if kept.status == "pending" and kept.audio is not None:
        session.add(
            RecordingUpload(
                call_id=call.id,
                org_id=call.org_id,
                node_id=node_id,
                format=kept.format,
                stereo_path=str(kept.audio.stereo_path),
                mono_path=str(kept.audio.mono_path),
                duration_seconds=kept.audio.duration_s,
                recorded_at=kept.recorded_at,
                status="pending",
                attempts=1,
                next_attempt_at=now + timedelta(seconds=next_delay(1, scale=retry_scale)),
                error=kept.error,
            )
        )


def _safe(call_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_+." else "_" for c in call_id)[:120]


def _remove_spool(audio: RecordedAudio) -> None:
    audio.cleanup()
    parent = audio.stereo_path.parent
    if parent.exists() and not any(parent.iterdir()):
        shutil.rmtree(parent, ignore_errors=True)


def recording_fields(call: Call, links: RecordingLinks | None, now: datetime) -> dict[str, Any]:
    """``recording_url`` (mono) and ``stereo_recording_url`` of the call object."""
    mono = stereo = None
    if links is not None and call.recording_status == "stored" and call.recording_key:
        stereo = links.url(call.id, "stereo", now)
        mono = links.url(call.id, "mono", now) if call.recording_mono_key else None
    return {"recording_url": mono, "stereo_recording_url": stereo}


def stored_key(call: Call, channel: Channel) -> str | None:
    if call.recording_status != "stored":
        return None
    return call.recording_mono_key if channel == "mono" else call.recording_key


def report_fields(call: Call, settings: Settings, now: datetime) -> dict[str, Any]:
    """The end-of-call report's recording fields: Vapi's ``recordingUrl`` (mono) and
    ``stereoRecordingUrl``, the legacy ``recordings.linkStereo``, and
    ``recordingError`` when the recording could not be stored (yet)."""
    links = links_for(settings) if call.recording_status == "stored" else None
    urls = recording_fields(call, links, now)
    fields: dict[str, Any] = {
        "recordingUrl": urls["recording_url"],
        "stereoRecordingUrl": urls["stereo_recording_url"],
    }
    if urls["stereo_recording_url"]:
        fields["recordings"] = {
            "linkStereo": urls["stereo_recording_url"],
            "linkMono": urls["recording_url"],
        }
    if call.recording_error:
        fields["recordingError"] = call.recording_error
    return fields

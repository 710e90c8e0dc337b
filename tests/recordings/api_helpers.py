"""Calls with a stored recording for the API tests (real storage, real call rows)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from flireo.recordings.capture import RecordedAudio
from flireo.recordings.encode import CONTENT_TYPES, RecordingFormat
from flireo.recordings.service import KeptRecording, note_recording
from flireo.recordings.storage import recording_keys
from flireo.services.container import Services
from flireo.store.tables import Call
from tests.recordings.fixtures import tone, write_wav


@dataclass
class Stored:
    call_id: str
    stereo: bytes
    mono: bytes


async def new_call(services: Services, org_id: str, *, status: str = "ended") -> str:
    call_id = f"call-_+31612345678_{secrets.token_hex(6)}"
    now = services.clock.now()
    async with services.db.transaction() as s:
        s.add(
            Call(
                id=call_id,
                org_id=org_id,
                direction="inbound",
                status=status,
                caller_phone="+31612345678",
                assistant_phone="+31850835037",
                started_at=now,
                ended_at=now,
                duration_seconds=2,
            )
        )
    return call_id


async def call_with_recording(
    services: Services,
    org_id: str,
    tmp: Path,
    *,
    fmt: RecordingFormat = "wav",
    recorded_at: datetime | None = None,
    seconds: float = 2.0,
) -> Stored:
    """A finished call whose (real WAV) recording went through storage like a call's."""
    call_id = await new_call(services, org_id)
    when = recorded_at or services.clock.now()
    left, right = tone(seconds, 440), tone(seconds, 880)
    spool = tmp / "spool" / call_id
    stereo = write_wav(spool / f"call.stereo.{fmt}", left, right)
    mono = write_wav(spool / f"call.mono.{fmt}", ((left.astype(np.int32) + right) // 2))
    stereo_bytes, mono_bytes = stereo.read_bytes(), mono.read_bytes()
    audio = RecordedAudio(stereo, mono, fmt, CONTENT_TYPES[fmt], seconds)
    await services.recordings.store(org_id, call_id, audio, when)
    stereo_key, mono_key = recording_keys(org_id, call_id, when, fmt)
    kept = KeptRecording("stored", fmt, stereo_key, mono_key, seconds, when)
    async with services.db.transaction() as s:
        call = await s.get(Call, call_id)
        assert call is not None
        note_recording(s, call, kept, node_id="node-a", now=services.clock.now())
    return Stored(call_id, stereo_bytes, mono_bytes)

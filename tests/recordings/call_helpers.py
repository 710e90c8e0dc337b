"""A recorded call run by the real :class:`CallRunner` over the in-memory line (local
Piper greeting, then the caller hangs up), for the storage-failure tests."""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from flireo.clock import SystemClock
from flireo.engine.memory_transport import MemoryTransport
from flireo.services.container import Services
from flireo.store.tables import Call, RecordingUpload, UsageLog, WebhookEvent
from tests.api.conftest import Org
from tests.fakes.openai_chat import FakeOpenAI
from tests.services.test_call_runner import (
    add_openai_key,
    make_agent,
    runner,
    spoken_and_quiet,
    stored_call,
)


async def run_greeting_call(
    services: Services, org: Org, api: httpx.AsyncClient, fake: FakeOpenAI, **agent: Any
) -> str:
    """Answer, let the agent greet, the caller hangs up; returns the call id."""
    await add_openai_key(api, fake)
    agent_id = await make_agent(api, fake, first_message="Hello, this is Anna.", **agent)
    call_id = await stored_call(services, org, agent_id)
    transport = MemoryTransport(SystemClock())
    task = asyncio.create_task(runner(services).run(call_id, transport))
    await spoken_and_quiet(transport)
    transport.remote_hangup()
    await asyncio.wait_for(task, 60)
    return call_id


async def call_row(services: Services, call_id: str) -> Call:
    async with services.db.read() as s:
        call = await s.get(Call, call_id)
        assert call is not None
        return call


async def upload_row(services: Services, call_id: str) -> RecordingUpload | None:
    async with services.db.read() as s:
        return await s.get(RecordingUpload, call_id)


async def reports(services: Services, call_id: str) -> list[dict[str, Any]]:
    async with services.db.read() as s:
        rows = (
            await s.execute(
                select(WebhookEvent).where(
                    WebhookEvent.call_id == call_id,
                    WebhookEvent.event_type == "end-of-call-report",
                )
            )
        ).scalars()
        return [dict((e.payload or {})["message"]) for e in rows]


async def usage_count(services: Services, call_id: str) -> int:
    async with services.db.read() as s:
        rows = await s.execute(select(UsageLog).where(UsageLog.call_id == call_id))
        return len(list(rows.scalars()))


def wav_channels(data: bytes) -> tuple[int, float]:
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.getnchannels(), w.getnframes() / w.getframerate()


def exists(path: str) -> bool:
    return Path(path).exists()


def wavs_under(root: Path) -> list[Path]:
    return list(root.rglob("*.wav"))


def block(path: Path) -> None:
    """A file where the recordings directory should be: every write below it fails."""
    path.write_text("not a directory")


def unblock(path: Path) -> None:
    path.unlink()
